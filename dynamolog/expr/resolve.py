"""Substitution of ``#names`` and ``:values`` into parsed expressions.

One :class:`Resolver` serves one request: it records which placeholders the request's
expressions used, so :meth:`Resolver.finish` can reject unused ones.  Resolution also runs the
checks that need the actual values or names (operand types, BETWEEN bounds, overlapping paths).
"""

from __future__ import annotations

from collections.abc import Iterable
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
from dynamolog.expr.values import ALL_TYPES, SCALAR_ORDERED, SET_TYPES, compare, describe, type_of

_ORDERING = frozenset({"<", "<=", ">", ">="})
#: the types size() is defined for
_SIZED = frozenset({"S", "B", "SS", "NS", "BS", "L", "M"})


def _operand_type_error(kind: str, op: str, t: str) -> ApiError:
    return validation(f"Invalid {kind}: Incorrect operand type for operator or function; "
                      f"operator or function: {op}, operand type: {t}")


#: DynamoDB names the type in full in the ADD / DELETE operand errors
_TYPE_NAMES = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL", "M": "MAP",
               "L": "LIST", "SS": "STRING_SET", "NS": "NUMBER_SET", "BS": "BINARY_SET"}


def _action_type_error(op: str, t: str) -> ApiError:
    """ADD / DELETE with a value of the wrong type, worded as DynamoDB does."""
    return validation("Invalid UpdateExpression: Incorrect operand type for operator or function; "
                      f"operator: {op}, operand type: {_TYPE_NAMES.get(t, t)}")


def check_overlaps(paths: Iterable[Path], kind: str, written: Iterable[Path] | None = None) -> None:
    """Reject two resolved paths where one is a prefix of the other, or that conflict
    (the same position is a map key in one and a list index in the other).  The message shows
    the paths as ``written`` (with their ``#name`` placeholders, as DynamoDB does) when given."""
    resolved = list(paths)
    shown = list(written) if written is not None else resolved
    for i, p in enumerate(resolved):
        for j in range(i):
            verdict = _relation(resolved[j].elements, p.elements)
            if verdict:
                raise validation(
                    f"Invalid {kind}: Two document paths {verdict} with each other; must remove or rewrite "
                    f"one of these paths; path one: {shown[j].describe()}, path two: {shown[i].describe()}")


def _relation(a: tuple[PathElement, ...], b: tuple[PathElement, ...]) -> str | None:
    for x, y in zip(a, b):
        if x == y and type(x) is type(y):
            continue
        if isinstance(x, int) != isinstance(y, int):
            return "conflict"
        return None
    return "overlap"


class Resolver:
    """Resolves the placeholders of all expressions of one request."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, dict[str, Any]] | None) -> None:
        if names is not None:
            if not names:
                raise validation("ExpressionAttributeNames must not be empty")
            for k in names:
                if not k.startswith("#") or len(k) < 2:
                    raise validation(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{k}"')
        if values is not None:
            if not values:
                raise validation("ExpressionAttributeValues must not be empty")
            for k in values:
                if not k.startswith(":") or len(k) < 2:
                    raise validation(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{k}"')
        self.names: dict[str, str] = names or {}
        self.values: dict[str, dict[str, Any]] = values or {}
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    # ------------------------------------------------------------ leaves

    def path(self, p: Path, kind: str) -> Path:
        out: list[PathElement] = []
        for e in p.elements:
            if isinstance(e, NameRef):
                if e.name not in self.names:
                    raise validation(f"Invalid {kind}: An expression attribute name used in the document "
                                     f"path is not defined; attribute name: {e.name}")
                self.used_names.add(e.name)
                out.append(self.names[e.name])
            else:
                out.append(e)
        return Path(tuple(out))

    def value(self, v: Value, kind: str) -> Value:
        if v.ref not in self.values:
            raise validation(f"Invalid {kind}: An expression attribute value used in expression is not "
                             f"defined; attribute value: {v.ref}")
        self.used_values.add(v.ref)
        return Value(v.ref, self.values[v.ref])

    def operand(self, o: Operand, kind: str) -> Operand:
        if isinstance(o, Path):
            return self.path(o, kind)
        if isinstance(o, Value):
            return self.value(o, kind)
        if isinstance(o.path, Value):
            v = self.value(o.path, kind)
            assert v.value is not None
            if type_of(v.value) not in _SIZED:
                raise _operand_type_error(kind, "size", type_of(v.value))
            return Size(v)
        return Size(self.path(o.path, kind))

    # ------------------------------------------------------------ conditions

    def condition(self, cond: Condition, kind: str) -> Condition:
        """Substitute placeholders in a condition; ``kind`` names the parameter in errors."""
        if isinstance(cond, (And, Or)):
            return type(cond)(self.condition(cond.left, kind), self.condition(cond.right, kind))
        if isinstance(cond, Not):
            return Not(self.condition(cond.operand, kind))
        if isinstance(cond, Compare):
            left, right = self.operand(cond.left, kind), self.operand(cond.right, kind)
            if cond.op in _ORDERING:
                self._ordered_literal(cond.op, (left, right), kind)
            return Compare(cond.op, left, right)
        if isinstance(cond, Between):
            res = Between(self.operand(cond.operand, kind), self.operand(cond.low, kind),
                          self.operand(cond.high, kind))
            self._ordered_literal("BETWEEN", (res.operand, res.low, res.high), kind)
            if isinstance(res.low, Value) and isinstance(res.high, Value):
                assert res.low.value is not None and res.high.value is not None
                c = compare(res.low.value, res.high.value)
                if c is not None and c > 0:
                    raise validation(
                        f"Invalid {kind}: The BETWEEN operator requires upper bound to be greater than or "
                        f"equal to lower bound; lower bound operand: {describe(res.low.value)}, "
                        f"upper bound operand: {describe(res.high.value)}")
            return res
        if isinstance(cond, In):
            return In(self.operand(cond.operand, kind), tuple(self.operand(o, kind) for o in cond.options))
        args = tuple(self.operand(a, kind) for a in cond.args)
        self._function_literals(cond.name, args, kind)
        return Function(cond.name, args)

    @staticmethod
    def _ordered_literal(op: str, operands: tuple[Operand, ...], kind: str) -> None:
        for o in operands:
            if isinstance(o, Value) and o.value is not None and type_of(o.value) not in SCALAR_ORDERED:
                raise _operand_type_error(kind, op, type_of(o.value))

    @staticmethod
    def _function_literals(name: str, args: tuple[Operand, ...], kind: str) -> None:
        if len(args) < 2 or not isinstance(args[1], Value) or args[1].value is None:
            return
        v = args[1].value
        t = type_of(v)
        if name == "begins_with" and t not in ("S", "B"):
            raise _operand_type_error(kind, name, t)
        if name == "attribute_type":
            if t != "S":
                raise _operand_type_error(kind, name, t)
            if v["S"] not in ALL_TYPES:
                raise validation(f"Invalid {kind}: Invalid attribute type name found; type: {v['S']}, "
                                 f"valid types: {{ {','.join(ALL_TYPES)} }}")

    # ------------------------------------------------------------ updates

    def set_value(self, v: SetValue) -> SetValue:
        kind = "UpdateExpression"
        if isinstance(v, (Path, Value)):
            return self.operand(v, kind)  # type: ignore[return-value]
        if isinstance(v, IfNotExists):
            return IfNotExists(self.path(v.path, kind), self.set_value(v.default))
        if isinstance(v, ListAppend):
            res = ListAppend(self.set_value(v.first), self.set_value(v.second))
            for o in (res.first, res.second):
                if isinstance(o, Value) and o.value is not None and type_of(o.value) != "L":
                    raise _operand_type_error(kind, "list_append", type_of(o.value))
            return res
        arith = Arith(v.op, self.set_value(v.left), self.set_value(v.right))
        for o in (arith.left, arith.right):
            if isinstance(o, Value) and o.value is not None and type_of(o.value) != "N":
                raise _operand_type_error(kind, v.op, type_of(o.value))
        return arith

    def update(self, upd: Update) -> Update:
        """Substitute placeholders in an update and check operand types and path overlaps."""
        kind = "UpdateExpression"
        sets = tuple(SetAction(self.path(a.path, kind), self.set_value(a.value)) for a in upd.set)
        removes = tuple(self.path(p, kind) for p in upd.remove)
        adds: list[AddAction] = []
        for a in upd.add:
            path, val = self.path(a.path, kind), self.value(a.value, kind)
            assert val.value is not None
            if type_of(val.value) not in SET_TYPES and type_of(val.value) != "N":
                raise _action_type_error("ADD", type_of(val.value))
            adds.append(AddAction(path, val))
        deletes: list[DeleteAction] = []
        for d in upd.delete:
            path, val = self.path(d.path, kind), self.value(d.value, kind)
            assert val.value is not None
            if type_of(val.value) not in SET_TYPES:
                raise _action_type_error("DELETE", type_of(val.value))
            deletes.append(DeleteAction(path, val))
        res = Update(sets, removes, tuple(adds), tuple(deletes))
        check_overlaps(res.paths(), kind, upd.paths())
        return res

    # ------------------------------------------------------------ projections

    def projection(self, paths: list[Path]) -> list[Path]:
        """Substitute names in projection paths and reject overlapping paths."""
        res = [self.path(p, "ProjectionExpression") for p in paths]
        check_overlaps(res, "ProjectionExpression", paths)
        return res

    # ------------------------------------------------------------ end of request

    def finish(self) -> None:
        """Reject names, then values, that no expression of the request used."""
        unused = sorted(set(self.names) - self.used_names)
        if unused:
            raise counted("Value provided in ExpressionAttributeNames unused in expressions: "
                             f"keys: {{{', '.join(unused)}}}")
        unused = sorted(set(self.values) - self.used_values)
        if unused:
            raise counted("Value provided in ExpressionAttributeValues unused in expressions: "
                             f"keys: {{{', '.join(unused)}}}")
