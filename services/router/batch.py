"""Data plane: BatchWriteItem and BatchGetItem.

Both parse the whole batch before any write or read (services/router/requests/batch.py: shapes,
batch size, values, then the tables, keys and duplicates); a refused batch changes nothing.

The requests of an accepted batch are individual writes or reads (not a transaction), issued
concurrently, each to its own partition's leader (writes, consistent reads) or any replica.
A request that fails with a retriable error (no reachable leader, an internal error, a
throttle) is answered in ``UnprocessedItems`` / ``UnprocessedKeys`` instead of failing the
call, as DynamoDB does; SDKs resend those (boto3's ``Table.batch_writer()`` does).  Only when
every request of the batch was throttled does the call fail, with the throttling error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dynamolog import errors
from dynamolog.attrs import item_size
from dynamolog.routing import Routing

from . import capacity
from .items import Items, item_collection_metrics
from .requests import batch as parse
from .requests.ranges import b64

RESPONSE_BYTES_MAX = 16 * 1024 * 1024
#: how many storage calls one batch keeps in flight at once
CONCURRENCY = 16

#: a write without expressions (what the storage node's evaluator expects to find)
_NO_EXPRESSIONS: dict[str, Any] = {"cond": None, "update": None, "filter": None, "proj": None, "names": None,
                                   "values": None}
#: the projection parameters of a table's KeysAndAttributes, repeated in UnprocessedKeys
_GET_PARAMS = ("ProjectionExpression", "ExpressionAttributeNames", "ConsistentRead", "AttributesToGet")


def _throttled(e: BaseException) -> bool:
    """A refusal for capacity (provisioned throughput, or an on-demand table's ceiling)."""
    return isinstance(e, errors.ApiError) and e.type_name in ("ProvisionedThroughputExceededException",
                                                             "ThrottlingException")


def _retriable(e: BaseException) -> bool:
    if isinstance(e, errors.ApiError):
        return e.retriable
    return isinstance(e, (TimeoutError, ConnectionError, OSError))


class Batch:
    """BatchWriteItem and BatchGetItem of a router, on top of its single-item operations."""

    def __init__(self, items: Items) -> None:
        self.items = items
        self.tables = items.tables
        self.routing = items.routing

    # -- BatchWriteItem ----------------------------------------------------------------------
    async def batch_write_item(self, p: dict[str, Any]) -> dict[str, Any]:
        draft = parse.parse_writes(p)
        tables = {name: await self.tables.get_active(name) for name in draft.table_names}
        return await self.write(parse.bind_writes(draft, tables))

    async def write(self, req: parse.BatchWriteRequest) -> dict[str, Any]:
        """Run a checked batch of writes, each at its partition's leader."""
        limit = asyncio.Semaphore(CONCURRENCY)

        async def run(w: parse.BatchWrite) -> dict[str, Any]:
            async with limit:
                want = req.collection_metrics and bool(w.table.local_indexes)
                item = {"item": w.draft.item} if w.draft.item is not None else {}
                return await self.items.send_write(w.table, w.key, w.hash_value, w.range_value, icm=want,
                                                   kind=w.draft.kind, **item, rv="NONE", rvf=None, **_NO_EXPRESSIONS)

        results = await asyncio.gather(*(run(w) for w in req.writes), return_exceptions=True)
        unprocessed: dict[str, list[Any]] = {}
        units: dict[str, float] = {name: 0.0 for name in req.table_names}
        metrics: dict[str, list[Any]] = {}
        throttles = [r for r in results if isinstance(r, BaseException) and _throttled(r)]
        if throttles and len(throttles) == len(results):
            raise throttles[0]  # DynamoDB fails the batch only when every item was throttled
        for w, res in zip(req.writes, results, strict=True):
            name = w.draft.table_name
            if isinstance(res, BaseException):
                if not _retriable(res):
                    raise res
                unprocessed.setdefault(name, []).append(w.draft.original)
            else:
                units[name] += w.draft.units
                if "coll" in res:
                    metrics.setdefault(name, []).append(item_collection_metrics(w.hash_key, w.hash_value, res["coll"]))
        out: dict[str, Any] = {"UnprocessedItems": unprocessed}
        if metrics:
            out["ItemCollectionMetrics"] = metrics
        out.update(capacity.per_table(req.capacity, units, None))
        return out

    # -- BatchGetItem ------------------------------------------------------------------------
    async def batch_get_item(self, p: dict[str, Any]) -> dict[str, Any]:
        draft = parse.parse_gets(p)
        plan: dict[str, parse.BatchGetTable] = {}
        for name, table_draft in draft.tables.items():  # each table's keys checked before the next is looked up
            plan[name] = parse.bind_gets(table_draft, await self.tables.get_active(name))
        return await self.get(plan, draft.capacity)

    async def get(self, plan: dict[str, parse.BatchGetTable], mode: str) -> dict[str, Any]:
        """Run a checked batch of reads, each table's by name; ``mode`` is ReturnConsumedCapacity."""
        limit = asyncio.Semaphore(CONCURRENCY)
        responses: dict[str, list[Any]] = {name: [] for name in plan}
        units: dict[str, float] = {name: 0.0 for name in plan}
        unprocessed: dict[str, list[Any]] = {}
        used = 0
        throttles: list[BaseException] = []

        async def read(name: str, t: parse.BatchGetTable, original: Any, item_key: bytes) -> None:
            nonlocal used
            consistent = t.draft.consistent
            async with limit:
                if used >= RESPONSE_BYTES_MAX:
                    unprocessed.setdefault(name, []).append(original)
                    return
                part = self.routing.partition_for_item_key(t.table, item_key)
                try:
                    res = await self.routing.call(
                        t.table, part, "get", leader=consistent, consistent=consistent, key=b64(item_key),
                        route_hash=Routing.key_hash(item_key),
                        proj=t.draft.expressions.texts.get("projection"), names=t.draft.expressions.names,
                    )
                except Exception as e:
                    if not _retriable(e):
                        raise
                    if _throttled(e):
                        throttles.append(e)
                    unprocessed.setdefault(name, []).append(original)
                    return
            item = res.get("Item")
            size = item_size(item) if item is not None else 0
            if used + size > RESPONSE_BYTES_MAX:  # the answer is full: the client asks again
                unprocessed.setdefault(name, []).append(original)
                used = RESPONSE_BYTES_MAX
                return
            used += size
            units[name] += capacity.read_units(size, consistent=consistent)
            if item is not None:
                responses[name].append(item)

        await asyncio.gather(*(read(name, t, original, item_key)
                               for name, t in plan.items() for original, item_key in t.keys))
        if throttles and len(throttles) == sum(len(t.keys) for t in plan.values()):
            raise throttles[0]  # every key was throttled: the batch fails, as DynamoDB's
        out: dict[str, Any] = {
            "Responses": responses,
            "UnprocessedKeys": {
                name: {"Keys": keys} | {k: v for k, v in plan[name].draft.spec.items()
                                        if k in _GET_PARAMS and v is not None}
                for name, keys in unprocessed.items()
            },
        }
        out.update(capacity.per_table(mode, units, None))
        return out
