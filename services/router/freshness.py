"""Read-your-writes for global secondary indexes: a Query or Scan of an index waits until the
index has applied every write of its table acknowledged before the request arrived.

DynamoDB's global indexes are eventually consistent and it offers nothing more; here the wait
is cheap enough to be the default.  A table write is acknowledged once its record is committed
in its partition's log, so "every write acknowledged before now" is each partition log's end
(the last stable offset, what a ``read_committed`` reader sees) read after the request arrived.
The indexer commits, per index and table partition, the log position up to which the index's
partitions acknowledged its writes (consumer group ``dynamolog.indexes.indexer_group``; at most
every ``indexer_commit_ms``).  The read goes ahead once every committed position has reached its
log's end, or when ``gsi_read_wait_ms`` has passed (then it reads the index as it is, as
DynamoDB would).  Cost: one Kafka round trip (the two questions asked at once) when the index is
caught up (measured in docs/benchmarks.md); a failure of those calls skips the wait, never the
read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dynamolog.catalog import TableDefinition
from dynamolog.config import Settings
from dynamolog.indexes import indexer_group
from dynamolog.metadata import Metadata

log = logging.getLogger(__name__)

#: longest pause between two looks at the indexer's positions while waiting
POLL_S_MAX = 0.02


class IndexFreshness:
    """Waits for global indexes to catch up with their tables (one per router)."""

    def __init__(self, settings: Settings, metadata: Metadata) -> None:
        self.settings = settings
        self.metadata = metadata
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._starting: asyncio.Lock = asyncio.Lock()
        #: consumer group -> the broker that coordinates it (found once: one round trip less)
        self._coordinators: dict[str, int] = {}
        #: reads that waited for their index, and those that gave up waiting (metrics)
        self.waited = 0
        self.timed_out = 0

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        async with self._starting:
            if self._consumer is None or self._admin is None:
                consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                            isolation_level="read_committed")
                admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap)
                try:
                    await consumer.start()
                    await admin.start()
                except BaseException:
                    await consumer.stop()
                    await admin.close()
                    raise
                self._consumer, self._admin = consumer, admin
            return self._consumer, self._admin

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    def _target(self, table: TableDefinition, index_id: str) -> tuple[list[TopicPartition], str] | None:
        """``table``'s partition logs and the consumer group in which the indexer commits how far
        the index ``index_id`` has applied them (None: no such index, or no partitions yet)."""
        index = next((i for i in table.global_indexes if i.index_id == index_id), None)
        if index is None:
            return None
        tps = [TopicPartition(p.log_topic, 0) for p in self.metadata.table_partitions(table.table_id)]
        if not tps:
            return None
        return tps, indexer_group(self.settings.namespace, index_id, index.created_at_ms)

    async def behind(self, table: TableDefinition, index_id: str) -> int:
        """Records of ``table``'s partition logs that the index ``index_id`` has not applied yet:
        the same positions and log ends :meth:`wait` compares, read once (the console's GSI lag)."""
        target = self._target(table, index_id)
        if target is None:
            return 0
        tps, group = target
        consumer, admin = await self._clients()
        if group not in self._coordinators:
            self._coordinators[group] = await admin.find_coordinator(group)
        try:
            ends, done = await asyncio.gather(
                consumer.end_offsets(tps),
                admin.list_consumer_group_offsets(group, self._coordinators[group], partitions=tps))
        except Exception:
            self._coordinators.clear()  # a coordinator that moved is found again next time
            raise
        return sum(max(0, ends[tp] - max(0, done[tp].offset if tp in done else 0)) for tp in tps)

    async def wait(self, table: TableDefinition, index_id: str) -> None:
        """Return once the index ``index_id`` of ``table`` has applied every table write
        acknowledged before this call, or after ``gsi_read_wait_ms``."""
        wait_s = self.settings.gsi_read_wait_ms / 1000
        if wait_s <= 0:
            return
        deadline = time.monotonic() + wait_s
        target = self._target(table, index_id)
        if target is None:
            return
        tps, group = target
        try:
            consumer, admin = await self._clients()
            if group not in self._coordinators:
                self._coordinators[group] = await admin.find_coordinator(group)

            def positions() -> Any:
                return admin.list_consumer_group_offsets(group, self._coordinators[group], partitions=tps)

            # both asked after the request arrived, at once: a position read alongside the ends
            # that has reached them has reached what was acknowledged before the request
            ends, done = await asyncio.wait_for(asyncio.gather(consumer.end_offsets(tps), positions()), wait_s)
            pause = 0.002
            waited = False
            while True:
                if done is None:
                    done = await asyncio.wait_for(positions(), max(0.001, deadline - time.monotonic()))
                behind = [tp for tp in tps if ends[tp] > 0 and (done[tp].offset if tp in done else -1) < ends[tp]]
                if not behind:
                    return
                if time.monotonic() + pause >= deadline:
                    raise TimeoutError
                if not waited:
                    waited = True
                    self.waited += 1
                await asyncio.sleep(pause)
                done = None
                pause = min(pause * 2, POLL_S_MAX)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.timed_out += 1
            log.info("freshness: index %s still behind its table after %.0f ms; reading it as it is",
                     index_id, wait_s * 1000)
        except Exception as e:  # noqa: BLE001 - the read goes on without the wait
            self._coordinators.clear()  # a coordinator that moved is found again next time
            log.warning("freshness: cannot tell how far index %s is (%s); reading it as it is", index_id, e)
