"""Required members at every depth of a request, from DynamoDB's own request shapes.

DynamoDB checks a request against its shapes before anything else: a required member that is
absent (or JSON ``null``) anywhere, at the top or inside a list, map or structure, is a
ValidationException in the constraint form, e.g. ``1 validation error detected: Value null at
'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must not be
null``.  The shapes are those botocore ships for the SDK (a runtime dependency already), so
every operation's nested members are covered without a hand-kept list; the operations' own
parsers (this package, services/router/validate.py) then see only requests whose required
members are present.

Paths are spelt as DynamoDB does: member names with a lower-case first letter, list elements
by their 1-based position followed by ``.member``, map values by their key followed by
``.member``.  Only absent members are reported here; a member of the wrong JSON type is left to
the operation's parser (a SerializationException).
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape
from botocore.session import get_session

from ..validate import constraint_errors

_SERVICES = {"DynamoDB_20120810.": "dynamodb", "DynamoDBStreams_20120810.": "dynamodbstreams"}
#: how deep a request is walked (DynamoDB refuses documents nested deeper than 32 levels anyway)
DEPTH_MAX = 64


@functools.cache
def _model(service: str) -> ServiceModel:
    return get_session().get_service_model(service)


@functools.cache
def _needs_walk(shape: Shape) -> bool:
    """Whether ``shape`` or anything inside it has a required member (AttributeValue documents
    have none, so items are never walked)."""
    return _walkable(shape, frozenset())


def _walkable(shape: Shape, seen: frozenset[str]) -> bool:
    if shape.name in seen:
        return False
    seen = seen | {shape.name}
    if isinstance(shape, StructureShape):
        return bool(shape.required_members) or any(_walkable(m, seen) for m in shape.members.values())
    if isinstance(shape, ListShape):
        return _walkable(shape.member, seen)
    if isinstance(shape, MapShape):
        return _walkable(shape.value, seen)
    return False


def preload() -> None:
    """Load the shapes now (about 0.1 s) rather than on the first request."""
    for service in _SERVICES.values():
        _model(service)


def _field(name: str) -> str:
    return name[:1].lower() + name[1:]


@functools.cache
def _plan(shape: StructureShape) -> tuple[tuple[str, str, bool, Shape | None], ...]:
    """A structure's members as the walk needs them: (name, path name, required, the member's
    shape when something inside it may be required)."""
    required = set(shape.required_members)
    return tuple((name, _field(name), name in required, member if _needs_walk(member) else None)
                 for name, member in shape.members.items())


def _walk(shape: Shape, value: Any, path: str, out: list[str], depth: int) -> None:
    if depth > DEPTH_MAX or not _needs_walk(shape):
        return
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        prefix = f"{path}." if path else ""
        for name, field, required, inner in _plan(shape):
            v = value.get(name)
            if v is None:
                if required:
                    out.append(f"Value null at '{prefix}{field}' failed to satisfy constraint: "
                               "Member must not be null")
            elif inner is not None:
                _walk(inner, v, prefix + field, out, depth + 1)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, v in enumerate(value):
            if v is not None:
                _walk(shape.member, v, f"{path}.{i + 1}.member", out, depth + 1)
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                _walk(shape.value, v, f"{path}.{k}.member", out, depth + 1)


@functools.cache
def _input_shape(target_prefix: str, operation: str) -> StructureShape | None:
    """An operation's request shape (None: an operation or service the shapes do not know).
    Kept per name: the router asks only for the operations it serves, a bounded set."""
    service = _SERVICES.get(target_prefix)
    if service is None:
        return None
    model = _model(service)
    if operation not in model.operation_names:
        return None
    shape = model.operation_model(operation).input_shape
    return shape if isinstance(shape, StructureShape) else None


def missing(target_prefix: str, operation: str, params: dict[str, Any]) -> list[str]:
    """The constraint messages of a request that lacks a required member: the ``tableName``
    constraints first (DynamoDB lists them ahead of the rest), then every absent member in
    request order.  [] when nothing is absent but ``TableName``: each operation's parser reports
    that one together with its other constraint problems, in its own order."""
    shape = _input_shape(target_prefix, operation)
    if shape is None:
        return []
    out: list[str] = []
    _walk(shape, params, "", out, 0)
    out = [p for p in out if not p.startswith("Value null at 'tableName'")]
    if not out:
        return []
    name = params.get("TableName")
    if "TableName" in shape.members and not (isinstance(name, str) and name.startswith("arn:")):
        out = constraint_errors("tableName", name,
                                required="TableName" in shape.required_members) + out
    return out
