"""Data plane: BatchWriteItem and BatchGetItem.

Both validate the whole batch before any I/O, in DynamoDB's order: parameter shapes (the
generic constraint messages), the batch size, attribute values, then the tables (unknown →
ResourceNotFoundException), every key against its table's key schema, and duplicate keys.  A
refused batch changes nothing.

The requests of an accepted batch are individual writes or reads (not a transaction), issued
concurrently, each to its own partition's leader (writes, consistent reads) or any replica.
A request that fails with a retriable error (no reachable leader, an internal error, a
throttle) is answered in ``UnprocessedItems`` / ``UnprocessedKeys`` instead of failing the
call, as DynamoDB does; SDKs resend those (boto3's ``Table.batch_writer()`` does).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dynamolog import errors
from dynamolog.attrs import MAX_ITEM_BYTES, item_size, validate_item
from dynamolog.catalog import attribute_types, hash_key, key_names
from dynamolog.keys import encode_item_key

from .items import Expressions, Items, _b64, _read_units, _write_units, check_index_keys, item_collection_metrics
from .validate import check_enum, parse_item, parse_key, raise_constraints

#: DynamoDB's limits
WRITE_REQUESTS_MAX = 25
GET_KEYS_MAX = 100
RESPONSE_BYTES_MAX = 16 * 1024 * 1024
#: how many storage calls one batch keeps in flight at once
CONCURRENCY = 16

_TABLE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAP_KEYS = ("Map keys must satisfy constraint: [Member must have length less than or equal to 255, "
             "Member must have length greater than or equal to 3, "
             "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]")
_WRITE_LIST = ("Map value must satisfy constraint: [Member must have length less than or equal to 25, "
               "Member must have length greater than or equal to 1]")
_EXACTLY_ONE = ("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                "supported datatypes")
_DUPLICATES = "Provided list of item keys contains duplicates"
#: a write without expressions (what the storage node's evaluator expects to find)
_NO_EXPRESSIONS: dict[str, Any] = {"cond": None, "update": None, "filter": None, "proj": None, "names": None,
                                   "values": None}
#: the projection parameters of a table's KeysAndAttributes, repeated in UnprocessedKeys
_GET_PARAMS = ("ProjectionExpression", "ExpressionAttributeNames", "ConsistentRead", "AttributesToGet")


def _bad_table_name(name: str) -> bool:
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


def _capacity(mode: str, units: dict[str, float]) -> dict[str, Any]:
    """ConsumedCapacity of a batch: one entry per table."""
    if mode == "NONE":
        return {}
    out = []
    for name, u in units.items():
        cc: dict[str, Any] = {"TableName": name, "CapacityUnits": u}
        if mode == "INDEXES":
            cc["Table"] = {"CapacityUnits": u}
        out.append(cc)
    return {"ConsumedCapacity": out}


def _retriable(e: BaseException) -> bool:
    if isinstance(e, errors.ApiError):
        return e.retriable
    return isinstance(e, (TimeoutError, ConnectionError, OSError))


class _Write:
    """One accepted write request of a batch."""

    __slots__ = ("args", "hash_av", "key", "original", "range_av", "table", "table_name", "units")

    def __init__(self, table_name: str, original: dict[str, Any]) -> None:
        self.table_name = table_name
        self.original = original
        self.table: dict[str, Any] = {}
        self.key: dict[str, Any] = {}
        self.hash_av: dict[str, Any] = {}
        self.range_av: dict[str, Any] | None = None
        self.args: dict[str, Any] = {}
        self.units = 1.0


class Batch:
    """BatchWriteItem and BatchGetItem of a router, on top of its single-item operations."""

    def __init__(self, items: Items) -> None:
        self.items = items
        self.tables = items.tables
        self.routing = items.routing

    # -- BatchWriteItem ----------------------------------------------------------------------
    async def batch_write_item(self, p: dict[str, Any]) -> dict[str, Any]:
        writes = await self._validate_writes(p)
        mode = p.get("ReturnConsumedCapacity") or "NONE"
        limit = asyncio.Semaphore(CONCURRENCY)

        icm = p.get("ReturnItemCollectionMetrics") == "SIZE"

        async def run(w: _Write) -> dict[str, Any]:
            async with limit:
                want = icm and bool(w.table.get("local_indexes"))
                return await self.items._write(w.table, w.key, w.hash_av, w.range_av, icm=want, **w.args)

        results = await asyncio.gather(*(run(w) for w in writes), return_exceptions=True)
        unprocessed: dict[str, list[Any]] = {}
        units: dict[str, float] = {name: 0.0 for name in p["RequestItems"]}
        metrics: dict[str, list[Any]] = {}
        for w, res in zip(writes, results, strict=True):
            if isinstance(res, BaseException):
                if not _retriable(res):
                    raise res
                unprocessed.setdefault(w.table_name, []).append(w.original)
            else:
                units[w.table_name] += w.units
                if "coll" in res:
                    hk = hash_key(w.table)
                    metrics.setdefault(w.table_name, []).append(item_collection_metrics(hk, w.hash_av, res["coll"]))
        out: dict[str, Any] = {"UnprocessedItems": unprocessed}
        if metrics:
            out["ItemCollectionMetrics"] = metrics
        out.update(_capacity(mode, units))
        return out

    async def _validate_writes(self, p: dict[str, Any]) -> list[_Write]:
        # 1. parameter shapes, all problems in one message
        problems: list[str] = []
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
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
        if sum(len(reqs) for reqs in ri.values()) > WRITE_REQUESTS_MAX:
            raise errors.validation("Too many items requested for the BatchWriteItem call")

        # 2. each request on its own: exactly one of Put/Delete, attribute values, item size
        writes: list[_Write] = []
        for name, reqs in ri.items():
            for r in reqs:
                put, delete = r.get("PutRequest"), r.get("DeleteRequest")
                if (put is None) == (delete is None):
                    raise errors.validation(_EXACTLY_ONE)
                w = _Write(name, r)
                if put is not None:
                    item = parse_item(put["Item"])
                    size = item_size(item)
                    if size > MAX_ITEM_BYTES:
                        raise errors.validation("Item size has exceeded the maximum allowed size")
                    w.args = {"kind": "put", "item": item}
                    w.units = _write_units(size)
                else:
                    if not isinstance(delete["Key"], dict):
                        raise errors.serialization("Unexpected value type in payload")
                    w.key = validate_item(delete["Key"])
                    w.args = {"kind": "delete"}
                writes.append(w)

        # 3. the tables, the keys against their schemas, duplicates
        tables = {name: await self.tables.get_active(name) for name in ri}
        seen: set[tuple[str, bytes]] = set()
        for w in writes:
            table = tables[w.table_name]
            hk, rk = key_names(table)
            types = attribute_types(table)
            if w.args["kind"] == "put":  # its key attributes, checked as DeleteItem's Key would be
                item = w.args["item"]
                w.key = parse_key({n: item[n] for n in (hk, rk) if n is not None and n in item}, hk, rk, types)
                check_index_keys(table, item)
            else:
                w.key = parse_key(w.key, hk, rk, types)
            w.table = table
            w.hash_av = w.key[hk]
            w.range_av = w.key.get(rk) if rk else None
            ident = (w.table_name, encode_item_key(w.hash_av, w.range_av))
            if ident in seen:
                raise errors.validation(_DUPLICATES)
            seen.add(ident)
            w.args |= {"rv": "NONE", "rvf": None} | _NO_EXPRESSIONS
        return writes

    # -- BatchGetItem ------------------------------------------------------------------------
    async def batch_get_item(self, p: dict[str, Any]) -> dict[str, Any]:
        plan = await self._validate_gets(p)
        mode = p.get("ReturnConsumedCapacity") or "NONE"
        limit = asyncio.Semaphore(CONCURRENCY)
        responses: dict[str, list[Any]] = {name: [] for name in plan}
        units: dict[str, float] = {name: 0.0 for name in plan}
        unprocessed: dict[str, list[Any]] = {}
        used = 0

        async def read(name: str, table: dict[str, Any], ex: Expressions, consistent: bool,
                       original: Any, key: dict[str, Any], hk: str, rk: str | None) -> None:
            nonlocal used
            async with limit:
                if used >= RESPONSE_BYTES_MAX:
                    unprocessed.setdefault(name, []).append(original)
                    return
                hash_av = key[hk]
                part = self.routing.partition_for(table, hash_av)
                try:
                    res = await self.routing.call(
                        table, part, "get", leader=consistent, consistent=consistent,
                        key=_b64(encode_item_key(hash_av, key.get(rk) if rk else None)),
                        proj=ex.texts.get("projection"), names=ex.names,
                    )
                except Exception as e:
                    if not _retriable(e):
                        raise
                    unprocessed.setdefault(name, []).append(original)
                    return
            item = res.get("Item")
            size = item_size(item) if item is not None else 0
            if used + size > RESPONSE_BYTES_MAX:  # the answer is full: the client asks again
                unprocessed.setdefault(name, []).append(original)
                used = RESPONSE_BYTES_MAX
                return
            used += size
            units[name] += _read_units(size, consistent)
            if item is not None:
                responses[name].append(item)

        await asyncio.gather(*(
            read(name, table, ex, consistent, original, key, hk, rk)
            for name, (table, ex, consistent, keys, hk, rk) in plan.items()
            for original, key in keys
        ))
        out: dict[str, Any] = {
            "Responses": responses,
            "UnprocessedKeys": {
                name: {"Keys": keys} | {k: v for k, v in p["RequestItems"][name].items()
                                        if k in _GET_PARAMS and v is not None}
                for name, keys in unprocessed.items()
            },
        }
        out.update(_capacity(mode, units))
        return out

    async def _validate_gets(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
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

        # each table's projection and key values, then the tables, schemas and duplicates
        parsed = {}
        for name, spec in ri.items():
            ex = Expressions(spec, projection="ProjectionExpression")
            parsed[name] = (ex, [(k, validate_item(k)) for k in spec["Keys"]])
        plan: dict[str, Any] = {}
        for name, (ex, keys) in parsed.items():
            table = await self.tables.get_active(name)
            hk, rk = key_names(table)
            types = attribute_types(table)
            seen: set[bytes] = set()
            checked = []
            for original, key in keys:
                key = parse_key(key, hk, rk, types)
                ident = encode_item_key(key[hk], key.get(rk) if rk else None)
                if ident in seen:
                    raise errors.validation(_DUPLICATES)
                seen.add(ident)
                checked.append((original, key))
            plan[name] = (table, ex, bool(ri[name].get("ConsistentRead")), checked, hk, rk)
        return plan
