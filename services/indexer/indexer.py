"""The indexer (log propagator): keeps every global secondary index up to date from the logs.

For each index and each partition of its table, one task reads the partition log with
``read_committed`` from the offset it last committed (Kafka consumer group
``<ns>.indexer.<index id>.<its creation time>``), turns every change into index operations
(:func:`dynamolog.indexes.index_ops`: put the new entry, delete the old one when the index key
changed), keeps the last operation per entry of a fetched batch, sends them to the leaders of the
index's partitions as ordinary writes (one request per index partition and batch), and commits
the offset only after all of them were acknowledged (at most every ``indexer_commit_ms``; a
router waits for that position before it reads the index: services/router/freshness.py).  Batches are
pipelined: the next one is fetched and sent while earlier ones are in flight, but a batch that
writes an entry an earlier batch is still writing waits for it.  A crash repeats what came after the last commit; the
repeated writes are idempotent (an
unchanged entry writes nothing), so every index converges to exactly its table's items
(at-least-once delivery, idempotent application: docs/architecture.md, "Derived views").

An index added by UpdateTable starts with no committed offset, so its tasks read the logs from
the beginning (the logs are kept forever): that is the backfill.  When every task of a CREATING
index has read past the end its log had when the task started, the index becomes ACTIVE: a
change sent to the auto-admin, the catalog's one writer (:mod:`dynamolog.catalog_client`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from dynamolog import codec
from dynamolog.catalog import GlobalIndex, IndexUnit, PartitionInfo, TableDefinition
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings
from dynamolog.fencing import CONTROL_OPS, ORIGIN, SEAL, Term, TermGate
from dynamolog.indexes import index_ops, indexer_group
from dynamolog.metadata import Metadata, ensure_metadata_topics
from dynamolog.metrics import Samples
from dynamolog.routing import Routing

log = logging.getLogger(__name__)

#: fetched batches whose writes may be in flight at once per task
PIPELINE_BATCHES = 8
#: index writes per request to an index partition's leader
WRITES_PER_REQUEST = 500


def _percentiles(samples: deque[int]) -> str:
    if not samples:
        return "-"
    s = sorted(samples)
    return f"p50 {s[len(s) // 2]} ms p99 {s[min(len(s) - 1, len(s) * 99 // 100)]} ms"


def _forget(writing: dict[bytes, asyncio.Task[None]], entries: list[bytes], task: asyncio.Task[None]) -> None:
    """A batch is done: its entries are no longer being written (unless a later batch took them)."""
    for e in entries:
        if writing.get(e) is task:
            del writing[e]


def _group(settings: Settings, index: GlobalIndex) -> str:
    return indexer_group(settings.namespace, index.index_id, index.created_at_ms)


def changes(value: bytes, offset: int,
            gate: TermGate) -> tuple[bytes, dict[str, Any] | None, dict[str, Any] | None] | str | None:
    """(item key, old image, new image) of a log record that changes an item and counts under
    the term rule (dynamolog/fencing.py); ``SEAL`` for the record that ends a split partition's
    log; else None."""
    r = codec.decode_log_record(value)
    op = r["op"]
    if not gate.admit(r, offset):
        return None
    if op == SEAL:
        return SEAL
    if op in CONTROL_OPS:
        return None
    if op == "TXN_COMMIT":
        if r.get("txn_action") == "CHECK":
            return None
        op = "PUT" if r.get("txn_action") == "PUT" else "DELETE"
    if op == "PUT":
        return r["key"], r.get("old_image"), r.get("new_image")
    if op == "DELETE":
        return r["key"], r.get("old_image"), None
    return None


async def _committed(consumer: AIOKafkaConsumer, tp: TopicPartition) -> tuple[int, TermGate]:
    """The feed's committed position and the term rule's state there (stored as the commit's
    metadata).  A position committed without one (before fenced appends) adopts the first term
    it reads (dynamolog/fencing.py)."""
    # aiokafka's committed() returns the offset only; its coordinator has the metadata too
    found = (await consumer._coordinator.fetch_committed_offsets([tp])).get(tp)
    if found is None or found.offset <= 0:
        return 0, TermGate(ORIGIN)
    return found.offset, TermGate(Term.decode(found.metadata))


class Indexer:
    """The indexer process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metadata = Metadata(settings)
        self.catalog = CatalogClient(self.metadata)
        self.routing = Routing(self.metadata)
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._caught_up: dict[tuple[str, str], bool] = {}
        #: (index, partition) feeds of split partitions that reached their SEAL: done for good,
        #: and their children's feeds may start (an item's changes in log order across a split)
        self._drained: set[tuple[str, str]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        #: index writes sent, per index id (write amplification)
        self.index_writes: dict[str, int] = {}
        self.base_records: dict[str, int] = {}
        #: per base record, ms from its append to the table log (its Kafka timestamp) to when the
        #: indexer fetched it, and to when its index writes were acknowledged (recent ones)
        self.fetch_lag_ms: deque[int] = deque(maxlen=10_000)
        self.ack_lag_ms: deque[int] = deque(maxlen=10_000)

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples (dynamolog/metrics.py): index writes and table records read, per index."""
        names = {t.table_id: t.table_name for t in self.metadata.catalog.items.values()}
        for name, counts in (("dynamolog_indexer_index_writes", self.index_writes),
                             ("dynamolog_indexer_base_records", self.base_records)):
            for index_id, n in list(counts.items()):
                table_id, _, index = index_id.partition("#")
                samples.add(name, n, table=names.get(table_id, table_id), index=index)

    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        self._loop_task = asyncio.ensure_future(self._loop())
        log.info("indexer running")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for t in self._tasks.values():
            t.cancel()
        await asyncio.gather(*self._tasks.values(), *([self._loop_task] if self._loop_task else []),
                             return_exceptions=True)
        await self.routing.close()
        await self.catalog.close()
        await self.metadata.close()

    async def _loop(self) -> None:
        last_stats = time.monotonic()
        while True:
            try:
                await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("indexer: reconcile failed")
            if time.monotonic() - last_stats > self.settings.indexer_stats_s and self.index_writes:
                last_stats = time.monotonic()
                log.info("indexer: index writes %s for base records %s; log append -> fetched %s, -> index "
                         "writes acknowledged %s", self.index_writes, self.base_records,
                         _percentiles(self.fetch_lag_ms), _percentiles(self.ack_lag_ms))
            await asyncio.sleep(0.5)

    async def _reconcile(self) -> None:
        wanted: set[tuple[str, str]] = set()
        for table in list(self.metadata.catalog.items.values()):
            if table.status in ("CREATING", "DELETING"):
                continue
            for index in table.global_indexes:
                if index.status not in ("ACTIVE", "CREATING"):
                    continue
                index_parts = self.metadata.table_partitions(index.index_id)
                if len(index_parts) != len(index.partition_ids):
                    continue  # not provisioned yet
                for part in self.metadata.table_lineage(table.table_id):
                    key = (index.index_id, part.partition_id)
                    wanted.add(key)
                    task = self._tasks.get(key)
                    if key not in self._drained and (task is None or task.done()):
                        self._tasks[key] = asyncio.ensure_future(self._feed(table.table_name, index.index_id,
                                                                            part))
                if index.status == "CREATING":
                    await self._maybe_activate(table, index)
        for key in [k for k in self._tasks if k not in wanted]:
            self._tasks.pop(key).cancel()
            self._caught_up.pop(key, None)

    async def _maybe_activate(self, table: TableDefinition, index: GlobalIndex) -> None:
        parts = self.metadata.table_partitions(table.table_id)
        if not parts or not all(self._caught_up.get((index.index_id, p.partition_id)) for p in parts):
            return

        def activate(current: TableDefinition | None) -> TableDefinition | None:
            if current is None or current.table_id != table.table_id:
                return None
            indexes = current.global_indexes
            if not any(i.index_id == index.index_id and i.status == "CREATING" for i in indexes):
                return None
            return replace(current, global_indexes=tuple(
                replace(i, status="ACTIVE") if i.index_id == index.index_id else i for i in indexes))

        await self.catalog.change(table.table_name, activate)
        log.info("index %s of %s backfilled: ACTIVE", index.index_name, table.table_name)

    def _lookup(self, table_name: str, index_id: str) -> tuple[TableDefinition, GlobalIndex] | None:
        table = self.metadata.catalog.items.get(table_name)
        if table is None:
            return None
        for index in table.global_indexes:
            if index.index_id == index_id and index.status in ("ACTIVE", "CREATING"):
                return table, index
        return None

    async def _feed(self, table_name: str, index_id: str, part: PartitionInfo) -> None:
        """Feed one index from one table partition's log, pipelined: while the writes of a
        fetched batch are in flight, the next batch is fetched and sent.  Two batches that
        touch the same index entry are ordered (the later one waits for the earlier), so an
        entry's writes reach its partition in log order; the log position is committed only
        up to where every batch before it was acknowledged."""
        key = (index_id, part.partition_id)
        if part.parent is not None:
            # a split's child: its items' earlier changes are in the parent's log, fed first
            parent = (index_id, part.parent)
            while parent not in self._drained and parent[1] in self.metadata.partitions.items:
                await asyncio.sleep(0.05)
        tp = TopicPartition(part.log_topic, 0)
        found = self._lookup(table_name, index_id)
        if found is None:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, group_id=_group(self.settings, found[1]),
                                    enable_auto_commit=False, isolation_level="read_committed",
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                    max_partition_fetch_bytes=8 * 1024 * 1024)
        #: batches sent and not yet acknowledged, oldest first: (log position after it, its writes)
        #: (each entry also holds the leader term the log had reached at that position)
        inflight: deque[tuple[int, asyncio.Task[None], Term | None]] = deque()
        #: index entry -> the in-flight batch that writes it
        writing: dict[bytes, asyncio.Task[None]] = {}
        acked = -1  # the log position up to which every batch was acknowledged
        committed_at = -1  # the position last committed
        commit_s = self.settings.indexer_commit_ms / 1000
        try:
            await consumer.start()
            consumer.assign([tp])
            committed, gate = await _committed(consumer, tp)
            consumer.seek(tp, committed)
            acked_term = gate.term
            end_at_start = (await consumer.end_offsets([tp]))[tp]
            last_commit = time.monotonic()
            sealed_at: int | None = None  # the position after this log's SEAL, once read
            if committed >= end_at_start and self._split(part.partition_id):
                sealed_at = committed  # a split partition fed to its end before a restart
            while True:
                found = self._lookup(table_name, index_id)
                if found is None:
                    return
                table, index = found
                # acknowledged batches: their position can be committed
                while inflight and inflight[0][1].done():
                    position, task, acked_term = inflight.popleft()
                    task.result()  # a failed batch fails the feed: it restarts from the last commit
                    acked = position
                if acked > committed_at and time.monotonic() - last_commit >= commit_s:
                    # the term the log had reached there is committed with the position
                    await consumer.commit({tp: OffsetAndMetadata(acked, acked_term.encode() if acked_term else "")})
                    committed_at, last_commit = acked, time.monotonic()
                if not inflight and await consumer.position(tp) >= end_at_start:
                    self._caught_up[key] = True
                if sealed_at is not None and not inflight:
                    await consumer.commit({tp: OffsetAndMetadata(sealed_at, acked_term.encode() if acked_term else "")})
                    self._drained.add(key)
                    log.info("indexer: %s fed from split partition %s up to its seal", index_id, part.partition_id)
                    return
                if len(inflight) >= PIPELINE_BATCHES:
                    await asyncio.wait([inflight[0][1]])
                    continue
                idle = not inflight and acked <= committed_at  # nothing to acknowledge or commit
                batch = await consumer.getmany(tp, timeout_ms=200 if idle else 5, max_records=2000)
                records = batch.get(tp, [])
                if not records:
                    if inflight:
                        await asyncio.wait([t for _, t, _ in inflight], return_when=asyncio.FIRST_COMPLETED,
                                           timeout=0.05)
                    else:  # every record before the position (transaction markers included) is applied
                        acked = max(acked, await consumer.position(tp))
                        acked_term = gate.term
                    continue
                types = table.attribute_types()
                table_keys = [k.attribute_name for k in table.key_schema]
                ops: dict[bytes, dict[str, Any] | None] = {}
                for rec in records:
                    if rec.value is None:
                        continue
                    change = changes(rec.value, rec.offset, gate)
                    if change == SEAL:
                        sealed_at = rec.offset + 1
                        break  # nothing after it counts
                    if change is None or isinstance(change, str):
                        continue
                    self.base_records[index_id] = self.base_records.get(index_id, 0) + 1
                    for entry, image in index_ops(index, change[0], change[1], change[2], types, table_keys):
                        ops[entry] = image
                before = {writing[e] for e in ops if e in writing and not writing[e].done()}
                now_ms = int(time.time() * 1000)
                stamps = [r.timestamp for r in records[:: max(1, len(records) // 16)]]
                self.fetch_lag_ms.extend(now_ms - t for t in stamps)
                task = asyncio.ensure_future(self._send(index, ops, before, stamps))
                for e in ops:
                    writing[e] = task
                task.add_done_callback(functools.partial(_forget, writing, list(ops)))
                inflight.append((await consumer.position(tp), task, gate.term))
                self.index_writes[index_id] = self.index_writes.get(index_id, 0) + len(ops)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("indexer: feeding %s from %s failed; restarting", index_id, part.partition_id)
            await asyncio.sleep(1)
        finally:
            for _, t, _ in inflight:
                t.cancel()
            await asyncio.gather(*(t for _, t, _ in inflight), return_exceptions=True)
            await consumer.stop()

    def _split(self, pid: str) -> bool:
        """Whether a partition has been split (its children serve its keys)."""
        part = self.metadata.partitions.items.get(pid)
        return part is not None and part.state == "SPLIT"

    async def _send(self, index: GlobalIndex, ops: dict[bytes, dict[str, Any] | None],
                    before: set[asyncio.Task[None]], stamps: list[int]) -> None:
        """Write one batch's index operations: one request per index partition (its leader
        queues them in order, as one group commit), after the batches ``before`` it."""
        if before:
            await asyncio.gather(*before)
        unit = IndexUnit(index.index_id)
        by_part: dict[str, tuple[PartitionInfo, list[dict[str, Any]]]] = {}
        for entry, image in ops.items():
            p = self.routing.partition_for_item_key(unit, entry)
            w: dict[str, Any] = {"key": base64.b64encode(entry).decode(), "keyattrs": {}}
            if image is None:
                w["kind"] = "delete"
            else:
                w.update(kind="put", item=image)
            by_part.setdefault(p.partition_id, (p, []))[1].append(w)
        calls = []
        for p, writes in by_part.values():
            for i in range(0, len(writes), WRITES_PER_REQUEST):
                calls.append(self.routing.call(unit, p, "write_batch", leader=True,
                                               writes=writes[i:i + WRITES_PER_REQUEST]))
        await asyncio.gather(*calls)
        now_ms = int(time.time() * 1000)
        self.ack_lag_ms.extend(now_ms - t for t in stamps)

