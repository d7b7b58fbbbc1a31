"""Plain JSON values <-> DynamoDB's typed attribute values, as the document clients map them.

JSON in: string -> S, number -> N (kept exact: parsed as Decimal), true/false -> BOOL, null ->
NULL, array -> L, object -> M (boto3's ``TypeSerializer`` makes the typed values).  Out: the
same the other way; sets become sorted arrays, binary values base64 strings, and numbers JSON
numbers (integers when integral).  Key values in a URL are strings, read as the table's key
attribute type (S as it is, N as a number, B as base64).
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from dynamolog import errors

_serializer = TypeSerializer()


def parse_json(body: bytes) -> Any:
    """A request body, numbers kept exact."""
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except ValueError as e:
        raise errors.validation(f"the body is not JSON: {e}") from None


def to_typed(value: Any) -> dict[str, Any]:
    """One plain JSON value as a DynamoDB attribute value."""
    try:
        out: dict[str, Any] = _serializer.serialize(value)
    except (TypeError, InvalidOperation) as e:
        raise errors.validation(f"unsupported value: {e}") from None
    return out


def item_to_typed(item: dict[str, Any]) -> dict[str, Any]:
    return {name: to_typed(v) for name, v in item.items()}


def _number(text: str) -> int | float:
    d = Decimal(text)
    return int(d) if d == d.to_integral_value() else float(d)


def _binary(value: Any) -> str:
    """A B value as base64 (the router carries it as base64 text already; bytes are encoded)."""
    return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)


def from_typed(value: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as plain JSON."""
    (kind, v), = value.items()
    if kind == "S" or kind == "BOOL":
        return v
    if kind == "N":
        return _number(v)
    if kind == "NULL":
        return None
    if kind == "B":
        return _binary(v)
    if kind == "L":
        return [from_typed(x) for x in v]
    if kind == "M":
        return {k: from_typed(x) for k, x in v.items()}
    if kind == "SS":
        return sorted(v)
    if kind == "NS":
        return sorted(_number(x) for x in v)
    if kind == "BS":
        return sorted(_binary(x) for x in v)
    raise errors.validation(f"unknown attribute value type {kind}")


def item_from_typed(item: dict[str, Any]) -> dict[str, Any]:
    return {name: from_typed(v) for name, v in item.items()}


def key_value(text: str, attribute_type: str, name: str) -> dict[str, Any]:
    """A key value from the URL, as the key attribute's declared type."""
    if attribute_type == "S":
        return {"S": text}
    if attribute_type == "N":
        try:
            Decimal(text)
        except InvalidOperation:
            raise errors.validation(f"the key attribute {name} is a number; {text!r} is not one") from None
        return {"N": text}
    try:
        return {"B": base64.b64encode(base64.b64decode(text, validate=True)).decode("ascii")}
    except (binascii.Error, ValueError):
        raise errors.validation(f"the key attribute {name} is binary; give it as base64") from None
