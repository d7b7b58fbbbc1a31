"""DynamoDB attribute values: validation, number normalization, item size.

Items are kept everywhere in their wire JSON form: ``dict[str, dict]`` where every attribute
value is a one-key dict such as ``{"S": "x"}``, ``{"N": "1.5"}`` (normalized string),
``{"B": "<base64>"}``, ``{"BOOL": True}``, ``{"NULL": True}``, ``{"M": {...}}``, ``{"L": [...]}``,
``{"SS": [...]}``, ``{"NS": [...]}``, ``{"BS": [...]}``.  Numbers are handled with
:class:`decimal.Decimal` only, never floats.  Errors carry DynamoDB's exact wording.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from dynamolog.errors import ApiError, counted, serialization, validation

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_NESTING",
    "from_python",
    "item_size",
    "normalize_number",
    "number_digits",
    "to_python",
    "validate_item",
    "validate_value",
    "value_size",
]

#: DynamoDB's maximum item size (names + values), in bytes.
MAX_ITEM_BYTES = 400 * 1024
#: Maximum depth of nested M/L documents.
MAX_NESTING = 32

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER = Decimal("9.9999999999999999999999999999999999999E+125")
_MIN_NUMBER = Decimal("1E-130")
_TYPES = frozenset(("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"))
_SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}

_E_NOT_NUMBER = "A value provided cannot be converted into a number"
_E_DIGITS = "Attempting to store more than 38 significant digits in a Number"
_E_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
_E_UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"
_E_EMPTY = "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
_E_MANY = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
_E_NULL = "One or more parameter values were invalid: Null attribute value types must have the value of true"
_E_NESTING = "Nesting Levels have exceeded supported limits"


def _digits_exp(text: str) -> tuple[int, str, int]:
    """Parse and range-check a number: ``(sign, significant digits, exponent)``.

    The value is ``(-1)**sign * int(digits) * 10**exponent``; digits carry no leading or
    trailing zeros; zero is ``(0, "0", 0)``.
    """
    if type(text) is not str or not _NUMBER_RE.fullmatch(text):
        raise validation(_E_NOT_NUMBER)
    try:
        d = Decimal(text)
    except InvalidOperation:  # exponent beyond what Decimal can hold
        if not text.lower().partition("e")[0].strip("+-0."):
            return 0, "0", 0
        raise validation(_E_UNDERFLOW if "-" in text.lower().partition("e")[2] else _E_OVERFLOW) from None
    sign, digit_tuple, exp = d.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return 0, "0", 0
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    if len(stripped) > 38:
        raise validation(_E_DIGITS)
    mag = d.copy_abs()
    if mag > _MAX_NUMBER:
        raise validation(_E_OVERFLOW)
    if mag < _MIN_NUMBER:
        raise validation(_E_UNDERFLOW)
    return sign, stripped, exp


def number_digits(text: str) -> tuple[int, str, int]:
    """Public form of the parser: ``(sign, significant digits, exponent)`` of a valid number."""
    return _digits_exp(text)


def normalize_number(text: str) -> str:
    """Validate a DynamoDB number and return its canonical string (no exponent, no padding).

    ``"1.50"`` -> ``"1.5"``, ``"01"`` -> ``"1"``, ``"-0"`` -> ``"0"``, ``"1E+2"`` -> ``"100"``,
    ``"1.23e-5"`` -> ``"0.0000123"``.  Raises ValidationException with DynamoDB's message when
    the text is not a number, has more than 38 significant digits, or is out of range.
    """
    sign, digits, exp = _digits_exp(text)
    if digits == "0":
        return "0"
    if exp >= 0:
        out = digits + "0" * exp
    elif len(digits) > -exp:
        out = digits[:exp] + "." + digits[exp:]
    else:
        out = "0." + "0" * (-exp - len(digits)) + digits
    return "-" + out if sign else out


def _json_token(v: Any) -> str:
    if isinstance(v, bool):
        return "VALUE_TRUE" if v else "VALUE_FALSE"
    if isinstance(v, str):
        return "STRING_VALUE"
    if isinstance(v, (int, float, Decimal)):
        return "NUMBER_VALUE"
    return "VALUE_NULL" if v is None else type(v).__name__


def _wrong(v: Any, expected: str) -> ApiError:
    """SerializationException for a JSON value of the wrong JSON type."""
    if isinstance(v, dict):
        return serialization("Start of structure or map found where not expected")
    if isinstance(v, list):
        return serialization("Start of list found where not expected")
    return serialization(f"{_json_token(v)} cannot be converted to {expected}")


def _canonical_b64(v: Any) -> str:
    if type(v) is not str:
        raise _wrong(v, "Blob")
    if len(v) % 4:
        raise serialization(f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(v)}")
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise serialization("Invalid Base64 character or padding in Blob value") from None
    return base64.b64encode(raw).decode("ascii")


def _check_set(kind: str, members: Any, canon: list[Any]) -> None:
    if not canon:
        raise counted(f"One or more parameter values were invalid: An {_SET_NAMES[kind]} set  may not be empty")
    if len(set(canon)) != len(canon):
        listing = ", ".join(str(m) for m in members)
        raise validation(
            f"One or more parameter values were invalid: Input collection [{listing}] contains duplicates."
        )


def _validate(av: Any, depth: int, key_name: str | None) -> dict[str, Any]:
    if not isinstance(av, dict):
        raise _wrong(av, "AttributeValue")
    present = [(k, v) for k, v in av.items() if v is not None]
    for k, _ in present:
        if k not in _TYPES:
            raise serialization("Unexpected field type")
    if not present:
        raise validation(_E_EMPTY)
    if len(present) > 1:
        raise validation(_E_MANY)
    kind, v = present[0]
    if kind == "S":
        if type(v) is not str:
            raise _wrong(v, "String")
        if key_name is not None and not v:
            raise validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute "
                f"cannot contain an empty string value. Key: {key_name}"
            )
        return {"S": v}
    if kind == "N":
        if type(v) is not str:
            raise _wrong(v, "String")
        return {"N": normalize_number(v)}
    if kind == "B":
        b = _canonical_b64(v)
        if key_name is not None and not b:
            raise validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute "
                f"cannot contain an empty binary value. Key: {key_name}"
            )
        return {"B": b}
    if kind == "BOOL":
        if type(v) is not bool:
            raise _wrong(v, "Boolean")
        return {"BOOL": v}
    if kind == "NULL":
        if type(v) is not bool:
            raise _wrong(v, "Boolean")
        if not v:
            raise validation(_E_NULL)
        return {"NULL": True}
    if kind == "M":
        if not isinstance(v, dict):
            raise _wrong(v, "Map") if not isinstance(v, list) else serialization("Unexpected field type")
        if depth >= MAX_NESTING:
            raise validation(_E_NESTING)
        return {"M": {name: _validate(x, depth + 1, None) for name, x in v.items()}}
    if kind == "L":
        if not isinstance(v, list):
            raise _wrong(v, "List") if not isinstance(v, dict) else serialization("Unexpected field type")
        if depth >= MAX_NESTING:
            raise validation(_E_NESTING)
        return {"L": [_validate(x, depth + 1, None) for x in v]}
    # sets
    if not isinstance(v, list):
        raise _wrong(v, "List") if not isinstance(v, dict) else serialization("Unexpected field type")
    for m in v:
        if type(m) is not str:
            raise _wrong(m, "String")
    if kind == "SS":
        canon = list(v)
    elif kind == "NS":
        canon = [normalize_number(m) for m in v]
    else:
        canon = [_canonical_b64(m) for m in v]
    _check_set(kind, v, canon)
    return {kind: canon}


def validate_value(av: Any, *, in_key: bool = False, key_name: str | None = None) -> dict[str, Any]:
    """Validate one attribute value and return its normalized copy.

    ``in_key`` (or a ``key_name``) applies the key-attribute rules: S and B may not be empty.
    Raises :class:`~dynamolog.errors.ApiError` (Serialization- or ValidationException).
    """
    return _validate(av, 0, (key_name or "") if (in_key or key_name) else None)


def validate_item(item: Any) -> dict[str, dict[str, Any]]:
    """Validate every attribute of an item (recursively) and return the normalized item."""
    if not isinstance(item, dict):
        raise _wrong(item, "Map")
    return {name: _validate(av, 0, None) for name, av in item.items()}


def value_size(av: dict[str, Any]) -> int:
    """Size in bytes of one attribute value (see :func:`item_size`)."""
    kind, v = next(iter(av.items()))
    if kind == "S":
        return _utf8_len(v)
    if kind == "N":
        return _num_size(v)
    if kind == "B":
        return _b64_len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(_utf8_len(k) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    if kind == "SS":
        return sum(_utf8_len(m) for m in v)
    if kind == "NS":
        return sum(_num_size(m) for m in v)
    return sum(_b64_len(m) for m in v)


def _utf8_len(text: str) -> int:
    """UTF-8 length of ``text`` (an ASCII string, the usual case, without encoding it:
    ``isascii`` reads a flag CPython keeps)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _num_size(text: str) -> int:
    digits = text.replace("-", "").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def _b64_len(text: str) -> int:
    return len(text) // 4 * 3 - text[-2:].count("=") if text else 0


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """DynamoDB's size of an item in bytes.

    size(item) = sum over attributes of len_utf8(name) + size(value), where
    S = UTF-8 bytes; B = raw (decoded) bytes; N = ceil(significant digits / 2) + 1
    (DynamoDB: numbers are variable length, up to 21 bytes); BOOL, NULL = 1;
    M = 3 + sum(len_utf8(name) + size(value) + 1); L = 3 + sum(size(value) + 1);
    SS/NS/BS = sum of member sizes.  Compare against :data:`MAX_ITEM_BYTES`.
    """
    total = 0
    for name, av in item.items():  # a loop, not value_size for each, for the common string attribute
        total += _utf8_len(name)
        s = av.get("S")
        total += (len(s) if s.isascii() else len(s.encode("utf-8"))) if s is not None else value_size(av)
    return total


def to_python(av: dict[str, Any]) -> Any:
    """Convert a wire-form value to Python: Decimal for N, bytes for B, set for sets."""
    kind, v = next(iter(av.items()))
    if kind in ("S", "BOOL"):
        return v
    if kind == "N":
        return Decimal(v)
    if kind == "B":
        return base64.b64decode(v)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: to_python(x) for k, x in v.items()}
    if kind == "L":
        return [to_python(x) for x in v]
    if kind == "SS":
        return set(v)
    if kind == "NS":
        return {Decimal(m) for m in v}
    return {base64.b64decode(m) for m in v}


def _num(x: float | Decimal) -> str:
    return normalize_number(repr(x) if isinstance(x, float) else str(x))


def from_python(value: Any) -> dict[str, Any]:
    """Convert a Python value to wire form (inverse of :func:`to_python`; floats via repr)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _num(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"M": {str(k): from_python(x) for k, x in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [from_python(x) for x in value]}
    if isinstance(value, (set, frozenset)):
        members = list(value)
        if members and all(isinstance(m, str) for m in members):
            return {"SS": sorted(members)}
        if members and all(isinstance(m, (bytes, bytearray)) for m in members):
            return {"BS": [base64.b64encode(bytes(m)).decode("ascii") for m in sorted(members)]}
        if members and all(isinstance(m, (int, float, Decimal)) and not isinstance(m, bool) for m in members):
            return {"NS": [_num(m) for m in sorted(members)]}
        raise TypeError("sets must be non-empty and hold only str, bytes or numbers")
    raise TypeError(f"cannot convert {type(value).__name__} to an AttributeValue")
