"""Where a storage node counts capacity (decision 0024): admission, charging and reports.

Every write of a partition passes its leader's sequencer, so the leader holds the partition's
write bucket, and its read bucket too: a strongly consistent read is served there, and a
follower that serves eventually consistent reads reports the units it served to the leader
every ``Settings.capacity_report_ms`` and learns back whether the bucket still admits reads.
Several routers and any spread of reads over replicas therefore draw on the one bucket.

A request is admitted while the bucket holds more than zero, charged one unit (writes) at
admission so that a burst of concurrent requests cannot all pass on the same last unit, and the
rest once its size is known; a throttled request never reaches the sequencer, so it changes
nothing.  The rates come from the table's definition in the catalog, which the node follows
(``dynamolog/metadata.py``): a change of capacity, mode or partition count applies to the next
request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from dynamolog import errors
from dynamolog.attrs import item_size
from dynamolog.catalog import PartitionInfo, TableDefinition, table_arn
from dynamolog.config import Settings
from dynamolog.metadata import Metadata
from dynamolog.rpc import RpcClient
from dynamolog.units import read_units, write_units

from .capacity import IndexSpec, Limit, PartitionCapacity, index_shares, index_specs, partition_rates

log = logging.getLogger(__name__)

#: a reason CancellationReasons give an item of a transaction refused for capacity
THROTTLED_ITEM = {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or "
                  "index. DynamoDB is automatically scaling your table or index so please try again shortly. If "
                  "exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/"
                  "latest/developerguide/bp-partition-key-design.html."}


@dataclass
class _Remote:
    """A follower's view of its partition's read bucket, held by the leader."""

    pending: float = 0.0
    """Read units served here and not reported yet."""
    open: bool = True
    """The leader's last answer: whether its bucket admits reads."""
    throttled: int = 0
    """Reads this follower refused."""
    served: float = 0.0
    """Read units this follower served."""


@dataclass
class _Held:
    table: TableDefinition
    """The catalog entry the rates were derived from (a new entry object: derive again)."""
    cap: PartitionCapacity
    specs: list[IndexSpec]
    """The table's global indexes, for pricing index writes (base partitions only)."""
    index_name: str | None
    """The index this partition belongs to (None: a table partition)."""


class Metering:
    """The capacity of every partition a storage node hosts."""

    def __init__(self, settings: Settings, metadata: Metadata) -> None:
        self.settings = settings
        self.metadata = metadata
        self._held: dict[str, _Held] = {}
        self._remote: dict[str, _Remote] = {}
        self._clients: dict[str, RpcClient] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._report_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for c in self._clients.values():
            await c.close()

    def forget(self, pid: str) -> None:
        """A partition dropped, or its role changed (a new leader starts with fresh buckets)."""
        self._held.pop(pid, None)
        self._remote.pop(pid, None)

    # -- rates -----------------------------------------------------------------------------
    def _get(self, info: PartitionInfo) -> _Held | None:
        """The partition's capacity as its table's current catalog entry sets it (None: the
        table is not in the catalog as this node knows it)."""
        if not self.settings.capacity_enforce:
            return None
        table = self.metadata.catalog.items.get(info.table_name)
        held = self._held.get(info.partition_id)
        if held is not None and held.table is table:
            return held
        if table is None or not (info.table_id == table.table_id or info.table_id.startswith(table.table_id + "#")):
            return None
        index = next((g for g in table.global_indexes if g.index_id == info.table_id), None)
        if index is None and info.table_id != table.table_id:
            return None
        rates = partition_rates(table, index)
        now = time.monotonic()
        if held is None:
            cap = PartitionCapacity(rates, now, burst_s=self.settings.capacity_burst_s)
        else:
            cap = held.cap
            cap.update(rates, now)
        specs: list[IndexSpec] = []
        if index is None:
            cap.set_indexes(index_shares(table), now)
            specs = index_specs(table)
        held = _Held(table, cap, specs, index.index_name if index is not None else None)
        self._held[info.partition_id] = held
        return held

    def capacity(self, info: PartitionInfo) -> PartitionCapacity | None:
        held = self._get(info)
        return held.cap if held is not None else None

    # -- throttling answers ------------------------------------------------------------------
    def _refusal(self, held: _Held, kind: str, limit: Limit, now: float) -> errors.ApiError:
        arn = table_arn(self.settings.region, held.table.table_name)
        rtype = "Table"
        if held.index_name is not None:
            arn, rtype = f"{arn}/index/{held.index_name}", "Index"
        limit.throttled += 1
        rates = held.cap.rates
        if rates.on_demand:
            if rates.capped and limit.cap.balance > 0:
                return errors.throttling(errors.THROUGHPUT_ON_DEMAND_MAX, f"{rtype}{kind}MaxOnDemandThroughputExceeded",
                                         arn)
            return errors.throttling(errors.THROUGHPUT_ON_DEMAND, f"{rtype}{kind}KeyRangeThroughputExceeded", arn)
        why = "KeyRangeThroughputExceeded" if limit.cap.balance <= 0 else "ProvisionedThroughputExceeded"
        return errors.throughput_exceeded(errors.THROUGHPUT_TABLE, f"{rtype}{kind}{why}", arn)

    def _index_refusal(self, held: _Held, name: str) -> errors.ApiError:
        limit = held.cap.indexes[name][0]
        limit.throttled += 1
        arn = f"{table_arn(self.settings.region, held.table.table_name)}/index/{name}"
        if held.cap.indexes[name][1].on_demand:
            return errors.throttling(errors.THROUGHPUT_ON_DEMAND, "IndexWriteKeyRangeThroughputExceeded", arn)
        return errors.throughput_exceeded(errors.THROUGHPUT_INDEX, "IndexWriteProvisionedThroughputExceeded", arn)

    # -- writes (at the leader) --------------------------------------------------------------
    def admit_write(self, info: PartitionInfo, req: dict[str, Any]) -> _Held | None:
        """Admit one write, charging what it costs at least (a put: its new item's units; the
        rest once the old item is known), or raise the throttling answer."""
        held = self._get(info)
        if held is None:
            return None
        now = time.monotonic()
        cap = held.cap
        if not cap.write.admits(now):
            raise self._refusal(held, "Write", cap.write, now)
        if cap.indexes:
            blocked = cap.blocked_index(now)
            if blocked is not None:
                raise self._index_refusal(held, blocked)
        cap.charge_write(_estimate(req), now)
        return held

    def admits_write(self, info: PartitionInfo) -> bool:
        """Whether a transaction's items may be prepared here now (counted as throttled if not)."""
        held = self._get(info)
        if held is None:
            return True
        now = time.monotonic()
        if held.cap.write.admits(now) and (not held.cap.indexes or held.cap.blocked_index(now) is None):
            return True
        held.cap.write.throttled += 1
        return False

    @staticmethod
    def prepare_write(held: _Held | None, req: dict[str, Any]) -> bool:
        """Ask the sequencer for what pricing needs; returns whether the client asked for the size."""
        asked = bool(req.get("cap"))
        if held is not None:
            req["cap"] = True
            if held.specs:
                req["ixw"] = held.specs
        return asked

    @staticmethod
    def charge_write(held: _Held | None, req: dict[str, Any], res: dict[str, Any], asked: bool) -> None:
        """Charge a written item's remaining units, and its index writes to their shares."""
        if held is None:
            return
        size = res.get("size", 0) if asked else res.pop("size", 0)
        now = time.monotonic()
        rest = write_units(int(size)) - _estimate(req)
        if rest:
            held.cap.charge_write(rest, now)
        ix = res.pop("ix", None)
        if ix:
            for name, units in ix.items():
                share = held.cap.indexes.get(name)
                if share is not None:
                    share[0].charge(units, now)

    def charge_writes(self, info: PartitionInfo, units: float) -> None:
        """Charge writes admitted elsewhere (the indexer's writes into an index partition: the
        base-table write that caused them was admitted against the index's share)."""
        held = self._get(info)
        if held is not None:
            held.cap.charge_write(units, time.monotonic())

    # -- reads -----------------------------------------------------------------------------
    def admit_read(self, info: PartitionInfo, leads: bool) -> _Held | None:
        """Admit one read at the leader (its bucket) or at a follower (the leader's last answer)."""
        held = self._get(info)
        if held is None:
            return None
        now = time.monotonic()
        if leads:
            if not held.cap.read.admits(now):
                raise self._refusal(held, "Read", held.cap.read, now)
            return held
        remote = self._remote.get(info.partition_id)
        if remote is None:
            remote = self._remote[info.partition_id] = _Remote()
        if not remote.open:
            remote.throttled += 1
            raise self._refusal(held, "Read", held.cap.read, now)
        return held

    def charge_read(self, info: PartitionInfo, held: _Held | None, units: float, leads: bool) -> None:
        if held is None or units <= 0:
            return
        if leads:
            held.cap.charge_read(units, time.monotonic())
            return
        remote = self._remote.setdefault(info.partition_id, _Remote())
        remote.pending += units
        remote.served += units

    def reported(self, info: PartitionInfo, units: float) -> bool:
        """A follower's report of reads it served (leader side); whether reads are admitted now."""
        held = self._get(info)
        if held is None:
            return True
        now = time.monotonic()
        if units > 0:
            held.cap.charge_read(units, now)
        return held.cap.read.admits(now)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.capacity_report_ms / 1000)
            try:
                await self._report()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round reports the units again
                log.exception("capacity: reporting reads to the leaders failed")

    async def _report(self) -> None:
        by_leader: dict[str, dict[str, float]] = {}
        for pid, remote in self._remote.items():
            if remote.pending <= 0 and remote.open:
                continue
            info = self.metadata.partitions.items.get(pid)
            if info is None or not info.leader:
                continue
            by_leader.setdefault(info.leader, {})[pid] = remote.pending
        for node_id, units in by_leader.items():
            node = self.metadata.nodes.items.get(node_id)
            if node is None:
                continue
            host, port = node.host_port()
            client = self._clients.get(node_id)
            if client is None or (client.host, client.port) != (host, port):
                client = self._clients[node_id] = RpcClient(host, port)
            try:
                res = await client.call("cap_report", reads=units, timeout_s=2.0)
            except (errors.ApiError, ConnectionError, TimeoutError, OSError) as e:
                log.debug("capacity: report to %s failed: %r", node_id, e)
                continue
            for pid, sent in units.items():
                shadow = self._remote.get(pid)
                if shadow is None:
                    continue
                shadow.pending -= sent
                shadow.open = bool(res.get("open", {}).get(pid, True))

    # -- adaptive capacity and status ----------------------------------------------------------
    def set_multiplier(self, info: PartitionInfo, multiplier: float, kind: str | None = None) -> dict[str, Any]:
        held = self._get(info)
        if held is None:
            why = "its table is not in the catalog" if self.settings.capacity_enforce else "capacity is not enforced"
            raise errors.validation(f"partition {info.partition_id}: {why}")
        now = time.monotonic()
        held.cap.set_multiplier(multiplier, now, kind)
        return held.cap.status(now)

    def status(self, info: PartitionInfo, leads: bool) -> dict[str, Any] | None:
        """The partition's counters: at its leader the buckets; at a follower what it served."""
        if leads:
            held = self._get(info)
            return held.cap.status(time.monotonic()) if held is not None else None
        remote = self._remote.get(info.partition_id)
        if remote is None:
            return None
        return {"follower_reads": {"served": round(remote.served, 1), "throttled": remote.throttled,
                                   "open": remote.open}}


def _estimate(req: dict[str, Any]) -> float:
    """The units a write costs at least: a put's new item (an update or a delete: one)."""
    item = req.get("item")
    return write_units(item_size(item)) if item is not None else 1.0


def read_charge(res: dict[str, Any], asked: bool, *, consistent: bool) -> float:
    """The read units of a get or range answer (its ``size`` removed unless the client asked)."""
    size = res.get("size", 0) if asked else res.pop("size", 0)
    return read_units(int(size), consistent=consistent)
