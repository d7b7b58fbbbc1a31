"""Data plane: PutItem, GetItem, DeleteItem, UpdateItem, Query, Scan.

Each operation looks its table up, parses the whole request into a typed request
(services/router/requests/: parameters, key schema, every expression parsed and resolved,
unused names and values rejected), then finds the partition and calls its leader (writes,
consistent reads) or any replica (eventually consistent reads).  The storage node re-parses the
expression strings from a memo, so only strings travel.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from dynamolog.attrs import item_size
from dynamolog.catalog import IndexUnit, PartitionInfo, TableDefinition, partition_index_for_hash
from dynamolog.keys import encode_item_key
from dynamolog.routing import PartitionSplit, Routing

from . import capacity
from .freshness import IndexFreshness
from .requests import get, query, scan, writes
from .requests.ranges import b64
from .requests.scan import HASH_SPACE
from .tables import Tables
from .validate import require_table_name

#: the parsers of the writes :meth:`Items.write_now` sends, by operation
_WRITE_PARSERS = {"PutItem": writes.parse_put, "UpdateItem": writes.parse_update, "DeleteItem": writes.parse_delete}

#: DynamoDB's page size: a Scan or Query page stops once it has read this many bytes of items
PAGE_BYTES = 1024 * 1024


def item_collection_metrics(hash_name: str, hash_av: dict[str, Any], size: int) -> dict[str, Any]:
    """ItemCollectionMetrics of one write: the collection's key and its size estimate in GB, a
    1 GB wide range as DynamoDB gives it (the exact size is what the limit is checked against)."""
    low = float(math.floor(size / 1024**3))
    return {"ItemCollectionKey": {hash_name: hash_av}, "SizeEstimateRangeGB": [low, low + 1.0]}


class Items:
    """The data-plane operations of a router."""

    def __init__(self, tables: Tables, routing: Routing) -> None:
        self.tables = tables
        self.routing = routing
        #: read-your-writes for global indexes (services/router/freshness.py); None: no wait
        self.freshness: IndexFreshness | None = None
        #: whether a table has replicas in other regions (global tables; the router's view of
        #: its regions topic): a delete there leaves a tombstone even of an absent item
        self.replicated: Callable[[str], bool] = lambda _name: False

    async def _fresh(self, req: query.QueryRequest | scan.ScanRequest) -> None:
        """Wait until a global index read sees every table write acknowledged before it."""
        if self.freshness is not None and isinstance(req.unit, IndexUnit):
            await self.freshness.wait(req.table, req.unit.table_id)

    async def _table(self, p: dict[str, Any]) -> TableDefinition:
        """The active table a request names (its name checked first)."""
        return await self.tables.get_active(require_table_name(p))

    def _write_call(self, table: TableDefinition, key_attrs: dict[str, Any], hash_av: dict[str, Any],
                    range_av: dict[str, Any] | None, args: dict[str, Any]) -> PartitionInfo:
        """The partition a write goes to; ``args`` completed with the storage node's routing
        arguments (the item key, its hash, a delete's tombstone)."""
        item_key = encode_item_key(hash_av, range_av)
        part = self.routing.partition_for_item_key(table, item_key)
        if args.get("kind") == "delete" and self.replicated(table.table_name):
            # last writer wins needs the delete's stamp even when the item is absent here: a put
            # of it made earlier in another region may still be on its way (decision 0031)
            args["tomb"] = True
        args["key"] = b64(item_key)
        args["keyattrs"] = key_attrs
        args["route_hash"] = Routing.key_hash(item_key)
        return part

    async def send_write(self, table: TableDefinition, key_attrs: dict[str, Any], hash_av: dict[str, Any],
                         range_av: dict[str, Any] | None, **args: Any) -> dict[str, Any]:
        """Send one write (the storage node's write arguments ``args``) to its partition's leader."""
        part = self._write_call(table, key_attrs, hash_av, range_av, args)
        res: dict[str, Any] = await self.routing.call(table, part, "write", leader=True, idempotent=False, **args)
        return res

    async def put_item(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self.write(writes.parse_put(p, await self._table(p)))

    async def delete_item(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self.write(writes.parse_delete(p, await self._table(p)))

    async def update_item(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self.write(writes.parse_update(p, await self._table(p)))

    async def write(self, req: writes.WriteRequest) -> dict[str, Any]:
        """Run a PutItem, UpdateItem or DeleteItem at the item's partition leader."""
        return self.written(req, await self.send_write(req.table, req.key, req.hash_value, req.range_value,
                                                       **self._write_args(req)))

    def write_now(self, op: str, p: dict[str, Any]) -> tuple[writes.WriteRequest, asyncio.Future[Any]] | None:
        """A PutItem, UpdateItem or DeleteItem (``op``) checked and sent to its partition's leader
        without waiting, as :meth:`get_item_now` sends a GetItem: the request and the future of
        the node's answer (:meth:`written` makes the answer), or None when that needs a wait (a
        table still being created, no leader known, no connection yet): :meth:`write` it."""
        table = self.tables.get(require_table_name(p))
        if table.status == "CREATING":
            return None
        req = _WRITE_PARSERS[op](p, table)
        args = self._write_args(req)
        part = self._write_call(req.table, req.key, req.hash_value, req.range_value, args)
        sent = self.routing.send_now(part, "write", leader=True, **args)
        return None if sent is None else (req, sent)

    @staticmethod
    def _write_args(req: writes.WriteRequest) -> dict[str, Any]:
        """The storage node's write arguments, but for the routing ones."""
        args = {"kind": req.kind, "rv": req.return_values, "rvf": req.return_values_on_failure,
                "cap": req.capacity != "NONE", "icm": req.collection_metrics, **req.expressions.wire()}
        if req.item is not None:
            args["item"] = req.item
        return args

    @staticmethod
    def written(req: writes.WriteRequest, res: dict[str, Any]) -> dict[str, Any]:
        """A write's answer from the node's: its item collection metrics and consumed capacity."""
        cap = req.capacity != "NONE"
        if "coll" in res:
            res["ItemCollectionMetrics"] = item_collection_metrics(req.hash_key, req.hash_value, res.pop("coll"))
        if cap:  # the larger of the old and the new item (the storage node knows the old one)
            size = max(req.size_bytes, res.pop("size", 0))
            res.update(capacity.single(req.capacity, req.table.table_name, capacity.write_units(size), "Write"))
        return res

    async def get_item(self, p: dict[str, Any]) -> dict[str, Any]:
        req = get.parse(p, await self._table(p))
        part = self.routing.partition_for_item_key(req.table, req.item_key)
        return self.got(req, await self.routing.call(req.table, part, "get", leader=req.consistent,
                                                     **self._get_args(req)))

    def get_item_now(self, p: dict[str, Any]) -> tuple[get.GetRequest, asyncio.Future[Any]] | None:
        """GetItem's request checked and sent to its replica without waiting (decision 0051): the
        request and the future of the node's answer (:meth:`got` makes the answer; the answer's
        JSON itself, a :class:`~dynamolog.rpc.Raw`, when it asks for no capacity), or None when
        that needs a wait (a table still being created, no connection yet): :meth:`get_item` it."""
        table = self.tables.get(require_table_name(p))
        if table.status == "CREATING":
            return None
        req = get.parse(p, table)
        part = self.routing.partition_for_item_key(req.table, req.item_key)
        args = self._get_args(req)
        if req.capacity == "NONE":  # the node's answer is the whole answer: taken as it comes (decision 0054)
            args["raw"] = True
        sent = self.routing.send_now(part, "get", leader=req.consistent, **args)
        return None if sent is None else (req, sent)

    @staticmethod
    def _get_args(req: get.GetRequest) -> dict[str, Any]:
        """The storage node's GetItem arguments, and the key's hash for routing."""
        return {"consistent": req.consistent, "key": b64(req.item_key), "route_hash": Routing.key_hash(req.item_key),
                "proj": req.expressions.texts.get("projection"), "names": req.expressions.names,
                "cap": req.capacity != "NONE"}

    @staticmethod
    def got(req: get.GetRequest, res: dict[str, Any]) -> dict[str, Any]:
        """GetItem's answer from the node's: its consumed capacity added."""
        if req.capacity != "NONE":  # charged on the whole item read, whatever the projection returns
            size = res.pop("size", None)
            if size is None:
                size = item_size(res["Item"]) if "Item" in res else 0
            units = capacity.read_units(size, consistent=req.consistent)
            res.update(capacity.single(req.capacity, req.table.table_name, units, "Read"))
        return res

    async def query(self, p: dict[str, Any], *, key_filters: bool = False) -> dict[str, Any]:
        """Query; ``key_filters``: the filter may name key attributes (PartiQL's translation puts
        the conditions of a WHERE that a key condition cannot hold there)."""
        req = query.parse(p, await self._table(p), key_filters=key_filters)
        await self._fresh(req)
        part = self.routing.partition_for_item_key(req.unit, req.prefix)  # its first 8 bytes: the hash
        res = await self.routing.call(
            req.unit, part, "range", leader=req.consistent, consistent=req.consistent,
            prefix=b64(req.prefix), route_hash=req.route_hash,
            range=req.range_condition, forward=req.forward,
            limit=req.limit, after=req.after, select=req.select, key_names=req.key_names, index=req.global_index,
            cap=req.capacity != "NONE", **req.local, **req.expressions.wire(),
        )
        return _page(req.capacity, req.table, res, req.consistent)

    async def scan(self, p: dict[str, Any]) -> dict[str, Any]:
        req = scan.parse(p, await self._table(p))
        await self._fresh(req)
        seg_lo, seg_hi = req.segment_lo, req.segment_hi
        parts = self.routing.partitions(req.unit)
        after = req.after
        index = 0
        while index < len(parts) and parts[index].hash_end < seg_lo:
            index += 1
        if req.start_hash is not None:
            index = partition_index_for_hash([p.hash_start for p in parts], req.start_hash)
        total: dict[str, Any] = {"Count": 0, "ScannedCount": 0, "bytes": 0, "size": 0}
        if req.select != "COUNT":
            total["Items"] = []
        remaining = req.limit
        while index < len(parts) and parts[index].hash_start < seg_hi:
            part = parts[index]
            lo = max(seg_lo, part.hash_start)
            hi = min(seg_hi, part.hash_end + 1)
            try:
                res = await self.routing.call(
                    req.unit, part, "range", leader=req.consistent, consistent=req.consistent,
                    lo=b64(lo.to_bytes(8, "big")), hi=b64(hi.to_bytes(8, "big")) if hi < HASH_SPACE else None,
                    limit=remaining, after=after, select=req.select, key_names=req.key_names,
                    bytes_max=PAGE_BYTES - total["bytes"], always_last=True, cap=req.capacity != "NONE",
                    **req.local, **req.expressions.wire(),
                )
            except PartitionSplit:
                # split while the scan was planned: go on over its children from where it was
                parts = self.routing.partitions(req.unit)
                index = partition_index_for_hash([p.hash_start for p in parts], lo)
                continue
            total["Count"] += res["Count"]
            total["size"] += res.get("size", res["bytes"])
            total["ScannedCount"] += res["ScannedCount"]
            total["bytes"] += res["bytes"]
            if "Items" in total:
                total["Items"].extend(res.get("Items", []))
            index += 1
            after = None
            more = index < len(parts) and parts[index].hash_start < seg_hi
            # the page ends inside this partition (Limit or 1 MB reached there), or exactly at its
            # end with the 1 MB used up while partitions remain: resume after the last key read
            if "last" in res and (res["cut"] or (more and total["bytes"] >= PAGE_BYTES)):
                total["last"], total["last_item_keys"] = res["last"], res["last_item_keys"]
                break
            if remaining is not None:
                remaining -= res["ScannedCount"]
        return _page(req.capacity, req.table, total, req.consistent)


def _page(mode: str, table: TableDefinition, res: dict[str, Any], consistent: bool) -> dict[str, Any]:
    """A Query or Scan answer from what the storage node(s) read."""
    out: dict[str, Any] = {}
    if "Items" in res:
        out["Items"] = res["Items"]
    out["Count"] = res["Count"]
    out["ScannedCount"] = res["ScannedCount"]
    if "last" in res:
        out["LastEvaluatedKey"] = res["last_item_keys"]
    # the summed size of the items read (not returned), rounded up to 4 KB
    units = capacity.read_units(res.get("size", res.get("bytes", 0)), consistent=consistent)
    out.update(capacity.single(mode, table.table_name, units, "Read"))
    return out
