"""The console's server side, at ``/console`` on the router's port (decision 0037).

- ``/console`` and ``/console/static/...``: the page and its files (vendored: no network needed);
- ``/console/api/whoami``: who is signed in (401 when nobody is);
- ``/console/api/op/{Operation}``: any DynamoDB operation in its own typed JSON, run as the
  signed-in key with that operation's permission check (the item browser, create table / GSI);
- ``/console/api/system``: one snapshot of the system (below);
- ``/console/api/events``: the same snapshot as server-sent events, every :data:`EVENT_S`.

A snapshot: every partition from the partitions topic (leader, replicas, epoch, state) joined
with what each storage node's ``status`` answers (each replica's role, next offset, lag, and at
the leader its capacity counters: rate, consumed and throttled units, the adaptive multiplier);
the storage nodes; the brokers; the active members of the auto-admin, indexer and backup
elections.  Snapshots are shared by every open console (made at most once per
:data:`EVENT_S`), so more consoles do not mean more calls to the storage nodes.

The live plots' other figures, each read where the system already publishes it (nothing is
computed a second way here):

- ``splits`` / ``split_events``: the partitions serving each table and global index now, and
  every split (a partition with children) with its step, from the partitions topic
  (services/admin/splits.py publishes each step there);
- ``adaptive``: each provisioned partition's read and write multipliers, as its leader's
  ``status`` reports them (the ``cap_set`` values of services/admin/adaptive.py);
- ``scaling``: every scalable target with its policies, current capacity and latest
  activities (DescribeScalingActivities' records), from ``<ns>.scaling``;
- ``gsi_lag``: per global index, the table-log records the indexer has not applied yet: its
  committed positions against the logs' ends, as services/router/freshness.py compares them
  for read-your-writes (asked every :data:`EVENT_S` in the background);
- ``regions``: the linked regions and RepOut's (stream reader) and RepIn's figures (lag in
  records, RepIn's write-to-applied milliseconds) as they publish them in ``<ns>.regions``
  for ``dynamolog status``;
- ``backups``: the backup service's running and recent backups and restores with their
  progress (its ``status`` RPC).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from dynamolog import __version__, errors
from dynamolog.catalog import PartitionInfo, TableDefinition
from dynamolog.metadata import ADMIN_KEY, BACKUP_KEY, PublishedClient, split_done
from dynamolog.scaling import DIMENSIONS, ScalableTarget, parse_resource

from .rest import Gateway

if TYPE_CHECKING:
    from ..app import Router

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: seconds between two snapshots of the system (the live plots' resolution)
EVENT_S = 0.5
#: seconds between two looks at the brokers and the elections (slower to ask, slower to change)
SLOW_S = 5.0
#: scaling activities sent per target (newest first)
ACTIVITIES_SHOWN = 10


class SystemView:
    """Snapshots of the system for the console, shared by all open consoles."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._snapshot: dict[str, Any] | None = None
        self._made = 0.0
        self._lock = asyncio.Lock()
        self._slow: dict[str, Any] = {"brokers": [], "singletons": {}}
        self._slow_made = 0.0
        self._slow_task: asyncio.Task[None] | None = None
        #: per global index, the records its indexer has not applied (refreshed in the background)
        self._gsi_lag: list[dict[str, Any]] = []
        self._lag_task: asyncio.Task[None] | None = None
        #: ``<ns>.scaling`` followed once a console asks (None: not started yet)
        self._scaling: Any = None
        self._scaling_task: asyncio.Task[None] | None = None
        self._scaling_tried = 0.0
        #: the backup service, at the address it published
        self._backup = PublishedClient(router.metadata, BACKUP_KEY, "backup service")

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            if self._snapshot is None or time.monotonic() - self._made >= EVENT_S * 0.9:
                self._snapshot = await self._make()
                self._made = time.monotonic()
            return self._snapshot

    async def _node_status(self, node_id: str) -> dict[str, Any]:
        try:
            out: dict[str, Any] = await self.router.routing.client(node_id).call("status", timeout_s=2.0)
            return out
        except Exception as e:  # noqa: BLE001 - an unreachable node is shown as such
            return {"error": f"unreachable ({type(e).__name__})"}

    async def _refresh_slow(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        from dynamolog.singleton import active_pids

        settings = self.router.settings
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
            await admin.start()
            try:
                cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
            finally:
                await admin.close()
            brokers = [{"id": b["node_id"], "address": f"{b['host']}:{b['port']}", "rack": b.get("rack"),
                        "controller": b["node_id"] == cluster.get("controller_id")} for b in cluster["brokers"]]
            actives = await asyncio.wait_for(active_pids(settings, ("admin", "indexer", "backup")), 5)
            self._slow = {"brokers": sorted(brokers, key=lambda b: b["id"]),
                          "singletons": {k: {"active_pid": v} for k, v in actives.items()}}
        except Exception as e:  # noqa: BLE001 - shown in the console, never fatal
            self._slow = {**self._slow, "error": f"brokers and elections not known ({type(e).__name__}: {e})"}

    async def _refresh_lag(self) -> None:
        """Every global index's lag behind its table (services/router/freshness.py's figures)."""
        rows = []
        for t in sorted(self.router.metadata.catalog.items.values(), key=lambda t: t.table_name):
            if t.status in ("CREATING", "DELETING"):
                continue
            rows += [(t, g) for g in t.global_indexes if g.status in ("ACTIVE", "CREATING")]

        async def one(t: TableDefinition, index_id: str) -> tuple[int | None, str | None]:
            try:
                return await asyncio.wait_for(self.router.freshness.behind(t, index_id), 2.0), None
            except Exception as e:  # noqa: BLE001 - shown in the console, never fatal
                return None, f"not known ({type(e).__name__})"

        got = await asyncio.gather(*(one(t, g.index_id) for t, g in rows))
        now_ms = int(time.time() * 1000)
        self._gsi_lag = [{"table": t.table_name, "index": g.index_name, "status": g.status, "lag_records": lag,
                          "error": err, "measured_ms": now_ms} for (t, g), (lag, err) in zip(rows, got)]

    async def _backup_status(self) -> dict[str, Any] | None:
        if BACKUP_KEY not in self.router.metadata.nodes.reserved:
            return None
        try:
            out: dict[str, Any] = await self._backup.get().call("status", timeout_s=1.0)
            return out
        except Exception as e:  # noqa: BLE001 - shown in the console, never fatal
            return {"error": f"backup service unreachable ({type(e).__name__})"}

    async def _start_scaling(self) -> None:
        from dynamolog.metadata import TopicView

        view: Any = TopicView(self.router.settings, self.router.settings.scaling_topic, ScalableTarget.decode)
        try:
            await asyncio.wait_for(view.start(), 5)
        except Exception as e:  # noqa: BLE001 - the auto-admin makes the topic; tried again later
            log.debug("console: %s not readable yet: %r", self.router.settings.scaling_topic, e)
            with contextlib.suppress(Exception):
                await view.close()
            return
        self._scaling = view

    def _splits(self, tables: list[TableDefinition]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        md = self.router.metadata
        items = md.partitions.items
        counts = []
        for t in tables:
            if t.status == "DELETING":
                continue
            counts.append({"table": t.table_name, "index": "", "partitions": len(md.table_partitions(t.table_id))})
            counts += [{"table": t.table_name, "index": g.index_name,
                        "partitions": len(md.table_partitions(g.index_id))} for g in t.global_indexes]

        def step(p: PartitionInfo) -> str:
            if p.state == "SPLIT":
                return "done"
            return "children serving" if split_done(p, items) else "sealing and copying"

        events = [{"table": p.table_name, "index": p.table_id.partition("#")[2], "parent": p.partition_id,
                   "children": list(p.children), "step": step(p)}
                  for p in sorted(items.values(), key=lambda p: (p.table_name, p.partition_id)) if p.children]
        return counts, events

    def _scaling_targets(self, tables: dict[str, TableDefinition]) -> list[dict[str, Any]]:
        if self._scaling is None:
            return []
        out = []
        for tg in sorted(self._scaling.items.values(), key=lambda x: x.key):
            parsed = parse_resource(tg.resource_id)
            t = tables.get(parsed[0]) if parsed else None
            if parsed is None or t is None or t.table_id != tg.table_id:
                continue  # a target of a table deleted since
            kind = DIMENSIONS[tg.dimension][1]
            unit: Any = t if parsed[1] is None else next((g for g in t.global_indexes if g.index_name == parsed[1]),
                                                          None)
            capacity = getattr(unit, f"{kind}_capacity_units", None) if unit is not None else None
            out.append({
                "resource_id": tg.resource_id, "dimension": tg.dimension, "table": parsed[0], "index": parsed[1] or "",
                "kind": kind, "min": tg.min_capacity, "max": tg.max_capacity, "capacity": capacity,
                "policies": [{"name": p.policy_name, "target": p.target_value} for p in tg.policies],
                "activities": [{"start_ms": a.start_ms, "end_ms": a.end_ms, "description": a.description,
                                "cause": a.cause, "status": a.status_code, "message": a.status_message}
                               for a in tg.activities[:ACTIVITIES_SHOWN]],
            })
        return out

    def _regions(self) -> dict[str, Any]:
        view = self.router.global_tables.regions
        linked = sorted(view.regions())
        repout: dict[str, Any] = {}
        repin: dict[str, Any] = {}
        for key, f in view.figures().items():
            role, _, region = key.partition("/")
            if region not in linked:
                continue
            common = {"state": f.get("state"), "lag_records": f.get("lag_records"), "updated_ms": f.get("updated_ms"),
                      "error": f.get("error")}
            if role == "repout":
                repout[region] = {**common, "shipped": f.get("shipped"), "ship_ms_p50": f.get("ship_ms_p50"),
                                  "ship_ms_p99": f.get("ship_ms_p99")}
            elif role == "repin":
                repin[region] = {**common, "applied": f.get("applied"), "lag_ms_p50": f.get("lag_ms_p50"),
                                 "lag_ms_p99": f.get("lag_ms_p99")}
        return {"linked": linked, "repout": repout, "repin": repin}

    async def _make(self) -> dict[str, Any]:
        md = self.router.metadata
        if self._slow_task is None or (self._slow_task.done() and time.monotonic() - self._slow_made >= SLOW_S):
            self._slow_made = time.monotonic()
            self._slow_task = asyncio.ensure_future(self._refresh_slow())
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.ensure_future(self._refresh_lag())
        nodes = {k: v for k, v in md.nodes.items.items() if k not in (ADMIN_KEY, BACKUP_KEY)}
        if self._scaling is None and (self._scaling_task is None or (
                self._scaling_task.done() and time.monotonic() - self._scaling_tried >= SLOW_S)):
            self._scaling_tried = time.monotonic()
            self._scaling_task = asyncio.ensure_future(self._start_scaling())
        statuses_list, backup = await asyncio.gather(asyncio.gather(*(self._node_status(n) for n in nodes)),
                                                     self._backup_status())
        statuses = dict(zip(nodes, statuses_list))
        replicas: dict[str, dict[str, Any]] = {}
        for node_id, st in statuses.items():
            for p in st.get("partitions", []):
                replicas.setdefault(p["partition_id"], {})[node_id] = p
        partitions = []
        for pid, info in sorted(md.partitions.items.items(), key=lambda kv: (kv[1].table_name, kv[1].hash_start)):
            seen = replicas.get(pid, {})
            lead = seen.get(info.leader or "", {})
            partitions.append({
                "partition_id": pid, "table": info.table_name, "state": info.state, "leader": info.leader,
                "epoch": info.leader_epoch, "replicas": list(info.replicas),
                "replica_status": {n: {"role": r.get("role"), "next_offset": r.get("next_offset"),
                                       "lag": r.get("lag_records"), "fenced": r.get("fenced")}
                                   for n, r in sorted(seen.items())},
                "items": lead.get("items"), "size_bytes": lead.get("size_bytes"),
                "capacity": lead.get("capacity"),
            })
        services = {
            "storage": [{"node_id": n, "address": v.rpc_address, "zone": v.zone, "pid": v.pid,
                         "healthy": "error" not in statuses[n] and bool(statuses[n].get("ready", True)),
                         "error": statuses[n].get("error"), "replicas": len(statuses[n].get("partitions", []))}
                        for n, v in sorted(nodes.items())],
            "auto_admin": {"registered_at": md.nodes.reserved[ADMIN_KEY].rpc_address
                           if ADMIN_KEY in md.nodes.reserved else None},
            "backup": {"registered_at": md.nodes.reserved[BACKUP_KEY].rpc_address
                       if BACKUP_KEY in md.nodes.reserved else None},
        }
        defs = sorted(md.catalog.items.values(), key=lambda t: t.table_name)
        tables = [{"name": t.table_name, "status": t.status, "billing": t.billing_mode,
                   "rcu": t.read_capacity_units, "wcu": t.write_capacity_units,
                   "indexes": [i.index_name for i in t.global_indexes] + [i.index_name for i in t.local_indexes]}
                  for t in defs]
        provisioned = {t.table_name for t in defs if t.billing_mode == "PROVISIONED"}
        adaptive = [{"table": p["table"], "partition": p["partition_id"],
                     "read": p["capacity"].get("multipliers", {}).get("read"),
                     "write": p["capacity"].get("multipliers", {}).get("write")}
                    for p in partitions if p["table"] in provisioned and p["capacity"] and p["state"] == "ACTIVE"]
        splits, split_events = self._splits(defs)
        restoring = [{"table": t.table_name, "status": t.status} for t in defs if t.restoring]
        return {"time_ms": int(time.time() * 1000), "version": __version__, "region": self.router.settings.region,
                "tables": tables, "partitions": partitions, "services": services,
                "splits": splits, "split_events": split_events, "adaptive": adaptive,
                "scaling": self._scaling_targets({t.table_name: t for t in defs}),
                "gsi_lag": self._gsi_lag, "regions": self._regions(),
                "backups": {"jobs": (backup or {}).get("jobs", []), "error": (backup or {}).get("error"),
                            "service": backup is not None, "restoring": restoring},
                **self._slow}

    async def close(self) -> None:
        for task in (self._slow_task, self._lag_task, self._scaling_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._scaling is not None:
            with contextlib.suppress(Exception):
                await self._scaling.close()
        await self._backup.close()


def add_console(app: FastAPI, router: Router, gw: Gateway) -> SystemView:
    """The console's routes on the web application."""
    view = SystemView(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.get("/console", include_in_schema=False)
    @app.get("/console/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/console/api/whoami", include_in_schema=False)
    async def whoami(request: Request) -> dict[str, Any]:
        cred = gw.caller(request)
        return {"user": cred.user_name if cred else None, "access_key_id": cred.access_key_id if cred else None,
                "auth": gw.web.enabled, "version": __version__, "region": router.settings.region}

    @app.post("/console/api/op/{operation}", include_in_schema=False)
    async def operation(operation: str, request: Request) -> JSONResponse:
        caller = gw.caller(request)
        if operation not in router.operations:
            raise errors.unknown_operation()
        try:
            params = json.loads(await request.body() or b"{}")
        except ValueError:
            raise errors.serialization("Start of structure or map found where not expected.") from None
        if not isinstance(params, dict):
            raise errors.serialization("Start of structure or map found where not expected.")
        out = await gw.call(caller, operation, params)
        return JSONResponse(out)

    @app.get("/console/api/system", include_in_schema=False)
    async def system(request: Request) -> dict[str, Any]:
        gw.caller(request)
        return await view.snapshot()

    @app.get("/console/api/events", include_in_schema=False)
    async def events(request: Request) -> StreamingResponse:
        gw.caller(request)

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            while True:
                snap = await view.snapshot()
                yield b"event: system\ndata: " + json.dumps(snap, separators=(",", ":")).encode() + b"\n\n"
                await asyncio.sleep(EVENT_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return view
