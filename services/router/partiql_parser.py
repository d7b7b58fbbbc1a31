"""PartiQL for DynamoDB: the statements parsed and translated into DynamoDB requests (pure, no I/O).

:func:`parse` turns a statement into a small tree (``?`` parameters numbered in order of
appearance); :func:`translate` binds the parameters and writes the DynamoDB request that does
the same thing, with ``#n``/``:v`` placeholders for every name and value, so the request goes
through the ordinary expression machinery of the router:

- ``SELECT`` with an equality on the partition key (and optionally one sort-key condition)
  becomes a Query, the other conditions its filter; any other ``SELECT`` becomes a Scan;
- ``INSERT INTO t VALUE {...}`` becomes a PutItem with ``attribute_not_exists(<hash key>)``;
- ``UPDATE t SET ... REMOVE ... WHERE <key>`` becomes an UpdateItem with
  ``attribute_exists(<hash key>)`` (PartiQL never creates items by UPDATE);
- ``DELETE FROM t WHERE <key>`` becomes a DeleteItem.

``UPDATE ... RETURNING {ALL|MODIFIED} {OLD|NEW} *`` and ``DELETE ... RETURNING ALL OLD *`` are
kept on the statement as the DynamoDB ``ReturnValues`` they mean (``returning``); the caller
decides where they apply (ExecuteStatement returns them in ``Items``), :func:`translate` leaves
them out of the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from dynamolog import errors
from dynamolog.attrs import validate_value

MALFORMED = "Statement wasn't well formed, can't be processed: "
PARAMETER_COUNT = "Number of parameters in request and statement don't match."
KEY_EQUALITY = "Where clause does not contain a mandatory equality on all key attributes"


def malformed(detail: str) -> errors.ApiError:
    return errors.validation(MALFORMED + detail)


# -- tokens --------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*)
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op><<|>>|<=|>=|<>|!=|[=<>()\[\]{},.:;*?+\-])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # str qid num id op end
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] in "'\"":
                raise malformed(f"Unterminated quoted text at position {pos + 1}")
            raise malformed(f"Unexpected character '{text[pos]}' at position {pos + 1}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


# -- the tree ------------------------------------------------------------------------------
Segment = str | int


@dataclass(frozen=True)
class Path:
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Param:
    index: int


@dataclass(frozen=True)
class Lit:
    av: dict[str, Any]


@dataclass(frozen=True)
class MapVal:
    entries: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ListVal:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class SetVal:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Call:
    """A function call: a condition (begins_with, contains, attribute_exists, ...), ``size`` as an
    operand, or ``list_append``/``if_not_exists`` in a SET value."""
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Between:
    operand: Any
    lo: Any
    hi: Any


@dataclass(frozen=True)
class In:
    operand: Any
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND OR
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    cond: Any


@dataclass(frozen=True)
class Arith:
    op: str  # + -
    left: Any
    right: Any


@dataclass
class Select:
    table: str
    projection: list[Path] | None  # None: *
    where: Any = None
    params: int = 0
    #: ``FROM "Table"."Index"``: the secondary index read
    index: str | None = None


@dataclass
class Insert:
    table: str
    value: Any
    params: int = 0


@dataclass
class Update:
    table: str
    sets: list[tuple[Path, Any]] = field(default_factory=list)
    removes: list[Path] = field(default_factory=list)
    where: Any = None
    params: int = 0
    returning: str | None = None  # RETURNING as ReturnValues: ALL_OLD UPDATED_OLD ALL_NEW UPDATED_NEW


@dataclass
class Delete:
    table: str
    where: Any = None
    params: int = 0
    returning: str | None = None  # RETURNING ALL OLD * -> "ALL_OLD"


Statement = Select | Insert | Update | Delete
VALUE_TYPES = (Param, Lit, MapVal, ListVal, SetVal)
CONDITION_FUNCTIONS = {"attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2, "begins_with": 2,
                       "contains": 2}
UPDATE_FUNCTIONS = {"list_append": 2, "if_not_exists": 2}
COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")


# -- parser --------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.params = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def is_kw(self, *words: str, offset: int = 0) -> bool:
        t = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return t.kind == "id" and t.text.upper() in words

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def unexpected(self) -> errors.ApiError:
        t = self.tok
        if t.kind == "end":
            return malformed("Unexpected end of statement")
        return malformed(f"Unexpected token '{t.text}' at position {t.pos + 1}")

    def kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.unexpected()
        self.next()

    def op(self, text: str) -> None:
        if not self.is_op(text):
            raise self.unexpected()
        self.next()

    # statements
    def statement(self) -> Statement:
        if self.is_kw("SELECT"):
            st: Statement = self.select()
        elif self.is_kw("INSERT"):
            st = self.insert()
        elif self.is_kw("UPDATE"):
            st = self.update()
        elif self.is_kw("DELETE"):
            st = self.delete()
        else:
            raise self.unexpected()
        if self.is_op(";"):
            self.next()
        if self.tok.kind != "end":
            raise self.unexpected()
        st.params = self.params
        return st

    def _name(self) -> str:
        t = self.tok
        if t.kind == "qid":
            self.next()
            name = t.text[1:-1].replace('""', '"')
        elif t.kind == "id":
            self.next()
            name = t.text
        else:
            raise self.unexpected()
        if not name:
            raise malformed("Empty table name")
        return name

    def table(self) -> str:
        name = self._name()
        if self.is_op("."):  # an index: only a SELECT reads one
            raise self.unexpected()
        return name

    def table_or_index(self) -> tuple[str, str | None]:
        name = self._name()
        if not self.is_op("."):
            return name, None
        self.next()
        return name, self._name()

    def select(self) -> Select:
        self.kw("SELECT")
        projection: list[Path] | None
        if self.is_op("*"):
            self.next()
            projection = None
        else:
            projection = [self.path()]
            while self.is_op(","):
                self.next()
                projection.append(self.path())
        self.kw("FROM")
        table, index = self.table_or_index()
        st = Select(table, projection, index=index)
        if self.is_kw("WHERE"):
            self.next()
            st.where = self.condition()
        return st

    def insert(self) -> Insert:
        self.kw("INSERT")
        self.kw("INTO")
        table = self.table()
        self.kw("VALUE")
        if not self.is_op("{"):
            raise self.unexpected()
        return Insert(table, self.value())

    def update(self) -> Update:
        self.kw("UPDATE")
        st = Update(self.table())
        while self.is_kw("SET", "REMOVE"):
            if self.next().text.upper() == "SET":
                while True:
                    target = self.path()
                    self.op("=")
                    st.sets.append((target, self.set_value()))
                    if not self.is_op(","):
                        break
                    self.next()
                    if self.is_kw("SET", "REMOVE", "WHERE"):
                        raise self.unexpected()
            else:
                st.removes.append(self.path())
                while self.is_op(","):
                    self.next()
                    st.removes.append(self.path())
        if not st.sets and not st.removes:
            raise self.unexpected()
        self.kw("WHERE")
        st.where = self.condition()
        if self.is_kw("RETURNING"):
            st.returning = self.returning(("ALL", "MODIFIED"), ("OLD", "NEW"))
        return st

    def delete(self) -> Delete:
        self.kw("DELETE")
        self.kw("FROM")
        st = Delete(self.table())
        self.kw("WHERE")
        st.where = self.condition()
        if self.is_kw("RETURNING"):
            st.returning = self.returning(("ALL",), ("OLD",))
        return st

    def returning(self, which: tuple[str, ...], when: tuple[str, ...]) -> str:
        """``RETURNING <which> <when> *`` as the ReturnValues it means (e.g. ``MODIFIED NEW`` ->
        ``UPDATED_NEW``)."""
        self.kw("RETURNING")
        if not self.is_kw(*which):
            raise self.unexpected()
        w = self.next().text.upper()
        if not self.is_kw(*when):
            raise self.unexpected()
        t = self.next().text.upper()
        self.op("*")
        return f"{'UPDATED' if w == 'MODIFIED' else 'ALL'}_{t}"

    # paths and values
    def path(self) -> Path:
        t = self.tok
        if t.kind == "qid":
            segments: list[Segment] = [t.text[1:-1].replace('""', '"')]
        elif t.kind == "id" and t.text.upper() not in _RESERVED_START:
            segments = [t.text]
        else:
            raise self.unexpected()
        self.next()
        while True:
            if self.is_op("."):
                self.next()
                t = self.tok
                if t.kind == "qid":
                    segments.append(t.text[1:-1].replace('""', '"'))
                elif t.kind == "id":
                    segments.append(t.text)
                else:
                    raise self.unexpected()
                self.next()
            elif self.is_op("["):
                self.next()
                t = self.tok
                if t.kind == "num" and t.text.isdigit():
                    segments.append(int(t.text))
                elif t.kind == "str":
                    segments.append(t.text[1:-1].replace("''", "'"))
                else:
                    raise self.unexpected()
                self.next()
                self.op("]")
            else:
                return Path(tuple(segments))

    def value(self) -> Any:
        t = self.tok
        if self.is_op("?"):
            self.next()
            self.params += 1
            return Param(self.params - 1)
        if t.kind == "str":
            self.next()
            return Lit({"S": t.text[1:-1].replace("''", "'")})
        if t.kind == "num" or (self.is_op("-", "+") and self.tokens[self.i + 1].kind == "num"):
            sign = ""
            if t.kind == "op":
                sign = "-" if t.text == "-" else ""
                self.next()
            text = self.next().text
            try:
                Decimal(text)
            except InvalidOperation:  # pragma: no cover - the tokenizer only makes numbers
                raise malformed(f"Invalid number {text}") from None
            return Lit({"N": sign + text})
        if self.is_kw("TRUE", "FALSE"):
            return Lit({"BOOL": self.next().text.upper() == "TRUE"})
        if self.is_kw("NULL"):
            self.next()
            return Lit({"NULL": True})
        if self.is_op("{"):
            self.next()
            entries: list[tuple[str, Any]] = []
            seen: set[str] = set()
            while not self.is_op("}"):
                if entries:
                    self.op(",")
                k = self.tok
                if k.kind not in ("str", "qid"):
                    raise self.unexpected()
                self.next()
                name = k.text[1:-1].replace(k.text[0] * 2, k.text[0])
                if name in seen:
                    raise malformed(f"Duplicate key '{name}' in a map")
                seen.add(name)
                self.op(":")
                entries.append((name, self.value()))
            self.next()
            return MapVal(tuple(entries))
        if self.is_op("["):
            self.next()
            items: list[Any] = []
            while not self.is_op("]"):
                if items:
                    self.op(",")
                items.append(self.value())
            self.next()
            return ListVal(tuple(items))
        if self.is_op("<<"):
            self.next()
            items = []
            while not self.is_op(">>"):
                if items:
                    self.op(",")
                items.append(self.value())
            self.next()
            if not items:
                raise malformed("A set must not be empty")
            return SetVal(tuple(items))
        raise self.unexpected()

    def operand(self) -> Any:
        """A path, a value, or size(path)."""
        if self.is_kw("SIZE") and self.tokens[self.i + 1].text == "(":
            self.next()
            self.next()
            p = self.path()
            self.op(")")
            return Call("size", (p,))
        if self.tok.kind in ("qid", "id") and not self.is_kw("TRUE", "FALSE", "NULL"):
            return self.path()
        return self.value()

    def set_value(self) -> Any:
        left = self.set_term()
        if self.is_op("+", "-"):
            op = self.next().text
            return Arith(op, left, self.set_term())
        return left

    def set_term(self) -> Any:
        if self.tok.kind == "id" and self.tok.text.lower() in UPDATE_FUNCTIONS and self.tokens[self.i + 1].text == "(":
            name = self.next().text.lower()
            self.next()
            args = [self.set_term()]
            while self.is_op(","):
                self.next()
                args.append(self.set_term())
            self.op(")")
            if len(args) != UPDATE_FUNCTIONS[name]:
                raise malformed(f"Incorrect number of arguments for function {name}")
            return Call(name, tuple(args))
        return self.operand()

    # conditions
    def condition(self) -> Any:
        left = self.conjunction()
        while self.is_kw("OR"):
            self.next()
            left = BoolOp("OR", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.is_kw("AND"):
            self.next()
            left = BoolOp("AND", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.is_kw("NOT"):
            self.next()
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Any:
        if self.is_op("("):
            self.next()
            inner = self.condition()
            self.op(")")
            return inner
        t = self.tok
        if t.kind == "id" and t.text.lower() in CONDITION_FUNCTIONS and self.tokens[self.i + 1].text == "(":
            name = self.next().text.lower()
            self.next()
            args = [self.operand()]
            while self.is_op(","):
                self.next()
                args.append(self.operand())
            self.op(")")
            if len(args) != CONDITION_FUNCTIONS[name]:
                raise malformed(f"Incorrect number of arguments for function {name}")
            if not isinstance(args[0], Path):
                raise malformed(f"The first argument of {name} must be an attribute path")
            return Call(name, tuple(args))
        left = self.operand()
        if self.is_op(*COMPARISONS):
            op = self.next().text
            return Compare("<>" if op == "!=" else op, left, self.operand())
        negated = False
        if self.is_kw("NOT") and self.is_kw("BETWEEN", "IN", offset=1):
            self.next()
            negated = True
        if self.is_kw("BETWEEN"):
            self.next()
            lo = self.operand()
            self.kw("AND")
            c: Any = Between(left, lo, self.operand())
        elif self.is_kw("IN"):
            self.next()
            close = {"[": "]", "(": ")"}.get(self.tok.text)
            if self.tok.kind != "op" or close is None:
                raise self.unexpected()
            self.next()
            choices = [self.operand()]
            while self.is_op(","):
                self.next()
                choices.append(self.operand())
            self.op(close)
            c = In(left, tuple(choices))
        elif self.is_kw("IS"):
            self.next()
            if self.is_kw("NOT"):
                self.next()
                negated = True
            if not isinstance(left, Path):
                raise self.unexpected()
            if self.is_kw("MISSING"):
                self.next()
                return Call("attribute_exists" if negated else "attribute_not_exists", (left,))
            if self.is_kw("NULL"):
                self.next()
                c = Call("attribute_type", (left, Lit({"S": "NULL"})))
            else:
                raise self.unexpected()
        else:
            raise self.unexpected()
        return Not(c) if negated else c


_RESERVED_START = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "SET", "REMOVE", "VALUE", "INTO", "BETWEEN", "IN",
                   "IS"}


def parse(text: str) -> Statement:
    return _Parser(text).statement()


# -- binding parameters --------------------------------------------------------------------
def bind(node: Any, params: list[dict[str, Any]]) -> dict[str, Any]:
    """The AttributeValue of a value node, parameters substituted."""
    if isinstance(node, Param):
        return params[node.index]
    if isinstance(node, Lit):
        return node.av
    if isinstance(node, MapVal):
        return {"M": {k: bind(v, params) for k, v in node.entries}}
    if isinstance(node, ListVal):
        return {"L": [bind(v, params) for v in node.items]}
    if isinstance(node, SetVal):
        members = [bind(v, params) for v in node.items]
        kinds = {next(iter(m)) for m in members}
        if len(kinds) != 1 or next(iter(kinds)) not in ("S", "N", "B"):
            raise errors.validation("Unsupported type passed as a set member: a set holds only strings, only "
                                    "numbers or only binaries")
        kind = next(iter(kinds))
        out: list[Any] = []
        for m in members:
            if m[kind] not in out:
                out.append(m[kind])
        return {kind + "S": out}
    raise TypeError(node)  # pragma: no cover


def check_parameters(st: Statement, params: Any) -> list[dict[str, Any]]:
    """The request's ``Parameters`` validated and counted against the statement's ``?``."""
    if params is None:
        params = []
    if not isinstance(params, list):
        raise errors.serialization("Unexpected value type in payload")
    if len(params) != st.params:
        raise errors.validation(PARAMETER_COUNT)
    return [validate_value(p) for p in params]


# -- translation ---------------------------------------------------------------------------
class _Writer:
    """Writes expression text with ``#n``/``:v`` placeholders, collecting names and values."""

    def __init__(self, params: list[dict[str, Any]]) -> None:
        self.params = params
        self.names: dict[str, str] = {}
        self._name_of: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, n: str) -> str:
        ph = self._name_of.get(n)
        if ph is None:
            ph = f"#n{len(self.names)}"
            self._name_of[n] = ph
            self.names[ph] = n
        return ph

    def value(self, node: Any) -> str:
        ph = f":v{len(self.values)}"
        self.values[ph] = bind(node, self.params)
        return ph

    def path(self, p: Path) -> str:
        out = self.name(str(p.segments[0]))
        for s in p.segments[1:]:
            out += f"[{s}]" if isinstance(s, int) else "." + self.name(s)
        return out

    def operand(self, o: Any) -> str:
        if isinstance(o, Path):
            return self.path(o)
        if isinstance(o, Call):
            return f"{o.name}({', '.join(self.operand(a) for a in o.args)})"
        if isinstance(o, Arith):
            return f"{self.operand(o.left)} {o.op} {self.operand(o.right)}"
        return self.value(o)

    def condition(self, c: Any) -> str:
        if isinstance(c, BoolOp):
            return f"({self.condition(c.left)}) {c.op} ({self.condition(c.right)})"
        if isinstance(c, Not):
            return f"NOT ({self.condition(c.cond)})"
        if isinstance(c, Compare):
            return f"{self.operand(c.left)} {c.op} {self.operand(c.right)}"
        if isinstance(c, Between):
            return f"{self.operand(c.operand)} BETWEEN {self.operand(c.lo)} AND {self.operand(c.hi)}"
        if isinstance(c, In):
            return f"{self.operand(c.operand)} IN ({', '.join(self.operand(o) for o in c.choices)})"
        if isinstance(c, Call):
            return self.operand(c)
        raise TypeError(c)  # pragma: no cover

    def conjunction(self, conds: list[Any]) -> str:
        return " AND ".join(f"({self.condition(c)})" if isinstance(c, BoolOp) and c.op == "OR" else self.condition(c)
                            for c in conds)

    def expressions(self, p: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            p["ExpressionAttributeNames"] = self.names
        if self.values:
            p["ExpressionAttributeValues"] = self.values
        return p


def conjuncts(c: Any) -> list[Any]:
    if isinstance(c, BoolOp) and c.op == "AND":
        return conjuncts(c.left) + conjuncts(c.right)
    return [c]


def _is_attr(o: Any, name: str) -> bool:
    return isinstance(o, Path) and o.segments == (name,)


def _equality(c: Any, name: str) -> Any:
    """The value node of ``name = value`` (either side), else None."""
    if isinstance(c, Compare) and c.op == "=":
        if _is_attr(c.left, name) and isinstance(c.right, VALUE_TYPES):
            return c.right
        if _is_attr(c.right, name) and isinstance(c.left, VALUE_TYPES):
            return c.left
    return None


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _sort_condition(c: Any, rk: str) -> Any:
    """``c`` as a key condition on the sort key (normalised, attribute on the left), else None."""
    if isinstance(c, Compare) and c.op in _FLIP:
        if _is_attr(c.left, rk) and isinstance(c.right, VALUE_TYPES):
            return c
        if _is_attr(c.right, rk) and isinstance(c.left, VALUE_TYPES):
            return Compare(_FLIP[c.op], c.right, c.left)
    if isinstance(c, Between) and _is_attr(c.operand, rk) and isinstance(c.lo, VALUE_TYPES) \
            and isinstance(c.hi, VALUE_TYPES):
        return c
    if isinstance(c, Call) and c.name == "begins_with" and _is_attr(c.args[0], rk) \
            and isinstance(c.args[1], VALUE_TYPES):
        return c
    return None


def _key_from_where(where: Any, hk: str, rk: str | None, params: list[dict[str, Any]]) -> tuple[
        dict[str, Any], list[Any]]:
    """The full primary key from a WHERE (UPDATE, DELETE, batch SELECT) and the other conditions."""
    key: dict[str, Any] = {}
    rest: list[Any] = []
    for c in conjuncts(where):
        for name in (hk, rk):
            if name is not None and name not in key:
                v = _equality(c, name)
                if v is not None:
                    key[name] = bind(v, params)
                    break
        else:
            rest.append(c)
    if set(key) != {hk} | ({rk} if rk else set()):
        raise errors.validation(KEY_EQUALITY)
    return key, rest


@dataclass
class Request:
    """A DynamoDB request that does what a statement says."""
    operation: str  # Query Scan GetItem PutItem UpdateItem DeleteItem
    params: dict[str, Any]


def _multi_key(parts: list[Any], w: Any, hash_keys: Sequence[str],
               range_keys: Sequence[str]) -> tuple[str, list[Any]] | None:
    """A multi-attribute index key's condition from a WHERE's conjuncts: an equality on every
    partition key attribute, then the sort key attributes' equalities left to right and one
    more condition on the next; None without the equalities (then a Scan).  Returns the key
    condition and the conjuncts left for the filter."""
    if any(all(_equality(c, name) is None for c in parts) for name in hash_keys):
        return None  # checked before writing: a value written here must be used
    texts = []
    for name in hash_keys:
        c = next(c for c in parts if _equality(c, name) is not None)
        parts = [x for x in parts if x is not c]
        texts.append(f"{w.name(name)} = {w.value(_equality(c, name))}")
    for name in range_keys:
        c = next((c for c in parts if _equality(c, name) is not None), None)
        if c is None:
            c = next((c for c in parts if _sort_condition(c, name) is not None), None)
            if c is not None:
                parts = [x for x in parts if x is not c]
                texts.append(w.condition(_sort_condition(c, name)))
            break
        parts = [x for x in parts if x is not c]
        texts.append(f"{w.name(name)} = {w.value(_equality(c, name))}")
    return " AND ".join(texts), parts


def translate(st: Statement, params: list[dict[str, Any]], hk: str, rk: str | None, *,
              single_item: bool = False, multi: tuple[Sequence[str], Sequence[str]] | None = None) -> Request:
    """The request of a parsed statement on a table with hash key ``hk`` and sort key ``rk``.

    ``single_item``: a SELECT must name the full primary key and becomes a GetItem (batches).
    ``multi``: a SELECT reads a global index with a multi-attribute key, these (partition key
    attributes, sort key attributes).
    """
    w = _Writer(params)
    p: dict[str, Any] = {"TableName": st.table}
    if isinstance(st, Select) and st.index is not None:
        p["IndexName"] = st.index
    if isinstance(st, Select):
        if single_item:
            if st.where is None or st.index is not None:
                raise errors.validation(KEY_EQUALITY)
            key, rest = _key_from_where(st.where, hk, rk, params)
            if rest:
                raise errors.validation("Batch read supports only a Select statement with an equality on all key "
                                        "attributes")
            p["Key"] = key
            if st.projection is not None:
                p["ProjectionExpression"] = ", ".join(w.path(x) for x in st.projection)
            return Request("GetItem", w.expressions(p))
        operation = "Scan"
        parts = conjuncts(st.where) if st.where is not None else []
        hash_cond = next((c for c in parts if _equality(c, hk) is not None), None)
        planned = _multi_key(parts, w, *multi) if multi is not None else None
        if multi is not None:
            if planned is not None:
                operation, (p["KeyConditionExpression"], parts) = "Query", planned
                if parts:
                    p["FilterExpression"] = w.conjunction(parts)
            elif st.where is not None:
                p["FilterExpression"] = w.condition(st.where)
        elif hash_cond is not None:
            operation = "Query"
            parts = [c for c in parts if c is not hash_cond]
            key_text = f"{w.name(hk)} = {w.value(_equality(hash_cond, hk))}"
            sort_cond = next((c for c in parts if rk is not None and _sort_condition(c, rk) is not None), None)
            if sort_cond is not None:
                assert rk is not None
                parts = [c for c in parts if c is not sort_cond]
                key_text += " AND " + w.condition(_sort_condition(sort_cond, rk))
            p["KeyConditionExpression"] = key_text
            if parts:
                p["FilterExpression"] = w.conjunction(parts)
        elif st.where is not None:
            p["FilterExpression"] = w.condition(st.where)
        if st.projection is not None:
            p["ProjectionExpression"] = ", ".join(w.path(x) for x in st.projection)
        return Request(operation, w.expressions(p))
    if isinstance(st, Insert):
        item = bind(st.value, params)
        if "M" not in item:  # pragma: no cover - the parser only accepts a map
            raise malformed("VALUE must be a map")
        p["Item"] = item["M"]
        p["ConditionExpression"] = f"attribute_not_exists({w.name(hk)})"
        return Request("PutItem", w.expressions(p))
    if isinstance(st, Update):
        key, rest = _key_from_where(st.where, hk, rk, params)
        p["Key"] = key
        clauses = []
        if st.sets:
            clauses.append("SET " + ", ".join(f"{w.path(t)} = {w.operand(v)}" for t, v in st.sets))
        if st.removes:
            clauses.append("REMOVE " + ", ".join(w.path(t) for t in st.removes))
        p["UpdateExpression"] = " ".join(clauses)
        p["ConditionExpression"] = " AND ".join([f"attribute_exists({w.name(hk)})"]
                                                + ([w.conjunction(rest)] if rest else []))
        return Request("UpdateItem", w.expressions(p))
    assert isinstance(st, Delete)
    key, rest = _key_from_where(st.where, hk, rk, params)
    p["Key"] = key
    if rest:
        p["ConditionExpression"] = w.conjunction(rest)
    return Request("DeleteItem", w.expressions(p))
