"""Validation of a resolved KeyConditionExpression against a key schema."""

from __future__ import annotations

from typing import Any

from dynamolog.errors import validation
from dynamolog.expr.ast import And, Between, Compare, Condition, Function, Operand, Path, Value
from dynamolog.expr.values import AttrValue, compare, describe, type_of

_KIND = "KeyConditionExpression"
_OPS = {"=": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
RangeCondition = tuple[Any, ...]


def _conjuncts(cond: Condition) -> list[Condition]:
    if isinstance(cond, And):
        return _conjuncts(cond.left) + _conjuncts(cond.right)
    return [cond]


def _attr(o: Operand) -> str:
    if isinstance(o, Path):
        if len(o.elements) != 1:
            raise validation(f"Invalid {_KIND}: KeyConditionExpressions cannot have conditions on nested attributes")
        return str(o.elements[0])
    raise validation(f"Invalid {_KIND}: Invalid condition in KeyConditionExpression: "
                     "the condition must contain a key attribute name on one side and a value on the other")


def _value(o: Operand) -> AttrValue:
    if isinstance(o, Value) and o.value is not None:
        return o.value
    raise validation(f"Invalid {_KIND}: Invalid condition in KeyConditionExpression: "
                     "the condition must contain a key attribute name on one side and a value on the other")


def _split(c: Condition) -> tuple[str, RangeCondition]:
    """One conjunct as (attribute name, condition tuple)."""
    if isinstance(c, Compare):
        left, right, op = c.left, c.right, c.op
        if isinstance(left, Value) and isinstance(right, Path):
            left, right, op = right, left, _FLIP[op]
        return _attr(left), (_OPS[op], _value(right))
    if isinstance(c, Between):
        lo, hi = _value(c.low), _value(c.high)
        order = compare(lo, hi)
        if order is not None and order > 0:
            raise validation(
                f"Invalid {_KIND}: The BETWEEN operator requires upper bound to be greater than or equal to "
                f"lower bound; lower bound operand: {describe(lo)}, upper bound operand: {describe(hi)}")
        return _attr(c.operand), ("BETWEEN", lo, hi)
    if isinstance(c, Function) and c.name == "begins_with":
        v = _value(c.args[1])
        if type_of(v) not in ("S", "B"):
            raise validation(f"Invalid {_KIND}: Incorrect operand type for operator or function; "
                             f"operator or function: begins_with, operand type: {type_of(v)}")
        return _attr(c.args[0]), ("BEGINS_WITH", v)
    raise validation(f"Invalid {_KIND}: Invalid operator used in KeyConditionExpression: {type(c).__name__}")


def key_condition_parts(cond: Condition, hash_key: str,
                        range_key: str | None) -> tuple[AttrValue, RangeCondition | None]:
    """Check a resolved key condition against the key schema.

    Returns ``(hash key value, range condition)``; the range condition is ``("EQ"|"LT"|"LE"|"GT"|"GE", v)``,
    ``("BETWEEN", lo, hi)``, ``("BEGINS_WITH", v)`` or ``None``.
    """
    parts = [_split(c) for c in _conjuncts(cond)]
    if len(parts) > 2:
        raise validation(f"Invalid {_KIND}: The expression contains too many conditions; "
                         "a KeyConditionExpression can contain at most two conditions")
    by_attr: dict[str, RangeCondition] = {}
    for name, rc in parts:
        if name in by_attr:
            raise validation(f"Invalid {_KIND}: KeyConditionExpressions must only contain one condition per key")
        by_attr[name] = rc
    if hash_key not in by_attr:
        raise validation(f"Query condition missed key schema element: {hash_key}")
    hash_cond = by_attr.pop(hash_key)
    if hash_cond[0] != "EQ":
        raise validation("Query key condition not supported")
    range_cond: RangeCondition | None = None
    for name, rc in by_attr.items():
        if range_key is None:
            raise validation("Query key condition not supported")
        if name != range_key:
            raise validation(f"Query condition missed key schema element: {range_key}")
        range_cond = rc
    return hash_cond[1], range_cond
