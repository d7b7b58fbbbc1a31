"""PutItem, UpdateItem and DeleteItem: every rule of their requests, in DynamoDB's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import MAX_ITEM_BYTES, item_size
from dynamolog.catalog import TableDefinition, attribute_types, key_names

from ..validate import raise_constraints
from .common import capacity_mode, collection_metrics, return_values
from .expressions import Expressions
from .keys import check_index_keys, item_keys, parse_item, parse_key


@dataclass(frozen=True)
class WriteRequest:
    """A checked PutItem, UpdateItem or DeleteItem: what the item's partition leader is asked."""

    #: the table written (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: the storage node's write kind: put, update or delete
    kind: str
    #: the item's key attributes by name
    key: dict[str, Any]
    #: the table's hash key name
    hash_key: str
    #: the hash key's value
    hash_value: dict[str, Any]
    #: the range key's value, None for a table without one
    range_value: dict[str, Any] | None
    #: PutItem's item; None for the others
    item: dict[str, Any] | None
    #: PutItem's item size in bytes (its capacity is the larger of the old and new item); else 0
    size_bytes: int
    #: ReturnValues
    return_values: str
    #: ReturnValuesOnConditionCheckFailure, as given (the storage node answers ALL_OLD)
    return_values_on_failure: Any
    #: the condition (and UpdateItem's update), legacy parameters translated
    expressions: Expressions
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str
    #: whether ItemCollectionMetrics are answered (ReturnItemCollectionMetrics SIZE, local indexes)
    collection_metrics: bool


def check_return_on_failure(p: dict[str, Any]) -> None:
    """ReturnValuesOnConditionCheckFailure: ALL_OLD or NONE."""
    v = p.get("ReturnValuesOnConditionCheckFailure")
    if v is not None and v not in ("ALL_OLD", "NONE"):
        raise_constraints([f"Value '{v}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: "
                           "Member must satisfy enum value set: [ALL_OLD, NONE]"])


def _request(p: dict[str, Any], table: TableDefinition, kind: str, key: dict[str, Any], item: dict[str, Any] | None,
             size_bytes: int, rv: str, ex: Expressions) -> WriteRequest:
    hk, rk = key_names(table)
    mode = capacity_mode(p)
    return WriteRequest(table=table, kind=kind, key=key, hash_key=hk, hash_value=key[hk],
                        range_value=key.get(rk) if rk else None, item=item, size_bytes=size_bytes,
                        return_values=rv, return_values_on_failure=p.get("ReturnValuesOnConditionCheckFailure"),
                        expressions=ex, capacity=mode, collection_metrics=collection_metrics(p, table))


def parse_put(p: dict[str, Any], table: TableDefinition) -> WriteRequest:
    """PutItem: the item and its keys, index keys, size, ReturnValues, the condition."""
    hk, rk = key_names(table)
    item = parse_item(p.get("Item"))
    hash_av, range_av = item_keys(item, hk, rk, attribute_types(table))
    check_index_keys(table, item)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise errors.validation("Item size has exceeded the maximum allowed size")
    rv = return_values(p, ("NONE", "ALL_OLD"))
    check_return_on_failure(p)
    ex = Expressions(p, condition="ConditionExpression")
    key = {hk: hash_av} | ({rk: range_av} if rk else {})
    return _request(p, table, "put", key, item, size, rv, ex)


def parse_delete(p: dict[str, Any], table: TableDefinition) -> WriteRequest:
    """DeleteItem: the key, ReturnValues, the condition."""
    hk, rk = key_names(table)
    key = parse_key(p.get("Key"), hk, rk, attribute_types(table))
    rv = return_values(p, ("NONE", "ALL_OLD"))
    check_return_on_failure(p)
    ex = Expressions(p, condition="ConditionExpression")
    return _request(p, table, "delete", key, None, 0, rv, ex)


def check_key_not_updated(ex: Expressions, key: dict[str, Any]) -> None:
    """Refuse an update of a key attribute."""
    if ex.update is None:
        return
    for name in expr.updated_paths(ex.update):
        if name in key:
            raise errors.validation(f"One or more parameter values were invalid: Cannot update attribute {name}. "
                                    "This attribute is part of the key")


def parse_update(p: dict[str, Any], table: TableDefinition) -> WriteRequest:
    """UpdateItem: the key, ReturnValues, the condition and the update (no key attribute)."""
    hk, rk = key_names(table)
    key = parse_key(p.get("Key"), hk, rk, attribute_types(table))
    rv = return_values(p, ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
    check_return_on_failure(p)
    ex = Expressions(p, condition="ConditionExpression", update="UpdateExpression")
    check_key_not_updated(ex, key)
    return _request(p, table, "update", key, None, 0, rv, ex)
