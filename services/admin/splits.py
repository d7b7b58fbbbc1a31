"""Partition splits: the auto-admin's fourth duty (docs/decisions/0039-partition-splits.md).

A table partition is split in two when its items pass ``Settings.split_bytes`` (DynamoDB: 10 GB)
or when its consumption stays above ``Settings.split_heat_share`` of the per-partition cap for
``Settings.split_heat_s`` (a split for heat; one that a single partition key makes hot cannot be
split, and says so in :attr:`Splitter.blocked` and the metrics).  Each step is published before
the next begins, so an auto-admin that starts finds a split half-way in the partition map and
finishes it (:meth:`Splitter.resume`):

1. **Plan**: the leader says where to cut (``split_point``: the hash that halves the bytes, or
   the median hash of its recent requests).  Two child PartitionInfos are published, state
   OPENING, each with a log topic of its own, the parent's replicas and leader, and ``parent``;
   then the parent with ``children``.
2. **Seal**: the parent's leader refuses new writes and prepares, waits until no prepared
   transaction holds an item, and appends a SEAL record after every write queued before it
   (``split_seal``).  Nothing after it counts; the parent's data at the SEAL is the cut.
3. **Open**: the children are published ACTIVE.  Each child replica copies its share of the
   sealed parent's replica on its own node (the filter is by partition-key hash: items, local
   index entries, item-collection sizes) and starts its own log with its leader's FENCE.  Routers
   route to the children once both are ACTIVE; requests that reached the sealed parent wait and
   are sent again to the child that holds their key (dynamolog/routing.py).
4. **Finish**: the table's ``partition_ids`` become the new partitions (its capacity is divided
   over them), and the parent is published SPLIT: its replicas are dropped, its log stays (stream
   shards, the indexer and backups read it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dynamolog.catalog import PartitionInfo, TableDefinition
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, MetadataWriter, split_done
from dynamolog.metrics import Samples
from dynamolog.routing import Routing
from dynamolog.rpc import RpcClient

from .provision import LOG_TOPIC_CONFIGS
from .writer import CatalogWriter

log = logging.getLogger(__name__)

#: per-partition caps (units per second) a split for heat compares consumption with
CAPS = {"read": 3000.0, "write": 1000.0}
#: seconds the seal waits for prepared transactions to finish before the split is retried
SEAL_WAIT_S = 5.0
#: seconds before a partition that could not be split (one hot key) is looked at again
BLOCKED_RETRY_S = 5.0


def child_ids(pid: str) -> tuple[str, str]:
    """The ids of a partition's two children (``<pid>s0`` for the lower hashes, ``<pid>s1``): no
    other partition id ends with ``s`` and a digit, so they are new."""
    return f"{pid}s0", f"{pid}s1"


@dataclass
class SplitRecord:
    """One finished split (status, metrics, benchmarks)."""

    parent: str
    children: tuple[str, str]
    at_hash: int
    by: str
    #: the parent log's offset after its SEAL
    cut_offset: int
    #: seconds from the decision to both children serving, and of each step
    total_s: float
    seal_s: float
    open_s: float


#: seconds over which a partition's consumption rate is measured (pings come every 0.25 s)
HEAT_WINDOW_S = 2.0


@dataclass
class _Heat:
    """A partition's consumption per kind: recent (time, cumulative units) samples and since when
    its rate over ``HEAT_WINDOW_S`` has stayed near the cap."""

    samples: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    hot_since: dict[str, float] = field(default_factory=dict)


class Splitter:
    """Decides and carries out splits of table partitions."""

    def __init__(self, settings: Settings, metadata: Metadata, writer: MetadataWriter, routing: Routing,
                 catalog: CatalogWriter, client: Callable[[str], RpcClient | None]) -> None:
        self.settings = settings
        self.metadata = metadata
        self.writer = writer
        self.routing = routing
        self.catalog = catalog
        self._client = client
        #: partition id -> [items, bytes] from its leader's last ping answer
        self.sizes: dict[str, list[int]] = {}
        self._heat: dict[str, _Heat] = {}
        #: partition id -> why it cannot be split although it should be (a single hot key)
        self.blocked: dict[str, str] = {}
        self._blocked_at: dict[str, float] = {}
        #: partition id -> the split running for it
        self._work: dict[str, asyncio.Task[None]] = {}
        self.done: list[SplitRecord] = []

    # -- what the pings say ---------------------------------------------------------------------
    def heard(self, answer: dict[str, Any], now: float) -> None:
        """A storage node's ping answer: its led partitions' sizes and consumption counters."""
        for pid, sz in (answer.get("sizes") or {}).items():
            self.sizes[pid] = list(sz)
        for pid, cap in (answer.get("capacity") or {}).items():
            heat = self._heat.setdefault(pid, _Heat())
            for kind in ("read", "write"):
                consumed = float((cap.get(kind) or {}).get("consumed", 0.0))
                samples = heat.samples.setdefault(kind, deque())
                samples.append((now, consumed))
                while len(samples) > 2 and now - samples[1][0] >= HEAT_WINDOW_S:
                    samples.popleft()
                t0, c0 = samples[0]
                if now - t0 < HEAT_WINDOW_S / 2:
                    continue  # not enough of a window yet
                rate = (consumed - c0) / (now - t0)
                if rate >= self.settings.split_heat_share * CAPS[kind]:
                    heat.hot_since.setdefault(kind, now)
                else:
                    heat.hot_since.pop(kind, None)

    def _why(self, part: PartitionInfo, now: float) -> str | None:
        """Why a partition should be split now ("size" or "heat"), or None."""
        size = self.sizes.get(part.partition_id)
        if size is not None and size[1] > self.settings.split_bytes:
            return "size"
        heat = self._heat.get(part.partition_id)
        if heat is not None and any(now - t >= self.settings.split_heat_s for t in heat.hot_since.values()):
            return "heat"
        return None

    # -- the loop -------------------------------------------------------------------------------
    def resume(self) -> None:
        """Finish every split a previous auto-admin left half-way (a parent with children)."""
        for part in list(self.metadata.partitions.items.values()):
            if part.children and part.state == "ACTIVE":
                self._start(part.partition_id, None, "resumed")

    def run_once(self, now: float) -> None:
        """Start the splits that are due (one at a time per table)."""
        busy = {self.metadata.partitions.items[p].table_id for p, t in self._work.items()
                if not t.done() and p in self.metadata.partitions.items}
        for table in list(self.metadata.catalog.items.values()):
            if table.status != "ACTIVE" or table.restoring or table.table_id in busy:
                continue
            for part in self.metadata.table_partitions(table.table_id):
                why = self._why(part, now)
                if why is None:
                    self.blocked.pop(part.partition_id, None)  # no longer needs a split
                elif now - self._blocked_at.get(part.partition_id, -BLOCKED_RETRY_S) >= BLOCKED_RETRY_S:
                    self._start(part.partition_id, table, why)
                    break

    def _start(self, pid: str, table: TableDefinition | None, by: str) -> None:
        task = self._work.get(pid)
        if task is not None and not task.done():
            return
        self._work[pid] = asyncio.ensure_future(self._split(pid, by))

    async def close(self) -> None:
        for t in self._work.values():
            t.cancel()
        await asyncio.gather(*self._work.values(), return_exceptions=True)

    def metrics(self, samples: Samples) -> None:
        """Splits done and partitions that cannot be split (a single hot key)."""
        samples.add("dynamolog_partition_splits", len(self.done))
        for pid, why in list(self.blocked.items()):
            part = self.metadata.partitions.items.get(pid)
            samples.add("dynamolog_partition_split_blocked", 1, table=part.table_name if part else "", partition=pid,
                        reason=why)

    async def split_now(self, pid: str, by: str = "size") -> SplitRecord:
        """Split a partition at once (the ``split`` RPC: an operator, tests, benchmarks)."""
        self._start(pid, None, by)
        await asyncio.shield(self._work[pid])
        for r in reversed(self.done):
            if r.parent == pid:
                return r
        raise RuntimeError(f"partition {pid} was not split: {self.blocked.get(pid, 'see the auto-admin log')}")

    # -- one split ------------------------------------------------------------------------------
    async def _split(self, pid: str, by: str) -> None:
        t0 = time.monotonic()
        for attempt in range(1, 1000):
            try:
                record = await self._split_once(pid, by, t0)
                if record is not None:
                    self.done.append(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every step is idempotent: try again
                log.warning("split of partition %s: attempt %d failed (%r); retrying", pid, attempt, e)
                await asyncio.sleep(min(2.0, 0.1 * attempt))

    async def _split_once(self, pid: str, by: str, t0: float) -> SplitRecord | None:
        part = self.metadata.partitions.items.get(pid)
        if part is None or part.state != "ACTIVE" or "#" in part.table_id:
            return None
        table = next((t for t in self.metadata.catalog.items.values() if t.table_id == part.table_id), None)
        if table is None:
            return None
        # 1. plan
        if not part.children:
            answer = await self.routing.call(table, part, "split_point", leader=True, by=by)
            at = answer.get("hash")
            if at is None or not part.hash_start < int(at) <= part.hash_end:
                why = str(answer.get("why") or "no point to cut at")
                if self.blocked.get(pid) != why:
                    log.warning("partition %s of %s should be split (%s) but cannot: %s", pid, table.table_name, by, why)
                self.blocked[pid] = why
                self._blocked_at[pid] = time.monotonic()
                return None
            self.blocked.pop(pid, None)
            self._blocked_at.pop(pid, None)
            part = await self._plan(table, part, int(at))
            log.info("split of partition %s of %s (%s): cutting at hash %016x into %s", pid, table.table_name, by,
                     int(at), ", ".join(part.children))
        kids = [self.metadata.partitions.items[c] for c in part.children]
        # 2. seal (done already when a resumed split finds the children ACTIVE)
        t_seal = time.monotonic()
        cut = -1
        if not split_done(part, self.metadata.partitions.items):
            sealed = await self.routing.call(table, part, "split_seal", leader=True, wait_s=SEAL_WAIT_S)
            cut = int(sealed["offset"])
        seal_s = time.monotonic() - t_seal
        log.info("split of partition %s: sealed at offset %d (%.0f ms)", pid, cut, seal_s * 1000)
        # 3. open the children
        t_open = time.monotonic()
        for kid in kids:
            if kid.state != "ACTIVE":
                await self.writer.put_partition(replace(kid, state="ACTIVE"))
        kids = [self.metadata.partitions.items[c] for c in part.children]
        await asyncio.gather(*(self._open(kid, kid.leader) for kid in kids))
        open_s = time.monotonic() - t_open
        total_s = time.monotonic() - t0
        log.info("split of partition %s: children %s serving (%.0f ms; %.2f s since the decision)", pid,
                 ", ".join(part.children), open_s * 1000, total_s)
        await asyncio.gather(*(self._open(kid, n) for kid in kids for n in kid.replicas if n != kid.leader),
                             return_exceptions=True)
        # 4. finish: the table's partitions, then the parent SPLIT (its replicas are dropped)
        await self._set_partition_ids(table.table_name, table.table_id)
        current = self.metadata.partitions.items.get(pid, part)
        await self.writer.put_partition(replace(current, state="SPLIT"))
        self.sizes.pop(pid, None)
        self._heat.pop(pid, None)
        log.info("split of partition %s done in %.2f s", pid, time.monotonic() - t0)
        return SplitRecord(pid, (part.children[0], part.children[1]), kids[1].hash_start, by, cut, total_s, seal_s,
                           open_s)

    async def _plan(self, table: TableDefinition, part: PartitionInfo, at: int) -> PartitionInfo:
        """Publish the children (OPENING, their topics created) and then the parent naming them."""
        low, high = child_ids(part.partition_id)
        kids = [
            replace(part, partition_id=low, hash_end=at - 1, parent=part.partition_id, children=(),
                    log_topic=self.settings.log_topic(table.table_name, low), leader_epoch=1, state="OPENING"),
            replace(part, partition_id=high, hash_start=at, parent=part.partition_id, children=(),
                    log_topic=self.settings.log_topic(table.table_name, high), leader_epoch=1, state="OPENING"),
        ]
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            for kid in kids:
                await admin.create_topic(kid.log_topic, configs=LOG_TOPIC_CONFIGS)
            await admin.wait_for_topics([k.log_topic for k in kids])
        for kid in kids:
            await self.writer.put_partition(kid)
        planned = replace(part, children=(low, high))
        await self.writer.put_partition(planned)
        return planned

    async def _open(self, kid: PartitionInfo, node_id: str | None) -> None:
        """Ask a node to open a child now (it copies its share of the parent first)."""
        c = self._client(node_id) if node_id else None
        if c is None:
            return
        await c.call("open", partition=kid.to_record(), timeout_s=120)

    async def _set_partition_ids(self, name: str, table_id: str) -> None:
        """The table's partitions in the catalog (capacity is divided over them), through the
        catalog's one writer."""
        async with self.catalog.lock(name):
            current = self.metadata.catalog.items.get(name)
            if current is None or current.table_id != table_id:
                return
            pids = tuple(p.partition_id for p in self.metadata.table_partitions(table_id))
            if pids != current.partition_ids:
                await self.writer.put_table(replace(current, partition_ids=pids))
