"""Copying a partition to the store: its B-tree scan at a snapshot offset, and its log.

``open_snapshots`` asks one replica of each partition for a RocksDB checkpoint (the storage
node's ``snapshot_open``, the message repair uses): the snapshot holds the fold of the log up to
its offset.  ``copy_snapshot`` pages it (``snapshot_page``, 64 KB pages) and writes the items in chunks;
``copy_log`` reads the log with ``read_committed`` from one offset to another and writes the
records as they are.  Neither writes through a partition's leader, so a backup takes no capacity
and never holds up a write; both keep to a share of the time (:class:`Duty`,
``DYNAMOLOG_BACKUP_DUTY``) so that the node's requests keep their latency meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec
from dynamolog.catalog import PartitionInfo
from dynamolog.config import Settings
from dynamolog.fencing import ORIGIN, Term
from dynamolog.routing import Routing
from dynamolog.rpc import RpcClient

from .layout import ChunkWriter, item_line, log_line, off_loop
from .store import ObjectStore

log = logging.getLogger(__name__)

#: a snapshot page: the storage node reads, encodes and sends it on its event loop, between writes
#: (1 MB pages held the loop ~5 ms each and tripled a concurrent PutItem's p99; 256 KB pages still
#: added a fifth to it on a 1 GB table, 64 KB pages nothing measurable -- decision 0046)
PAGE_BYTES = 64 * 1024

#: the replica key space of items and the key of the term (services/storage/replica.py)
_ITEM_SPACE = b"d"
_TERM_KEY = b"f:term"


@dataclass
class OpenSnapshot:
    """A snapshot held open on a storage node."""

    part: PartitionInfo
    node: str
    client: RpcClient
    sid: str
    offset: int


class Duty:
    """Keeps a background copy to a share of the time: :meth:`rest`, called after each step,
    sleeps so that the work since the last rest took at most ``share`` of the time.  The work is
    measured in wall time, so a copy slows down by itself on a machine that is busy."""

    def __init__(self, share: float = 1.0) -> None:
        self.share = min(1.0, max(0.01, share))
        self._since = time.perf_counter()
        #: seconds rested so far (for logs and tests)
        self.rested_s = 0.0

    async def rest(self) -> None:
        if self.share < 1.0:
            pause = (time.perf_counter() - self._since) * (1.0 - self.share) / self.share
            await asyncio.sleep(pause)
            self.rested_s += pause
        self._since = time.perf_counter()


async def open_snapshot(routing: Routing, part: PartitionInfo) -> OpenSnapshot:
    """A snapshot of one replica of ``part`` (the leader first, then the others)."""
    last: Exception | None = None
    for node in dict.fromkeys([*([part.leader] if part.leader else []), *part.replicas]):
        try:
            client = routing.client(node)
            snap = await client.call("snapshot_open", pid=part.partition_id, timeout_s=30)
            return OpenSnapshot(part, node, client, str(snap["sid"]), int(snap["offset"]))
        except Exception as e:  # noqa: BLE001 - try the next replica
            last = e
            log.info("backup: no snapshot of %s from %s: %r", part.partition_id, node, e)
    raise RuntimeError(f"no replica of partition {part.partition_id} could open a snapshot: {last!r}")


async def close_snapshot(snap: OpenSnapshot) -> None:
    try:
        await snap.client.call("snapshot_close", sid=snap.sid, timeout_s=5)
    except Exception as e:  # noqa: BLE001 - it expires on the node after 10 minutes anyway
        log.info("backup: closing snapshot %s failed: %r", snap.sid, e)


async def copy_snapshot(snap: OpenSnapshot, store: ObjectStore, prefix: str,
                        progress: Callable[[int], None] | None = None, duty: float = 1.0) -> dict[str, Any]:
    """Write the snapshot's items under ``prefix`` (``snapshot-NNNNN.gz``), copying ``duty`` of
    the time; returns its manifest part: ``offset``, ``term``, ``chunks``, ``items``, ``bytes``."""
    writer = ChunkWriter()
    pace = Duty(duty)
    chunks: list[str] = []
    term: Term = ORIGIN

    async def put(data: bytes | None) -> None:
        if data is not None:
            name = f"{prefix}snapshot-{len(chunks):05d}.gz"
            await store.put(name, data)
            chunks.append(name)

    after: str | None = None
    while True:
        page = await snap.client.call("snapshot_page", sid=snap.sid, after=after, max_bytes=PAGE_BYTES,
                                      timeout_s=120)
        entries = page["entries"]
        for k64, v64 in entries:
            k = base64.b64decode(k64)
            if k[:1] == _ITEM_SPACE:
                if writer.add(item_line(k[1:], base64.b64decode(v64))):
                    await put(await writer.flush())
            elif k == _TERM_KEY:
                term = Term.decode(base64.b64decode(v64).decode()) or ORIGIN
        if progress is not None:
            progress(len(entries))
        if page["done"] or not entries:
            break
        after = entries[-1][0]
        await pace.rest()
    await put(await writer.flush())
    return {"offset": snap.offset, "term": term.encode(), "chunks": chunks, "items": writer.lines,
            "bytes": writer.bytes}


async def end_offsets(settings: Settings, topics: list[str]) -> dict[str, int]:
    """The last stable offset of each log now (everything acknowledged is below it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(t, 0) for t in topics]
        ends = await consumer.end_offsets(tps)
        return {tp.topic: int(ends[tp]) for tp in tps}
    finally:
        await consumer.stop()


async def read_log(settings: Settings, topic: str, start: int, end: int,
                   on_record: Callable[[int, bytes], None],
                   after_batch: Callable[[], Awaitable[None]] | None = None) -> int:
    """Call ``on_record(offset, value)`` for every record of ``topic`` in ``[start, end)``, in
    order, and ``after_batch()`` after each batch fetched; returns how many.  ``on_record`` runs
    off the event loop (``layout.off_loop``), one batch at a time."""
    if end <= start:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    n = 0
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        idle = 0
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
            records = batches.get(tp, [])
            idle = 0 if records else idle + 1
            if idle > 120:
                raise TimeoutError(f"{topic}: no records between {await consumer.position(tp)} and {end} for 60 s")
            mine = [(r.offset, r.value) for r in records if r.offset < end]
            for offset, value in mine:
                assert value is not None, f"{topic}@{offset}: a log record without a value"
            if mine:
                # a batch is up to thousands of records to decode and fold: in a worker thread,
                # so the event loop keeps the service's answers and election heartbeats going
                await off_loop(_each, on_record, mine)
                n += len(mine)
            if after_batch is not None:
                await after_batch()
            if records and records[-1].offset >= end - 1:
                break
        return n
    finally:
        await consumer.stop()


def _each(on_record: Callable[[int, bytes], None], records: list[tuple[int, Any]]) -> None:
    for offset, value in records:
        on_record(offset, value)


async def copy_log(settings: Settings, topic: str, start: int, end: int, store: ObjectStore,
                   prefix: str, duty: float = 1.0) -> dict[str, Any]:
    """Write the log's records in ``[start, end)`` under ``prefix`` (``log-NNNNN.gz``), copying
    ``duty`` of the time; returns its manifest part: ``start``, ``end``, ``chunks``, ``records``, ``bytes``, ``max_ts``."""
    writer = ChunkWriter()
    chunks: list[str] = []
    max_ts = -1
    pace = Duty(duty)

    def on_record(offset: int, value: bytes) -> None:
        nonlocal max_ts
        max_ts = max(max_ts, int(codec.decode_log_record(value)["timestamp_ms"]))
        writer.add(log_line(offset, value))

    async def put(data: bytes | None) -> None:
        if data is not None:  # each chunk is written once full: memory holds one at most
            name = f"{prefix}log-{len(chunks):05d}.gz"
            await store.put(name, data)
            chunks.append(name)

    async def after_batch() -> None:
        if writer.full:
            await put(await writer.flush())
        await pace.rest()

    await read_log(settings, topic, start, end, on_record, after_batch)
    await put(await writer.flush())
    return {"start": start, "end": end, "chunks": chunks, "records": writer.lines, "bytes": writer.bytes,
            "max_ts": max_ts}
