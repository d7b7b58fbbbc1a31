"""A storage node: hosts partition replicas and serves them over the internal RPC.

The node learns which partitions it hosts from ``dyn.partitions`` (a replica list naming this
node) and, for speed, from a router's direct ``open`` request while a table is created; both
paths end in :meth:`StorageNode.ensure_partition`, which is idempotent.  A replica takes the
leader role when the partition's leader is this node, the follower role otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from dynamolog import errors
from dynamolog.config import Settings
from dynamolog.indexes import LocalIndexes, index_key_attributes
from dynamolog.metadata import Metadata, MetadataWriter, ensure_metadata_topics
from dynamolog.rpc import RpcClient, RpcServer
from dynamolog.txnlog import TxnLog

from .follower import LogFollower
from .leader import LeaderSequencer, not_leader
from .reads import get_item, range_read
from .replica import Replica, Snapshot

log = logging.getLogger(__name__)


class HostedPartition:
    """A replica and the role it plays on this node."""

    def __init__(self, info: dict[str, Any], replica: Replica) -> None:
        self.info = info
        self.replica = replica
        self.leader: LeaderSequencer | None = None
        self.follower: LogFollower | None = None

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
        s.update({"partition_id": self.info["partition_id"], "table": self.info["table_name"]})
        return s


class StorageNode:
    """One storage node process."""

    def __init__(self, settings: Settings, node_id: str, data_dir: Path, host: str, port: int,
                 advertise: str | None = None) -> None:
        self.settings = settings
        #: the RPC address registered in dyn.nodes when not the bound one (a proxy in fault tests)
        self.advertise = advertise
        self.node_id = node_id
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.metadata = Metadata(settings)
        self.writer = MetadataWriter(settings)
        self.rpc = RpcServer(self.handle, host, port)
        #: transaction decisions, for resolving locks whose coordinator is gone
        self.txnlog = TxnLog(settings, f"recovery:{node_id}")
        self.hosted: dict[str, HostedPartition] = {}
        self._opening: dict[str, asyncio.Task[HostedPartition]] = {}
        #: table id -> (catalog entry, its secondary index key attributes), see _index_keys
        self._index_keys_cache: dict[str, tuple[dict[str, Any], list[tuple[str, str, str]]]] = {}
        self._bg: set[asyncio.Task[Any]] = set()
        #: open snapshots served to repairing peers: id -> (snapshot, last used, monotonic)
        self._snapshots: dict[str, tuple[Snapshot, float]] = {}
        self._snapshot_seq = 0
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
        await self.writer.put_node(
            {
                "node_id": self.node_id,
                "rpc_address": self.advertise or f"{self.host}:{self.rpc.port}",
                "pid": os.getpid(),
                "started_at_ms": int(time.time() * 1000),
            }
        )
        # open every partition this node hosts, then follow changes
        for info in list(self.metadata.partitions.items.values()):
            self._on_partition(info["partition_id"], info)
        self.metadata.partitions.listen(self._on_partition)
        await asyncio.gather(*self._opening.values(), return_exceptions=True)
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
    def _on_partition(self, pid: str, info: dict[str, Any] | None) -> None:
        if info is None or info["state"] == "DELETED":
            if pid in self.hosted or pid in self._opening:
                self._spawn(self.drop_partition(pid))
        elif self.node_id in info["replicas"] and info["state"] == "ACTIVE":
            self._spawn(self.ensure_partition(info))
        elif self.node_id not in info["replicas"] and (pid in self.hosted or pid in self._opening):
            # repaired onto another node while this one was away: the replica is no longer ours
            log.info("partition %s: this node is no longer a replica; dropping it", pid)
            self._spawn(self.drop_partition(pid))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def ensure_partition(self, info: dict[str, Any]) -> HostedPartition:
        pid = info["partition_id"]
        hp = self.hosted.get(pid)
        if hp is not None and self._role_current(hp, info):
            return hp
        task = self._opening.get(pid)
        if task is None:
            task = asyncio.ensure_future(self._open(info))
            self._opening[pid] = task
            task.add_done_callback(lambda _t: self._opening.pop(pid, None))
        return await asyncio.shield(task)

    def _role_current(self, hp: HostedPartition, info: dict[str, Any]) -> bool:
        """Whether a hosted replica already plays the role ``info`` gives it."""
        if info.get("leader") == self.node_id:
            return hp.leader is not None and not hp.leader.fenced and hp.leader.epoch >= info["leader_epoch"]
        return hp.leader is None and hp.follower is not None

    def _ttl_attribute(self, info: dict[str, Any]) -> str | None:
        """The time-to-live attribute of the partition's table (None when TTL is off)."""
        table = self.metadata.catalog.items.get(info["table_name"])
        if table is None or table["table_id"] != info["table_id"]:
            return None
        attr: str | None = table.get("ttl_attribute")
        return attr

    def _index_keys(self, info: dict[str, Any]) -> list[tuple[str, str, str]]:
        """The secondary index key attributes of the partition's table now (global indexes come
        and go with UpdateTable): (index name, attribute, type), cached per catalog entry."""
        table = self.metadata.catalog.items.get(info["table_name"])
        if table is None or table["table_id"] != info["table_id"]:
            return []
        cached = self._index_keys_cache.get(info["table_id"])
        if cached is not None and cached[0] is table:
            return cached[1]
        out = index_key_attributes(table)
        self._index_keys_cache[info["table_id"]] = (table, out)
        return out

    async def _local_indexes(self, info: dict[str, Any]) -> LocalIndexes | None:
        """The local secondary indexes of the partition's table (None: it has none).  The table's
        catalog entry is written before its partitions, but on another topic: wait for it."""
        if "#" in info["table_id"]:  # a global secondary index's partition
            return None

        def table() -> dict[str, Any] | None:
            t = self.metadata.catalog.items.get(info["table_name"])
            return t if t is not None and t["table_id"] == info["table_id"] else None

        if table() is None and not await self.metadata.catalog.wait_until(lambda: table() is not None, 30):
            raise RuntimeError(f"partition {info['partition_id']}: table {info['table_name']} "
                               f"({info['table_id']}) is not in the catalog")
        t = table()
        assert t is not None
        lsi = LocalIndexes(t)
        return lsi if lsi else None

    def _replica_path(self, pid: str) -> Path:
        return self.data_dir / "partitions" / pid

    async def _open(self, info: dict[str, Any]) -> HostedPartition:
        pid = info["partition_id"]
        hp = self.hosted.get(pid)
        if hp is None:
            replica = Replica(self._replica_path(pid))
            if replica.next_offset == 0 and info.get("leader") != self.node_id:
                replica = await self._bootstrap(pid, info, replica)
            hp = HostedPartition(info, replica)
        else:
            await hp.close()
            hp.info = info
        lsi = await self._local_indexes(info)
        if info.get("leader") == self.node_id:
            leader = LeaderSequencer(self.settings, hp.replica, info, self.node_id, self.txnlog,
                                     ttl_attribute=lambda: self._ttl_attribute(info), lsi=lsi,
                                     index_keys=lambda: self._index_keys(info))
            await leader.start()
            hp.leader, hp.follower = leader, None
        else:
            follower = LogFollower(self.settings, hp.replica, info["log_topic"], lsi)
            follower.start()
            hp.leader, hp.follower = None, follower
        self.hosted[pid] = hp
        log.info("partition %s open as %s", pid, "leader" if hp.leader else "follower")
        return hp

    async def _bootstrap(self, pid: str, info: dict[str, Any], replica: Replica) -> Replica:
        """A new, empty replica (a repair): copy a snapshot of a healthy replica, then the log
        after it is followed as usual.  Falls back to the whole log if no peer can send one."""
        peers = [n for n in ([info.get("leader")] + list(info["replicas"])) if n and n != self.node_id]
        # offset 0 with entries present is a copy interrupted by a crash: start it over from empty
        # (the offset is written last, so the entries of a partial copy are not a fold of the log)
        replica.destroy()
        replica = Replica(self._replica_path(pid))
        for peer in dict.fromkeys(peers):
            node = self.metadata.nodes.items.get(peer)
            if node is None:
                continue
            host, _, port = node["rpc_address"].rpartition(":")
            client = RpcClient(host, int(port))
            t0 = time.monotonic()
            try:
                snap = await client.call("snapshot_open", pid=pid, timeout_s=10)
                if snap["offset"] == 0:
                    return replica  # nothing applied there yet: the log is as good
                after: str | None = None
                entries = 0
                while True:
                    page = await client.call("snapshot_page", sid=snap["sid"], after=after, timeout_s=60)
                    rows = [(base64.b64decode(k), base64.b64decode(v)) for k, v in page["entries"]]
                    replica.load_snapshot(rows)
                    entries += len(rows)
                    if page["done"] or not rows:
                        break
                    after = page["entries"][-1][0]
                replica.finish_snapshot(snap["offset"], snap["applied"])
                await client.call("snapshot_close", sid=snap["sid"], timeout_s=5)
                log.info("partition %s: copied a snapshot of %d entries at offset %d from %s in %.1f s", pid,
                         entries, snap["offset"], peer, time.monotonic() - t0)
                return replica
            except Exception as e:  # noqa: BLE001 - try the next peer, then the log
                # a peer that does not host the partition yet (a table being created) is normal
                quiet = isinstance(e, errors.ApiError) and e.type_name == "NotLeader"
                log.log(logging.DEBUG if quiet else logging.WARNING,
                        "partition %s: snapshot from %s failed (%r); trying another source", pid, peer, e)
                replica.destroy()
                replica = Replica(self._replica_path(pid))
            finally:
                await client.close()
        log.info("partition %s: no snapshot source; rebuilding from the log", pid)
        return replica

    def _snapshot_rpc(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        now = time.monotonic()
        for sid in [k for k, (_, t) in self._snapshots.items() if now - t > 600]:
            self._snapshots.pop(sid)[0].close()
        if op == "snapshot_open":
            hp = self._hosted(req["pid"])
            snap, offset, applied = hp.replica.open_snapshot()
            self._snapshot_seq += 1
            sid = f"{req['pid']}/{self._snapshot_seq}"
            self._snapshots[sid] = (snap, now)
            return {"sid": sid, "offset": offset, "applied": applied}
        if op == "snapshot_page":
            held = self._snapshots.get(req["sid"])
            if held is None:
                raise errors.validation("unknown or expired snapshot")
            after = base64.b64decode(req["after"]) if req.get("after") else None
            rows, done = Replica.snapshot_page(held[0], after, 4 * 1024 * 1024)
            self._snapshots[req["sid"]] = (held[0], now)
            return {"entries": [[base64.b64encode(k).decode(), base64.b64encode(v).decode()] for k, v in rows],
                    "done": done}
        held = self._snapshots.pop(req["sid"], None)
        if held is not None:
            held[0].close()
        return {}

    async def drop_partition(self, pid: str) -> None:
        task = self._opening.get(pid)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        hp = self.hosted.pop(pid, None)
        if hp is not None:
            await hp.close()
            hp.replica.destroy()
            log.info("partition %s dropped", pid)

    def _hosted(self, pid: str) -> HostedPartition:
        hp = self.hosted.get(pid)
        if hp is None:
            raise not_leader(pid)
        return hp

    # -- RPC -----------------------------------------------------------------------------
    async def handle(self, req: dict[str, Any]) -> Any:
        op = req["op"]
        if op == "write":
            hp = self._hosted(req["pid"])
            if hp.leader is None:
                raise not_leader(req["pid"])
            return await hp.leader.submit(req, base64.b64decode(req["key"]))
        if op == "write_batch":  # the indexer's writes to one index partition, in this order
            hp = self._hosted(req["pid"])
            if hp.leader is None:
                raise not_leader(req["pid"])
            leader = hp.leader
            futures: list[asyncio.Future[dict[str, Any]]] = []
            try:
                for w in req["writes"]:
                    futures.append(leader.enqueue(w, base64.b64decode(w["key"])))
            finally:
                results = await asyncio.gather(*futures, return_exceptions=True)
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                raise failed
            return {"written": len(results)}
        if op in ("txn_prepare", "txn_decide", "txn_read"):
            hp = self._hosted(req["pid"])
            if hp.leader is None:
                raise not_leader(req["pid"])
            return await hp.leader.submit(dict(req, kind=op), b"")
        if op == "get":
            hp = self._hosted(req["pid"])
            if req.get("consistent"):
                if hp.leader is None:
                    raise not_leader(req["pid"])
                await hp.leader.read_lease()
            return get_item(hp.replica, req)
        if op == "range":
            hp = self._hosted(req["pid"])
            if req.get("consistent"):
                if hp.leader is None:
                    raise not_leader(req["pid"])
                await hp.leader.read_lease()
            return range_read(hp.replica, req)
        if op in ("snapshot_open", "snapshot_page", "snapshot_close"):
            return self._snapshot_rpc(req)
        if op == "open":
            hp = await self.ensure_partition(req["partition"])
            return hp.status()
        if op == "drop":
            await self.drop_partition(req["pid"])
            return {}
        if op == "status":
            parts = [hp.status() for hp in self.hosted.values()]
            # replicas still being opened (catching up, copying a snapshot) show as "opening"
            parts += [{"partition_id": pid, "table": self.metadata.partitions.items.get(pid, {}).get("table_name", ""),
                       "role": "opening"} for pid in self._opening if pid not in self.hosted]
            return {"node_id": self.node_id, "partitions": parts, "ready": self.ready}
        if op == "digest":
            digest, count = self._hosted(req["pid"]).replica.digest()
            return {"digest": digest, "items": count}
        if op == "ping":
            return {"node_id": self.node_id, "ready": self.ready}
        raise errors.validation(f"unknown internal operation {op!r}")
