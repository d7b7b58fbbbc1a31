"""Auto-admin: provisions tables and keeps the partition map true while storage nodes come and go.

**The catalog's one writer** (``services/admin/writer.py``): routers and the indexer send every
change of a table definition here over the internal RPC; it is published only if it was made
on the table's current record (docs/decisions/0019-catalog-single-writer.md).  The RPC address
is published in ``dyn.nodes`` under the reserved key ``#admin`` when the auto-admin starts.

**Provisioning** (``services/admin/provision.py``): a table CREATING, UPDATING or DELETING is
carried out here: log topics created, replicas placed on three distinct storage nodes,
partitions published and opened, then ACTIVE; or the replicas dropped, the topics deleted and the
tombstones written.

Every ``check_interval`` it pings each registered storage node (internal RPC ``ping``).  A node
that has not answered for ``dead_after`` seconds is down; a node that answers but says it cannot
do its job for a partition (its leader lost Kafka: commits failing or stalled) is treated as down
for that partition:

- **Leader election**: a partition whose leader is down (or unhealthy for it) gets a new leader among its live
  replicas — the one that has applied the most of the log — with ``leader_epoch + 1``, published
  to ``dyn.partitions``.  The new leader's storage node sees the change, starts the partition's
  transactional producers (which fences the old leader: its next commit fails), reads the log to
  its end and serves.  No acknowledged write is lost: it is in the log, and the new leader reads
  the whole log before it sequences anything (docs/architecture.md, invariant 2).
- **Repair**: a replica on a node down for ``repair_after`` seconds is replaced by a replica on a
  live node that does not hold one yet; that node copies a snapshot of a healthy replica and
  follows the log after it, then serves as a follower.  A node that comes back after that finds
  itself out of the replica list and drops its copy.

Its state is the metadata topics; the liveness clock starts over when it restarts (a restart
only delays decisions by ``dead_after``).  Its metadata writes go through the transactional id
``<ns>.admin``, so a second auto-admin fences the first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import replace
from typing import Any

from aiokafka.errors import ProducerFenced

from dynamolog import placement
from dynamolog.catalog import NodeInfo, PartitionInfo
from dynamolog.config import Settings
from dynamolog.metadata import ADMIN_KEY, Metadata, MetadataWriter, ensure_metadata_topics
from dynamolog.metrics import Samples, index_label
from dynamolog.routing import Routing
from dynamolog.rpc import ConnectRefused, RpcClient, RpcServer
from dynamolog.stats import StatsView, add_table_samples

from .adaptive import Kind
from .capacity import AdaptiveCapacity, CounterDeltas, TableObservations
from .provision import Provisioner
from .scaling import Scaling
from .splits import Splitter
from .stats import TableFigures
from .writer import CatalogWriter

log = logging.getLogger(__name__)


class AutoAdmin:
    """The auto-admin process."""

    def __init__(self, settings: Settings, *, check_interval: float = 0.25, dead_after: float = 3.0,
                 repair_after: float = 30.0, rpc_host: str = "127.0.0.1", rpc_port: int = 0) -> None:
        """``rpc_host``, ``rpc_port``: where the catalog writer listens (port 0: any free port;
        the address is published in ``dyn.nodes``)."""
        self.settings = settings
        self.check_interval = check_interval
        self.dead_after = dead_after
        self.repair_after = repair_after
        self.metadata = Metadata(settings)
        self.writer = MetadataWriter(settings, self.metadata, transactional_id=f"{settings.namespace}.admin")
        self._clients: dict[str, RpcClient] = {}
        self._last_ok: dict[str, float] = {}
        #: nodes whose port refused the last ping (no process listens there: down at once)
        self._refused: set[str] = set()
        #: per node, the partitions it said (in its last ping answer) it cannot serve, and why
        self._unhealthy: dict[str, dict[str, str]] = {}
        self._started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._said: set[tuple[str, str]] = set()
        self._tells: set[asyncio.Task[None]] = set()
        self.routing = Routing(self.metadata)
        self.catalog = CatalogWriter(self.metadata, self.writer)
        self.provisioner = Provisioner(settings, self.metadata, self.writer, self.routing, self.catalog)
        self.scaling = Scaling(settings, self.metadata, self.writer, self.catalog)
        #: partition splits (services/admin/splits.py)
        self.splitter = Splitter(settings, self.metadata, self.writer, self.routing, self.catalog, self._client)
        self.rpc = RpcServer(self._handle, rpc_host, rpc_port)
        self.rpc_host = rpc_host
        #: tables' item counts and sizes, from the leaders' ping answers, published to <ns>.stats
        self.figures = TableFigures(self.metadata, self.writer, StatsView(settings))
        self._stats_task: asyncio.Task[None] | None = None
        #: adaptive capacity's controllers (services/admin/capacity.py), fed every period from the
        #: counters the partition leaders report in their ping answers
        self.adaptive = AdaptiveCapacity()
        self._deltas = CounterDeltas()
        #: (partition id, kind) -> the multiplier its leader was last told
        self._multipliers_set: dict[tuple[str, Kind], float] = {}
        self._adaptive_task: asyncio.Task[None] | None = None
        #: what it did, for status and tests
        self.elections = 0
        self.repairs = 0
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        await self.writer.start()  # InitProducerId: fences an older auto-admin
        self._started = time.monotonic()
        self.metadata.catalog.listen(self.provisioner.on_table)
        self.provisioner.resume_pending()
        self.splitter.resume()
        await self.scaling.start()
        await self.rpc.start()
        await self.writer.put_node(NodeInfo(node_id=ADMIN_KEY, rpc_address=f"{self.rpc_host}:{self.rpc.port}",
                                            pid=os.getpid(), started_at_ms=int(time.time() * 1000)))
        await self.figures.view.start()
        self._task = asyncio.ensure_future(self._run())
        self._stats_task = asyncio.ensure_future(self._stats_loop())
        self._adaptive_task = asyncio.ensure_future(self._adaptive_loop())
        log.info("auto-admin running: catalog writer on %s:%d, ping every %.2f s, node down after %.1f s, repair after %.1f s",
                 self.rpc_host, self.rpc.port, self.check_interval, self.dead_after, self.repair_after)

    async def close(self) -> None:
        for task in (self._task, self._stats_task, self._adaptive_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.figures.view.close()
        await self.rpc.close()
        await self.scaling.close()
        await self.splitter.close()
        await self.provisioner.close()
        await self.routing.close()
        for c in self._clients.values():
            await c.close()
        await self.metadata.close()
        await self.writer.close()

    # -- liveness ----------------------------------------------------------------------------
    def _client(self, node_id: str) -> RpcClient | None:
        node = self.metadata.nodes.items.get(node_id)
        if node is None:
            return None
        host, port = node.host_port()
        c = self._clients.get(node_id)
        if c is None or (c.host, c.port) != (host, port):
            c = RpcClient(host, port, connect_timeout_s=0.5)
            self._clients[node_id] = c
        return c

    async def _ping(self, node_id: str) -> None:
        c = self._client(node_id)
        if c is None:
            return
        try:
            answer = await c.call("ping", timeout_s=max(0.5, self.dead_after / 3))
        except ConnectionError as e:
            if isinstance(e, ConnectRefused):
                # nothing listens on the node's port: its process is gone (a live process holds
                # the port), so it is down now, not after dead_after of silence
                if node_id not in self._refused:
                    log.info("auto-admin: storage node %s refuses connections: down", node_id)
                self._refused.add(node_id)
            return
        except Exception:  # noqa: BLE001 - any other failure is a missed heartbeat
            return
        self._refused.discard(node_id)
        self._last_ok[node_id] = time.monotonic()
        self._unhealthy[node_id] = dict(answer.get("unhealthy") or {})
        self.scaling.observe_ping(answer)
        self._deltas.heard(answer.get("capacity") or {}, time.monotonic())
        self.figures.heard(node_id, answer.get("sizes") or {})
        self.splitter.heard(answer, time.monotonic())

    async def _handle(self, req: dict[str, Any]) -> Any:
        """The internal RPC: catalog changes (services/admin/writer.py) and Application Auto
        Scaling requests (services/admin/scaling.py)."""
        if req.get("op") == "scaling":
            return await self.scaling.handle(str(req["action"]), dict(req["params"]))
        if req.get("op") == "split":  # an operator's (or a test's) split of one partition
            done = await self.splitter.split_now(str(req["pid"]), str(req.get("by") or "size"))
            return {"parent": done.parent, "children": list(done.children), "at_hash": done.at_hash,
                    "cut_offset": done.cut_offset, "total_s": done.total_s, "seal_s": done.seal_s,
                    "open_s": done.open_s}
        return await self.catalog.handle(req)

    def healthy(self, node_id: str | None, pid: str) -> bool:
        """Alive, and not saying that it cannot do its job for the partition (a leader that lost
        Kafka answers pings but commits nothing: services/storage/leader.py ``health``)."""
        return self.alive(node_id) and pid not in self._unhealthy.get(node_id or "", {})

    def silent_for(self, node_id: str) -> float:
        """Seconds since the node last answered (since this process started, if never)."""
        return time.monotonic() - self._last_ok.get(node_id, self._started)

    def alive(self, node_id: str | None) -> bool:
        return node_id is not None and node_id not in self._refused and self.silent_for(node_id) < self.dead_after

    def _say_once(self, key: tuple[str, str], msg: str, *args: Any) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(msg, *args)

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await asyncio.gather(*(self._ping(n) for n in list(self.metadata.nodes.items)))
                await self._act()
                self.splitter.run_once(time.monotonic())
            except asyncio.CancelledError:
                raise
            except ProducerFenced:
                log.error("auto-admin: fenced by a newer auto-admin; stopping")
                self.stopped.set()
                return
            except Exception:
                log.exception("auto-admin: a round failed; going on")
            await asyncio.sleep(self.check_interval)

    def metrics(self, samples: Samples) -> None:
        """Prometheus samples (dynamolog/metrics.py): every table's provisioned units and
        published figures, and adaptive capacity's multipliers."""
        add_table_samples(samples, list(self.metadata.catalog.items.values()), self.figures.view,
                          int(time.time() * 1000))
        self.splitter.metrics(samples)
        for (pid, kind), m in list(self.adaptive.multipliers.items()):
            part = self.metadata.partitions.items.get(pid)
            if part is not None:
                samples.add("dynamolog_adaptive_multiplier", m, table=part.table_name,
                            index=index_label(part.table_id), partition=pid, kind=kind)

    async def _adaptive_loop(self) -> None:
        """Adaptive capacity: every period, each provisioned table's per-partition observations to
        its controllers, and the multipliers that changed to the partitions' leaders (``cap_set``)."""
        while True:
            await asyncio.sleep(self.adaptive.gains.period_s)
            try:
                observed = []
                for table in list(self.metadata.catalog.items.values()):
                    if table.billing_mode != "PROVISIONED" or table.status not in ("ACTIVE", "UPDATING"):
                        continue
                    pids = [p.partition_id for p in self.metadata.table_partitions(table.table_id)]
                    kinds: tuple[tuple[Kind, int], ...] = (("read", table.read_capacity_units),
                                                           ("write", table.write_capacity_units))
                    for kind, units in kinds:
                        obs = self._deltas.observations(pids, kind)
                        if obs is not None:
                            observed.append(TableObservations(table.table_id, kind, float(units), obs))
                await self.adaptive.run_once(observed, self._apply_rates)
            except asyncio.CancelledError:
                raise
            except ProducerFenced:
                return
            except Exception:
                log.exception("adaptive capacity: a period failed; going on")

    async def _apply_rates(self, table_id: str, kind: Kind, rates: dict[str, float]) -> None:
        for pid in rates:
            m = round(self.adaptive.multipliers.get((pid, kind), 1.0), 3)
            if abs(m - self._multipliers_set.get((pid, kind), 1.0)) < 0.01:
                continue
            part = self.metadata.partitions.items.get(pid)
            c = self._client(part.leader) if part is not None and part.leader else None
            if c is None:
                continue
            await c.call("cap_set", pid=pid, multiplier=m, kind=kind, timeout_s=1.0)
            self._multipliers_set[(pid, kind)] = m
            log.info("adaptive capacity: partition %s of %s: %s multiplier %.2f", pid, part.table_name if part else "",
                     kind, m)

    async def _stats_loop(self) -> None:
        """Every ``Settings.table_stats_s``: publish the tables' figures that changed."""
        while True:
            await asyncio.sleep(self.settings.table_stats_s)
            try:
                await self.figures.publish_changed()
            except asyncio.CancelledError:
                raise
            except ProducerFenced:
                return  # the main loop stops the process
            except Exception:
                log.exception("auto-admin: publishing table figures failed; next round again")

    async def _act(self) -> None:
        for pid, part in list(self.metadata.partitions.items.items()):
            if part.state != "ACTIVE":
                continue
            if not self.healthy(part.leader, pid):
                await self._elect(pid, part)
                continue
            lost = [n for n in part.replicas if self.silent_for(n) >= self.repair_after]
            if lost:
                await self._repair(pid, part, lost[0])

    async def _offsets(self, pid: str, nodes: list[str]) -> dict[str, int]:
        """How far each node's replica of ``pid`` has applied the log."""
        out: dict[str, int] = {}

        async def one(n: str) -> None:
            c = self._client(n)
            if c is None:
                return
            try:
                st = await c.call("status", timeout_s=1.0)
            except Exception:  # noqa: BLE001 - not a candidate then
                return
            for p in st["partitions"]:
                if p["partition_id"] == pid:
                    out[n] = int(p.get("next_offset", 0))

        await asyncio.gather(*(one(n) for n in nodes))
        return out

    async def _elect(self, pid: str, part: PartitionInfo) -> None:
        candidates = [n for n in part.replicas if n != part.leader and self.healthy(n, pid)]
        if not candidates:
            self._say_once((pid, "no-candidate"), "partition %s: leader %s is down and no other replica is alive; "
                           "waiting", pid, part.leader)
            return
        offsets = await self._offsets(pid, candidates)
        if not offsets:
            return
        new = max(offsets, key=lambda n: (offsets[n], -part.replicas.index(n)))
        current = self.metadata.partitions.items.get(pid)
        if current != part:
            return  # changed meanwhile (another writer); look again next round
        info = replace(part, leader=new, leader_epoch=part.leader_epoch + 1)
        await self.writer.put_partition(info)
        self.elections += 1
        self._said.discard((pid, "no-candidate"))
        old = part.leader or ""
        why = (f"silent for {self.silent_for(old):.1f} s" if not self.alive(old)
               else f"unhealthy ({self._unhealthy.get(old, {}).get(pid)})")
        log.warning("partition %s: leader %s %s; elected %s (applied up to offset %d), epoch %d",
                    pid, old, why, new, offsets[new], info.leader_epoch)
        self._open_soon(new, info)

    async def _repair(self, pid: str, part: PartitionInfo, lost: str) -> None:
        load: dict[str, int] = {n: 0 for n in self.metadata.nodes.items if self.alive(n)}
        for p in self.metadata.partitions.items.values():
            if p.state == "ACTIVE":
                for n in p.replicas:
                    if n in load:
                        load[n] += 1
        spare = placement.choose_spare(load, part.replicas,
                                       {n: i.zone for n, i in self.metadata.nodes.items.items()})
        if spare is None:
            self._say_once((pid, "no-spare"), "partition %s: replica on %s is lost and no other live node can "
                           "take it; running with %d replicas", pid, lost, len(part.replicas) - 1)
            return
        current = self.metadata.partitions.items.get(pid)
        if current != part:
            return
        replicas = tuple(spare if n == lost else n for n in part.replicas)
        info = replace(part, replicas=replicas)
        await self.writer.put_partition(info)
        self.repairs += 1
        log.warning("partition %s: replica on %s lost for %.1f s; rebuilding it on %s", pid, lost,
                    self.silent_for(lost), spare)
        self._open_soon(spare, info)

    def _open_soon(self, node_id: str, info: PartitionInfo) -> None:
        """Tell the node at once (it also learns it from the partition map)."""
        async def tell() -> None:
            c = self._client(node_id)
            if c is not None:
                try:
                    await c.call("open", partition=info.to_record(), timeout_s=120)
                except Exception as e:  # noqa: BLE001 - the node learns it from dyn.partitions anyway
                    log.info("partition %s: asking %s to open it failed (%r)", info.partition_id, node_id, e)

        t = asyncio.ensure_future(tell())
        self._tells.add(t)
        t.add_done_callback(self._tells.discard)
