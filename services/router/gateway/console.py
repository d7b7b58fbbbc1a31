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
from dynamolog.metadata import ADMIN_KEY, BACKUP_KEY

from .rest import Gateway

if TYPE_CHECKING:
    from ..app import Router

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: seconds between two snapshots of the system (the live plots' resolution)
EVENT_S = 0.5
#: seconds between two looks at the brokers and the elections (slower to ask, slower to change)
SLOW_S = 5.0


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

    async def _make(self) -> dict[str, Any]:
        md = self.router.metadata
        if self._slow_task is None or (self._slow_task.done() and time.monotonic() - self._slow_made >= SLOW_S):
            self._slow_made = time.monotonic()
            self._slow_task = asyncio.ensure_future(self._refresh_slow())
        nodes = {k: v for k, v in md.nodes.items.items() if k not in (ADMIN_KEY, BACKUP_KEY)}
        statuses = dict(zip(nodes, await asyncio.gather(*(self._node_status(n) for n in nodes))))
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
            "auto_admin": {"registered_at": md.nodes.items[ADMIN_KEY].rpc_address
                           if ADMIN_KEY in md.nodes.items else None},
            "backup": {"registered_at": md.nodes.items[BACKUP_KEY].rpc_address
                       if BACKUP_KEY in md.nodes.items else None},
        }
        tables = [{"name": t.table_name, "status": t.status, "billing": t.billing_mode,
                   "rcu": t.read_capacity_units, "wcu": t.write_capacity_units,
                   "indexes": [i.index_name for i in t.global_indexes] + [i.index_name for i in t.local_indexes]}
                  for t in sorted(md.catalog.items.values(), key=lambda t: t.table_name)]
        return {"time_ms": int(time.time() * 1000), "version": __version__, "region": self.router.settings.region,
                "tables": tables, "partitions": partitions, "services": services, **self._slow}

    async def close(self) -> None:
        if self._slow_task is not None and not self._slow_task.done():
            self._slow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._slow_task


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
