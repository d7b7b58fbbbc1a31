"""The partition metadata system: compacted topics materialized into in-memory views.

``dyn.catalog`` (table name -> TableDefinition), ``dyn.partitions`` (partition id ->
PartitionInfo) and ``dyn.nodes`` (storage node id -> NodeInfo, plus the auto-admin's catalog
writer under the reserved key :data:`ADMIN_KEY`) are compacted topics.  Every
service that needs them holds a :class:`TopicView` per topic: it reads the topic from the
beginning, then follows it, and calls listeners on each change.  Writers publish through
:class:`MetadataWriter`, which also updates the writer's own views at once so that a router
reads its own writes.  The views hold the typed records of :mod:`dynamolog.catalog`, each
decoded once when it is read from the topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from . import codec, errors
from .catalog import NodeInfo, PartitionInfo, TableDefinition
from .config import Settings
from .kafka import IDLE_FETCH_WAIT_MS
from .kafka.admin import KafkaAdmin
from .rpc import RequestLost, RequestTimeout, RpcClient

log = logging.getLogger(__name__)

V = TypeVar("V")
Listener = Callable[[str, Any | None], None]
#: key of the auto-admin's NodeInfo in ``dyn.nodes`` (its catalog writer's RPC address); no
#: storage node id can start with ``#``, so it is never taken for a storage node
ADMIN_KEY = "#admin"
#: the key in ``<ns>.nodes`` of the active backup service's RPC address (services/backup)
BACKUP_KEY = "#backup"


async def ensure_metadata_topics(settings: Settings) -> None:
    """Create the compacted metadata topics if they are missing (idempotent)."""
    names = [settings.catalog_topic, settings.partitions_topic, settings.nodes_topic]
    async with KafkaAdmin(settings.bootstrap) as admin:
        for name in names:
            await admin.ensure_compacted_topic(name)
        await admin.wait_for_topics(names)


def _decode_table(b: bytes) -> TableDefinition:
    return TableDefinition.from_record(codec.decode_table(b))


def _decode_node(b: bytes) -> NodeInfo:
    return NodeInfo.from_record(codec.decode_node(b))


def _decode_partition(b: bytes) -> PartitionInfo:
    return PartitionInfo.from_record(codec.decode_partition(b))


class TopicView(Generic[V]):
    """A dict materialized from one single-partition compacted topic.

    ``start()`` returns once the view holds everything the topic held when it started; after
    that a background task follows the topic.  A ``None`` value (tombstone) removes the key.
    """

    def __init__(self, settings: Settings, topic: str, decode: Callable[[bytes], V], *,
                 reserved: frozenset[str] = frozenset()) -> None:
        """``reserved``: keys kept apart in :attr:`reserved` instead of :attr:`items` (no
        listener is told of them)."""
        self.settings = settings
        self.topic = topic
        self._decode = decode
        self.items: dict[str, V] = {}
        self._reserved_keys = reserved
        self.reserved: dict[str, V] = {}
        # offset of the record each key's current value came from: a record read back from the
        # topic never replaces a newer value this process has already published and applied
        self._offsets: dict[str, int] = {}
        self._listeners: list[Listener] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def listen(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def put_local(self, key: str, value: V | None, offset: int | None = None) -> None:
        """Apply a change that this process has just published at ``offset`` (read your own
        writes), or one read from the topic."""
        if offset is not None:
            if offset < self._offsets.get(key, -1):
                return
            self._offsets[key] = offset
        if key in self._reserved_keys:
            if value is None:
                self.reserved.pop(key, None)
            else:
                self.reserved[key] = value
            self._changed.set()
            return
        if value is None:
            self.items.pop(key, None)
        else:
            self.items[key] = value
        for fn in self._listeners:
            fn(key, value)
        self._changed.set()

    def offset(self, key: str) -> int:
        """Offset of the record ``key``'s current value (or its tombstone) came from; -1 if none."""
        return self._offsets.get(key, -1)

    async def start(self) -> None:
        tp = TopicPartition(self.topic, 0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        # the end before the assignment: once assigned, the consumer keeps a fetch waiting at the
        # broker (up to IDLE_FETCH_WAIT_MS on an idle topic), and a broker answers a connection's
        # requests in order, so an offsets request made after it would wait that long too
        end = (await self._consumer.end_offsets([tp]))[tp]
        self._consumer.assign([tp])
        # assigned, it starts at the earliest offset (auto_offset_reset) before its first fetch;
        # a seek_to_beginning now would wait for that fetch to come back
        while await self._consumer.position(tp) < end:
            batch = await self._consumer.getmany(tp, timeout_ms=200)
            for records in batch.values():
                for rec in records:
                    self._apply(rec.key, rec.value, rec.offset)
        self._task = asyncio.ensure_future(self._follow())

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        k = key.decode()
        if offset < self._offsets.get(k, -1):
            return  # older than a value this process published and applied already
        self.put_local(k, None if value is None else self._decode(value), offset)

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                async for rec in self._consumer:
                    self._apply(rec.key, rec.value, rec.offset)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metadata: following %s failed; retrying in 1 s", self.topic)
                await asyncio.sleep(1)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds after some change, or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


class Metadata:
    """The three metadata views of one Dynamolog system."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog: TopicView[TableDefinition] = TopicView(settings, settings.catalog_topic, _decode_table)
        self.partitions: TopicView[PartitionInfo] = TopicView(
            settings, settings.partitions_topic, _decode_partition
        )
        self.nodes: TopicView[NodeInfo] = TopicView(settings, settings.nodes_topic, _decode_node,
                                                          reserved=frozenset([ADMIN_KEY, BACKUP_KEY]))

    async def start(self) -> None:
        await asyncio.gather(self.catalog.start(), self.partitions.start(), self.nodes.start())

    async def close(self) -> None:
        await asyncio.gather(self.catalog.close(), self.partitions.close(), self.nodes.close())

    def version(self, name: str) -> int:
        """The catalog offset of table ``name``'s current record (or tombstone); -1 if never seen.
        The auto-admin's catalog writer compares it to refuse a change made on a stale copy."""
        return self.catalog.offset(name)

    def table_partitions(self, table_id: str) -> list[PartitionInfo]:
        """The partitions that serve a table's keys now, ordered by hash range: the ACTIVE ones,
        a split partition replaced by its children once they are all ACTIVE
        (docs/decisions/0039-partition-splits.md)."""
        items = self.partitions.items
        parts = [p for p in items.values() if p.table_id == table_id and p.state == "ACTIVE"
                 and not split_done(p, items)
                 and (p.parent is None or p.parent not in items or split_done(items[p.parent], items))]
        parts.sort(key=lambda p: p.hash_start)
        return parts

    def table_lineage(self, table_id: str) -> list[PartitionInfo]:
        """Every partition a table's logs are in, split ones included (stream shards, the
        indexer), ordered by hash range then age; children still being prepared left out."""
        parts = [p for p in self.partitions.items.values()
                 if p.table_id == table_id and p.state in ("ACTIVE", "SPLIT")]
        parts.sort(key=lambda p: (p.hash_start, p.hash_start - p.hash_end))  # a parent before its children
        return parts


def split_done(part: PartitionInfo, items: dict[str, PartitionInfo]) -> bool:
    """Whether a partition's keys are served by its children now: it is SPLIT, or every child of
    its split is ACTIVE."""
    if part.state == "SPLIT":
        return True
    if not part.children:
        return False
    return all((c := items.get(pid)) is not None and c.state == "ACTIVE" for pid in part.children)


class MetadataWriter:
    """Publishes metadata records (idempotent producer, ``acks=all``)."""

    def __init__(self, settings: Settings, metadata: Metadata | None = None, *,
                 transactional_id: str | None = None) -> None:
        """``transactional_id``: publish each record in its own Kafka transaction under this id,
        so that a newer writer with the same id fences this one (auto-admin: one at a time)."""
        self.settings = settings
        self.metadata = metadata
        self._txn = transactional_id is not None
        self._lock = asyncio.Lock()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True, linger_ms=0,
            transactional_id=transactional_id,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def close(self) -> None:
        await self._producer.stop()

    async def _publish(self, topic: str, key: str, value: bytes | None) -> int:
        if not self._txn:
            meta = await self._producer.send_and_wait(topic, key=key.encode(), value=value)
            return int(meta.offset)
        async with self._lock:
            await self._producer.begin_transaction()
            try:
                fut = await self._producer.send(topic, key=key.encode(), value=value)
                await self._producer.commit_transaction()
            except ProducerFenced:
                raise
            except Exception:
                await self._producer.abort_transaction()
                raise
            meta = await fut
            return int(meta.offset)

    async def publish(self, topic: str, key: str, value: bytes | None) -> int:
        """Publish one record (None: a tombstone) on a topic without a view here (the auto-admin's
        table figures, dynamolog/stats.py); returns its offset."""
        return await self._publish(topic, key, value)

    async def put_table(self, table: TableDefinition) -> None:
        offset = await self._publish(self.settings.catalog_topic, table.table_name,
                                     codec.encode_table(table.to_record()))
        if self.metadata:
            self.metadata.catalog.put_local(table.table_name, table, offset)

    async def delete_table(self, name: str) -> None:
        offset = await self._publish(self.settings.catalog_topic, name, None)
        if self.metadata:
            self.metadata.catalog.put_local(name, None, offset)

    async def put_partition(self, part: PartitionInfo) -> None:
        offset = await self._publish(self.settings.partitions_topic, part.partition_id,
                                     codec.encode_partition(part.to_record()))
        if self.metadata:
            self.metadata.partitions.put_local(part.partition_id, part, offset)

    async def delete_partition(self, partition_id: str) -> None:
        offset = await self._publish(self.settings.partitions_topic, partition_id, None)
        if self.metadata:
            self.metadata.partitions.put_local(partition_id, None, offset)

    async def put_record(self, topic: str, key: str, value: bytes | None) -> int:
        """Publish an encoded record (None: a tombstone) to another compacted topic this writer
        owns (the auto-admin: ``<ns>.scaling``); returns its offset."""
        return await self._publish(topic, key, value)

    async def put_node(self, node: NodeInfo) -> None:
        offset = await self._publish(self.settings.nodes_topic, node.node_id, codec.encode_node(node.to_record()))
        if self.metadata:
            self.metadata.nodes.put_local(node.node_id, node, offset)


class PublishedClient:
    """An internal RPC client of the process that publishes its address in ``<ns>.nodes`` under a
    reserved key (the auto-admin's catalog writer, the backup service): made for the address
    published now, and made again when that address changes (a standby took over).  Clients of
    earlier addresses are kept until :meth:`close` (the process moves rarely)."""

    def __init__(self, metadata: Metadata, key: str, what: str, *, rpc_key: bytes | None = None,
                 connect_timeout_s: float = 1.0) -> None:
        """``what``: the process, for the error when none has published its address."""
        self.metadata = metadata
        self.key = key
        self.what = what
        self._rpc_key = rpc_key
        self._connect_timeout_s = connect_timeout_s
        self._client: RpcClient | None = None
        self._old: list[RpcClient] = []

    def get(self) -> RpcClient:
        """The client of the published address; ConnectionError when there is none."""
        node = self.metadata.nodes.reserved.get(self.key)
        if node is None:
            raise ConnectionError(f"no {self.what} has published its address")
        host, port = node.host_port()
        c = self._client
        if c is None or (c.host, c.port) != (host, port):
            if c is not None:
                self._old.append(c)
            c = self._client = RpcClient(host, port, connect_timeout_s=self._connect_timeout_s, key=self._rpc_key)
        return c

    async def call(self, op: str, *, wait_s: float, timeout_s: float, retry_lost: bool = True,
                   unavailable: str = "The control plane is unavailable; retry the request", **args: Any) -> Any:
        """``op`` on the process, sent again with backoff for up to ``wait_s`` while it cannot be
        reached (nothing was sent) or, with ``retry_lost`` (only for requests safe to repeat),
        while its answer is lost; then a retriable InternalServerError saying ``unavailable``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.get().call(op, timeout_s=timeout_s, **args)
            except (RequestLost, RequestTimeout) as e:
                if not retry_lost:
                    raise errors.internal(f"The {self.what} did not answer; retry the request") from e
                reason = repr(e)
            except (ConnectionError, TimeoutError) as e:
                reason = str(e) or type(e).__name__
            if loop.time() >= deadline:
                log.warning("%s: %s not answered after %d attempts: %s", self.what, op, attempt, reason)
                raise errors.internal(unavailable)
            await asyncio.sleep(min(0.05 * 2 ** min(attempt, 5), 1.0))

    async def close(self) -> None:
        for c in [*self._old, *([self._client] if self._client else [])]:
            await c.close()
