"""BatchWriteItem and BatchGetItem: every rule of their requests, in DynamoDB's order.

Parameter shapes first (the generic constraint messages, all problems in one message), the
batch size, each request's attribute values, then the tables (the executor looks them up: an
unknown table is a ResourceNotFoundException at that point), every key against its table's key
schema, and duplicate keys.  So each batch is parsed in two steps: ``parse_writes`` /
``parse_gets`` before the tables are known, ``bind_writes`` / ``bind_gets`` with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dynamolog import errors
from dynamolog.attrs import MAX_ITEM_BYTES, item_size, validate_item
from dynamolog.catalog import TableDefinition, attribute_types, key_names
from dynamolog.keys import encode_item_key

from .. import capacity
from ..validate import check_enum, raise_constraints
from .expressions import Expressions
from .keys import check_index_keys, parse_item, parse_key

#: DynamoDB's limits
WRITE_REQUESTS_MAX = 25
GET_KEYS_MAX = 100

#: a table ARN as a RequestItems key
ARN_KEY = re.compile(r"^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[a-zA-Z0-9_.-]{3,255}$")
_TABLE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAP_KEYS = ("Map keys must satisfy constraint: [Member must have length less than or equal to 255, "
             "Member must have length greater than or equal to 3, "
             "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]")
_WRITE_LIST = ("Map value must satisfy constraint: [Member must have length less than or equal to 25, "
               "Member must have length greater than or equal to 1]")
_EXACTLY_ONE = ("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                "supported datatypes")
_DUPLICATES = "Provided list of item keys contains duplicates"


@dataclass(frozen=True)
class WriteDraft:
    """One write request of a batch, checked on its own (its table not yet known)."""

    #: the table's name
    table_name: str
    #: the WriteRequest as the client sent it (answered back in UnprocessedItems)
    original: dict[str, Any]
    #: put or delete
    kind: str
    #: a put's item (values checked), else None
    item: dict[str, Any] | None
    #: a delete's key (values checked), else None
    key: dict[str, Any] | None
    #: the write units of a put's item (a delete's: 1)
    units: float


@dataclass(frozen=True)
class BatchWriteDraft:
    """A BatchWriteItem checked up to its tables."""

    #: the tables' names, in the request's order
    table_names: tuple[str, ...]
    #: every write request, in the request's order
    writes: tuple[WriteDraft, ...]
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str
    #: ReturnItemCollectionMetrics is SIZE
    collection_metrics: bool


@dataclass(frozen=True)
class BatchWrite:
    """One write of a checked batch."""

    #: the write checked on its own
    draft: WriteDraft
    #: its table (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: the item's key attributes by name
    key: dict[str, Any]
    #: the table's hash key name
    hash_key: str
    #: the hash and range key values (range None for a table without one)
    hash_value: dict[str, Any]
    range_value: dict[str, Any] | None


@dataclass(frozen=True)
class BatchWriteRequest:
    """A checked BatchWriteItem."""

    #: the tables' names, in the request's order (ConsumedCapacity has one entry each)
    table_names: tuple[str, ...]
    #: every write, in the request's order
    writes: tuple[BatchWrite, ...]
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str
    #: ReturnItemCollectionMetrics is SIZE
    collection_metrics: bool


def _bad_table_name(name: str) -> bool:
    """Whether a RequestItems key is neither a table name nor a table ARN (DynamoDB takes both)."""
    if name.startswith("arn:"):
        return not 20 <= len(name) <= 1024 or ARN_KEY.match(name) is None
    return not 3 <= len(name) <= 255 or not set(name) <= _TABLE_NAME_CHARS


def _echo_writes(request_items: dict[str, Any]) -> str:
    """The ``Value '...'`` part of a requestItems constraint message (Java's Map.toString)."""
    def one(r: Any) -> str:
        if not isinstance(r, dict):
            return "WriteRequest()"
        put = "PutRequest(item={...})" if r.get("PutRequest") is not None else "null"
        delete = "DeleteRequest(key={...})" if r.get("DeleteRequest") is not None else "null"
        return f"WriteRequest(putRequest={put}, deleteRequest={delete})"

    parts = []
    for name, reqs in request_items.items():
        shown = ", ".join(one(r) for r in reqs) if isinstance(reqs, list) else str(reqs)
        parts.append(f"{name}=[{shown}]")
    return "{" + ", ".join(parts) + "}"


def _request_items(p: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """``RequestItems`` checked for presence, type and emptiness (problems collected)."""
    ri = p.get("RequestItems")
    if ri is None:
        problems.append("Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
        return None
    if not isinstance(ri, dict):
        raise errors.serialization("Unexpected value type in payload")
    if not ri:
        problems.append("Value '{}' at 'requestItems' failed to satisfy constraint: "
                        "Member must have length greater than or equal to 1")
        return None
    return ri


def _write_shapes(p: dict[str, Any]) -> dict[str, Any]:
    """BatchWriteItem's parameter shapes, all problems in one message."""
    problems: list[str] = []
    check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", capacity.MODES)
    check_enum(problems, p, "ReturnItemCollectionMetrics", "returnItemCollectionMetrics", ("SIZE", "NONE"))
    ri = _request_items(p, problems)
    if ri is not None:
        for reqs in ri.values():
            if not isinstance(reqs, list) or not all(isinstance(r, dict) for r in reqs):
                raise errors.serialization("Unexpected value type in payload")
        if any(_bad_table_name(name) for name in ri):
            problems.append(f"Value '{_echo_writes(ri)}' at 'requestItems' failed to satisfy constraint: "
                            + _MAP_KEYS)
        if any(not 1 <= len(reqs) <= WRITE_REQUESTS_MAX for reqs in ri.values()):
            problems.append(f"Value '{_echo_writes(ri)}' at 'requestItems' failed to satisfy constraint: "
                            + _WRITE_LIST)
        for name, reqs in ri.items():
            for i, r in enumerate(reqs, 1):
                for param, field, inner in (("DeleteRequest", "deleteRequest", "Key"),
                                            ("PutRequest", "putRequest", "Item")):
                    sub = r.get(param)
                    if sub is None:
                        continue
                    if not isinstance(sub, dict):
                        raise errors.serialization("Unexpected value type in payload")
                    if sub.get(inner) is None:
                        problems.append(f"Value null at 'requestItems.{name}.member.{i}.member.{field}."
                                        f"{inner.lower()}' failed to satisfy constraint: Member must not be null")
    raise_constraints(problems)
    assert ri is not None
    return ri


def _write_draft(name: str, r: dict[str, Any]) -> WriteDraft:
    """One write request on its own: exactly one of Put/Delete, attribute values, item size."""
    put, delete = r.get("PutRequest"), r.get("DeleteRequest")
    if (put is None) == (delete is None):
        raise errors.validation(_EXACTLY_ONE)
    if put is not None:
        item = parse_item(put["Item"])
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise errors.validation("Item size has exceeded the maximum allowed size")
        return WriteDraft(name, r, "put", item, None, capacity.write_units(size))
    assert delete is not None
    if not isinstance(delete["Key"], dict):
        raise errors.serialization("Unexpected value type in payload")
    return WriteDraft(name, r, "delete", None, validate_item(delete["Key"]), 1.0)


def parse_writes(p: dict[str, Any]) -> BatchWriteDraft:
    """BatchWriteItem up to its tables: shapes, the batch size, each request on its own."""
    ri = _write_shapes(p)
    if sum(len(reqs) for reqs in ri.values()) > WRITE_REQUESTS_MAX:
        raise errors.validation("Too many items requested for the BatchWriteItem call")
    drafts = tuple(_write_draft(name, r) for name, reqs in ri.items() for r in reqs)
    return BatchWriteDraft(tuple(ri), drafts, p.get("ReturnConsumedCapacity") or "NONE",
                           p.get("ReturnItemCollectionMetrics") == "SIZE")


def bind_writes(draft: BatchWriteDraft, tables: dict[str, TableDefinition]) -> BatchWriteRequest:
    """The rest of BatchWriteItem with its ``tables`` by name: keys against schemas, duplicates."""
    seen: set[tuple[str, bytes]] = set()
    writes: list[BatchWrite] = []
    for w in draft.writes:
        table = tables[w.table_name]
        hk, rk = key_names(table)
        types = attribute_types(table)
        if w.item is not None:  # its key attributes, checked as DeleteItem's Key would be
            key = parse_key({n: w.item[n] for n in (hk, rk) if n is not None and n in w.item}, hk, rk, types)
            check_index_keys(table, w.item)
        else:
            key = parse_key(w.key, hk, rk, types)
        hash_av, range_av = key[hk], key.get(rk) if rk else None
        ident = (w.table_name, encode_item_key(hash_av, range_av))
        if ident in seen:
            raise errors.validation(_DUPLICATES)
        seen.add(ident)
        writes.append(BatchWrite(w, table, key, hk, hash_av, range_av))
    return BatchWriteRequest(draft.table_names, tuple(writes), draft.capacity, draft.collection_metrics)


# -- BatchGetItem ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GetDraft:
    """One table's KeysAndAttributes of a BatchGetItem, checked up to its table."""

    #: the KeysAndAttributes as the client sent it (repeated in UnprocessedKeys)
    spec: dict[str, Any]
    #: the projection (AttributesToGet translated)
    expressions: Expressions
    #: ConsistentRead
    consistent: bool
    #: each key as sent (answered back in UnprocessedKeys) and with its values checked
    keys: tuple[tuple[Any, dict[str, Any]], ...]


@dataclass(frozen=True)
class BatchGetDraft:
    """A BatchGetItem checked up to its tables."""

    #: each table's draft by name, in the request's order
    tables: dict[str, GetDraft]
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str


@dataclass(frozen=True)
class BatchGetTable:
    """One table's reads of a checked BatchGetItem."""

    #: the table's draft
    draft: GetDraft
    #: the table (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: each key as sent and its encoded item key (dynamolog/keys.py), no duplicates
    keys: tuple[tuple[Any, bytes], ...]


def parse_gets(p: dict[str, Any]) -> BatchGetDraft:
    """BatchGetItem up to its tables: shapes, the batch size, projections, key values."""
    problems: list[str] = []
    check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", capacity.MODES)
    ri = _request_items(p, problems)
    if ri is not None:
        if not all(isinstance(spec, dict) for spec in ri.values()):
            raise errors.serialization("Unexpected value type in payload")
        if any(_bad_table_name(name) for name in ri):
            shown = "{" + ", ".join(f"{name}=KeysAndAttributes(...)" for name in ri) + "}"
            problems.append(f"Value '{shown}' at 'requestItems' failed to satisfy constraint: " + _MAP_KEYS)
        for name, spec in ri.items():
            keys = spec.get("Keys")
            field = f"requestItems.{name}.member.keys"
            if keys is None:
                problems.append(f"Value null at '{field}' failed to satisfy constraint: Member must not be null")
            elif not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
                raise errors.serialization("Unexpected value type in payload")
            elif not keys:
                problems.append(f"Value '[]' at '{field}' failed to satisfy constraint: "
                                "Member must have length greater than or equal to 1")
            elif len(keys) > GET_KEYS_MAX:
                problems.append(f"Value '[{', '.join('{...}' for _ in keys)}]' at '{field}' failed to satisfy "
                                f"constraint: Member must have length less than or equal to {GET_KEYS_MAX}")
            cr = spec.get("ConsistentRead")
            if cr is not None and not isinstance(cr, bool):
                raise errors.serialization("Unexpected value type in payload")
    raise_constraints(problems)
    assert ri is not None
    if sum(len(spec["Keys"]) for spec in ri.values()) > GET_KEYS_MAX:
        raise errors.validation("Too many items requested for the BatchGetItem call")
    drafts = {}
    for name, spec in ri.items():
        ex = Expressions(spec, projection="ProjectionExpression")
        drafts[name] = GetDraft(spec, ex, bool(spec.get("ConsistentRead")),
                                tuple((k, validate_item(k)) for k in spec["Keys"]))
    return BatchGetDraft(drafts, p.get("ReturnConsumedCapacity") or "NONE")


def bind_gets(draft: GetDraft, table: TableDefinition) -> BatchGetTable:
    """One table's keys against its key schema, and duplicates."""
    hk, rk = key_names(table)
    types = attribute_types(table)
    seen: set[bytes] = set()
    checked = []
    for original, key in draft.keys:
        key = parse_key(key, hk, rk, types)
        ident = encode_item_key(key[hk], key.get(rk) if rk else None)
        if ident in seen:
            raise errors.validation(_DUPLICATES)
        seen.add(ident)
        checked.append((original, ident))
    return BatchGetTable(draft, table, tuple(checked))
