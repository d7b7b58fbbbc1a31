"""A storage node: hosts partition replicas and serves them over the internal RPC.

The node learns which partitions it hosts from ``dyn.partitions`` (a replica list naming this
node) and, for speed, from a router's direct ``open`` request while a table is created; both
paths end in :meth:`StorageNode.ensure_partition`, which is idempotent and, when news arrives
while an open runs, opens again with the newest entry.  A replica takes the leader role when the
partition's leader is this node, the follower role otherwise.  Every ``Settings.reconcile_s`` the node
compares the whole map with what it serves (:meth:`StorageNode.reconcile`).

The internal RPC has one handler per message (``StorageNode.handlers``; the message table is in
docs/architecture.md).  ``ping`` also says which partitions the node cannot serve now (their
``health``), which the auto-admin acts on; a follower beyond the staleness bound refuses
eventually consistent reads with ``ReplicaStale`` (docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from dynamolog import errors
from dynamolog.aio import closing
from dynamolog.attrs import item_size
from dynamolog.catalog import NodeInfo, PartitionInfo, TableDefinition
from dynamolog.config import Settings
from dynamolog.indexes import LocalIndexes, index_key_attributes
from dynamolog.metadata import Metadata, MetadataWriter, ensure_metadata_topics
from dynamolog.metrics import Samples, index_label
from dynamolog.rpc import LATER, RpcClient, RpcServer
from dynamolog.txnlog import TxnLog
from dynamolog.units import read_units, write_units

from .follower import LogFollower
from .leader import LeaderSequencer, not_leader, partition_split
from .metering import THROTTLED_ITEM, Metering, read_charge
from .metrics import node_metrics
from .pacing import LoopLagProbe, Pacer
from .reads import get_item, range_read
from .replica import Digest, Replica, Snapshot, child_entry

log = logging.getLogger(__name__)

#: a replica opened this recently is not dropped by a reconcile: the map view may not show the
#: change that made the node open it yet (the open request can arrive first)
DROP_GRACE_S = 30.0
#: bytes of a snapshot page sent to a repairing peer at most
SNAPSHOT_PAGE_BYTES_MAX = 1024 * 1024
#: partition-key hashes of recent requests kept per led partition (a split for heat)
HEAT_SAMPLES = 2048
#: a split for heat is refused when this share of the recent requests is for one partition key
HOT_KEY_SHARE = 0.9
#: an RPC handler: the request (``op`` and its fields) -> the answer
Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def replica_stale(pid: str, why: str) -> errors.ApiError:
    """Internal answer to an eventually consistent read that this replica is too far behind to
    serve: the router asks the partition's leader instead (services/router/routing.py)."""
    return errors.ApiError("ReplicaStale", f"replica of partition {pid} is stale: {why}", status=503)


def split_point_by_size(hashes: list[tuple[int, int]], start: int, end: int) -> dict[str, Any]:
    """The hash that halves a partition's bytes (``hashes``: (item hash, bytes) in key order):
    the children are [start, h - 1] and [h, end].  None when every item has one partition key."""
    total = sum(n for _, n in hashes)
    seen = 0
    for i, (h, n) in enumerate(hashes):
        if seen + n > total / 2 and i > 0:
            if h > hashes[i - 1][0]:
                return {"hash": h}
            later = next((x for x, _ in hashes[i:] if x > h), None)
            if later is not None:
                return {"hash": later}
            earlier = next((x for x, _ in reversed(hashes[:i]) if x < h), None)
            return {"hash": h} if earlier is not None else {"hash": None, "why": "one partition key holds every item"}
        seen += n
    distinct = sorted({h for h, _ in hashes})
    if len(distinct) < 2:
        return {"hash": None, "why": "one partition key holds every item" if distinct else "the partition is empty"}
    return {"hash": distinct[len(distinct) // 2]}


def split_point_by_heat(samples: list[int], start: int, end: int) -> dict[str, Any]:
    """The median partition-key hash of a partition's recent requests, unless one key has most
    of them (splitting cannot spread a single key's load: DynamoDB's rule too)."""
    if not samples:
        return {"hash": None, "why": "no recent requests"}
    _top, count = collections.Counter(samples).most_common(1)[0]
    if count >= HOT_KEY_SHARE * len(samples):
        return {"hash": None, "why": f"one partition key has {100 * count // len(samples)} % of the requests"}
    ordered = sorted(samples)
    h = ordered[len(ordered) // 2]
    if h <= start:
        h = next((x for x in ordered if x > start), end + 1)
    if h > end:
        return {"hash": None, "why": "one partition key has the requests"}
    return {"hash": h}


class HostedPartition:
    """A replica and the role it plays on this node."""

    def __init__(self, info: PartitionInfo, replica: Replica) -> None:
        self.info = info
        self.replica = replica
        self.leader: LeaderSequencer | None = None
        self.follower: LogFollower | None = None
        #: when this role was taken (monotonic)
        self.opened_at = time.monotonic()

    async def close(self) -> None:
        if self.leader is not None:
            await self.leader.close()
        if self.follower is not None:
            await self.follower.close()

    def status(self) -> dict[str, Any]:
        if self.leader is not None:
            s = self.leader.status()
        elif self.follower is not None:
            s = {"role": "follower", **self.follower.status()}
        else:
            s = {"role": "opening"}
        st = self.replica.stats()
        s.update({"partition_id": self.info.partition_id, "table": self.info.table_name,
                  "index": index_label(self.info.table_id), "items": st.items, "size_bytes": st.size_bytes,
                  "sealed": self.replica.sealed})
        return s

    def health(self) -> str | None:
        """Why this replica cannot play its role now (None: it can)."""
        if self.leader is not None:
            return self.leader.health()
        if self.follower is not None:
            return self.follower.health()
        return None


class StorageNode:
    """One storage node process."""

    def __init__(self, settings: Settings, node_id: str, data_dir: Path, host: str, port: int,
                 zone: str | None = None, advertise: str | None = None) -> None:
        self.settings = settings
        #: the RPC address registered in dyn.nodes when not the bound one (a proxy in fault tests)
        self.advertise = advertise
        self.node_id = node_id
        #: the availability zone this node runs in (registered in NodeInfo; placement spreads by it)
        self.zone = zone
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.metadata = Metadata(settings)
        self.writer = MetadataWriter(settings)
        self.rpc = RpcServer(self.handle, host, port, quick=self.quick)
        #: the internal RPC: one handler per message (docs/architecture.md, "Storage node RPC")
        self.handlers: dict[str, Handler] = {
            "write": self._rpc_write,
            "write_batch": self._rpc_write_batch,
            "txn_prepare": self._rpc_txn,
            "txn_decide": self._rpc_txn,
            "txn_read": self._rpc_txn,
            "get": self._rpc_get,
            "range": self._rpc_range,
            "snapshot_open": self._rpc_snapshot_open,
            "snapshot_page": self._rpc_snapshot_page,
            "snapshot_close": self._rpc_snapshot_close,
            "open": self._rpc_open,
            "drop": self._rpc_drop,
            "status": self._rpc_status,
            "digest": self._rpc_digest,
            "ping": self._rpc_ping,
            "cap_report": self._rpc_cap_report,
            "cap_set": self._rpc_cap_set,
            "split_point": self._rpc_split_point,
            "split_seal": self._rpc_split_seal,
        }
        #: every hosted partition's capacity (decision 0024)
        self.metering = Metering(settings, self.metadata)
        self.lag_probe = LoopLagProbe()
        #: partitions last reported unhealthy (to log changes once)
        self._unhealthy_said: set[str] = set()
        self._reconciler: asyncio.Task[None] | None = None
        #: transaction decisions, for resolving locks whose coordinator is gone
        self.txnlog = TxnLog(settings, f"recovery:{node_id}")
        self.hosted: dict[str, HostedPartition] = {}
        self._opening: dict[str, asyncio.Task[HostedPartition]] = {}
        #: table id -> (catalog entry, its secondary index key attributes), see _index_keys
        self._index_keys_cache: dict[str, tuple[TableDefinition, list[tuple[str, str, str]]]] = {}
        self._bg: set[asyncio.Task[Any]] = set()
        #: open snapshots served to repairing peers: id -> (snapshot, last used, monotonic)
        self._snapshots: dict[str, tuple[Snapshot, float]] = {}
        self._snapshot_seq = 0
        #: partition-key hashes of recent requests per led partition (where a split for heat cuts)
        self.heat: dict[str, collections.deque[int]] = {}
        #: registered in dyn.nodes and every hosted partition opened (what `dynamolog up` waits for)
        self.ready = False

    async def start(self) -> None:
        # snapshots served to peers by an earlier process of this node are stale now
        for stale in (self.data_dir / "partitions").glob("*.snapshot-*"):
            shutil.rmtree(stale, ignore_errors=True)
        await ensure_metadata_topics(self.settings)
        await self._warm_up_transactions()
        await self.writer.start()
        await self.txnlog.start()
        await self.rpc.start()
        await self.metadata.start()
        await self.writer.put_node(NodeInfo(
            node_id=self.node_id,
            rpc_address=self.advertise or f"{self.host}:{self.rpc.port}",
            pid=os.getpid(),
            started_at_ms=int(time.time() * 1000),
            zone=self.zone,
        ))
        # open every partition this node hosts, then follow changes
        for info in list(self.metadata.partitions.items.values()):
            self._on_partition(info.partition_id, info)
        self.metadata.partitions.listen(self._on_partition)
        await asyncio.gather(*self._opening.values(), return_exceptions=True)
        self.lag_probe.start()
        self.metering.start()
        self._reconciler = asyncio.ensure_future(self._reconcile_loop())
        self.ready = True
        log.info("storage node %s serving on %s:%d (%d partitions)", self.node_id, self.host, self.rpc.port, len(self.hosted))

    async def _warm_up_transactions(self) -> None:
        """Start one transactional producer before serving: on a new cluster this makes Kafka
        create its transaction-state topic now, not during the first CreateTable."""
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                    transactional_id=f"{self.settings.namespace}.node.{self.node_id}.warm-up")
        await producer.start()
        await producer.stop()

    async def close(self) -> None:
        await self.rpc.close()
        if self._reconciler is not None:
            self._reconciler.cancel()
            await asyncio.gather(self._reconciler, return_exceptions=True)
        await self.lag_probe.close()
        await self.metering.close()
        for snap, _ in self._snapshots.values():
            snap.close()
        self._snapshots.clear()
        for t in list(self._bg):
            t.cancel()
        for hp in list(self.hosted.values()):
            await hp.close()
            hp.replica.close()
        await self.metadata.close()
        await self.writer.close()
        await self.txnlog.close()

    # -- partitions ------------------------------------------------------------------------
    def _on_partition(self, pid: str, info: PartitionInfo | None) -> None:
        if info is None or info.state in ("DELETED", "SPLIT"):
            # a split partition's children serve its keys now (they copied its data first)
            if pid in self.hosted or pid in self._opening:
                self._spawn(self.drop_partition(pid))
        elif self.node_id in info.replicas and info.state == "ACTIVE":
            self._spawn(self.ensure_partition(info))
        elif self.node_id not in info.replicas and (pid in self.hosted or pid in self._opening):
            # repaired onto another node while this one was away: the replica is no longer ours
            log.info("partition %s: this node is no longer a replica; dropping it", pid)
            self._spawn(self.drop_partition(pid))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg_done)

    def _bg_done(self, t: asyncio.Task[Any]) -> None:
        """A background open or drop ended: a failure is logged (the next reconcile tries again);
        a partition deleted meanwhile (NotLeader) is no failure."""
        self._bg.discard(t)
        if t.cancelled() or (e := t.exception()) is None:
            return
        if isinstance(e, errors.ApiError) and e.type_name == "NotLeader":
            log.info("storage node %s: %s", self.node_id, e)
        else:
            log.warning("storage node %s: a background open or drop failed: %r", self.node_id, e)

    async def ensure_partition(self, info: PartitionInfo) -> HostedPartition:
        """Host the partition in the role ``info`` gives this node.  News that arrives while an
        open is running is not lost: the caller waits for that open, then looks again with the
        newest of its own ``info`` and the partition map's."""
        pid = info.partition_id
        while True:
            info = self._newest(info)
            if info.state == "DELETED":
                raise not_leader(pid)
            hp = self.hosted.get(pid)
            if hp is not None and self._role_current(hp, info):
                return hp
            task = self._opening.get(pid)
            if task is None:
                task = asyncio.ensure_future(self._open(info))
                self._opening[pid] = task
                task.add_done_callback(lambda _t: self._opening.pop(pid, None))
                return await asyncio.shield(task)
            # an open of an older view of the partition is running: wait for it, then look again
            await asyncio.gather(asyncio.shield(task), return_exceptions=True)

    def _newest(self, info: PartitionInfo) -> PartitionInfo:
        """``info`` or the partition map's entry of the same partition, whichever is newer."""
        current = self.metadata.partitions.items.get(info.partition_id)
        if current is not None and (current.state == "DELETED"
                                    or current.leader_epoch > info.leader_epoch):
            return current
        return info

    def _leads(self, pid: str, epoch: int) -> bool:
        """Whether the partition map (as far as this node knows) still names this node leader
        of ``pid`` at ``epoch``."""
        current = self.metadata.partitions.items.get(pid)
        return current is None or (current.leader == self.node_id and current.leader_epoch <= epoch)

    async def _reconcile_loop(self) -> None:
        """Every ``Settings.reconcile_s``: the partition map against what this node serves (an open that
        failed, news missed while Kafka was unreachable)."""
        while True:
            await asyncio.sleep(self.settings.reconcile_s)
            try:
                self.reconcile()
            except Exception:  # the next round tries again
                log.exception("storage node %s: reconcile failed", self.node_id)

    def reconcile(self) -> None:
        """Open what the map says this node should serve and does not (or not in that role);
        drop what the map says it should not serve."""
        now = time.monotonic()
        for pid, info in list(self.metadata.partitions.items.items()):
            if pid in self._opening:
                continue
            hp = self.hosted.get(pid)
            mine = self.node_id in info.replicas and info.state == "ACTIVE"
            if mine:
                if hp is not None and (self._role_current(hp, info)
                                       or hp.info.leader_epoch > info.leader_epoch):
                    continue
                log.info("partition %s: the map says this node %s it; opening", pid,
                         "leads" if info.leader == self.node_id else "follows")
                self._spawn(self.ensure_partition(info))
            elif hp is not None and now - hp.opened_at > DROP_GRACE_S \
                    and hp.info.leader_epoch <= info.leader_epoch:
                log.info("partition %s: the map no longer lists this node (%s); dropping it", pid, info.state)
                self._spawn(self.drop_partition(pid))

    def _role_current(self, hp: HostedPartition, info: PartitionInfo) -> bool:
        """Whether a hosted replica already plays the role ``info`` gives it."""
        if info.leader == self.node_id:
            return hp.leader is not None and not hp.leader.fenced and hp.leader.epoch >= info.leader_epoch
        return hp.leader is None and hp.follower is not None

    def _ttl_attribute(self, info: PartitionInfo) -> str | None:
        """The time-to-live attribute of the partition's table (None when TTL is off)."""
        table = self.metadata.catalog.items.get(info.table_name)
        if table is None or table.table_id != info.table_id:
            return None
        return table.ttl_attribute

    def _index_keys(self, info: PartitionInfo) -> list[tuple[str, str, str]]:
        """The secondary index key attributes of the partition's table now (global indexes come
        and go with UpdateTable): (index name, attribute, type), cached per catalog entry."""
        table = self.metadata.catalog.items.get(info.table_name)
        if table is None or table.table_id != info.table_id:
            return []
        cached = self._index_keys_cache.get(info.table_id)
        if cached is not None and cached[0] is table:
            return cached[1]
        out = index_key_attributes(table)
        self._index_keys_cache[info.table_id] = (table, out)
        return out

    async def _local_indexes(self, info: PartitionInfo) -> LocalIndexes | None:
        """The local secondary indexes of the partition's table (None: it has none).  The table's
        catalog entry is written before its partitions, but on another topic: wait for it."""
        if "#" in info.table_id:  # a global secondary index's partition
            return None

        def table() -> TableDefinition | None:
            t = self.metadata.catalog.items.get(info.table_name)
            return t if t is not None and t.table_id == info.table_id else None

        if table() is None and not await self.metadata.catalog.wait_until(lambda: table() is not None, 30):
            raise RuntimeError(f"partition {info.partition_id}: table {info.table_name} "
                               f"({info.table_id}) is not in the catalog")
        t = table()
        assert t is not None
        lsi = LocalIndexes(t)
        return lsi if lsi else None

    def _replica_path(self, pid: str) -> Path:
        return self.data_dir / "partitions" / pid

    async def _open(self, info: PartitionInfo) -> HostedPartition:
        pid = info.partition_id
        hp = self.hosted.get(pid)
        if hp is None:
            replica = Replica(self._replica_path(pid))
            if replica.next_offset == 0 and info.parent is not None:
                replica = await self._bootstrap_child(info, replica)
            elif replica.next_offset == 0 and info.leader != self.node_id:
                replica = await self._bootstrap(pid, info, replica)
            hp = HostedPartition(info, replica)
        else:
            await hp.close()
            hp.leader = hp.follower = None  # "opening" until the new role is ready
            hp.info = info
        lsi = await self._local_indexes(info)
        self.metering.forget(pid)  # a new role starts with fresh buckets
        if info.leader == self.node_id:
            leader = LeaderSequencer(self.settings, hp.replica, info, self.node_id, self.txnlog,
                                     ttl_attribute=lambda: self._ttl_attribute(info), lsi=lsi,
                                     index_keys=lambda: self._index_keys(info),
                                     is_current=lambda: self._leads(pid, info.leader_epoch))
            await leader.start()
            hp.leader, hp.follower = leader, None
        else:
            follower = LogFollower(self.settings, hp.replica, info.log_topic, lsi)
            follower.start()
            hp.leader, hp.follower = None, follower
        hp.opened_at = time.monotonic()
        self.hosted[pid] = hp
        log.info("partition %s open as %s", pid, "leader" if hp.leader else "follower")
        return hp

    async def _bootstrap(self, pid: str, info: PartitionInfo, replica: Replica, *, empty_ok: bool = True) -> Replica:
        """A new, empty replica (a repair): copy a snapshot of a healthy replica, then the log
        after it is followed as usual.  Falls back to the whole log if no peer can send one.
        ``empty_ok`` False (a split's child, whose data is not all in its log): a peer's snapshot
        at offset 0 is no copy, and without one the open fails and is retried."""
        peers = [n for n in ([info.leader] + list(info.replicas)) if n and n != self.node_id]
        # offset 0 with entries present is a copy interrupted by a crash: start it over from empty
        # (the offset is written last, so the entries of a partial copy are not a fold of the log)
        replica.destroy()
        replica = Replica(self._replica_path(pid))
        for peer in dict.fromkeys(peers):
            node = self.metadata.nodes.items.get(peer)
            if node is None:
                continue
            host, port = node.host_port()
            client = RpcClient(host, port)
            try:
                # (the client is closed by a helper: no await in a finally block of a compiled
                # module, dynamolog/aio.py)
                if await closing(self._copy_snapshot(client, pid, peer, replica, empty_ok), client.close):
                    return replica
            except Exception as e:  # noqa: BLE001 - try the next peer, then the log
                # a peer that does not host the partition yet (a table being created) is normal
                quiet = isinstance(e, errors.ApiError) and e.type_name == "NotLeader"
                log.log(logging.DEBUG if quiet else logging.WARNING,
                        "partition %s: snapshot from %s failed (%r); trying another source", pid, peer, e)
                replica.destroy()
                replica = Replica(self._replica_path(pid))
        if not empty_ok:
            raise RuntimeError(f"partition {pid}: no replica to copy from yet; retrying")
        log.info("partition %s: no snapshot source; rebuilding from the log", pid)
        return replica

    async def _copy_snapshot(self, client: RpcClient, pid: str, peer: str, replica: Replica, empty_ok: bool) -> bool:
        """Copy a snapshot of ``peer``'s replica of ``pid`` into ``replica``; False when the peer
        has applied nothing yet and that is no copy (``empty_ok`` False): the next peer."""
        t0 = time.monotonic()
        snap = await client.call("snapshot_open", pid=pid, timeout_s=10)
        if snap["offset"] == 0:
            await client.call("snapshot_close", sid=snap["sid"], timeout_s=5)
            # nothing applied there yet: the log is as good, unless this is a child that has not
            # started its log (not a copy of it)
            return empty_ok
        entries = await self._load_pages(client, snap["sid"], replica, None)
        replica.finish_snapshot(snap["offset"], snap["applied"])
        await client.call("snapshot_close", sid=snap["sid"], timeout_s=5)
        log.info("partition %s: copied a snapshot of %d entries at offset %d from %s in %.1f s", pid,
                 entries, snap["offset"], peer, time.monotonic() - t0)
        return True

    async def _bootstrap_child(self, info: PartitionInfo, replica: Replica) -> Replica:
        """A new replica of a split's child: its share of the sealed parent's data (from this
        node's replica of the parent when it has one, else from a peer's), then its own log from
        the start.  Once the parent is gone (the split finished), a child replica is copied from
        a peer of the child like any repair."""
        parent = self.metadata.partitions.items.get(info.parent or "")
        if parent is None or parent.state != "ACTIVE":
            return await self._bootstrap(info.partition_id, info, replica, empty_ok=False)
        replica.destroy()
        replica = Replica(self._replica_path(info.partition_id))
        t0 = time.monotonic()
        lo, hi = info.hash_start, info.hash_end
        local = self.hosted.get(parent.partition_id)
        for _ in range(150):  # this node's replica of the parent applies the SEAL soon (lazily)
            if local is None or local.replica.sealed:
                break
            await asyncio.sleep(0.02)
        if local is not None and local.replica.sealed:
            snap, offset, _ = local.replica.open_snapshot()
            try:
                after: bytes | None = None
                pacer = Pacer()
                while True:
                    rows, done = Replica.snapshot_page(snap, after, SNAPSHOT_PAGE_BYTES_MAX)
                    replica.load_snapshot((k, v) for k, v in rows if child_entry(k, lo, hi))
                    if done or not rows:
                        break
                    after = rows[-1][0]
                    if pacer.due():
                        await pacer.pause()
            finally:
                snap.close()
            source = "this node"
        else:
            replica, offset, source = await self._copy_child_from_peer(parent, replica, lo, hi)
        replica.finish_snapshot(0, 0)
        st = replica.stats()
        log.info("partition %s: %d items (%d bytes) of partition %s at its cut (offset %d) copied from %s in "
                 "%.2f s", info.partition_id, st.items, st.size_bytes, parent.partition_id, offset, source,
                 time.monotonic() - t0)
        return replica

    async def _copy_child_from_peer(self, parent: PartitionInfo, replica: Replica, lo: int,
                                    hi: int) -> tuple[Replica, int, str]:
        """Copy a child's share from a peer's sealed replica of the parent; (the replica, the cut
        offset, the peer)."""
        for peer in dict.fromkeys(n for n in ([parent.leader] + list(parent.replicas)) if n and n != self.node_id):
            node = self.metadata.nodes.items.get(peer)
            if node is None:
                continue
            host, port = node.host_port()
            client = RpcClient(host, port)
            try:
                # (closed by a helper: no await in a finally block of a compiled module, dynamolog/aio.py)
                cut = await closing(self._copy_child_share(client, parent, replica, lo, hi), client.close)
                if cut is not None:
                    return replica, cut, peer
            except Exception as e:  # noqa: BLE001 - try the next peer
                log.warning("partition %s: copying a child's share from %s failed (%r)", parent.partition_id, peer, e)
                replica.destroy()
                replica = Replica(replica.path)
        raise RuntimeError(f"no sealed replica of partition {parent.partition_id} to copy a child from; retrying")

    async def _copy_child_share(self, client: RpcClient, parent: PartitionInfo, replica: Replica, lo: int,
                                hi: int) -> int | None:
        """Copy a child's share of a peer's sealed replica of ``parent`` into ``replica``; the
        cut offset, or None when the peer has not applied the SEAL yet (the next peer)."""
        snap = await client.call("snapshot_open", pid=parent.partition_id, timeout_s=10)
        if not snap.get("sealed"):
            await client.call("snapshot_close", sid=snap["sid"], timeout_s=5)
            return None
        await self._load_pages(client, snap["sid"], replica, (lo, hi))
        await client.call("snapshot_close", sid=snap["sid"], timeout_s=5)
        return int(snap["offset"])

    async def _load_pages(self, client: RpcClient, sid: str, replica: Replica, share: tuple[int, int] | None) -> int:
        """Load an open snapshot's pages into ``replica``: every entry, or only those of the
        child holding hashes ``share`` (lo, hi); how many entries the pages held."""
        after: str | None = None
        entries = 0
        while True:
            page = await client.call("snapshot_page", sid=sid, after=after, timeout_s=60)
            rows = [(base64.b64decode(k), base64.b64decode(v)) for k, v in page["entries"]]
            if share is None:
                replica.load_snapshot(rows)
            else:
                lo, hi = share
                replica.load_snapshot((k, v) for k, v in rows if child_entry(k, lo, hi))
            entries += len(rows)
            if page["done"] or not rows:
                return entries
            after = page["entries"][-1][0]

    async def drop_partition(self, pid: str) -> None:
        task = self._opening.get(pid)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        hp = self.hosted.pop(pid, None)
        self.metering.forget(pid)
        if hp is not None:
            await hp.close()
            hp.replica.destroy()
            log.info("partition %s dropped", pid)

    def _hosted(self, pid: str) -> HostedPartition:
        hp = self.hosted.get(pid)
        if hp is None:
            raise not_leader(pid)
        return hp

    # -- RPC (docs/architecture.md, "Storage node RPC": one handler per message) ----------------
    def quick(self, req: dict[str, Any]) -> Any:
        """Answer a GetItem at once when it needs no wait (any but a strongly consistent read
        whose leader must renew its lease first); queue an item write on its partition's
        sequencer and return the future of its answer; else :data:`~dynamolog.rpc.LATER`."""
        op = req.get("op")
        if op == "write":
            return self._queue_write(req)
        if op != "get":
            return LATER
        hp = self._readable_now(req)
        return LATER if hp is None else self._served_get(req, hp)

    async def handle(self, req: dict[str, Any]) -> Any:
        handler = self.handlers.get(req["op"])
        if handler is None:
            raise errors.validation(f"unknown internal operation {req['op']!r}")
        return await handler(req)

    def _leader_of(self, pid: str) -> LeaderSequencer:
        leader = self._hosted(pid).leader
        if leader is None:
            raise not_leader(pid)
        return leader

    async def _rpc_write(self, req: dict[str, Any]) -> Any:
        """One item write (put, update, delete, and a transaction's check) through the leader,
        admitted by the partition's write bucket first (a throttled write changes nothing)."""
        return await self._queue_write(req)

    def _queue_write(self, req: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Admit an item write and queue it on the partition's sequencer: the future of its
        answer, charged to the partition's bucket when it succeeds.  Raises at once what refuses
        it (not the leader, another partition's key, throttled).  The RPC server's quick path
        answers from the future's callback, so a write costs no task of its own here."""
        hp = self._hosted(req["pid"])
        leader = hp.leader
        if leader is None:
            raise not_leader(req["pid"])
        self._check_range(hp, req["key"])
        held = self.metering.admit_write(hp.info, req)
        self._sample(req["pid"], req["key"])
        asked = self.metering.prepare_write(held, req)
        answer = leader.enqueue(req, base64.b64decode(req["key"]))

        def charge(f: asyncio.Future[dict[str, Any]]) -> None:
            if not f.cancelled() and f.exception() is None:
                self.metering.charge_write(held, req, f.result(), asked)

        answer.add_done_callback(charge)  # before the answer's: charged, then answered
        return answer

    async def _rpc_write_batch(self, req: dict[str, Any]) -> Any:
        """The indexer's writes to one index partition, sequenced in this order."""
        leader = self._leader_of(req["pid"])
        futures: list[asyncio.Future[dict[str, Any]]] = []
        enqueue_failed: Exception | None = None
        try:
            for w in req["writes"]:
                futures.append(leader.enqueue(w, base64.b64decode(w["key"])))
        except Exception as e:  # noqa: BLE001 - raised once the writes enqueued are answered
            enqueue_failed = e
        # (no await in a finally or except block of a compiled module: dynamolog/aio.py)
        results = await asyncio.gather(*futures, return_exceptions=True)
        if enqueue_failed is not None:
            raise enqueue_failed
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        # an index partition's writes, admitted with the base-table writes that caused them
        self.metering.charge_writes(self._hosted(req["pid"]).info, float(len(results)))
        return {"written": len(results)}

    async def _rpc_txn(self, req: dict[str, Any]) -> Any:
        """A transaction step (prepare, decide, read), sequenced with the writes.  A read (or a
        read's check) may be answered without a commit of its own, so it needs the leader's
        lease, as a strongly consistent GetItem does: a deposed leader must not answer it."""
        leader = self._leader_of(req["pid"])
        if req["op"] == "txn_read":
            await leader.read_lease()
            if "release" in req:  # the check of a read across partitions (not sequenced)
                return leader.check_read(str(req["release"]))
        info = self._hosted(req["pid"]).info
        if req["op"] == "txn_prepare" and not self.metering.admits_write(info):
            # refused for capacity: cancelled with ThrottlingError, nothing prepared
            return {"ok": False, "reasons": [dict(THROTTLED_ITEM) for _ in req["items"]]}
        res = await leader.submit(dict(req, kind=req["op"]), b"")
        self._charge_txn(info, req, res)
        return res

    def _charge_txn(self, info: PartitionInfo, req: dict[str, Any], res: Any) -> None:
        """A transaction's items cost twice their units (DynamoDB's transactional rate)."""
        if not isinstance(res, dict):
            return
        cap = self.metering.capacity(info)
        if cap is None:
            return
        now = time.monotonic()
        if req["op"] == "txn_prepare" and res.get("ok") and not res.get("repeat"):
            sizes = res.get("sizes") or [0] * len(req["items"])
            cap.charge_write(sum(write_units(int(s), transactional=True) for s in sizes), now)
        elif req["op"] == "txn_read":
            items = res.get("items") or []
            cap.charge_read(sum(read_units(item_size(i) if i else 0, consistent=True, transactional=True)
                                for i in items), now)

    async def _readable(self, req: dict[str, Any]) -> HostedPartition:
        """The replica that may serve this read: the leader, holding its lease, for a strongly
        consistent read; any replica within the staleness bound for an eventually consistent one."""
        hp = self._readable_now(req)
        if hp is None:
            hp = self._hosted(req["pid"])
            assert hp.leader is not None
            await hp.leader.read_lease()
        return hp

    def _readable_now(self, req: dict[str, Any]) -> HostedPartition | None:
        """:meth:`_readable` without waiting: None when the leader must first wait out an earlier
        leader's lease or renew its own (a strongly consistent read)."""
        pid = req["pid"]
        hp = self._hosted(pid)
        if hp.replica.sealed:
            raise partition_split(pid)
        if req.get("consistent"):
            if hp.leader is None:
                raise not_leader(pid)
            if not hp.leader.lease_held():
                return None
        elif hp.leader is None:
            why = hp.follower.staleness() if hp.follower is not None else "opening"
            if why is not None:
                raise replica_stale(pid, why)
        return hp

    async def _rpc_get(self, req: dict[str, Any]) -> Any:
        """GetItem (and the reads of BatchGetItem), admitted by the partition's read bucket."""
        return self._served_get(req, await self._readable(req))

    def _served_get(self, req: dict[str, Any], hp: HostedPartition) -> dict[str, Any]:
        """A GetItem on a replica that may serve it (:meth:`_readable`), metered."""
        leads, held, asked = self._admit_read(req, hp)
        self._check_range(hp, req["key"])
        return self._charged(req, hp, get_item(hp.replica, req), leads, held, asked)

    async def _rpc_range(self, req: dict[str, Any]) -> Any:
        """One page of a Query or Scan, admitted by the partition's read bucket."""
        return await self._metered_read(req, lambda hp: range_read(hp.replica, req))

    async def _metered_read(self, req: dict[str, Any],
                            read: Callable[[HostedPartition], Awaitable[dict[str, Any]]]) -> Any:
        """A read admitted by its partition's read bucket (refused while it is empty) and charged
        the units it read; the read answers its size when a bucket counts it (``cap``)."""
        hp = await self._readable(req)
        leads, held, asked = self._admit_read(req, hp)
        return self._charged(req, hp, await read(hp), leads, held, asked)

    def _charged(self, req: dict[str, Any], hp: HostedPartition, res: dict[str, Any], leads: bool, held: Any,
                 asked: bool) -> dict[str, Any]:
        """``res``, once the units it read are charged to what :meth:`_admit_read` admitted."""
        self.metering.charge_read(hp.info, held, read_charge(res, asked, consistent=bool(req.get("consistent"))),
                                  leads)
        return res

    def _admit_read(self, req: dict[str, Any], hp: HostedPartition) -> tuple[bool, Any, bool]:
        """Admit a read by its partition's read bucket (ProvisionedThroughputExceeded while it is
        empty): whether this node leads, the held admission, and whether the caller asked for the
        size (``cap``, which is then set when a bucket counts the read)."""
        leads = hp.leader is not None
        if leads:
            self._sample(req["pid"], req.get("key") or req.get("prefix"))
        held = self.metering.admit_read(hp.info, leads)
        asked = bool(req.get("cap"))
        if held is not None:
            req["cap"] = True
        return leads, held, asked

    async def _rpc_cap_report(self, req: dict[str, Any]) -> Any:
        """Followers' eventually consistent reads, charged to the read buckets this node holds as
        leader; answers, per partition, whether its bucket admits reads now."""
        out: dict[str, bool] = {}
        for pid, units in req["reads"].items():
            hp = self.hosted.get(pid)
            if hp is not None and hp.leader is not None:
                out[pid] = self.metering.reported(hp.info, float(units))
        return {"open": out}

    async def _rpc_cap_set(self, req: dict[str, Any]) -> Any:
        """Adaptive capacity (the auto-admin): the multiplier on a partition's share, at its leader."""
        multiplier = req.get("multiplier")
        if not isinstance(multiplier, int | float) or isinstance(multiplier, bool) or multiplier <= 0:
            raise errors.validation("multiplier must be a positive number")
        kind = req.get("kind")
        if kind not in (None, "read", "write"):
            raise errors.validation("kind must be read or write")
        hp = self._hosted(req["pid"])
        if hp.leader is None:
            raise not_leader(req["pid"])
        return self.metering.set_multiplier(hp.info, float(multiplier), kind)

    def _expire_snapshots(self) -> None:
        now = time.monotonic()
        for sid in [k for k, (_, t) in self._snapshots.items() if now - t > 600]:
            self._snapshots.pop(sid)[0].close()

    async def _rpc_snapshot_open(self, req: dict[str, Any]) -> Any:
        """A repairing peer asks for a consistent copy of a replica."""
        self._expire_snapshots()
        hp = self._hosted(req["pid"])
        snap, offset, applied = hp.replica.open_snapshot()
        self._snapshot_seq += 1
        sid = f"{req['pid']}/{self._snapshot_seq}"
        self._snapshots[sid] = (snap, time.monotonic())
        return {"sid": sid, "offset": offset, "applied": applied, "sealed": hp.replica.sealed}

    async def _rpc_snapshot_page(self, req: dict[str, Any]) -> Any:
        """The next entries of an open snapshot, up to ``max_bytes`` (at most 1 MB) of them."""
        self._expire_snapshots()
        held = self._snapshots.get(req["sid"])
        if held is None:
            raise errors.validation("unknown or expired snapshot")
        after = base64.b64decode(req["after"]) if req.get("after") else None
        size = min(int(req.get("max_bytes") or SNAPSHOT_PAGE_BYTES_MAX), SNAPSHOT_PAGE_BYTES_MAX)
        rows, done = Replica.snapshot_page(held[0], after, size)
        self._snapshots[req["sid"]] = (held[0], time.monotonic())
        return {"entries": [[base64.b64encode(k).decode(), base64.b64encode(v).decode()] for k, v in rows],
                "done": done}

    async def _rpc_snapshot_close(self, req: dict[str, Any]) -> Any:
        held = self._snapshots.pop(req["sid"], None)
        if held is not None:
            held[0].close()
        return {}

    async def _rpc_split_seal(self, req: dict[str, Any]) -> Any:
        """A split (the auto-admin): seal the partition at its leader; answers the cut offset."""
        leader = self._leader_of(req["pid"])
        return {"offset": await leader.seal(float(req.get("wait_s", 5.0)))}

    async def _rpc_split_point(self, req: dict[str, Any]) -> Any:
        """Where a split of the partition should cut (the auto-admin): ``by`` size, the hash that
        halves its bytes; ``by`` heat, the median hash of its recent requests.  ``hash`` None
        with ``why`` when it cannot be split (one partition key holds it all)."""
        hp = self._hosted(req["pid"])
        if hp.leader is None:
            raise not_leader(req["pid"])
        if req.get("by") == "heat":
            samples = list(self.heat.get(req["pid"], ()))
            return split_point_by_heat(samples, hp.info.hash_start, hp.info.hash_end)
        hashes: list[tuple[int, int]] = []
        pacer = Pacer()
        for k, v in hp.replica.range(b"", None):
            hashes.append((int.from_bytes(k[:8], "big"), len(k) + len(v)))
            if pacer.due():
                await pacer.pause()
        return split_point_by_size(hashes, hp.info.hash_start, hp.info.hash_end)

    async def _rpc_open(self, req: dict[str, Any]) -> Any:
        """Host a partition now (provisioning, an election, a repair)."""
        hp = await self.ensure_partition(PartitionInfo.from_record(req["partition"]))
        return hp.status()

    async def _rpc_drop(self, req: dict[str, Any]) -> Any:
        await self.drop_partition(req["pid"])
        return {}

    async def _rpc_status(self, req: dict[str, Any]) -> Any:
        parts = [self._with_capacity(pid, hp.status(), hp) for pid, hp in self.hosted.items()]
        # replicas still being opened (catching up, copying a snapshot) show as "opening"
        parts += [{"partition_id": pid, "table": self._table_name_of(pid),
                   "role": "opening"} for pid in self._opening if pid not in self.hosted]
        return {"node_id": self.node_id, "partitions": parts, "ready": self.ready, **self.lag_probe.snapshot()}

    def _with_capacity(self, pid: str, s: dict[str, Any], hp: HostedPartition) -> dict[str, Any]:
        c = self.metering.status(hp.info, hp.leader is not None)
        if c is not None:
            s["capacity"] = c
        return s

    def _capacities(self) -> dict[str, Any]:
        """Each led partition's capacity counters (ping: what the auto-admin and metrics read)."""
        out = {}
        for pid, hp in self.hosted.items():
            if hp.leader is not None and not hp.replica.sealed \
                    and (c := self.metering.status(hp.info, True)) is not None:
                out[pid] = c
        return out

    @staticmethod
    def _check_range(hp: HostedPartition, key_b64: str) -> None:
        """Refuse a key outside the partition's hash range (a router's map from before a split):
        the router looks again and sends it to the partition that holds it."""
        h = int.from_bytes(base64.b64decode(key_b64[:12])[:8], "big")
        if not hp.info.hash_start <= h <= hp.info.hash_end:
            raise errors.ApiError("NotLeader", f"partition {hp.info.partition_id} does not hold hash {h:016x}",
                                  status=503)

    def _sample(self, pid: str, key_b64: str | None) -> None:
        """Remember the partition-key hash of a request (a split for heat cuts at their median)."""
        if not key_b64:
            return
        d = self.heat.get(pid)
        if d is None:
            d = self.heat[pid] = collections.deque(maxlen=HEAT_SAMPLES)
        d.append(int.from_bytes(base64.b64decode(key_b64[:12])[:8], "big"))

    def _table_name_of(self, pid: str) -> str:
        info = self.metadata.partitions.items.get(pid)
        return info.table_name if info is not None else ""

    async def _rpc_digest(self, req: dict[str, Any]) -> Any:
        """A replica's digest (tests and repair checks compare replicas), paced."""
        replica = self._hosted(req["pid"]).replica
        d = Digest()
        pacer = Pacer()
        for k, v in replica.digest_entries():
            d.add(k, v)
            if pacer.due():
                await pacer.pause()
        digest, count = d.result()
        return {"digest": digest, "items": count}

    async def _rpc_ping(self, req: dict[str, Any]) -> Any:
        """The auto-admin's heartbeat: alive, and per partition whether it can do its job."""
        unhealthy = {pid: why for pid, hp in self.hosted.items() if (why := hp.health()) is not None}
        for pid in set(unhealthy) ^ self._unhealthy_said:
            if pid in unhealthy:
                log.warning("partition %s: unhealthy: %s", pid, unhealthy[pid])
            else:
                log.info("partition %s: healthy again", pid)
        self._unhealthy_said = set(unhealthy)
        return {"node_id": self.node_id, "ready": self.ready, "unhealthy": unhealthy, "capacity": self._capacities(),
                "sizes": self.sizes(), **self.lag_probe.snapshot()}

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples (services/storage/metrics.py)."""
        node_metrics(self, samples)

    def sizes(self) -> dict[str, list[int]]:
        """Item count and size of every partition this node leads: {pid: [items, bytes]} (the
        auto-admin gathers them for DescribeTable, docs/decisions/0027-table-stats-and-metrics.md)."""
        out: dict[str, list[int]] = {}
        for pid, hp in self.hosted.items():
            if hp.leader is not None and not hp.leader.fenced and not hp.replica.sealed:
                st = hp.replica.stats()
                out[pid] = [st.items, st.size_bytes]
        return out
