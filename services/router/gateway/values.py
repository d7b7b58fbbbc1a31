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

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from dynamolog import errors

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


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


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode("ascii")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def from_typed(value: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as plain JSON."""
    return _plain(_deserializer.deserialize(value))


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
