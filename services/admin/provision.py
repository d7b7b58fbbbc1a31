"""Provisioning: carrying out a table that is CREATING, UPDATING or DELETING.

CREATING: the log topics are created, replicas placed on distinct storage nodes in distinct zones where there are enough
(:mod:`dynamolog.placement`), the PartitionInfos published and the partitions opened on their
nodes, then the table is published ACTIVE.  UPDATING: a new global index gets its partitions (the
indexer backfills them and then marks the index ACTIVE), a deleted one loses them, then ACTIVE.
DELETING: the replicas are dropped, the topics deleted and the tombstones written.  Every step is
idempotent and its state is in the metadata topics, so an auto-admin that starts resumes any
table left half-way (:meth:`Provisioner.resume_pending`).  The catalog writes here hold the
table's lock of :class:`services.admin.writer.CatalogWriter`, so they are ordered with the
changes routers send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from dynamolog import placement
from dynamolog.catalog import PENDING_STATUSES, GlobalIndex, PartitionInfo, TableDefinition
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, MetadataWriter
from dynamolog.routing import Routing

from .writer import CatalogWriter

log = logging.getLogger(__name__)

HASH_SPACE = 1 << 64
#: log topic settings: records of up to 4 MB (a 400 KB item with its old image, framed);
#: partition logs kept forever (a replica is rebuilt from its log); no unclean leader election
#: (an out-of-sync broker never becomes leader and drops acknowledged records)
LOG_TOPIC_CONFIGS = {"max.message.bytes": str(4 * 1024 * 1024), "unclean.leader.election.enable": "false",
                     "retention.ms": "-1", "retention.bytes": "-1"}
#: attempts to carry out one table before giving up until the next start
ATTEMPTS_MAX = 1000
#: longest one attempt may take (s): each step is bounded (a node's open by its RPC timeout),
#: but a step stuck beyond its bound is cut off, logged with the step, and the attempt starts over
ATTEMPT_S = 180.0
#: an attempt still running after this long (s) logs the step it is at, and again each as long after
SLOW_S = 15.0


class _CutOff(Exception):
    """An attempt ran past ATTEMPT_S."""


class Provisioner:
    """Drives tables from CREATING / UPDATING / DELETING to their end state."""

    def __init__(self, settings: Settings, metadata: Metadata, writer: MetadataWriter, routing: Routing,
                 catalog: CatalogWriter) -> None:
        self.settings = settings
        self.metadata = metadata
        self.writer = writer
        self.routing = routing
        self.catalog = catalog
        self._work: dict[str, asyncio.Task[None]] = {}
        #: table name -> the step its running attempt is at (logged while it is slow, when it fails
        #: and when it is cut off)
        self.steps: dict[str, str] = {}

    def resume_pending(self) -> None:
        """Finish any table left CREATING, UPDATING or DELETING."""
        for name, table in list(self.metadata.catalog.items.items()):
            if table.status in PENDING_STATUSES:
                self.start_work(name)

    def on_table(self, name: str, table: TableDefinition | None) -> None:
        """Catalog listener: a table that needs work gets it."""
        if table is not None and table.status in PENDING_STATUSES:
            self.start_work(name)

    def start_work(self, name: str) -> None:
        task = self._work.get(name)
        if task is not None and not task.done():
            return
        self._work[name] = asyncio.ensure_future(self._drive(name))

    async def close(self) -> None:
        for t in self._work.values():
            t.cancel()
        await asyncio.gather(*self._work.values(), return_exceptions=True)

    async def _drive(self, name: str) -> None:
        for attempt in range(1, ATTEMPTS_MAX):
            table = self.metadata.catalog.items.get(name)
            if table is None:
                return
            try:
                await self._bounded(name, table, attempt)
                # a change published meanwhile (a failed import's table, DELETING while it was
                # still being provisioned) found this task running: carry it out too
                current = self.metadata.catalog.items.get(name)
                if current is not None and current.status in PENDING_STATUSES and current.status != table.status:
                    continue
                return
            except asyncio.CancelledError:
                raise
            except _CutOff:
                log.warning("provision: %s (%s): attempt %d still at step '%s' after %.0f s; starting it over",
                            name, table.status, attempt, self.steps.get(name, "?"), ATTEMPT_S)
            except Exception:
                log.exception("provision: %s (%s) failed at step '%s' (attempt %d); retrying", name,
                              table.status, self.steps.get(name, "?"), attempt)
                await asyncio.sleep(min(5.0, 0.2 * attempt))
            finally:
                self.steps.pop(name, None)

    async def _bounded(self, name: str, table: TableDefinition, attempt: int) -> None:
        """One attempt at ``table``'s pending change; every ``SLOW_S`` it is still running, the
        step it is at is logged, and after ``ATTEMPT_S`` it is cut off (:class:`_CutOff`)."""
        if table.status == "CREATING":
            work = asyncio.ensure_future(self._provision(table))
        elif table.status == "UPDATING":
            work = asyncio.ensure_future(self._finish_update(table))
        elif table.status == "DELETING":
            work = asyncio.ensure_future(self._deprovision(table))
        else:
            return
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait([work], timeout=SLOW_S)
                if done:
                    return work.result()
                waited = time.monotonic() - started
                if waited >= ATTEMPT_S:
                    raise _CutOff()
                log.warning("provision: %s (%s): attempt %d at step '%s' for %.0f s", name, table.status, attempt,
                            self.steps.get(name, "?"), waited)
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)

    def _new_parts(self, table: TableDefinition, unit_id: str, topic_name: str,
                   pids: Sequence[str]) -> list[PartitionInfo]:
        """PartitionInfos (existing ones as they are) of a table's or an index's partitions."""
        n = len(pids)
        parts = []
        for i, pid in enumerate(pids):
            existing = self.metadata.partitions.items.get(pid)
            if existing is not None and existing.state != "DELETED":
                parts.append(existing)
                continue
            nodes = self.metadata.nodes.items
            replicas = placement.place_new(nodes, table.table_id, i + (0 if unit_id == table.table_id else 1),
                                           {n: info.zone for n, info in nodes.items()})
            parts.append(PartitionInfo(
                partition_id=pid,
                table_name=table.table_name,
                table_id=unit_id,
                hash_start=i * HASH_SPACE // n,
                hash_end=(i + 1) * HASH_SPACE // n - 1,
                log_topic=self.settings.log_topic(topic_name, pid),
                replicas=tuple(replicas),
                leader=replicas[0],
                leader_epoch=1,
                state="ACTIVE",
            ))
        return parts

    def _index_parts(self, table: TableDefinition, index: GlobalIndex) -> list[PartitionInfo]:
        return self._new_parts(table, index.index_id, f"{table.table_name}.{index.index_name}",
                               index.partition_ids)

    def _step(self, parts: Sequence[PartitionInfo], step: str) -> None:
        if parts:
            self.steps[parts[0].table_name] = step

    async def _open_parts(self, parts: list[PartitionInfo]) -> None:
        """Create the log topics, publish the partitions, open them on their nodes."""
        self._step(parts, "creating the log topics")
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            for part in parts:
                await admin.create_topic(part.log_topic, configs=LOG_TOPIC_CONFIGS)
            self._step(parts, "waiting for the log topics' leaders")
            await admin.wait_for_topics([p.log_topic for p in parts])
        self._step(parts, "publishing the partitions")
        for part in parts:
            await self.writer.put_partition(part)
        self._step(parts, "opening the partitions on their leaders ("
                   + ", ".join(f"{p.partition_id} on {p.leader}" for p in parts) + ")")
        await asyncio.gather(*(
            self.routing.client(part.leader or "").call("open", partition=part.to_record(), timeout_s=60) for part in parts
        ))
        self._step(parts, "opening the partitions on their followers")
        await asyncio.gather(*(
            self.routing.client(node).call("open", partition=part.to_record(), timeout_s=60)
            for part in parts for node in part.replicas if node != part.leader
        ), return_exceptions=True)

    async def _drop_parts(self, parts: list[PartitionInfo]) -> None:
        self._step(parts, "publishing the partitions DELETED")
        for part in parts:
            await self.writer.put_partition(replace(part, state="DELETED"))
        self._step(parts, "dropping the replicas")
        for part in parts:
            for node in part.replicas:
                try:
                    await self.routing.client(node).call("drop", pid=part.partition_id, timeout_s=30)
                except (TimeoutError, ConnectionError) as e:
                    # the node drops it on its own when it sees the DELETED state
                    log.warning("provision: node %s did not confirm dropping %s: %s", node, part.partition_id, e)
        self._step(parts, "deleting the log topics")
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.delete_topics([p.log_topic for p in parts])
        for part in parts:
            await self.writer.delete_partition(part.partition_id)

    async def _provision(self, table: TableDefinition) -> None:
        t0 = time.monotonic()
        n = len(table.partition_ids)
        parts = self._new_parts(table, table.table_id, table.table_name, table.partition_ids)
        for index in table.global_indexes:
            parts += self._index_parts(table, index)
        t_topics = time.monotonic()
        await self._open_parts(parts)
        async with self.catalog.lock(table.table_name):
            current = self.metadata.catalog.items.get(table.table_name)
            if current is None or current.table_id != table.table_id or current.status != "CREATING":
                return
            if current.restoring:  # the backup service loads it, then publishes it ACTIVE
                log.info("table %s provisioned for a restore; it stays CREATING while it is loaded", table.table_name)
                return
            await self.writer.put_table(replace(current, status="ACTIVE"))
        log.info("table %s ACTIVE after %.0f ms (%d partitions; topics %.0f ms, opening %.0f ms)", table.table_name,
                 (time.monotonic() - t0) * 1000, n, (t_topics - t0) * 1000, (time.monotonic() - t_topics) * 1000)

    async def _finish_update(self, table: TableDefinition) -> None:
        """UPDATING -> ACTIVE.  Billing changes need no data movement yet (no throttling, and
        partitions are not split for throughput), so the update is complete once published."""
        name = table.table_name
        for index in table.global_indexes:
            if index.status == "CREATING":
                await self._open_parts(self._index_parts(table, index))
            elif index.status == "DELETING":
                await self._drop_parts([self.metadata.partitions.items[pid] for pid in index.partition_ids
                                        if pid in self.metadata.partitions.items])
        async with self.catalog.lock(name):
            current = self.metadata.catalog.items.get(name)
            if current is None or current.table_id != table.table_id or current.status != "UPDATING":
                return
            kept = tuple(i for i in current.global_indexes if i.status != "DELETING")
            await self.writer.put_table(replace(current, status="ACTIVE", global_indexes=kept))
        log.info("table %s updated", name)

    async def _deprovision(self, table: TableDefinition) -> None:
        pids = list(table.partition_ids)
        for index in table.global_indexes:
            pids += index.partition_ids
        # and the partitions splits made and ended (their logs are kept while the table lives)
        pids += [p.partition_id for p in self.metadata.partitions.items.values()
                 if p.table_id == table.table_id and p.partition_id not in pids]
        await self._drop_parts([self.metadata.partitions.items[pid] for pid in pids
                                if pid in self.metadata.partitions.items])
        async with self.catalog.lock(table.table_name):
            current = self.metadata.catalog.items.get(table.table_name)
            if current is not None and current.table_id == table.table_id:
                await self.writer.delete_table(table.table_name)
        log.info("table %s deleted", table.table_name)
