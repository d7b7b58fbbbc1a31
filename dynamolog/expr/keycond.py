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
        left: Operand = c.left
        right: Operand = c.right
        op = c.op
        if isinstance(c.left, Value) and isinstance(c.right, Path):  # `:v < sk` is `sk > :v`
            left, right, op = c.right, c.left, _FLIP[op]
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


def multi_key_condition_parts(cond: Condition, hash_keys: tuple[str, ...], range_keys: tuple[str, ...]
                              ) -> tuple[list[AttrValue], list[AttrValue], tuple[str, RangeCondition] | None]:
    """Check a resolved key condition against a global index's multi-attribute key schema
    (Developer Guide, "Multi-attribute keys pattern"): an equality on every partition key
    attribute; conditions on the sort key attributes from the first one on, without a gap, all
    equalities but the last one given, which may also be a range (<, <=, >, >=, BETWEEN,
    begins_with).

    Returns ``(partition key values, the leading sort key equalities' values, (the attribute,
    the condition) of the last sort key condition given, or None)``, values in key-schema order.
    """
    by_attr: dict[str, RangeCondition] = {}
    for c in _conjuncts(cond):  # one at a time: the first bad conjunct's error is the one DynamoDB gives
        name, rc = _split(c)
        if name in by_attr:
            raise validation(f"Invalid {_KIND}: KeyConditionExpressions must only contain one condition per key")
        by_attr[name] = rc
    for name in hash_keys:
        if name not in by_attr:
            raise validation(f"Query condition missed key schema element: {name}")
        if by_attr[name][0] != "EQ":
            raise validation("Query key condition not supported")
    extra = [n for n in by_attr if n not in hash_keys and n not in range_keys]
    given = [n for n in range_keys if n in by_attr]
    if extra:
        missing = next((n for n in range_keys if n not in by_attr), None)
        raise validation(f"Query condition missed key schema element: {missing}" if missing
                         else "Query key condition not supported")
    if given != list(range_keys[:len(given)]):
        gap = next(n for n in range_keys if n not in by_attr)
        raise validation(f"Query condition missed key schema element: {gap}")
    if any(by_attr[n][0] != "EQ" for n in given[:-1]):
        raise validation("Query key condition not supported")
    hash_values = [by_attr[n][1] for n in hash_keys]
    eq_values = [by_attr[n][1] for n in given[:-1]]
    last = (given[-1], by_attr[given[-1]]) if given else None
    return hash_values, eq_values, last
