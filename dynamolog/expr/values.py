"""Attribute-value helpers used by the expression stages: typing, equality, ordering, numbers.

Values are in DynamoDB wire form (``{"N": "1.5"}``).  Numbers are compared and computed with
:class:`decimal.Decimal` in a 38-digit context; strings order by UTF-8 bytes, binaries by the
decoded bytes.
"""

from __future__ import annotations

import base64
import decimal
from decimal import Decimal
from typing import Any

from dynamolog.errors import validation

AttrValue = dict[str, Any]

#: 38 significant digits, like DynamoDB; inexact results are errors, not silent roundings
CONTEXT = decimal.Context(prec=38, traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation],
                          Emax=1000, Emin=-1000)
_EXACT = decimal.Context(prec=300, Emax=1000, Emin=-1000)
_MAX = Decimal("1E126")
_MIN = Decimal("1E-130")
SET_TYPES = frozenset({"SS", "NS", "BS"})
SCALAR_ORDERED = frozenset({"N", "S", "B"})
ALL_TYPES = ("B", "NULL", "SS", "BOOL", "L", "BS", "N", "NS", "S", "M")


def type_of(v: AttrValue) -> str:
    """The type tag of ``v`` (``"S"``, ``"N"`` ...)."""
    return next(iter(v))


def num(s: str) -> Decimal:
    """Parse a wire number string."""
    return Decimal(s)


def format_number(d: Decimal) -> str:
    """Normalized number text, checked against DynamoDB's range: ``3.0`` -> ``3``, ``1E+2`` -> ``100``."""
    if d.is_zero():
        return "0"
    _check_range(d)
    return format(d.normalize(CONTEXT), "f")


def _check_range(d: Decimal) -> None:
    a = abs(d)
    if a >= _MAX:
        raise validation("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if a < _MIN:
        raise validation("Number underflow. Attempting to store a number with magnitude smaller than supported range")


def arith(op: str, a: str, b: str) -> str:
    """``a + b`` or ``a - b`` of two wire numbers, as a normalized wire number."""
    # exact first (both operands are within range, so 300 digits always hold the sum), then
    # the range, then the precision: an overflowing sum is an overflow, not a precision error
    r = _EXACT.add(num(a), num(b)) if op == "+" else _EXACT.subtract(num(a), num(b))
    if not r.is_zero():
        _check_range(r)
    try:
        r = CONTEXT.plus(r)
    except decimal.Inexact:
        raise validation("Attempting to store more than 38 significant digits in a Number") from None
    return format_number(r)


def _bytes(b: str) -> bytes:
    return base64.b64decode(b)


def _key(t: str, x: Any) -> Any:
    """A comparable, hashable key for one scalar (or set element) of type ``t``."""
    if t == "N":
        return num(x)  # Decimal equality and hash are by value: 1.0 == 1, -0 == 0
    if t == "B":
        return _bytes(x)
    if t == "S":
        return x.encode("utf-8")
    return x


def set_key(t: str, x: Any) -> Any:
    """Comparable key of one element of a set of type ``t`` (SS, NS or BS)."""
    return _key(t[0], x)


def equal(a: AttrValue | None, b: AttrValue | None) -> bool:
    """Deep equality of two attribute values; different types are never equal."""
    if a is None or b is None:
        return False
    ta, tb = type_of(a), type_of(b)
    if ta != tb:
        return False
    x, y = a[ta], b[tb]
    if ta in SET_TYPES:
        return {set_key(ta, e) for e in x} == {set_key(ta, e) for e in y}
    if ta == "L":
        return len(x) == len(y) and all(equal(p, q) for p, q in zip(x, y))
    if ta == "M":
        return bool(x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x))
    return bool(_key(ta, x) == _key(ta, y))


def compare(a: AttrValue | None, b: AttrValue | None) -> int | None:
    """-1/0/1 ordering of two N, S or B values of the same type; ``None`` when not comparable."""
    if a is None or b is None:
        return None
    ta, tb = type_of(a), type_of(b)
    if ta != tb or ta not in SCALAR_ORDERED:
        return None
    x, y = _key(ta, a[ta]), _key(ta, b[tb])
    return int((x > y) - (x < y))


def size(v: AttrValue | None) -> int | None:
    """DynamoDB's ``size()``: characters of S, bytes of B, members of sets, L and M; else None."""
    if v is None:
        return None
    t = type_of(v)
    x = v[t]
    if t == "S":
        return len(x)
    if t == "B":
        return len(_bytes(x))
    if t in SET_TYPES or t in ("L", "M"):
        return len(x)
    return None


def describe(v: AttrValue) -> str:
    """Rendering in error messages, e.g. ``AttributeValue: {N:5}``."""
    t = type_of(v)
    return f"AttributeValue: {{{t}:{v[t]}}}"


def copy_value(v: Any) -> Any:
    """Deep copy of a wire value (dicts and lists only)."""
    if isinstance(v, dict):
        return {k: copy_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_value(x) for x in v]
    return v
