"""Follower role: fold the partition log into the replica, lazily.

A follower consumes the partition's log topic with ``isolation_level=read_committed`` from the
replica's stored offset and applies each fetched batch in one RocksDB WriteBatch together with
the new offset (DESIGN.md 4.3), so a restart neither skips nor repeats a record.  The leader
uses the same code to catch up to the end of the log before it serves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec
from dynamolog.config import Settings

from .replica import Replica

log = logging.getLogger(__name__)

#: records fetched (and applied in one WriteBatch) at most per round
APPLY_BATCH_RECORDS_MAX = 2000


def record_change(value: bytes) -> tuple[bytes, bytes | None]:
    """The item change a LogRecord makes: (item key, new item JSON or None for a delete)."""
    rec = codec.decode_log_record(value)
    image = rec.get("new_image")
    if rec["op"] == "DELETE" or image is None:
        return rec["key"], None
    return rec["key"], orjson.dumps(image)


class LogFollower:
    """Consumes one partition log into one replica."""

    def __init__(self, settings: Settings, replica: Replica, topic: str) -> None:
        self.settings = settings
        self.replica = replica
        self.topic = topic
        self.tp = TopicPartition(topic, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def _open(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.bootstrap,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_wait_ms=100,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=16 * 1024 * 1024,
            )
            await consumer.start()
            consumer.assign([self.tp])
            self._consumer = consumer
        self._consumer.seek(self.tp, self.replica.next_offset)
        return self._consumer

    async def _apply_round(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> int:
        batches = await consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=APPLY_BATCH_RECORDS_MAX)
        records = batches.get(self.tp, [])
        position = await consumer.position(self.tp)
        if not records and position == self.replica.next_offset:
            return 0
        changes: list[tuple[bytes, bytes | None]] = []
        for rec in records:
            if rec.offset < self.replica.next_offset:
                continue  # already applied (cannot happen after seek; kept as a guard)
            assert rec.value is not None, f"{self.topic}@{rec.offset}: a log record without a value"
            changes.append(record_change(rec.value))
        self.replica.apply(changes, max(position, self.replica.next_offset), len(changes))
        return len(changes)

    async def catch_up(self) -> int:
        """Apply every committed record up to the log's current end (its last stable offset)."""
        consumer = await self._open()
        end = (await consumer.end_offsets([self.tp]))[self.tp]
        applied = 0
        idle_rounds = 0
        while self.replica.next_offset < end:
            n = await self._apply_round(consumer, 200)
            applied += n
            if n == 0:
                idle_rounds += 1
                # the tail can be control records only; the position moves past them
                if idle_rounds > 50:
                    raise TimeoutError(
                        f"{self.topic}: stuck at offset {self.replica.next_offset} below end {end}"
                    )
            else:
                idle_rounds = 0
        return applied

    async def run(self) -> None:
        """Follow the log until cancelled."""
        consumer = await self._open()
        while True:
            try:
                await self._apply_round(consumer, 500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("follower %s: apply failed; retrying in 1 s", self.topic)
                await asyncio.sleep(1)
                consumer = await self._open()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def status(self) -> dict[str, Any]:
        return {"next_offset": self.replica.next_offset, "applied_records": self.replica.applied_records}
