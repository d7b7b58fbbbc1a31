"""TransactWriteItems and TransactGetItems: every rule of their requests, in DynamoDB's order.

The list's shape first, then the request's own parameters (ClientRequestToken, the enums), then
each item in turn: its shape, its table name, its table (looked up by the executor: an unknown
table is a ResourceNotFoundException at that point), its key, item and expressions.  Last, no
two items may name the same item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import MAX_ITEM_BYTES, item_size
from dynamolog.catalog import TableDefinition, attribute_types, key_names
from dynamolog.keys import encode_item_key

from .. import capacity
from ..validate import check_enum, raise_constraints, require_table_name
from .expressions import Expressions
from .keys import check_index_keys, item_keys, parse_item, parse_key
from .writes import check_key_not_updated

ITEMS_MAX = 100
#: the kinds of a TransactWriteItems item, in the order they are looked for
KINDS = ("ConditionCheck", "Put", "Delete", "Update")
CLIENT_TOKEN_CHARS_MAX = 36


@dataclass(frozen=True)
class TransactWriteHeader:
    """TransactWriteItems' own parameters, checked before its items."""

    #: the TransactItems as sent (their digest tells a retry from another request)
    entries: list[Any]
    #: ClientRequestToken, or None
    token: str | None
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str
    #: ReturnItemCollectionMetrics is SIZE
    collection_metrics: bool


@dataclass(frozen=True)
class TransactWriteItem:
    """One checked item of a TransactWriteItems."""

    #: its position in TransactItems (CancellationReasons are in that order)
    index: int
    #: the table (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: the item's encoded key (dynamolog/keys.py)
    item_key: bytes
    #: the table's hash key name and the item's key attributes by name
    hash_key: str
    key: dict[str, Any]
    #: the storage node's transactional write request (kind put / delete / update / check)
    req: dict[str, Any]
    #: a Put's item size in bytes (the capacity is charged on the larger of old and new), else 0
    size_bytes: int


@dataclass(frozen=True)
class TransactGetItem:
    """One checked item of a TransactGetItems."""

    #: its position in TransactItems (Responses are in that order)
    index: int
    #: the table (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: the item's encoded key (dynamolog/keys.py)
    item_key: bytes
    #: the resolved projection, or None for the whole item
    projection: list[expr.Path] | None


def transact_items(p: dict[str, Any], what: str = "{...}") -> list[Any]:
    """TransactItems: present, a list, 1 to ITEMS_MAX entries (``what`` echoes one in messages)."""
    items = p.get("TransactItems")
    if items is None:
        raise_constraints(["Value null at 'transactItems' failed to satisfy constraint: Member must not be null"])
    if not isinstance(items, list):
        raise errors.serialization("Unexpected value type in payload")
    if not items:
        raise_constraints(["Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length "
                           "greater than or equal to 1"])
    if len(items) > ITEMS_MAX:
        raise_constraints([f"Value '[{', '.join(what for _ in items)}]' at 'transactItems' failed to satisfy "
                           f"constraint: Member must have length less than or equal to {ITEMS_MAX}"])
    return items


def parse_write_header(p: dict[str, Any]) -> TransactWriteHeader:
    """TransactWriteItems up to its items: the list, ClientRequestToken, the enums."""
    entries = transact_items(p)
    token = p.get("ClientRequestToken")
    problems: list[str] = []
    if token is not None:
        if not isinstance(token, str):
            raise errors.serialization("Unexpected value type in payload")
        if not 1 <= len(token) <= CLIENT_TOKEN_CHARS_MAX:
            problems.append(f"Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must "
                            "have length " + ("less than or equal to 36" if token else "greater than or equal to 1"))
    check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", capacity.MODES)
    check_enum(problems, p, "ReturnItemCollectionMetrics", "returnItemCollectionMetrics", ("SIZE", "NONE"))
    raise_constraints(problems)
    return TransactWriteHeader(entries, token, p.get("ReturnConsumedCapacity") or "NONE",
                               p.get("ReturnItemCollectionMetrics") == "SIZE")


def write_entry(index: int, entry: Any) -> tuple[str, dict[str, Any], str]:
    """One item's shape: its kind, its parameters and its table's name."""
    if not isinstance(entry, dict):
        raise errors.serialization("Unexpected value type in payload")
    kinds = [k for k in KINDS if entry.get(k) is not None]
    if len(kinds) != 1:
        raise errors.validation("TransactItems can only contain one of Check, Put, Update or Delete")
    kind = kinds[0]
    p = entry[kind]
    if not isinstance(p, dict):
        raise errors.serialization("Unexpected value type in payload")
    field_prefix = f"transactItems.{index + 1}.member.{kind[0].lower() + kind[1:]}"
    problems: list[str] = []
    check_enum(problems, p, "ReturnValuesOnConditionCheckFailure",
               f"{field_prefix}.returnValuesOnConditionCheckFailure", ("ALL_OLD", "NONE"))
    if kind == "ConditionCheck" and p.get("ConditionExpression") is None:
        problems.append(f"Value null at '{field_prefix}.conditionExpression' failed to satisfy constraint: "
                        "Member must not be null")
    if kind == "Update" and p.get("UpdateExpression") is None:
        problems.append(f"Value null at '{field_prefix}.updateExpression' failed to satisfy constraint: "
                        "Member must not be null")
    raise_constraints(problems)
    return kind, p, require_table_name(p)


def parse_write_item(index: int, kind: str, p: dict[str, Any], table: TableDefinition) -> TransactWriteItem:
    """One item with its table: key or item, size, expressions (no update of a key attribute)."""
    hk, rk = key_names(table)
    types = attribute_types(table)
    size = 0
    range_av: dict[str, Any] | None
    if kind == "Put":
        item = parse_item(p.get("Item"))
        hash_av, range_av = item_keys(item, hk, rk, types)
        check_index_keys(table, item)
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise errors.validation("Item size has exceeded the maximum allowed size")
        ex = Expressions(p, condition="ConditionExpression")
        key: dict[str, Any] = {hk: hash_av} | ({rk: range_av} if rk else {})
        req: dict[str, Any] = {"kind": "put", "item": item}
    else:
        key = parse_key(p.get("Key"), hk, rk, types)
        hash_av = key[hk]
        range_av = key.get(rk) if rk else None
        if kind == "Update":
            ex = Expressions(p, condition="ConditionExpression", update="UpdateExpression")
            assert ex.update is not None
            check_key_not_updated(ex, key)
            req = {"kind": "update"}
        else:
            ex = Expressions(p, condition="ConditionExpression")
            req = {"kind": "delete" if kind == "Delete" else "check"}
    req.update(ex.wire())
    req.update({"keyattrs": key, "rvf": p.get("ReturnValuesOnConditionCheckFailure"), "cap": True})
    return TransactWriteItem(index, table, encode_item_key(hash_av, range_av), hk, key, req, size)


def check_distinct(items: list[TransactWriteItem] | list[TransactGetItem]) -> None:
    """No two items of a transaction may name the same item."""
    seen: set[tuple[str, bytes]] = set()
    for a in items:
        ident = (a.table.table_id, a.item_key)
        if ident in seen:
            raise errors.validation("Transaction request cannot include multiple operations on one item")
        seen.add(ident)


def parse_get_header(p: dict[str, Any]) -> tuple[list[Any], str]:
    """TransactGetItems up to its items: the list and ReturnConsumedCapacity."""
    entries = transact_items(p)
    problems: list[str] = []
    check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", capacity.MODES)
    raise_constraints(problems)
    return entries, p.get("ReturnConsumedCapacity") or "NONE"


def get_entry(index: int, entry: Any) -> tuple[dict[str, Any], str]:
    """One item's shape: its Get parameters and its table's name."""
    if not isinstance(entry, dict) or not isinstance(entry.get("Get"), dict):
        raise_constraints([f"Value null at 'transactItems.{index + 1}.member.get' failed to satisfy constraint: "
                           "Member must not be null"])
    g: dict[str, Any] = entry["Get"]
    return g, require_table_name(g)


def parse_get_item(index: int, g: dict[str, Any], table: TableDefinition) -> TransactGetItem:
    """One item with its table: its key and projection."""
    hk, rk = key_names(table)
    key = parse_key(g.get("Key"), hk, rk, attribute_types(table))
    ex = Expressions(g, projection="ProjectionExpression")
    return TransactGetItem(index, table, encode_item_key(key[hk], key.get(rk) if rk else None), ex.projection)
