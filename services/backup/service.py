"""The backup service: on-demand backups, restores and point-in-time recovery snapshots.

Routers validate every request (DynamoDB's errors, before any I/O) and hand the work over on the
internal RPC (:mod:`dynamolog.backup_client`); this service publishes its address in
``<ns>.nodes`` under ``#backup`` when it becomes active (a fenced singleton, as the indexer).

- **CreateBackup** (``backup_create``): a snapshot is opened on one replica of every partition
  (the storage node's ``snapshot_open``), *then* each log's end offset is read: that offset is the
  backup's cut, and every write acknowledged before the request is below it.  The manifest is
  written CREATING with the cuts, the answer goes back, and a task copies each snapshot and the
  log from the snapshot's offset to the cut (services/backup/capture.py), then writes the manifest
  AVAILABLE.  A service that starts and finds a CREATING manifest copies the backup again from
  the log alone (partition logs are kept forever), to the same cuts.
- **Restore** (``restore_start``): the router has created the target table through the
  auto-admin with ``restoring`` set (it stays CREATING); this service folds each source partition
  (services/backup/fold.py) and writes the items through the new table's leaders, then publishes
  the table ACTIVE.  It resumes, at start, every table still ``restoring``.
- **Point-in-time recovery**: for every table with recovery on, every ``Settings.pitr_snapshot_s``
  each partition's snapshot goes to ``pitr/<table id>/<partition>/<offset>/`` with the greatest
  record timestamp below its offset; a restore to a time starts from the newest snapshot whose
  records are all at or before that time and replays the log after it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from dynamolog import codec, errors, faults
from dynamolog.backup_client import BACKUP_KEY
from dynamolog.catalog import NodeInfo, PartitionInfo, TableDefinition, table_arn
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings
from dynamolog.fencing import ORIGIN, Term
from dynamolog.metadata import Metadata, MetadataWriter, ensure_metadata_topics
from dynamolog.routing import Routing
from dynamolog.rpc import RpcServer

from . import layout
from .capture import Duty, close_snapshot, copy_log, copy_snapshot, end_offsets, open_snapshot, read_log
from .fold import PartitionFold
from .spill import SpillItems
from .store import ObjectStore, StoreError, open_store

log = logging.getLogger(__name__)

#: items per write request to a restored table's leader, and such requests in flight at once
RESTORE_WRITES_PER_REQUEST = 200
RESTORE_REQUESTS_IN_FLIGHT = 8
#: item bytes of one such request at most (about: an item is never split)
RESTORE_BATCH_BYTES = 256 * 1024
#: item bytes of the requests in flight at once (their decoded items and encoded requests are
#: the restore's memory besides the fold's RocksDB)
RESTORE_BYTES_IN_FLIGHT = 1024 * 1024
#: seconds an ended backup or restore stays in the status's ``jobs`` (the console shows it done)
JOBS_KEPT_S = 300.0


def backup_not_found(arn: str) -> errors.ApiError:
    return errors.ApiError("BackupNotFoundException", f"Backup not found: {arn}")


def backup_in_use(arn: str, why: str) -> errors.ApiError:
    return errors.ApiError("BackupInUseException", f"Backup is being {why}: {arn}")


def describe_backup(m: dict[str, Any], region: str) -> dict[str, Any]:
    """DynamoDB's BackupDescription of a manifest."""
    table = TableDefinition.from_record(m["table"])
    details = _details(m)
    source: dict[str, Any] = {
        "TableName": table.table_name, "TableId": table.table_id, "TableArn": table_arn(region, table.table_name),
        "TableSizeBytes": int(m.get("table_bytes", 0)), "ItemCount": int(m.get("item_count", 0)),
        "KeySchema": [{"AttributeName": k.attribute_name, "KeyType": k.key_type} for k in table.key_schema],
        "TableCreationDateTime": table.created_at_ms / 1000.0,
        "ProvisionedThroughput": {"ReadCapacityUnits": table.read_capacity_units,
                                  "WriteCapacityUnits": table.write_capacity_units},
        "BillingMode": table.billing_mode,
    }
    features: dict[str, Any] = {}
    hash_key = table.key_names()[0]
    if table.global_indexes:
        features["GlobalSecondaryIndexes"] = [{
            "IndexName": i.index_name,
            "KeySchema": i.key_schema(),
            "Projection": _projection(i.projection_type, i.non_key_attributes),
            "ProvisionedThroughput": {"ReadCapacityUnits": i.read_capacity_units,
                                      "WriteCapacityUnits": i.write_capacity_units},
        } for i in table.global_indexes]
    if table.local_indexes:
        features["LocalSecondaryIndexes"] = [{
            "IndexName": i.index_name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": i.range_key, "KeyType": "RANGE"}],
            "Projection": _projection(i.projection_type, i.non_key_attributes),
        } for i in table.local_indexes]
    if table.stream_enabled:
        features["StreamDescription"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
    if table.ttl_attribute:
        features["TimeToLiveDescription"] = {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}
    return {"BackupDetails": details, "SourceTableDetails": source, "SourceTableFeatureDetails": features}


def _projection(kind: str, non_key: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"ProjectionType": kind}
    if non_key:
        out["NonKeyAttributes"] = list(non_key)
    return out


def _details(m: dict[str, Any]) -> dict[str, Any]:
    return {"BackupArn": m["backup_arn"], "BackupName": m["name"], "BackupSizeBytes": int(m.get("size_bytes", 0)),
            "BackupStatus": m["status"], "BackupType": m.get("type", "USER"),
            "BackupCreationDateTime": m["created_ms"] / 1000.0}


def summary(m: dict[str, Any], region: str) -> dict[str, Any]:
    """ListBackups' BackupSummary of a manifest."""
    table = TableDefinition.from_record(m["table"])
    return {"TableName": table.table_name, "TableId": table.table_id,
            "TableArn": table_arn(region, table.table_name), "BackupArn": m["backup_arn"],
            "BackupName": m["name"], "BackupCreationDateTime": m["created_ms"] / 1000.0,
            "BackupStatus": m["status"], "BackupType": m.get("type", "USER"),
            "BackupSizeBytes": int(m.get("size_bytes", 0))}


def _public(d: dict[str, Any]) -> dict[str, Any]:
    """An export record without its internal ``_`` fields: DynamoDB's ExportDescription."""
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _load_chunk(fold: PartitionFold, data: bytes) -> None:
    """Load a snapshot chunk's items into ``fold`` (run off the event loop: decompressing and
    writing a chunk's items takes long enough to hold it up)."""
    for line in layout.chunk_lines(data):
        fold.load(*layout.parse_item_line(line))


def _apply_chunk(fold: PartitionFold, data: bytes) -> None:
    """Apply a log chunk's records to ``fold`` in order (off the event loop, as above)."""
    for line in layout.chunk_lines(data):
        offset, value = layout.parse_log_line(line)
        fold.apply(codec.decode_log_record(value), offset)


def _load_share(fold: PartitionFold, parent: PartitionFold, lo: int, hi: int) -> None:
    """Load into a split's child ``fold`` its share (hash range ``lo``..``hi``) of its parent's."""
    for key, raw in parent.items.items():
        if lo <= int.from_bytes(key[:8], "big") <= hi:
            fold.load(key, raw)


class BackupService:
    """One active backup service process (see the module docstring)."""

    def __init__(self, settings: Settings, *, rpc_host: str = "127.0.0.1", rpc_port: int = 0,
                 store: ObjectStore | None = None) -> None:
        self.settings = settings
        #: why the configured store cannot be used (None: it can be opened)
        self.store_problem: str | None = None
        try:
            self.store = store or open_store(settings.backup_store, settings)
        except StoreError as e:  # the service runs and every request says what is wrong
            log.error("backup: %s", e)
            self.store_problem = str(e)
            self.store = open_store("", settings)  # never used while store_problem is set
        self.metadata = Metadata(settings)
        self.writer = MetadataWriter(settings)
        self.catalog = CatalogClient(self.metadata)
        self.routing = Routing(self.metadata)
        self.rpc = RpcServer(self.handle, rpc_host, rpc_port)
        self.rpc_host = rpc_host
        self.handlers = {
            "backup_create": self._rpc_create,
            "backup_describe": self._rpc_describe,
            "backup_list": self._rpc_list,
            "backup_delete": self._rpc_delete,
            "restore_start": self._rpc_restore_start,
            "export_start": self._rpc_export_start,
            "export_describe": self._rpc_export_describe,
            "export_list": self._rpc_export_list,
            "import_start": self._rpc_import_start,
            "import_describe": self._rpc_import_describe,
            "import_list": self._rpc_import_list,
            "status": self._rpc_status,
        }
        #: backup id -> manifest, every backup in the store
        self.backups: dict[str, dict[str, Any]] = {}
        #: export id -> its ExportDescription (and internal ``_`` fields), every export
        self.exports: dict[str, dict[str, Any]] = {}
        #: import id -> its ImportTableDescription, every import
        self.imports: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pitr_task: asyncio.Task[None] | None = None
        #: table id -> when its partitions were last copied for recovery (monotonic)
        self._pitr_last: dict[str, float] = {}
        #: what it did, for status and tests
        self.restored_items = 0
        #: backups and restores running or ended in the last JOBS_KEPT_S, with their progress
        #: (partitions copied or loaded of all; the ``status`` RPC, the console)
        self.jobs: dict[str, dict[str, Any]] = {}
        #: the store's records were read (at start, or at the first request the store answered)
        self._loaded = False

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await ensure_metadata_topics(self.settings)
        await self.metadata.start()
        await self.writer.start()
        if self.store_problem is None:
            try:
                await self._load()
            except (StoreError, OSError, BotoCoreError, ClientError) as e:  # each request says what is wrong
                log.error("backup: the store %s cannot be used now (tried again on the next request): %s",
                          self.store.url, e)
        await self.rpc.start()
        for bid, m in self.backups.items():
            if m["status"] == "CREATING":
                log.info("backup %s was being created; copying it again from the logs", bid)
                self._spawn(f"backup:{bid}", self._finish_backup(m, {}))
        for eid, d in self.exports.items():
            if d["ExportStatus"] == "IN_PROGRESS":
                self._spawn(f"export:{eid}", self._export(d))
        self.metadata.catalog.listen(self._on_table)
        for name, table in list(self.metadata.catalog.items.items()):
            self._on_table(name, table)
        self._pitr_task = asyncio.ensure_future(self._pitr_loop())
        await self.writer.put_node(NodeInfo(node_id=BACKUP_KEY, rpc_address=f"{self.rpc_host}:{self.rpc.port}",
                                            pid=os.getpid(), started_at_ms=int(time.time() * 1000)))
        log.info("backup service on %s:%d, store %s (%d backups)", self.rpc_host, self.rpc.port, self.store.url,
                 len(self.backups))

    async def close(self) -> None:
        await self.rpc.close()
        tasks = [*self._tasks.values(), *([self._pitr_task] if self._pitr_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.routing.close()
        await self.catalog.close()
        await self.metadata.close()
        await self.writer.close()

    def _spawn(self, name: str, coro: Any) -> None:
        task = self._tasks.get(name)
        if task is not None and not task.done():
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks[name] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(name) is t:
                self._tasks.pop(name, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("backup: %s failed: %r", name, t.exception(), exc_info=t.exception())

        task.add_done_callback(done)

    async def _load(self) -> None:
        """Read every backup, export and import record of the store (once it can be reached)."""
        await self.store.check()
        await self._load_backups()
        await self._load_exports()
        self._loaded = True

    async def _load_exports(self) -> None:
        for folder, into, arn in (("exports/", self.exports, "ExportArn"), ("imports/", self.imports, "ImportArn")):
            for key in await self.store.keys(folder):
                try:
                    d = orjson.loads(await self.store.get(key))
                except (KeyError, ValueError) as e:
                    log.warning("backup: skipping %s: %s", key, e)
                    continue
                into[d[arn].rsplit("/", 1)[-1]] = d

    async def _load_backups(self) -> None:
        for key in await self.store.keys("backups/"):
            if key.endswith("/manifest.json"):
                try:
                    m = layout.loads(await self.store.get(key))
                except (KeyError, ValueError) as e:
                    log.warning("backup: skipping %s: %s", key, e)
                    continue
                self.backups[m["backup_id"]] = m

    # -- RPC -----------------------------------------------------------------------------------
    async def handle(self, req: dict[str, Any]) -> Any:
        handler = self.handlers.get(req["op"])
        if handler is None:
            raise errors.validation(f"unknown internal operation {req['op']!r}")
        if self.store_problem is not None and req["op"] != "status":
            raise errors.internal(f"The backup store cannot be used: {self.store_problem}; fix "
                                  "DYNAMOLOG_BACKUP_STORE and restart the backup service")
        try:
            if not self._loaded and req["op"] != "status":
                await self._load()
            return await handler(req)
        except errors.ApiError:
            raise
        except (StoreError, OSError, BotoCoreError, ClientError) as e:
            raise errors.internal(f"The backup store {self.store.url} cannot be used ({e}); check "
                                  "DYNAMOLOG_BACKUP_STORE, AWS_ENDPOINT_URL_S3 and the credentials") from None

    async def _rpc_status(self, req: dict[str, Any]) -> Any:
        return {"backups": len(self.backups), "tasks": sorted(self._tasks), "restored_items": self.restored_items,
                "jobs": [dict(j) for j in sorted(self.jobs.values(), key=lambda j: j["started_ms"])]}

    def _job(self, name: str, kind: str, table: str, parts: int) -> dict[str, Any]:
        """A backup's or restore's progress, shown while it runs and JOBS_KEPT_S after."""
        now_ms = int(time.time() * 1000)
        for k, j in list(self.jobs.items()):
            if j["ended_ms"] is not None and now_ms - j["ended_ms"] > JOBS_KEPT_S * 1000:
                del self.jobs[k]
        job = {"job": name, "kind": kind, "table": table, "state": "IN_PROGRESS", "parts": parts, "parts_done": 0,
               "items": 0, "started_ms": now_ms, "ended_ms": None}
        self.jobs[name] = job
        return job

    @staticmethod
    def _ended(job: dict[str, Any], state: str) -> None:
        job.update(state=state, ended_ms=int(time.time() * 1000))

    async def _rpc_create(self, req: dict[str, Any]) -> Any:
        table = TableDefinition.from_record(req["table"])
        now_ms = int(time.time() * 1000)
        backup_id = f"{now_ms:014d}-{uuid.uuid4().hex[:8]}"
        parts = self.metadata.table_partitions(table.table_id)
        snaps = []
        try:
            for part in parts:
                snaps.append(await open_snapshot(self.routing, part))
            # the cut: read after every snapshot was opened, so each snapshot is at or below it
            cuts = await end_offsets(self.settings, [p.log_topic for p in parts])
        except Exception as e:  # noqa: BLE001 - the request fails whole; nothing was written
            for s in snaps:
                await close_snapshot(s)
            log.warning("backup of %s could not start: %r", table.table_name, e)
            raise errors.internal("The table's partitions could not be read; retry the request") from None
        m: dict[str, Any] = {
            "format": layout.FORMAT, "backup_id": backup_id,
            "backup_arn": layout.backup_arn(table_arn(self.settings.region, table.table_name), backup_id),
            "name": req["name"], "type": "USER", "status": "CREATING", "created_ms": now_ms,
            "table": table.to_record(),
            "parts": {p.partition_id: {"topic": p.log_topic, "cut": cuts[p.log_topic]} for p in parts},
        }
        try:
            await self.store.put(layout.backup_manifest_key(backup_id), layout.dumps(m))
        except Exception:
            for s in snaps:
                await close_snapshot(s)
            raise
        self.backups[backup_id] = m
        self._spawn(f"backup:{backup_id}", self._finish_backup(m, {s.part.partition_id: s for s in snaps}))
        log.info("backup %s of %s: cut at %s", backup_id, table.table_name,
                 {pid: p["cut"] for pid, p in m["parts"].items()})
        return {"BackupDetails": _details(m)}

    async def _finish_backup(self, m: dict[str, Any], snaps: dict[str, Any]) -> None:
        """Copy every partition's snapshot and log up to its cut, then mark the backup AVAILABLE."""
        t0 = time.monotonic()
        prefix = layout.backup_prefix(m["backup_id"])
        job = self._job(f"backup:{m['backup_id']}", "backup", m["table"]["table_name"], len(m["parts"]))
        try:
            size = items = 0
            for pid, part in m["parts"].items():
                snap = snaps.pop(pid, None)
                start = 0
                part["snapshot"] = None
                if snap is not None and snap.offset <= part["cut"]:
                    part["snapshot"] = await copy_snapshot(snap, self.store, f"{prefix}{pid}/",
                                                             duty=self.settings.backup_duty)
                    start = snap.offset
                    size += part["snapshot"]["bytes"]
                    items += part["snapshot"]["items"]
                if snap is not None:
                    await close_snapshot(snap)
                part["log"] = await copy_log(self.settings, part["topic"], start, part["cut"], self.store,
                                             f"{prefix}{pid}/", duty=self.settings.backup_duty)
                size += part["log"]["bytes"]
                job.update(parts_done=job["parts_done"] + 1, items=items)
                faults.point("backup.copied", pid)
        except BaseException:
            self._ended(job, "FAILED")
            raise
        finally:
            for snap in snaps.values():
                await close_snapshot(snap)
        m.update(status="AVAILABLE", size_bytes=size, item_count=items, table_bytes=size,
                 available_ms=int(time.time() * 1000))
        await self.store.put(layout.backup_manifest_key(m["backup_id"]), layout.dumps(m))
        self._ended(job, "AVAILABLE")
        log.info("backup %s AVAILABLE: %d bytes, %d snapshot items, in %.2f s", m["backup_id"], size, items,
                 time.monotonic() - t0)

    def _backup(self, arn: Any) -> dict[str, Any]:
        bid = layout.backup_id_of(arn) if isinstance(arn, str) else None
        m = self.backups.get(bid or "")
        if m is None or m["backup_arn"] != arn:
            raise backup_not_found(str(arn))
        return m

    async def _rpc_describe(self, req: dict[str, Any]) -> Any:
        m = self._backup(req["arn"])
        out = describe_backup(m, self.settings.region)
        if req.get("source"):
            out["table"] = m["table"]  # the router builds a restore's target from it
        return out

    async def _rpc_list(self, req: dict[str, Any]) -> Any:
        table_name = req.get("table_name")
        lo, hi = req.get("lo_ms"), req.get("hi_ms")
        kind = req.get("type") or "USER"
        ms = sorted(self.backups.values(), key=lambda m: (m["created_ms"], m["backup_id"]))
        out = []
        for m in ms:
            if table_name is not None and m["table"]["table_name"] != table_name:
                continue
            if (lo is not None and m["created_ms"] < lo) or (hi is not None and m["created_ms"] > hi):
                continue
            if kind != "ALL" and m.get("type", "USER") != kind:
                continue
            out.append(m)
        start = req.get("start_arn")
        if start is not None:
            ids = [m["backup_arn"] for m in out]
            out = out[ids.index(start) + 1:] if start in ids else [m for m in out if m["backup_arn"] > start]
        limit = int(req.get("limit") or 100)
        answer: dict[str, Any] = {"BackupSummaries": [summary(m, self.settings.region) for m in out[:limit]]}
        if len(out) > limit:
            answer["LastEvaluatedBackupArn"] = out[limit - 1]["backup_arn"]
        return answer

    def _restores_from(self, backup_id: str) -> list[str]:
        """Tables being restored from this backup now."""
        out = []
        for name, t in self.metadata.catalog.items.items():
            if t.restoring and t.restore_summary:
                src = orjson.loads(t.restore_summary).get("_source", {})
                if src.get("backup_id") == backup_id:
                    out.append(name)
        return out

    async def _rpc_delete(self, req: dict[str, Any]) -> Any:
        m = self._backup(req["arn"])
        if m["status"] == "CREATING":
            raise backup_in_use(m["backup_arn"], "created")
        if self._restores_from(m["backup_id"]):
            raise backup_in_use(m["backup_arn"], "restored to a table")
        prefix = layout.backup_prefix(m["backup_id"])
        keys = await self.store.keys(prefix)
        manifest = layout.backup_manifest_key(m["backup_id"])
        # the chunks first, the manifest last: a crash in between leaves a backup that lists
        # chunks it no longer has, never chunks no manifest lists; DeleteBackup again finishes it
        await self.store.delete([k for k in keys if k != manifest])
        await self.store.delete([manifest])
        self.backups.pop(m["backup_id"], None)
        out = describe_backup(m, self.settings.region)
        out["BackupDetails"]["BackupStatus"] = "DELETED"
        return out

    async def _rpc_restore_start(self, req: dict[str, Any]) -> Any:
        table = self.metadata.catalog.items.get(req["table"])
        if table is None or not table.restoring:
            await self.metadata.catalog.wait_until(
                lambda: getattr(self.metadata.catalog.items.get(req["table"]), "restoring", False), 10.0)
            table = self.metadata.catalog.items.get(req["table"])
        if table is not None and table.restoring:
            self._spawn(f"restore:{table.table_name}", self._restore(table))
        return {}

    # -- restores -------------------------------------------------------------------------------
    def _on_table(self, name: str, table: TableDefinition | None) -> None:
        if table is not None and table.restoring and table.status == "CREATING":
            self._spawn(f"restore:{name}", self._restore(table))

    async def _restore(self, table: TableDefinition) -> None:
        t0 = time.monotonic()
        src: dict[str, Any] = orjson.loads(table.restore_summary or "{}").get("_source", {})
        parts = await self._wait_partitions(table)
        loaded = 0
        job: dict[str, Any] | None = None
        if "import_id" in src:
            d = self.imports.get(src["import_id"])
            if d is None:
                await asyncio.sleep(1)  # the router records the import right after the table
                d = self.imports.get(src["import_id"])
            if d is None:
                raise RuntimeError(f"import into {table.table_name}: import {src['import_id']} is unknown")
            if not await self._import(table, parts, d):
                return
            loaded = int(d.get("ImportedItemCount", 0))
        elif "backup_id" in src:
            m = self.backups.get(src["backup_id"])
            if m is None:
                raise RuntimeError(f"restore of {table.table_name}: backup {src['backup_id']} is gone")
            job = self._job(f"restore:{table.table_name}", "restore", table.table_name, len(m["parts"]))
            try:
                for pid, part in m["parts"].items():
                    fold = await self._fold_backup_part(part)
                    try:
                        loaded += await self._write_items(table, parts, fold.items.items())
                    finally:
                        fold.close()
                    job.update(parts_done=job["parts_done"] + 1, items=loaded)
                    faults.point("restore.loaded", pid)
            except BaseException:
                self._ended(job, "FAILED")
                raise
        else:
            lineage = src.get("lineage") or {}
            split = {str(v[0]) for v in lineage.values() if v[0]}
            job = self._job(f"restore:{table.table_name}", "restore to a point in time", table.table_name,
                            len([p for p in src["topics"] if p not in split]))
            try:
                loaded = await self._restore_to_time(table, parts, src, job)
            except BaseException:
                self._ended(job, "FAILED")
                raise

        def publish(current: TableDefinition | None) -> TableDefinition | None:
            if current is None or current.table_id != table.table_id or not current.restoring:
                return None
            done = orjson.loads(current.restore_summary or "{}")
            if "RestoreInProgress" in done:
                done["RestoreInProgress"] = False
            return replace(current, status="ACTIVE", restoring=False, restore_summary=orjson.dumps(done).decode())

        await self.catalog.change(table.table_name, publish)
        if job is not None:
            self._ended(job, "ACTIVE")
        self.restored_items += loaded
        log.info("restore of %s ACTIVE: %d items in %.2f s", table.table_name, loaded, time.monotonic() - t0)

    async def _wait_partitions(self, table: TableDefinition) -> list[PartitionInfo]:
        """The new table's partitions once the auto-admin has published and opened them."""
        deadline = time.monotonic() + 300
        while True:
            parts = self.metadata.table_partitions(table.table_id)
            if len(parts) == len(table.partition_ids) and all(p.state == "ACTIVE" for p in parts):
                return parts
            if time.monotonic() > deadline:
                raise TimeoutError(f"restore of {table.table_name}: its partitions were not provisioned")
            await asyncio.sleep(0.2)

    async def _fold_backup_part(self, part: dict[str, Any]) -> PartitionFold:
        snap = part.get("snapshot")
        fold = PartitionFold(Term.decode(snap["term"]) or ORIGIN if snap else ORIGIN,
                             work_dir=self.settings.backup_work_dir)
        try:
            for name in (snap or {}).get("chunks", []):
                await layout.off_loop(_load_chunk, fold, await self.store.get(name))
            for name in part["log"]["chunks"]:
                await layout.off_loop(_apply_chunk, fold, await self.store.get(name))
        except BaseException:
            fold.close()
            raise
        return fold

    async def _restore_to_time(self, table: TableDefinition, parts: list[PartitionInfo],
                               src: dict[str, Any], job: dict[str, Any]) -> int:
        loaded = 0
        async for pid, fold in self._folds_at(src["table_id"], src["topics"], int(src["until_ms"]),
                                              src.get("lineage")):
            loaded += await self._write_items(table, parts, fold.items.items())
            job.update(parts_done=job["parts_done"] + 1, items=loaded)
            faults.point("restore.loaded", pid)
        return loaded

    async def _folds_at(self, table_id: str, topics: dict[str, str], until_ms: int,
                        lineage: dict[str, list[Any]] | None = None,
                        window: tuple[int, int] | None = None) -> AsyncIterator[tuple[str, PartitionFold]]:
        """Each partition's items at ``until_ms``: the newest recovery copy at or before it,
        then the log after it, every record stamped at or before it.  With splits (``lineage``:
        each partition's parent and hash range, parents first), a child without a recovery copy
        of its own starts from its share of its parent's fold, and only the partitions that were
        not split are answered (docs/decisions/0039-partition-splits.md).  With ``window``
        (an incremental export's from and to, ``until_ms`` = to - 1) each fold also keeps the
        items changed in it.  Each fold answered is closed when the caller asks for the next."""
        lineage = lineage or {}
        parents = {str(v[0]) for v in lineage.values() if v[0]}
        done: dict[str, PartitionFold] = {}
        # every write stamped at or before until_ms has reached its log once the clock is past
        # it by the settle time (docs/guarantees.md)
        wait_s = (until_ms + self.settings.pitr_settle_ms) / 1000 - time.time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        ends = await end_offsets(self.settings, list(topics.values()))
        try:
            for pid, topic in topics.items():
                fold, start = await self._pitr_base(table_id, pid, until_ms, window)
                parent = lineage.get(pid, [None])[0]
                if start == 0 and parent in done:
                    await layout.off_loop(_load_share, fold, done[parent], int(lineage[pid][1]),
                                            int(lineage[pid][2]))

                def on_record(offset: int, value: bytes, fold: PartitionFold = fold) -> None:
                    fold.apply(codec.decode_log_record(value), offset)

                n = await read_log(self.settings, topic, start, ends[topic], on_record)
                log.info("partition %s at %d ms: from offset %d, %d records replayed (%d after the time)",
                         pid, until_ms, start, n, fold.skipped_late)
                if pid in parents:
                    done[pid] = fold  # its children go on from it
                else:
                    try:
                        yield pid, fold
                    finally:
                        fold.close()
        finally:
            for fold in done.values():
                fold.close()

    async def _pitr_base(self, table_id: str, pid: str, until_ms: int,
                         window: tuple[int, int] | None = None) -> tuple[PartitionFold, int]:
        """The newest recovery snapshot of the partition whose records are all at or before
        ``until_ms`` (before the window's start for an incremental export), loaded, and the
        offset to replay from (none: offset 0)."""
        best: dict[str, Any] | None = None
        base_ms = until_ms if window is None else window[0] - 1
        for m in await self._pitr_snapshots(table_id, pid):
            if m["max_ts"] <= base_ms and (best is None or m["offset"] > best["offset"]):
                best = m
        work = self.settings.backup_work_dir
        if best is None:
            return PartitionFold(ORIGIN, until_ms, work_dir=work, window=window), 0
        fold = PartitionFold(Term.decode(best["term"]) or ORIGIN, until_ms, work_dir=work, window=window)
        try:
            for name in best["chunks"]:
                await layout.off_loop(_load_chunk, fold, await self.store.get(name))
        except BaseException:
            fold.close()
            raise
        return fold, int(best["offset"])

    async def _pitr_snapshots(self, table_id: str, pid: str) -> list[dict[str, Any]]:
        out = []
        for key in await self.store.keys(layout.pitr_prefix(table_id, pid)):
            if key.endswith("/manifest.json"):
                out.append(layout.loads(await self.store.get(key)))
        return sorted(out, key=lambda m: int(m["offset"]))

    async def _write_items(self, table: TableDefinition, parts: list[PartitionInfo],
                           items: Iterable[tuple[bytes, bytes]]) -> int:
        """Put every item into the new table through its partitions' leaders, a batch at a
        time: at most ``RESTORE_WRITES_PER_REQUEST`` items or ``RESTORE_BATCH_BYTES`` per request,
        ``RESTORE_REQUESTS_IN_FLIGHT`` requests at once, so memory stays bounded whatever the
        table's size."""
        info = {p.partition_id: p for p in parts}
        pending: dict[str, tuple[list[dict[str, Any]], int]] = {}
        in_flight: set[asyncio.Task[Any]] = set()
        count = 0

        sizes: dict[asyncio.Task[Any], int] = {}

        async def send(pid: str, writes: list[dict[str, Any]], size: int) -> None:
            while in_flight and (len(in_flight) >= RESTORE_REQUESTS_IN_FLIGHT
                                 or sum(sizes.values()) + size > RESTORE_BYTES_IN_FLIGHT):
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight.difference_update(done)
                for t in done:
                    sizes.pop(t, None)
                    t.result()  # a failed write fails the restore
            task = asyncio.ensure_future(self.routing.call(table, info[pid], "write_batch", leader=True, writes=writes))
            in_flight.add(task)
            sizes[task] = size

        for key, raw in items:
            pid = self.routing.partition_for_item_key(table, key).partition_id
            writes, size = pending.get(pid, ([], 0))
            writes.append({"key": base64.b64encode(key).decode(), "kind": "put", "item": orjson.loads(raw),
                           "keyattrs": {}})
            size += len(raw)
            count += 1
            if len(writes) >= RESTORE_WRITES_PER_REQUEST or size >= RESTORE_BATCH_BYTES:
                pending.pop(pid, None)
                await send(pid, writes, size)
            else:
                pending[pid] = (writes, size)
        for pid, (writes, size) in pending.items():
            await send(pid, writes, size)
        for t in asyncio.as_completed(list(in_flight)):
            await t
        return count

    # -- exports ----------------------------------------------------------------------------------
    async def _rpc_export_start(self, req: dict[str, Any]) -> Any:
        table = TableDefinition.from_record(req["table"])
        token = req.get("client_token")
        if token:
            for known in self.exports.values():
                if known.get("ClientToken") == token and known["TableArn"] == table_arn(self.settings.region,
                                                                                        table.table_name):
                    return _public(known)
        now_ms = int(time.time() * 1000)
        export_id = f"{now_ms:014d}-{uuid.uuid4().hex[:8]}"
        d: dict[str, Any] = {
            "ExportArn": f"{table_arn(self.settings.region, table.table_name)}/export/{export_id}",
            "ExportStatus": "IN_PROGRESS", "StartTime": now_ms / 1000,
            "TableArn": table_arn(self.settings.region, table.table_name), "TableId": table.table_id,
            "ExportTime": int(req["until_ms"]) / 1000, "S3Bucket": req["bucket"],
            "S3SseAlgorithm": req.get("sse") or "AES256", "ExportFormat": "DYNAMODB_JSON",
            "ExportType": "FULL_EXPORT", "_topics": req["topics"], "_until_ms": int(req["until_ms"]),
            "_lineage": req.get("lineage"), "_key_names": list(table.key_names()),
        }
        if req.get("incremental"):
            inc = req["incremental"]  # from_ms, to_ms, view
            d.pop("ExportTime")
            d.update(ExportType="INCREMENTAL_EXPORT", _until_ms=int(inc["to_ms"]) - 1,
                     _window=[int(inc["from_ms"]), int(inc["to_ms"])],
                     IncrementalExportSpecification={"ExportFromTime": int(inc["from_ms"]) / 1000,
                                                     "ExportToTime": int(inc["to_ms"]) / 1000,
                                                     "ExportViewType": inc["view"]})
        if req.get("prefix"):
            d["S3Prefix"] = req["prefix"]
        if token:
            d["ClientToken"] = token
        await self.store.put(f"exports/{export_id}.json", orjson.dumps(d))
        self.exports[export_id] = d
        self._spawn(f"export:{export_id}", self._export(d))
        return _public(d)

    async def _export(self, d: dict[str, Any]) -> None:
        from .export import export_root, full_lines, incremental_lines, iso, write_manifests, write_partition
        from .store import S3Store

        t0 = time.monotonic()
        export_id = d["ExportArn"].rsplit("/", 1)[-1]
        root = export_root(d.get("S3Prefix"), export_id)
        window = (int(d["_window"][0]), int(d["_window"][1])) if d.get("_window") else None
        spec = d.get("IncrementalExportSpecification") or {}
        try:
            dest = S3Store(d["S3Bucket"], "", self.settings.s3_endpoint_url or None, self.settings.region)
            await dest.put(root + "_started", b"")
            files: list[dict[str, Any]] = []
            async for pid, fold in self._folds_at(d["TableId"], d["_topics"], d["_until_ms"], d.get("_lineage"),
                                                  window):
                if window is None:
                    lines = full_lines(fold.items.values())
                else:
                    keys = [k for k in d["_key_names"] if k]
                    lines = incremental_lines(fold.changes(), keys, spec["ExportViewType"])
                files += await write_partition(dest, root, pid, lines, export_id=export_id,
                                               incremental=window is not None)
            end_ms = int(time.time() * 1000)
            items = sum(f["itemCount"] for f in files)
            size = sum(f["bytes"] for f in files)
            summary: dict[str, Any] = {
                "version": "2020-06-30", "exportArn": d["ExportArn"],
                "startTime": iso(int(d["StartTime"] * 1000)), "endTime": iso(end_ms), "tableArn": d["TableArn"],
                "tableId": d["TableId"], "exportTime": iso(d["_until_ms"] if window is None else window[1]),
                "s3Bucket": d["S3Bucket"], "s3Prefix": d.get("S3Prefix"), "s3SseAlgorithm": d["S3SseAlgorithm"],
                "s3SseKmsKeyId": None, "manifestFilesS3Key": root + "manifest-files.json",
                "billedSizeBytes": size, "itemCount": items, "outputFormat": "DYNAMODB_JSON",
                "exportType": d["ExportType"]}
            if window is not None:
                summary.update(exportFromTime=iso(window[0]), exportToTime=iso(window[1]),
                               outputView=spec["ExportViewType"])
            await write_manifests(dest, root, files, summary)
            d.update(ExportStatus="COMPLETED", EndTime=end_ms / 1000, ItemCount=items, BilledSizeBytes=size,
                     ExportManifest=root + "manifest-summary.json")
            log.info("export %s COMPLETED: %d items in %.2f s", export_id, items, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - the export fails and says why
            log.warning("export %s FAILED: %r", export_id, e)
            d.update(ExportStatus="FAILED", EndTime=time.time(), FailureCode="S3ExportFailed",
                     FailureMessage=f"The export could not be written to s3://{d['S3Bucket']}: {e}")
        await self.store.put(f"exports/{export_id}.json", orjson.dumps(d))

    async def _rpc_export_describe(self, req: dict[str, Any]) -> Any:
        arn = req["arn"]
        d = self.exports.get(arn.rsplit("/", 1)[-1])
        if d is None or d["ExportArn"] != arn:
            raise errors.ApiError("ExportNotFoundException", f"Export not found: {arn}")
        return _public(d)

    async def _rpc_export_list(self, req: dict[str, Any]) -> Any:
        ds = sorted(self.exports.values(), key=lambda d: d["ExportArn"].rsplit("/", 1)[-1])
        if req.get("table_arn"):
            ds = [d for d in ds if d["TableArn"] == req["table_arn"]]
        start = req.get("next_token")
        if start:
            ds = [d for d in ds if d["ExportArn"].rsplit("/", 1)[-1] > start]
        limit = int(req.get("limit") or 25)
        out: dict[str, Any] = {"ExportSummaries": [
            {"ExportArn": d["ExportArn"], "ExportStatus": d["ExportStatus"], "ExportType": d["ExportType"]}
            for d in ds[:limit]]}
        if len(ds) > limit:
            out["NextToken"] = ds[limit - 1]["ExportArn"].rsplit("/", 1)[-1]
        return out

    # -- imports ----------------------------------------------------------------------------------
    async def _rpc_import_start(self, req: dict[str, Any]) -> Any:
        d: dict[str, Any] = req["description"]
        import_id = d["ImportArn"].rsplit("/", 1)[-1]
        if import_id not in self.imports:
            await self.store.put(f"imports/{import_id}.json", orjson.dumps(d))
            self.imports[import_id] = d
        table = self.metadata.catalog.items.get(d["TableCreationParameters"]["TableName"])
        if table is not None and table.restoring:
            self._spawn(f"restore:{table.table_name}", self._restore(table))
        return _public(self.imports[import_id])

    async def _import(self, table: TableDefinition, parts: list[PartitionInfo], d: dict[str, Any]) -> bool:
        """Load the import's objects into the table; False when it failed (the table is deleted)."""
        from .imports import decompress, parse_object
        from .store import S3Store

        import_id = d["ImportArn"].rsplit("/", 1)[-1]
        src = d["S3BucketSource"]
        hash_key, range_key = table.key_names()
        types = table.attribute_types()
        keys = [(hash_key, types[hash_key])] + ([(range_key, types[range_key])] if range_key else [])
        csv_opts = (d.get("InputFormatOptions") or {}).get("Csv") or {}
        items = SpillItems(self.settings.backup_work_dir)  # a later line with the same key wins
        processed = bad = size = 0
        try:
            s3 = S3Store(src["S3Bucket"], "", self.settings.s3_endpoint_url or None, self.settings.region)
            for key in await s3.keys(src.get("S3KeyPrefix") or ""):
                if key.endswith("/"):
                    continue
                data = await s3.get(key)
                size += len(data)
                text = decompress(data, d.get("InputCompressionType") or "NONE")
                for row in parse_object(text, d["InputFormat"], keys, csv_opts.get("Delimiter") or ",",
                                        csv_opts.get("HeaderList")):
                    processed += 1
                    if row is None:
                        bad += 1
                    else:
                        items[row[0]] = orjson.dumps(row[1])
            if bad:
                log.warning("import %s: %d of %d lines in error (skipped)", import_id, bad, processed)
            imported = await self._write_items(table, parts, items.items())
            d.update(ImportStatus="COMPLETED", ProcessedItemCount=processed, ImportedItemCount=imported,
                     ErrorCount=bad, ProcessedSizeBytes=size, EndTime=time.time())
            ok = True
        except Exception as e:  # noqa: BLE001 - the import fails, says why, and leaves no table
            log.warning("import %s FAILED: %r", import_id, e)
            d.update(ImportStatus="FAILED", EndTime=time.time(), FailureCode="S3ImportFailed",
                     FailureMessage=f"The objects could not be read from s3://{src['S3Bucket']}: {e}",
                     ProcessedItemCount=processed, ErrorCount=bad, ProcessedSizeBytes=size)
            ok = False
        finally:
            items.close()
        if not ok:

            def drop(current: TableDefinition | None) -> TableDefinition | None:
                if current is None or current.table_id != table.table_id:
                    return None
                return replace(current, status="DELETING", restoring=False)

            await self.catalog.change(table.table_name, drop)
        await self.store.put(f"imports/{import_id}.json", orjson.dumps(d))
        return ok

    async def _rpc_import_describe(self, req: dict[str, Any]) -> Any:
        arn = req["arn"]
        d = self.imports.get(arn.rsplit("/", 1)[-1])
        if d is None or d["ImportArn"] != arn:
            raise errors.ApiError("ImportNotFoundException", f"Import not found: {arn}")
        return _public(d)

    async def _rpc_import_list(self, req: dict[str, Any]) -> Any:
        ds = sorted(self.imports.values(), key=lambda d: d["ImportArn"].rsplit("/", 1)[-1])
        if req.get("table_arn"):
            ds = [d for d in ds if d["TableArn"] == req["table_arn"]]
        if req.get("next_token"):
            ds = [d for d in ds if d["ImportArn"].rsplit("/", 1)[-1] > req["next_token"]]
        limit = int(req.get("limit") or 25)
        fields = ("ImportArn", "ImportStatus", "TableArn", "S3BucketSource", "InputFormat", "StartTime", "EndTime")
        out: dict[str, Any] = {"ImportSummaryList": [{k: d[k] for k in fields if k in d} for d in ds[:limit]]}
        if len(ds) > limit:
            out["NextToken"] = ds[limit - 1]["ImportArn"].rsplit("/", 1)[-1]
        return out

    # -- point-in-time recovery snapshots ----------------------------------------------------------
    async def _pitr_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.settings.pitr_snapshot_s))
            for table in list(self.metadata.catalog.items.values()):
                if not table.pitr_enabled or table.status != "ACTIVE":
                    continue
                last = self._pitr_last.get(table.table_id)
                if last is not None and time.monotonic() - last < self.settings.pitr_snapshot_s:
                    continue
                self._pitr_last[table.table_id] = time.monotonic()
                try:
                    await self.pitr_snapshot(table)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the next round tries again
                    log.warning("backup: recovery snapshot of %s failed: %r", table.table_name, e)

    async def pitr_snapshot(self, table: TableDefinition) -> None:
        """Copy each partition's state for point-in-time recovery, and drop copies older than
        the recovery period needs."""
        now_ms = int(time.time() * 1000)
        for part in self.metadata.table_partitions(table.table_id):
            pid = part.partition_id
            previous = await self._pitr_snapshots(table.table_id, pid)
            prev = previous[-1] if previous else None
            snap = await open_snapshot(self.routing, part)
            try:
                if prev is not None and snap.offset <= int(prev["offset"]):
                    continue
                prefix = layout.pitr_snapshot_prefix(table.table_id, pid, snap.offset)
                copied = await copy_snapshot(snap, self.store, prefix, duty=self.settings.backup_duty)
            finally:
                await close_snapshot(snap)
            # the greatest timestamp below the offset: the previous copy's, and the log since it
            max_ts = int(prev["max_ts"]) if prev is not None else -1
            start = int(prev["offset"]) if prev is not None else 0

            def on_record(_offset: int, value: bytes) -> None:
                nonlocal max_ts
                max_ts = max(max_ts, int(codec.decode_log_record(value)["timestamp_ms"]))

            await read_log(self.settings, part.log_topic, start, snap.offset, on_record,
                           Duty(self.settings.backup_duty).rest)
            manifest = {"format": layout.FORMAT, **copied, "max_ts": max_ts, "taken_ms": now_ms}
            await self.store.put(prefix + "manifest.json", layout.dumps(manifest))
            # keep every copy taken within the period, and the newest one before it
            horizon = now_ms - table.pitr_recovery_days * 86_400_000
            old = [m for m in previous if int(m["taken_ms"]) < horizon]
            for m in old[:-1]:
                p = layout.pitr_snapshot_prefix(table.table_id, pid, int(m["offset"]))
                keys = await self.store.keys(p)
                await self.store.delete([k for k in keys if not k.endswith("manifest.json")])
                await self.store.delete([p + "manifest.json"])
            log.info("backup: recovery snapshot of %s at offset %d (%d items)", pid, snap.offset, copied["items"])
