"""Plain Python values <-> DynamoDB ``AttributeValue`` JSON.

=====================================  =========  ==========================================
Python                                 DynamoDB   back to Python
=====================================  =========  ==========================================
``str``                                ``S``      ``str``
``bool``                               ``BOOL``   ``bool``
``int``, ``float``, ``Decimal``        ``N``      ``int`` when the number is integral
                                                  (``"3"``, ``"3.0"``, ``"3E+2"``), else
                                                  ``Decimal`` (never ``float``)
``bytes``, ``bytearray``, memoryview   ``B``      ``bytes``
``None``                               ``NULL``   ``None``
``list``, ``tuple``                    ``L``      ``list``
``dict`` (``str`` keys)                ``M``      ``dict``
``set``/``frozenset`` of ``str``       ``SS``     ``set[str]``
``set``/``frozenset`` of numbers       ``NS``     ``set[int | Decimal]``
``set``/``frozenset`` of bytes         ``BS``     ``set[bytes]``
=====================================  =========  ==========================================

A ``float`` is written as its shortest round-tripping decimal text (``0.1`` -> ``"0.1"``) and
read back as a ``Decimal``; NaN and infinities are refused, as are empty sets (DynamoDB has none)
and sets that mix kinds.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["from_attr", "from_item", "to_attr", "to_item"]


def _number_text(v: int | float | Decimal) -> str:
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"DynamoDB numbers must be finite, got {v!r}")
        return repr(v)
    if not v.is_finite():
        raise ValueError(f"DynamoDB numbers must be finite, got {v!r}")
    return str(v)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def to_attr(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB AttributeValue (see the module's table)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number_text(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"map keys must be str, got {type(k).__name__}")
            out[k] = to_attr(v)
        return {"M": out}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if not value:
            raise ValueError("DynamoDB has no empty sets")
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(_is_number(v) for v in value):
            return {"NS": [_number_text(v) for v in sorted(value, key=Decimal)]}
        if all(isinstance(v, (bytes, bytearray, memoryview)) for v in value):
            return {"BS": sorted(base64.b64encode(bytes(v)).decode("ascii") for v in value)}
        raise TypeError("a set must hold only strings, only numbers or only bytes")
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def _number(text: str) -> int | Decimal:
    d = Decimal(text)
    if d == d.to_integral_value():
        return int(d)
    return d


def from_attr(attr: Mapping[str, Any]) -> Any:
    """One DynamoDB AttributeValue as a plain Python value (see the module's table)."""
    if len(attr) != 1:
        raise ValueError(f"an AttributeValue has exactly one type key, got {sorted(attr)}")
    ((kind, v),) = attr.items()
    if kind == "S":
        return v
    if kind == "N":
        return _number(v)
    if kind == "BOOL":
        return bool(v)
    if kind == "NULL":
        return None
    if kind == "B":
        return base64.b64decode(v)
    if kind == "M":
        return {k: from_attr(x) for k, x in v.items()}
    if kind == "L":
        return [from_attr(x) for x in v]
    if kind == "SS":
        return set(v)
    if kind == "NS":
        return {_number(x) for x in v}
    if kind == "BS":
        return {base64.b64decode(x) for x in v}
    raise ValueError(f"unknown AttributeValue type {kind!r}")


def to_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A dict of plain values as a DynamoDB item (attribute name -> AttributeValue)."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in item.items():
        if not isinstance(k, str):
            raise TypeError(f"attribute names must be str, got {type(k).__name__}")
        out[k] = to_attr(v)
    return out


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item as a dict of plain values."""
    return {k: from_attr(v) for k, v in item.items()}
