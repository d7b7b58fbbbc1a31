"""Parameters shared by several operations: ReturnValues, ReturnConsumedCapacity,
ReturnItemCollectionMetrics, Limit."""

from __future__ import annotations

from typing import Any

from dynamolog import errors
from dynamolog.catalog import TableDefinition

from ..validate import raise_constraints

RETURN_VALUES = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")


def return_values(p: dict[str, Any], allowed: tuple[str, ...]) -> str:
    """ReturnValues, one of those the operation ``allowed``."""
    rv = p.get("ReturnValues") or "NONE"
    if rv not in RETURN_VALUES:
        raise_constraints([f"Value '{rv}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum "
                           f"value set: [{', '.join(RETURN_VALUES)}]"])
    if rv not in allowed:
        raise errors.validation("Return values set to invalid value")
    return str(rv)


def capacity_mode(p: dict[str, Any]) -> str:
    """ReturnConsumedCapacity of a single-table operation: NONE, TOTAL or INDEXES."""
    mode = p.get("ReturnConsumedCapacity") or "NONE"
    if mode != "NONE" and mode not in ("TOTAL", "INDEXES"):
        raise_constraints([f"Value '{mode}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must "
                           "satisfy enum value set: [INDEXES, TOTAL, NONE]"])
    return str(mode)


def collection_metrics(p: dict[str, Any], table: TableDefinition) -> bool:
    """Whether ReturnItemCollectionMetrics asks for the item collection's size (only tables with
    local secondary indexes have item collections, as DynamoDB); refuses an unknown value."""
    v = p.get("ReturnItemCollectionMetrics")
    if v is not None and v not in ("SIZE", "NONE"):
        raise_constraints([f"Value '{v}' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must "
                           "satisfy enum value set: [SIZE, NONE]"])
    return v == "SIZE" and bool(table.local_indexes)


def limit(p: dict[str, Any]) -> int | None:
    """Limit of a Query or Scan (at least 1), or None."""
    value = p.get("Limit")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
    if value < 1:
        raise_constraints([f"Value '{value}' at 'limit' failed to satisfy constraint: "
                           "Member must have value greater than or equal to 1"])
    return value
