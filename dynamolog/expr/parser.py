"""Recursive-descent parser for DynamoDB's four expression grammars.

The public ``parse_*`` functions are memoized: the AST they return is immutable.
Errors are :func:`dynamolog.errors.validation` errors with DynamoDB's wording.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dynamolog.errors import ApiError, counted, validation
from dynamolog.expr.ast import (
    AddAction,
    And,
    Arith,
    Between,
    Compare,
    Condition,
    DeleteAction,
    Function,
    IfNotExists,
    In,
    ListAppend,
    NameRef,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    SetAction,
    SetValue,
    Size,
    Update,
    Value,
)
from dynamolog.expr.reserved import is_reserved
from dynamolog.expr.tokens import EOF, Token, syntax_error, tokenize

COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
CONDITION_FUNCTIONS = {  # name -> number of operands
    "attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2,
    "begins_with": 2, "contains": 2, "size": 1,
}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}
_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"})
_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")
MAX_IN_OPERANDS = 100
#: levels of a document path (a.b[1] has three), as DynamoDB: its nested-attribute depth limit
PATH_DEPTH_MAX = 32


class _Call:
    """A parsed function call before it is known to be a condition or an operand."""

    __slots__ = ("args", "index", "name")

    def __init__(self, name: str, args: list[_Arg], index: int) -> None:
        self.name, self.args, self.index = name, args, index


_Arg = Path | Value | _Call


#: DynamoDB's limits on one expression string: 4 KB, and 300 operators and functions
EXPRESSION_BYTES_MAX = 4096
OPERATORS_MAX = 300
_COMPARATORS = frozenset(("=", "<>", "<", "<=", ">", ">=", "+", "-"))
_WORD_OPERATORS = frozenset(("AND", "OR", "NOT", "BETWEEN", "IN"))


def _operator_count(tokens: list[Token]) -> int:
    """Operators and function calls of an expression, counted as DynamoDB does for its limit."""
    n = 0
    for i, t in enumerate(tokens):
        if t.kind in _COMPARATORS:
            n += 1
        elif t.kind == "ID" and (t.text.upper() in _WORD_OPERATORS
                                 or (i + 1 < len(tokens) and tokens[i + 1].kind == "(")):
            n += 1  # AND, OR, NOT, BETWEEN, IN, or a function call
    return n


class _Parser:
    """Parser state: the token list and a cursor."""

    def __init__(self, source: str, kind: str) -> None:
        self.source = source
        self.kind = kind
        if not source.strip():
            if kind == "UpdateExpression":  # DynamoDB counts this one as a constraint problem
                raise counted(f"Invalid {kind}: The expression can not be empty;")
            raise self.error("The expression can not be empty;")
        size = len(source.encode("utf-8"))
        if size > EXPRESSION_BYTES_MAX:
            raise self.error(f"Expression size has exceeded the maximum allowed size; expression size: {size}")
        self.tokens = tokenize(source, kind)
        self.pos = 0
        #: position of each condition group's "(" -> position of its ")"
        self._group_ends: dict[int, int] = {}
        count = _operator_count(self.tokens)
        if count > OPERATORS_MAX:
            raise self.error(f"The expression contains too many operators; operator count: {count}")

    # ------------------------------------------------------------ helpers

    def error(self, message: str) -> ApiError:
        return validation(f"Invalid {self.kind}: {message}")

    def syntax(self, index: int | None = None) -> Exception:
        return syntax_error(self.kind, self.source, self.tokens, self.pos if index is None else index)

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def is_kw(self, word: str, tok: Token | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "ID" and t.text.upper() == word

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.syntax()
        t = self.tok
        self.pos += 1
        return t

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.syntax()
        self.pos += 1

    def end(self) -> None:
        if self.tok.kind != EOF:
            raise self.syntax()

    # ------------------------------------------------------------ paths and operands

    def name_element(self) -> PathElement:
        t = self.tok
        if t.kind == "NAME":
            self.pos += 1
            return NameRef(t.text)
        if t.kind == "ID" and t.text.upper() not in _KEYWORDS:
            if is_reserved(t.text):
                raise self.error(f"Attribute name is a reserved keyword; reserved keyword: {t.text}")
            self.pos += 1
            return t.text
        raise self.syntax()

    def path(self) -> Path:
        elements: list[PathElement] = [self.name_element()]
        while True:
            if self.tok.kind == ".":
                self.pos += 1
                elements.append(self.name_element())
            elif self.tok.kind == "[":
                self.pos += 1
                num = self.expect("NUM")
                self.expect("]")
                elements.append(int(num.text))
            else:
                if len(elements) > PATH_DEPTH_MAX:
                    raise self.error("The document path has too many nesting levels; nesting levels: "
                                     f"{len(elements)}")
                return Path(tuple(elements))

    def arg(self) -> _Arg:
        """A path, a value or a function call."""
        t = self.tok
        if t.kind == "VALUE":
            self.pos += 1
            return Value(t.text)
        if t.kind == "ID" and self.peek().kind == "(":
            index = self.pos
            self.pos += 2
            args: list[_Arg] = []
            if self.tok.kind != ")":
                args.append(self.arg())
                while self.tok.kind == ",":
                    self.pos += 1
                    args.append(self.arg())
            self.expect(")")
            return _Call(t.text, args, index)
        return self.path()

    def check_call(self, call: _Call, table: dict[str, int]) -> None:
        """Validate function name and arity (``table`` maps allowed names to arity)."""
        name = call.name
        if name not in CONDITION_FUNCTIONS and name not in UPDATE_FUNCTIONS:
            raise self.error(f"Invalid function name; function: {name}")
        if name not in table:
            where = "an update" if table is UPDATE_FUNCTIONS else "a condition"
            raise self.error(f"The function is not allowed in {where} expression; function: {name}")
        if len(call.args) != table[name]:
            raise self.error("Incorrect number of operands for operator or function; "
                             f"operator or function: {name}, number of operands: {len(call.args)}")

    def need_path(self, arg: _Arg, name: str) -> Path:
        if not isinstance(arg, Path):
            raise self.error(f"Operator or function requires a document path; operator or function: {name}")
        return arg

    def size_arg(self, arg: _Arg) -> Path | Value:
        """The argument of ``size()``: a path or (as DynamoDB allows) a :value, not a call."""
        if isinstance(arg, Value):
            return arg
        return self.need_path(arg, "size")

    # ------------------------------------------------------------ conditions

    def operand(self) -> Operand:
        """A condition operand: path, value or ``size(path)``."""
        a = self.arg()
        if isinstance(a, _Call):
            self.check_call(a, CONDITION_FUNCTIONS)
            if a.name != "size":
                raise self.error(
                    f"The function is not allowed to be used this way in an expression; function: {a.name}")
            return Size(self.size_arg(a.args[0]))
        return a

    def condition(self) -> Condition:
        left = self.conjunction()
        while self.is_kw("OR"):
            self.pos += 1
            left = Or(left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.is_kw("AND"):
            self.pos += 1
            left = And(left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.is_kw("NOT"):
            self.pos += 1
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Condition:
        if self.tok.kind == "(":
            self.pos += 1
            inner_start = self.pos
            inner = self.condition()
            if self.tokens[inner_start].kind == "(" and self._group_ends.get(inner_start) == self.pos - 1:
                # "((a = :v))": a group whose whole content is another group, refused as DynamoDB does
                raise self.error("The expression has redundant parentheses;")
            self._group_ends[inner_start - 1] = self.pos
            self.expect(")")
            return inner
        start = self.pos
        a = self.arg()
        if isinstance(a, _Call) and a.name != "size":
            self.check_call(a, CONDITION_FUNCTIONS)
            if self.tok.kind in COMPARATORS or self.is_kw("BETWEEN") or self.is_kw("IN"):
                raise self.error(
                    f"The function is not allowed to be used this way in an expression; function: {a.name}")
            return self.boolean_function(a)
        self.pos = start
        left = self.operand()
        t = self.tok
        if t.kind in COMPARATORS:
            self.pos += 1
            return Compare(t.kind, left, self.operand())
        if self.is_kw("BETWEEN"):
            self.pos += 1
            low = self.operand()
            self.expect_kw("AND")
            return Between(left, low, self.operand())
        if self.is_kw("IN"):
            self.pos += 1
            self.expect("(")
            options = [self.operand()]
            while self.tok.kind == ",":
                self.pos += 1
                options.append(self.operand())
            self.expect(")")
            if len(options) > MAX_IN_OPERANDS:
                raise self.error("The IN operator is provided with too many operands; "
                                 f"number of operands: {len(options)}")
            return In(left, tuple(options))
        if isinstance(left, Size):
            raise self.error("The function is not allowed to be used this way in an expression; function: size")
        raise self.syntax()

    def boolean_function(self, call: _Call) -> Function:
        name = call.name
        first = self.need_path(call.args[0], name)
        rest: list[Operand] = []
        for a in call.args[1:]:
            if isinstance(a, _Call):
                self.check_call(a, CONDITION_FUNCTIONS)
                if a.name != "size":
                    raise self.error(
                        f"The function is not allowed to be used this way in an expression; function: {a.name}")
                rest.append(Size(self.size_arg(a.args[0])))
            else:
                rest.append(a)
        return Function(name, (first, *rest))

    # ------------------------------------------------------------ updates

    def set_value(self, a: _Arg) -> SetValue:
        if not isinstance(a, _Call):
            return a
        self.check_call(a, UPDATE_FUNCTIONS)
        if a.name == "if_not_exists":
            return IfNotExists(self.need_path(a.args[0], a.name), self.set_value(a.args[1]))
        for inner in a.args:
            if isinstance(inner, _Call) and inner.name == "list_append":
                # DynamoDB refuses list_append nested in list_append (but not in if_not_exists)
                raise self.error("The function is not allowed to be used this way in an expression; "
                                 "function: list_append")
        return ListAppend(self.set_value(a.args[0]), self.set_value(a.args[1]))

    def update(self) -> Update:
        seen: dict[str, list[Any]] = {}
        while self.tok.kind != EOF:
            clause = self.tok.text.upper() if self.tok.kind == "ID" else ""
            if clause not in _CLAUSES:
                raise self.syntax()
            if clause in seen:
                raise self.error(f'The "{clause}" section can only be used once in an update expression;')
            self.pos += 1
            actions: list[Any] = []
            while True:
                actions.append(self.update_action(clause))
                if self.tok.kind != ",":
                    break
                self.pos += 1
            seen[clause] = actions
        return Update(tuple(seen.get("SET", ())), tuple(seen.get("REMOVE", ())),
                      tuple(seen.get("ADD", ())), tuple(seen.get("DELETE", ())))

    def update_action(self, clause: str) -> SetAction | Path | AddAction | DeleteAction:
        path = self.path()
        if clause == "REMOVE":
            return path
        if clause == "SET":
            self.expect("=")
            left = self.set_value(self.arg())
            if self.tok.kind in ("+", "-"):
                op = self.tok.kind
                self.pos += 1
                return SetAction(path, Arith(op, left, self.set_value(self.arg())))
            return SetAction(path, left)
        value = Value(self.expect("VALUE").text)
        return AddAction(path, value) if clause == "ADD" else DeleteAction(path, value)


# ---------------------------------------------------------------- key conditions


def _check_key_condition(p: _Parser, cond: Condition) -> None:
    """Reject operators that a KeyConditionExpression cannot contain."""
    bad: str | None = None
    if isinstance(cond, And):
        _check_key_condition(p, cond.left)
        _check_key_condition(p, cond.right)
        return
    if isinstance(cond, Or):
        bad = "OR"
    elif isinstance(cond, Not):
        bad = "NOT"
    elif isinstance(cond, In):
        bad = "IN"
    elif isinstance(cond, Compare) and cond.op == "<>":
        bad = "<>"
    elif isinstance(cond, Function) and cond.name != "begins_with":
        bad = cond.name
    if bad is not None:
        raise p.error(f"Invalid operator used in KeyConditionExpression: {bad}")


# ---------------------------------------------------------------- public API


@lru_cache(maxsize=4096)
def parse_condition(text: str, kind: str = "ConditionExpression") -> Condition:
    """Parse a condition (or filter) expression; ``kind`` names the parameter in errors."""
    p = _Parser(text, kind)
    cond = p.condition()
    p.end()
    return cond


@lru_cache(maxsize=4096)
def parse_update(text: str) -> Update:
    """Parse an UpdateExpression into its SET/REMOVE/ADD/DELETE clauses."""
    p = _Parser(text, "UpdateExpression")
    upd = p.update()
    return upd


@lru_cache(maxsize=4096)
def _parse_projection(text: str) -> tuple[Path, ...]:
    p = _Parser(text, "ProjectionExpression")
    paths = [p.path()]
    while p.tok.kind == ",":
        p.pos += 1
        paths.append(p.path())
    p.end()
    return tuple(paths)


def parse_projection(text: str) -> list[Path]:
    """Parse a ProjectionExpression: comma-separated document paths."""
    return list(_parse_projection(text))


@lru_cache(maxsize=4096)
def parse_key_condition(text: str) -> Condition:
    """Parse a KeyConditionExpression; only AND, comparisons, BETWEEN and begins_with allowed."""
    p = _Parser(text, "KeyConditionExpression")
    cond = p.condition()
    p.end()
    _check_key_condition(p, cond)
    return cond
