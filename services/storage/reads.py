"""Reads served by a replica: GetItem, and the Query / Scan range scans of one partition.

The router has already validated the request; here the expressions are parsed (memoized),
resolved and evaluated per item.  A page stops at ``Limit`` scanned items or when the items
read reach 1 MB (DynamoDB's page size), whichever comes first; the filter applies after.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from dynamolog import expr
from dynamolog.attrs import item_size
from dynamolog.indexes import index_key_range, local_space
from dynamolog.keys import encode_item_key, encode_value, prefix_end
from dynamolog.units import READ_UNIT_BYTES

from .pacing import Pacer
from .replica import DATA_SPACE, Replica

#: DynamoDB's page size: a Query or Scan stops after reading this many bytes of items
PAGE_BYTES_MAX = 1024 * 1024


def _b64(data: str | None) -> bytes | None:
    return None if data is None else base64.b64decode(data)


def key_range(prefix: bytes, cond: list[Any] | None) -> tuple[bytes, bytes | None]:
    """RocksDB bounds [start, end) of the items under one partition key that meet a sort-key
    condition (``[op, value, value2?]`` with values as attribute values)."""
    end_all = prefix_end(prefix)
    if not cond:
        return prefix, end_all
    op = cond[0]
    e = prefix + encode_value(cond[1])
    if op == "EQ":
        return e, e + b"\x00"
    if op == "LT":
        return prefix, e
    if op == "LE":
        return prefix, e + b"\x00"
    if op == "GT":
        return e + b"\x00", end_all
    if op == "GE":
        return e, end_all
    if op == "BETWEEN":
        return e, prefix + encode_value(cond[2]) + b"\x00"
    if op == "BEGINS_WITH":
        return e, prefix_end(e) if len(e) > len(prefix) else end_all
    raise ValueError(f"unknown sort key operator {op!r}")


class ReadContext:
    """The parsed filter and projection of one read request."""

    def __init__(self, req: dict[str, Any]) -> None:
        resolver = expr.Resolver(req.get("names"), req.get("values"))
        f = req.get("filter")
        self.filter = resolver.condition(expr.parse_condition(f, "FilterExpression"), "FilterExpression") if f else None
        p = req.get("proj")
        self.projection = resolver.projection(expr.parse_projection(p)) if p else None

    def shape(self, item: dict[str, Any]) -> dict[str, Any]:
        return expr.project(item, self.projection) if self.projection is not None else item


def get_item(replica: Replica, req: dict[str, Any]) -> dict[str, Any]:
    raw = replica.get_raw(base64.b64decode(req["key"]))
    if raw is None:
        return {"size": 0} if req.get("cap") else {}
    if req.get("cap"):  # capacity is charged on the whole item read, not on what is returned
        if len(raw) <= READ_UNIT_BYTES and not req.get("proj"):
            # the stored JSON is never shorter than the item's DynamoDB size (every name and string
            # is written whole, numbers as their digits, binaries in base64, plus quotes and type
            # tags; test_stored_json_bounds_the_item_size), so an item stored in at most one read
            # unit's bytes reads one unit: its size need not be computed
            return {"Item": orjson.Fragment(raw), "size": len(raw)}
        item = orjson.loads(raw)
        shaped = ReadContext(req).shape(item) if req.get("proj") else orjson.Fragment(raw)
        return {"Item": shaped, "size": item_size(item)}
    if not req.get("proj"):
        return {"Item": orjson.Fragment(raw)}
    return {"Item": ReadContext(req).shape(orjson.loads(raw))}


async def range_read(replica: Replica, req: dict[str, Any]) -> dict[str, Any]:
    """One page of a Query (``prefix`` given) or Scan (whole partition) on this replica.  A page
    reads up to 1 MB and may evaluate a filter on every item: it gives the event loop back every
    few milliseconds (:class:`~services.storage.pacing.Pacer`)."""
    ctx = ReadContext(req)
    lsi = req.get("lsi")
    space = local_space(lsi) if lsi else DATA_SPACE
    fetch: list[str] | None = req.get("fetch")  # a local index read that needs the table's items
    keep = set(req["keep"]) if req.get("keep") else None
    if req.get("prefix") is not None:
        if req.get("index") or lsi:  # entries of a secondary index (dynamolog.indexes)
            start, end = index_key_range(base64.b64decode(req["prefix"]), req.get("range"))
        else:
            start, end = key_range(base64.b64decode(req["prefix"]), req.get("range"))
    else:  # a Scan: the whole partition, or a hash range of it (parallel scan segments)
        start, end = _b64(req.get("lo")) or b"", _b64(req.get("hi"))
    bytes_max = min(req.get("bytes_max") or PAGE_BYTES_MAX, PAGE_BYTES_MAX)
    forward = req.get("forward", True)
    limit = req.get("limit") or 1 << 62
    count_only = req.get("select") == "COUNT"
    items: list[Any] = []
    scanned = 0
    count = 0
    page_bytes = 0
    last_key: bytes | None = None
    last_raw = b"{}"
    cut = False
    cap = bool(req.get("cap"))
    size = 0  # DynamoDB's size of the items read, for ConsumedCapacity (only when asked for)
    plain = ctx.filter is None and ctx.projection is None and not cap and fetch is None
    pacer = Pacer()
    for k, raw in replica.range(start, end, forward=forward, after=_b64(req.get("after")), space=space):
        if pacer.due():
            await pacer.pause()
        if scanned >= limit or page_bytes >= bytes_max:
            cut = True
            break
        scanned += 1
        page_bytes += len(raw)
        last_key, last_raw = k, raw
        if fetch is not None:  # the whole item, from the same replica (same WriteBatch as the entry)
            entry = orjson.loads(raw)
            base = replica.get_raw(encode_item_key(entry[fetch[0]], entry[fetch[1]] if len(fetch) > 1 else None))
            if base is None:  # cannot happen: entry and item change together
                continue
            raw = base
        if plain:
            count += 1
            if not count_only:
                items.append(orjson.Fragment(raw))
            continue
        item = orjson.loads(raw)
        if cap:
            size += item_size(item)
        if ctx.filter is not None and not expr.evaluate(ctx.filter, item):
            continue
        count += 1
        if not count_only:
            if keep is not None:  # ALL_PROJECTED_ATTRIBUTES of an item fetched for the filter
                item = {n: v for n, v in item.items() if n in keep}
            items.append(ctx.shape(item))
    out: dict[str, Any] = {"Count": count, "ScannedCount": scanned, "bytes": page_bytes}
    if cap:
        out["size"] = size
    if not count_only:
        out["Items"] = items
    # DynamoDB answers a LastEvaluatedKey when the page was cut, and also whenever Limit was
    # reached, even if nothing follows.  ``always_last``: a Scan spanning partitions needs the
    # last key read even when this partition's part was not cut, to end a page that ran out of
    # its byte budget exactly here.
    out["cut"] = cut or scanned >= limit
    if last_key is not None and (out["cut"] or req.get("always_last")):
        out["last"] = base64.b64encode(last_key).decode()
        last_item = orjson.loads(last_raw)
        out["last_item_keys"] = {n: last_item[n] for n in req.get("key_names", []) if n in last_item}
    return out
