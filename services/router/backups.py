"""Backups, restores and point-in-time recovery: the router's side.

The router validates each request (services/router/requests/backups.py) and looks its tables up
in the cached catalog, answering DynamoDB's errors before any work starts, then:

- CreateBackup, DescribeBackup, ListBackups, DeleteBackup go to the backup service
  (:mod:`dynamolog.backup_client`), which holds the backups;
- a restore builds the target's definition from the source's (the backup's copy, or the source
  table's) with the overrides, checked exactly as CreateTable checks its parameters, creates it
  through the auto-admin with ``restoring`` set (it stays CREATING: decision 0028), then tells the
  backup service to load it; the backup service publishes it ACTIVE when it is loaded;
- UpdateContinuousBackups is a catalog change (the auto-admin publishes it); the backup service
  follows the catalog and starts or stops copying the table's partitions.
  DescribeContinuousBackups answers from the catalog.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from dynamolog import errors
from dynamolog.backup_client import BackupClient
from dynamolog.catalog import ACCOUNT, PartitionInfo, TableDefinition, parse_arn, table_arn
from dynamolog.config import Settings

from .requests import backups as req
from .tables import Tables, describe

DAY_MS = 86_400_000


def table_not_found(name: str) -> errors.ApiError:
    return errors.ApiError("TableNotFoundException", f"Table not found: {name}")


def table_in_use(table: TableDefinition) -> errors.ApiError:
    doing = {"CREATING": "created", "DELETING": "deleted"}.get(table.status, "updated")
    return errors.ApiError("TableInUseException", f"Table is being {doing}: {table.table_name}")


def table_exists(name: str) -> errors.ApiError:
    return errors.ApiError("TableAlreadyExistsException", f"Table already exists: {name}")


def continuous_backups(table: TableDefinition, settings: Settings, now_ms: int | None = None) -> dict[str, Any]:
    """DescribeContinuousBackups' ContinuousBackupsDescription of a table."""
    pitr: dict[str, Any] = {"PointInTimeRecoveryStatus": "ENABLED" if table.pitr_enabled else "DISABLED"}
    if table.pitr_enabled:
        earliest, latest = restorable_window(table, settings, now_ms)
        pitr.update(RecoveryPeriodInDays=table.pitr_recovery_days, EarliestRestorableDateTime=earliest / 1000,
                    LatestRestorableDateTime=latest / 1000)
    return {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": pitr}


def restorable_window(table: TableDefinition, settings: Settings, now_ms: int | None = None) -> tuple[int, int]:
    """(earliest, latest) restorable time in ms: from when recovery was turned on (at most the
    recovery period back) to the clock less the settle time (every write stamped before it has
    reached its log, docs/guarantees.md)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    latest = now_ms - settings.pitr_settle_ms
    earliest = max(int(table.pitr_enabled_ms or now_ms), now_ms - table.pitr_recovery_days * DAY_MS)
    return min(earliest, latest), latest


def lineage(parts: list[PartitionInfo]) -> dict[str, list[Any]]:
    """Each partition's parent and hash range (split ones included, parents first): a restore to
    a point in time folds a child's log on its share of its parent's items."""
    return {q.partition_id: [q.parent, q.hash_start, q.hash_end] for q in parts}


class Backups:
    """The backup operations of a router."""

    def __init__(self, settings: Settings, tables: Tables, client: BackupClient) -> None:
        self.settings = settings
        self.tables = tables
        self.client = client

    def _name(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            region, account, name = parse_arn(name_or_arn)
            if region != self.settings.region or account != ACCOUNT:
                raise table_not_found(name_or_arn)
            return name
        return name_or_arn

    def _source(self, name_or_arn: str) -> TableDefinition:
        name = self._name(name_or_arn)
        table = self.tables.metadata.catalog.items.get(name)
        if table is None:
            raise table_not_found(name)
        return table

    # -- on-demand backups ---------------------------------------------------------------------
    async def create_backup(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_create_backup(p)
        table = self._source(r.table)
        if table.status in ("CREATING", "DELETING"):
            raise table_in_use(table)
        return dict(await self.client.call("backup_create", retry_lost=False, table=table.to_record(),
                                           name=r.backup_name))

    async def describe_backup(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = req.parse_backup_arn(p)
        return {"BackupDescription": await self.client.call("backup_describe", arn=arn)}

    async def list_backups(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_list_backups(p)
        return dict(await self.client.call("backup_list", table_name=r.table_name, lo_ms=r.lower_ms,
                                           hi_ms=r.upper_ms, type=r.backup_type, start_arn=r.start_arn,
                                           limit=r.limit))

    async def delete_backup(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = req.parse_backup_arn(p)
        return {"BackupDescription": await self.client.call("backup_delete", arn=arn)}

    # -- restores ---------------------------------------------------------------------------------
    async def restore_table_from_backup(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_restore_from_backup(p)
        self._check_target(r.target)
        source = await self.client.call("backup_describe", arn=r.backup_arn, source=True)
        if source["BackupDetails"]["BackupStatus"] != "AVAILABLE":
            raise errors.ApiError("BackupInUseException", f"Backup is being created: {r.backup_arn}")
        definition = TableDefinition.from_record(source["table"])
        backup_id = r.backup_arn.rsplit("/", 1)[-1]
        summary = {"SourceBackupArn": r.backup_arn, "RestoreDateTime": time.time(), "RestoreInProgress": True,
                   "_source": {"backup_id": backup_id}}
        return await self._restore(definition, r.target, r.overrides, summary)

    async def restore_table_to_point_in_time(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_restore_to_point_in_time(p)
        source = self._source(r.source)
        self._check_target(r.target)
        if not source.pitr_enabled:
            raise errors.ApiError("PointInTimeRecoveryUnavailableException",
                                  f"Point in time recovery is not enabled for table '{source.table_name}'")
        earliest, latest = restorable_window(source, self.settings)
        when = latest if r.restore_ms is None else r.restore_ms
        if not earliest <= when <= latest:
            raise errors.ApiError("InvalidRestoreTimeException",
                                  "Invalid restore time specified: RestoreDateTime must be between "
                                  "EarliestRestorableDateTime and LatestRestorableDateTime")
        parts = self.tables.metadata.table_lineage(source.table_id)
        summary = {"SourceTableArn": table_arn(self.settings.region, source.table_name),
                   "RestoreDateTime": when / 1000, "RestoreInProgress": True,
                   "_source": {"table_id": source.table_id, "until_ms": when,
                               "topics": {q.partition_id: q.log_topic for q in parts}, "lineage": lineage(parts)}}
        return await self._restore(source, r.target, r.overrides, summary)

    def _check_target(self, name: str) -> None:
        current = self.tables.metadata.catalog.items.get(name)
        if current is not None:
            raise table_in_use(current) if current.status in ("CREATING", "DELETING") else table_exists(name)

    async def _restore(self, source: TableDefinition, target: str, o: req.Overrides,
                       summary: dict[str, Any]) -> dict[str, Any]:
        table = replace(self.tables._validate_create(_create_request(source, target, o)), restoring=True,
                        restore_summary=orjson.dumps(summary).decode())

        def create(current: TableDefinition | None) -> TableDefinition | None:
            if current is not None:
                if current.table_id == table.table_id:
                    return None  # this request's own table (an answer that was lost)
                raise table_in_use(current) if current.status in ("CREATING", "DELETING") else table_exists(target)
            return table

        await self.tables.catalog.change(target, create)
        await self.client.call("restore_start", table=target)
        return {"TableDescription": describe(table, self.settings.region)}

    # -- exports ------------------------------------------------------------------------------------
    async def export_table_to_point_in_time(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_export(p)
        source = self._source(r.table_arn)
        if not source.pitr_enabled:
            raise errors.ApiError("PointInTimeRecoveryUnavailableException",
                                  f"Point in time recovery is not enabled for table '{source.table_name}'")
        earliest, latest = restorable_window(source, self.settings)
        incremental = None
        if r.incremental is not None:
            incremental = incremental_window(r.incremental, earliest, latest, self.settings)
            when = incremental["to_ms"] - 1
        else:
            when = int(time.time() * 1000) - self.settings.pitr_settle_ms if r.export_ms is None else r.export_ms
            if not earliest <= when <= latest + self.settings.pitr_settle_ms:
                raise errors.ApiError("InvalidExportTimeException",
                                      "Invalid export time specified: ExportTime must be between "
                                      "EarliestRestorableDateTime and LatestRestorableDateTime")
        parts = self.tables.metadata.table_lineage(source.table_id)
        d = await self.client.call("export_start", retry_lost=r.client_token is not None, table=source.to_record(),
                                   topics={q.partition_id: q.log_topic for q in parts}, lineage=lineage(parts),
                                   until_ms=when, incremental=incremental,
                                   bucket=r.bucket, prefix=r.prefix, client_token=r.client_token, sse=r.sse)
        return {"ExportDescription": d}

    async def describe_export(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = req.parse_export_arn(p)
        return {"ExportDescription": await self.client.call("export_describe", arn=arn)}

    async def list_exports(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_list_exports(p)
        return dict(await self.client.call("export_list", table_arn=r.table_arn, limit=r.limit,
                                           next_token=r.next_token))

    # -- imports ------------------------------------------------------------------------------------
    async def import_table(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_import(p)
        table = self.tables._validate_create(r.creation)
        name = table.table_name
        now_ms = int(time.time() * 1000)
        import_id = f"{now_ms:014d}-{uuid.uuid4().hex[:8]}"
        arn = table_arn(self.settings.region, name)
        table = replace(table, restoring=True,
                        restore_summary=orjson.dumps({"_source": {"import_id": import_id}}).decode())
        description: dict[str, Any] = {
            "ImportArn": f"{arn}/import/{import_id}", "ImportStatus": "IN_PROGRESS", "TableArn": arn,
            "TableId": table.table_id, "S3BucketSource": r.source, "InputFormat": r.input_format,
            "InputCompressionType": r.compression, "TableCreationParameters": r.creation,
            "StartTime": now_ms / 1000, "ProcessedSizeBytes": 0, "ProcessedItemCount": 0, "ImportedItemCount": 0,
            "ErrorCount": 0}
        if r.format_options:
            description["InputFormatOptions"] = r.format_options
        if r.client_token:
            description["ClientToken"] = r.client_token

        def create(current: TableDefinition | None) -> TableDefinition | None:
            if current is not None:
                if current.table_id == table.table_id:
                    return None
                raise errors.resource_in_use(f"Table already exists: {name}")
            return table

        await self.tables.catalog.change(name, create)
        d = await self.client.call("import_start", description=description)
        return {"ImportTableDescription": d}

    async def describe_import(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = req.parse_import_arn(p)
        return {"ImportTableDescription": await self.client.call("import_describe", arn=arn)}

    async def list_imports(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_list_imports(p)
        return dict(await self.client.call("import_list", table_arn=r.table_arn, limit=r.limit,
                                           next_token=r.next_token))

    # -- point-in-time recovery --------------------------------------------------------------------
    async def update_continuous_backups(self, p: dict[str, Any]) -> dict[str, Any]:
        r = req.parse_update_continuous_backups(p)
        name = self._name(r.table)
        if self.tables.metadata.catalog.items.get(name) is None:
            raise table_not_found(name)
        now = int(time.time() * 1000)

        def update(table: TableDefinition | None) -> TableDefinition | None:
            if table is None:
                raise table_not_found(name)
            if table.status != "ACTIVE":
                raise errors.ApiError("ContinuousBackupsUnavailableException",
                                      f"Backups are being enabled for the table: {name}. Please retry later")
            if not r.enabled:
                return replace(table, pitr_enabled=False, pitr_enabled_ms=None) if table.pitr_enabled else None
            days = r.days if r.days is not None else (table.pitr_recovery_days if table.pitr_enabled else 35)
            if table.pitr_enabled and days == table.pitr_recovery_days:
                return None
            return replace(table, pitr_enabled=True, pitr_recovery_days=days,
                           pitr_enabled_ms=table.pitr_enabled_ms if table.pitr_enabled else now)

        table = await self.tables.catalog.change(name, update)
        assert table is not None
        return {"ContinuousBackupsDescription": continuous_backups(table, self.settings)}

    async def describe_continuous_backups(self, p: dict[str, Any]) -> dict[str, Any]:
        table = self._source(req.parse_table(p))
        return {"ContinuousBackupsDescription": continuous_backups(table, self.settings)}


def incremental_window(spec: req.IncrementalExport, earliest: int, latest: int,
                       settings: Settings) -> dict[str, Any]:
    """An incremental export's window, checked as DynamoDB checks it: within the recovery
    window, ExportFromTime before ExportToTime (the latest restorable time when not given), at
    least ``Settings.incremental_export_min_s`` (15 minutes) and at most 24 hours long."""
    assert spec.from_ms is not None
    lo, hi = spec.from_ms, latest if spec.to_ms is None else spec.to_ms

    def invalid(why: str) -> errors.ApiError:
        return errors.ApiError("InvalidExportTimeException", f"Invalid export time specified: {why}")

    if lo < earliest:
        raise invalid("ExportFromTime must not be before EarliestRestorableDateTime")
    if hi > latest + settings.pitr_settle_ms:
        raise invalid("ExportToTime must not be after LatestRestorableDateTime")
    if hi <= lo:
        raise invalid("ExportFromTime must be before ExportToTime")
    if hi - lo < settings.incremental_export_min_s * 1000:
        raise invalid(f"the export period must be at least {settings.incremental_export_min_s / 60:g} minutes")
    if hi - lo > DAY_MS:
        raise invalid("the export period must not be longer than 24 hours")
    return {"from_ms": lo, "to_ms": hi, "view": spec.view}


def restore_summary(table: TableDefinition) -> dict[str, Any] | None:
    """DescribeTable's RestoreSummary of a restored table (None: not restored)."""
    if not table.restore_summary:
        return None
    s = orjson.loads(table.restore_summary)
    return {k: v for k, v in s.items() if not k.startswith("_")}


def _create_request(source: TableDefinition, target: str, o: req.Overrides) -> dict[str, Any]:
    """The CreateTable parameters of a restore's target: the source's definition, with the
    overrides; only the attributes a key of the table or a kept index uses are defined."""
    billing = o.billing_mode or source.billing_mode
    p: dict[str, Any] = {
        "TableName": target,
        "KeySchema": [{"AttributeName": k.attribute_name, "KeyType": k.key_type} for k in source.key_schema],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        p["ProvisionedThroughput"] = o.provisioned_throughput or {
            "ReadCapacityUnits": max(1, source.read_capacity_units),
            "WriteCapacityUnits": max(1, source.write_capacity_units)}
    elif o.provisioned_throughput is not None:
        p["ProvisionedThroughput"] = o.provisioned_throughput  # CreateTable refuses it, as DynamoDB

    def projection(kind: str, non_key: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"ProjectionType": kind}
        if kind == "INCLUDE":
            out["NonKeyAttributes"] = list(non_key)
        return out

    if o.global_indexes is not None:
        gsis: list[Any] = o.global_indexes
    else:
        gsis = []
        for i in source.global_indexes:
            if i.status == "DELETING":
                continue
            g: dict[str, Any] = {
                "IndexName": i.index_name,
                "KeySchema": i.key_schema(),
                "Projection": projection(i.projection_type, i.non_key_attributes)}
            if billing == "PROVISIONED":
                g["ProvisionedThroughput"] = {"ReadCapacityUnits": max(1, i.read_capacity_units),
                                              "WriteCapacityUnits": max(1, i.write_capacity_units)}
            gsis.append(g)
    if gsis:
        p["GlobalSecondaryIndexes"] = gsis
    hash_key = source.key_names()[0]
    lsis: list[Any] = o.local_indexes if o.local_indexes is not None else [{
        "IndexName": i.index_name,
        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": i.range_key, "KeyType": "RANGE"}],
        "Projection": projection(i.projection_type, i.non_key_attributes)} for i in source.local_indexes]
    if lsis:
        p["LocalSecondaryIndexes"] = lsis
    used = {k.attribute_name for k in source.key_schema}
    for spec in [*gsis, *lsis]:
        if isinstance(spec, dict) and isinstance(spec.get("KeySchema"), list):
            used |= {str(k.get("AttributeName")) for k in spec["KeySchema"] if isinstance(k, dict)}
    p["AttributeDefinitions"] = [{"AttributeName": a.attribute_name, "AttributeType": a.attribute_type}
                                 for a in source.attribute_definitions if a.attribute_name in used]
    if source.stream_enabled:
        p["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": source.stream_view_type}
    return p
