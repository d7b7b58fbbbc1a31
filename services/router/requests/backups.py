"""Backup and restore requests: CreateBackup, DescribeBackup, ListBackups, DeleteBackup,
RestoreTableFromBackup, UpdateContinuousBackups, DescribeContinuousBackups and
RestoreTableToPointInTime, parsed in one pass before any I/O (parameter shapes in DynamoDB's
constraint form, first problem list, then semantics).  The tables they name are looked up by
the executor (services/router/backups.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dynamolog import errors

from ..validate import check_enum, constraint_errors, raise_constraints

_BACKUP_NAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")
BACKUP_TYPES = ("USER", "SYSTEM", "AWS_BACKUP", "ALL")
BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")


def _arn_errors(field: str, value: Any, *, required: bool = True) -> list[str]:
    """Constraint messages of a backup ARN parameter (37 to 1024 characters)."""
    if value is None:
        return [f"Value null at '{field}' failed to satisfy constraint: Member must not be null"] if required else []
    if not isinstance(value, str):
        raise errors.serialization("Unexpected value type in payload")
    if len(value) < 37:
        return [f"Value '{value}' at '{field}' failed to satisfy constraint: "
                "Member must have length greater than or equal to 37"]
    if len(value) > 1024:
        return [f"Value '{value}' at '{field}' failed to satisfy constraint: "
                "Member must have length less than or equal to 1024"]
    return []


def _table_or_arn(p: dict[str, Any], param: str, field: str, *, required: bool = True) -> tuple[list[str], str | None]:
    """A TableName that may also be the table's ARN (1 to 1024 characters then): problems, value."""
    name = p.get(param)
    if name is None:
        return ([f"Value null at '{field}' failed to satisfy constraint: Member must not be null"]
                if required else []), None
    if isinstance(name, str) and name.startswith("arn:"):
        if len(name) > 1024:
            return [f"Value '{name}' at '{field}' failed to satisfy constraint: "
                    "Member must have length less than or equal to 1024"], None
        return [], name
    return constraint_errors(field, name), name if isinstance(name, str) else None


def _epoch_s(p: dict[str, Any], param: str) -> float | None:
    v = p.get(param)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise errors.serialization(f"Unexpected value type in payload (field {param})")
    return float(v)


@dataclass(frozen=True)
class CreateBackup:
    table: str
    """The table's name or ARN."""
    backup_name: str


def parse_create_backup(p: dict[str, Any]) -> CreateBackup:
    problems, table = _table_or_arn(p, "TableName", "tableName")
    name = p.get("BackupName")
    if name is None:
        problems.append("Value null at 'backupName' failed to satisfy constraint: Member must not be null")
    elif not isinstance(name, str):
        raise errors.serialization("Unexpected value type in payload")
    else:
        if not _BACKUP_NAME.match(name):
            problems.append(f"Value '{name}' at 'backupName' failed to satisfy constraint: "
                            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
        if len(name) < 3:
            problems.append(f"Value '{name}' at 'backupName' failed to satisfy constraint: "
                            "Member must have length greater than or equal to 3")
        if len(name) > 255:
            problems.append(f"Value '{name}' at 'backupName' failed to satisfy constraint: "
                            "Member must have length less than or equal to 255")
    raise_constraints(problems)
    assert table is not None and isinstance(name, str)
    return CreateBackup(table, name)


def parse_backup_arn(p: dict[str, Any]) -> str:
    """DescribeBackup's and DeleteBackup's BackupArn."""
    raise_constraints(_arn_errors("backupArn", p.get("BackupArn")))
    return str(p["BackupArn"])


@dataclass(frozen=True)
class ListBackups:
    table_name: str | None
    limit: int
    lower_ms: int | None
    upper_ms: int | None
    backup_type: str
    start_arn: str | None


def parse_list_backups(p: dict[str, Any]) -> ListBackups:
    problems, table = _table_or_arn(p, "TableName", "tableName", required=False)
    limit = p.get("Limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
    if limit < 1:
        problems.append(f"Value '{limit}' at 'limit' failed to satisfy constraint: "
                        "Member must have value greater than or equal to 1")
    if limit > 100:
        problems.append(f"Value '{limit}' at 'limit' failed to satisfy constraint: "
                        "Member must have value less than or equal to 100")
    check_enum(problems, p, "BackupType", "backupType", BACKUP_TYPES)
    problems += _arn_errors("exclusiveStartBackupArn", p.get("ExclusiveStartBackupArn"), required=False)
    raise_constraints(problems)
    lower, upper = _epoch_s(p, "TimeRangeLowerBound"), _epoch_s(p, "TimeRangeUpperBound")
    if lower is not None and upper is not None and lower > upper:
        raise errors.validation("TimeRangeLowerBound must be less than or equal to TimeRangeUpperBound")
    if isinstance(table, str) and table.startswith("arn:"):
        table = table.rsplit("/", 1)[-1]
    return ListBackups(table, limit, None if lower is None else int(lower * 1000),
                       None if upper is None else int(upper * 1000), str(p.get("BackupType") or "USER"),
                       p.get("ExclusiveStartBackupArn"))


@dataclass(frozen=True)
class Overrides:
    """What a restore may change of the source's definition (None: keep it)."""

    billing_mode: str | None
    provisioned_throughput: dict[str, Any] | None
    global_indexes: list[Any] | None
    local_indexes: list[Any] | None


def _parse_overrides(p: dict[str, Any], problems: list[str]) -> Overrides:
    check_enum(problems, p, "BillingModeOverride", "billingModeOverride", BILLING_MODES)
    pt = p.get("ProvisionedThroughputOverride")
    if pt is not None and not isinstance(pt, dict):
        raise errors.serialization("Unexpected value type in payload")
    gsi, lsi = p.get("GlobalSecondaryIndexOverride"), p.get("LocalSecondaryIndexOverride")
    for v in (gsi, lsi):
        if v is not None and not isinstance(v, list):
            raise errors.serialization("Unexpected value type in payload")
    return Overrides(p.get("BillingModeOverride"), pt, gsi, lsi)


@dataclass(frozen=True)
class RestoreFromBackup:
    target: str
    backup_arn: str
    overrides: Overrides


def parse_restore_from_backup(p: dict[str, Any]) -> RestoreFromBackup:
    problems = constraint_errors("targetTableName", p.get("TargetTableName"))
    problems += _arn_errors("backupArn", p.get("BackupArn"))
    overrides = _parse_overrides(p, problems)
    raise_constraints(problems)
    return RestoreFromBackup(str(p["TargetTableName"]), str(p["BackupArn"]), overrides)


@dataclass(frozen=True)
class RestoreToPointInTime:
    target: str
    source: str
    """The source table's name or ARN."""
    restore_ms: int | None
    """None: the latest restorable time."""
    overrides: Overrides


def parse_restore_to_point_in_time(p: dict[str, Any]) -> RestoreToPointInTime:
    problems = constraint_errors("targetTableName", p.get("TargetTableName"))
    arn = p.get("SourceTableArn")
    name_problems, name = _table_or_arn(p, "SourceTableName", "sourceTableName", required=False)
    problems += name_problems
    if arn is not None and not isinstance(arn, str):
        raise errors.serialization("Unexpected value type in payload")
    latest = p.get("UseLatestRestorableTime")
    if latest is not None and not isinstance(latest, bool):
        raise errors.serialization("Unexpected value type in payload")
    overrides = _parse_overrides(p, problems)
    raise_constraints(problems)
    if arn is None and name is None:
        raise errors.validation("Either source table name or source table arn must be specified")
    if arn is not None and name is not None:
        raise errors.validation("Only one of source table name or source table arn can be specified")
    when = _epoch_s(p, "RestoreDateTime")
    if latest and when is not None:
        raise errors.validation("Only one of UseLatestRestorableTime or RestoreDateTime can be specified")
    if not latest and when is None:
        raise errors.validation("RestoreDateTime must be specified when UseLatestRestorableTime is false")
    return RestoreToPointInTime(str(p["TargetTableName"]), str(arn if arn is not None else name),
                                None if latest else round(when * 1000) if when is not None else None, overrides)


@dataclass(frozen=True)
class UpdateContinuousBackups:
    table: str
    enabled: bool
    days: int | None


def parse_update_continuous_backups(p: dict[str, Any]) -> UpdateContinuousBackups:
    problems, table = _table_or_arn(p, "TableName", "tableName")
    spec = p.get("PointInTimeRecoverySpecification")
    if spec is None:
        problems.append("Value null at 'pointInTimeRecoverySpecification' failed to satisfy constraint: "
                        "Member must not be null")
    elif not isinstance(spec, dict):
        raise errors.serialization("Unexpected value type in payload")
    else:
        enabled = spec.get("PointInTimeRecoveryEnabled")
        if enabled is None:
            problems.append("Value null at 'pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled' failed "
                            "to satisfy constraint: Member must not be null")
        elif not isinstance(enabled, bool):
            raise errors.serialization("Unexpected value type in payload")
        days = spec.get("RecoveryPeriodInDays")
        if days is not None:
            if isinstance(days, bool) or not isinstance(days, int):
                raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
            if days < 1:
                problems.append(f"Value '{days}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed "
                                "to satisfy constraint: Member must have value greater than or equal to 1")
            if days > 35:
                problems.append(f"Value '{days}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed "
                                "to satisfy constraint: Member must have value less than or equal to 35")
    raise_constraints(problems)
    assert table is not None and isinstance(spec, dict)
    days = spec.get("RecoveryPeriodInDays")
    if days is not None and not spec["PointInTimeRecoveryEnabled"]:
        raise errors.validation("RecoveryPeriodInDays can only be specified when PointInTimeRecoveryEnabled is true")
    return UpdateContinuousBackups(table, bool(spec["PointInTimeRecoveryEnabled"]), days)


def parse_table(p: dict[str, Any]) -> str:
    """DescribeContinuousBackups' TableName (a name or an ARN)."""
    problems, table = _table_or_arn(p, "TableName", "tableName")
    raise_constraints(problems)
    assert table is not None
    return table


@dataclass(frozen=True)
class ExportToPointInTime:
    table_arn: str
    bucket: str
    prefix: str | None
    export_ms: int | None
    """None: now."""
    client_token: str | None
    sse: str | None
    incremental: IncrementalExport | None = None
    """An INCREMENTAL_EXPORT's window and view (None: a FULL_EXPORT)."""


@dataclass(frozen=True)
class IncrementalExport:
    from_ms: int | None
    """ExportFromTime (inclusive); None: not given (an error, found by the executor)."""
    to_ms: int | None
    """ExportToTime (exclusive); None: the latest restorable time."""
    view: str
    """NEW_IMAGE or NEW_AND_OLD_IMAGES."""


def parse_export(p: dict[str, Any]) -> ExportToPointInTime:
    problems: list[str] = []
    arn = p.get("TableArn")
    if arn is None:
        problems.append("Value null at 'tableArn' failed to satisfy constraint: Member must not be null")
    elif not isinstance(arn, str):
        raise errors.serialization("Unexpected value type in payload")
    bucket = p.get("S3Bucket")
    if bucket is None:
        problems.append("Value null at 's3Bucket' failed to satisfy constraint: Member must not be null")
    elif not isinstance(bucket, str):
        raise errors.serialization("Unexpected value type in payload")
    elif len(bucket) > 255 or not re.match(r"^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$", bucket):
        problems.append(f"Value '{bucket}' at 's3Bucket' failed to satisfy constraint: Member must satisfy "
                        "regular expression pattern: ^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$")
    check_enum(problems, p, "ExportFormat", "exportFormat", ("DYNAMODB_JSON", "ION"))
    check_enum(problems, p, "ExportType", "exportType", ("FULL_EXPORT", "INCREMENTAL_EXPORT"))
    check_enum(problems, p, "S3SseAlgorithm", "s3SseAlgorithm", ("AES256", "KMS"))
    spec = p.get("IncrementalExportSpecification")
    if spec is not None and not isinstance(spec, dict):
        raise errors.serialization("Unexpected value type in payload")
    check_enum(problems, spec or {}, "ExportViewType", "incrementalExportSpecification.exportViewType",
               ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"))
    raise_constraints(problems)
    if p.get("ExportFormat", "DYNAMODB_JSON") != "DYNAMODB_JSON":
        raise errors.validation("ExportFormat ION is not supported by this endpoint; use DYNAMODB_JSON")
    incremental = None
    if p.get("ExportType", "FULL_EXPORT") == "INCREMENTAL_EXPORT":
        if p.get("ExportTime") is not None:
            raise errors.validation("ExportTime cannot be specified with ExportType INCREMENTAL_EXPORT; "
                                    "give the window in IncrementalExportSpecification")
        if spec is None or spec.get("ExportFromTime") is None:
            raise errors.validation("IncrementalExportSpecification.ExportFromTime is required for "
                                    "ExportType INCREMENTAL_EXPORT")
        lo, hi = _epoch_s(spec, "ExportFromTime"), _epoch_s(spec, "ExportToTime")
        incremental = IncrementalExport(None if lo is None else round(lo * 1000),
                                        None if hi is None else round(hi * 1000),
                                        str(spec.get("ExportViewType") or "NEW_AND_OLD_IMAGES"))
    elif spec is not None:
        raise errors.validation("IncrementalExportSpecification can only be specified with ExportType "
                                "INCREMENTAL_EXPORT")
    when = _epoch_s(p, "ExportTime")
    prefix = p.get("S3Prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise errors.serialization("Unexpected value type in payload")
    token = p.get("ClientToken")
    return ExportToPointInTime(str(arn), str(bucket), prefix or None, None if when is None else round(when * 1000),
                               token if isinstance(token, str) and token else None, p.get("S3SseAlgorithm"),
                               incremental)


def parse_export_arn(p: dict[str, Any]) -> str:
    raise_constraints(_arn_errors("exportArn", p.get("ExportArn")))
    return str(p["ExportArn"])


@dataclass(frozen=True)
class ListExports:
    table_arn: str | None
    limit: int
    next_token: str | None


def parse_list_exports(p: dict[str, Any]) -> ListExports:
    problems: list[str] = []
    limit = p.get("MaxResults", 25)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
    if not 1 <= limit <= 25:
        problems.append(f"Value '{limit}' at 'maxResults' failed to satisfy constraint: Member must have value "
                        + ("greater than or equal to 1" if limit < 1 else "less than or equal to 25"))
    raise_constraints(problems)
    arn, token = p.get("TableArn"), p.get("NextToken")
    return ListExports(arn if isinstance(arn, str) else None, limit, token if isinstance(token, str) else None)


@dataclass(frozen=True)
class ImportTable:
    source: dict[str, Any]
    """S3BucketSource: S3Bucket, S3KeyPrefix, S3BucketOwner."""
    input_format: str
    compression: str
    format_options: dict[str, Any] | None
    creation: dict[str, Any]
    """TableCreationParameters, as CreateTable's parameters (checked by CreateTable's code)."""
    client_token: str | None


def parse_import(p: dict[str, Any]) -> ImportTable:
    problems: list[str] = []
    src = p.get("S3BucketSource")
    if src is None:
        problems.append("Value null at 's3BucketSource' failed to satisfy constraint: Member must not be null")
    elif not isinstance(src, dict):
        raise errors.serialization("Unexpected value type in payload")
    elif not isinstance(src.get("S3Bucket"), str) or not src["S3Bucket"]:
        problems.append("Value null at 's3BucketSource.s3Bucket' failed to satisfy constraint: "
                        "Member must not be null")
    if p.get("InputFormat") is None:
        problems.append("Value null at 'inputFormat' failed to satisfy constraint: Member must not be null")
    check_enum(problems, p, "InputFormat", "inputFormat", ("DYNAMODB_JSON", "ION", "CSV"))
    check_enum(problems, p, "InputCompressionType", "inputCompressionType", ("GZIP", "ZSTD", "NONE"))
    creation = p.get("TableCreationParameters")
    if creation is None:
        problems.append("Value null at 'tableCreationParameters' failed to satisfy constraint: "
                        "Member must not be null")
    elif not isinstance(creation, dict):
        raise errors.serialization("Unexpected value type in payload")
    options = p.get("InputFormatOptions")
    if options is not None and not isinstance(options, dict):
        raise errors.serialization("Unexpected value type in payload")
    raise_constraints(problems)
    assert isinstance(src, dict) and isinstance(creation, dict)
    if p["InputFormat"] == "ION":
        raise errors.validation("InputFormat ION is not supported by this endpoint; use DYNAMODB_JSON or CSV")
    csv_opts = (options or {}).get("Csv") or {}
    delimiter = csv_opts.get("Delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise errors.validation("InputFormatOptions.Csv.Delimiter must be one character")
    if options is not None and p["InputFormat"] != "CSV":
        raise errors.validation("InputFormatOptions can only be specified with InputFormat CSV")
    token = p.get("ClientToken")
    return ImportTable(dict(src), str(p["InputFormat"]), str(p.get("InputCompressionType") or "NONE"),
                       dict(options) if options else None, dict(creation),
                       token if isinstance(token, str) and token else None)


def parse_import_arn(p: dict[str, Any]) -> str:
    raise_constraints(_arn_errors("importArn", p.get("ImportArn")))
    return str(p["ImportArn"])


def parse_list_imports(p: dict[str, Any]) -> ListExports:
    """ListImports: TableArn, PageSize (1 to 25), NextToken (the same shape as ListExports)."""
    size = p.get("PageSize", 25)
    if isinstance(size, bool) or not isinstance(size, int):
        raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
    if not 1 <= size <= 25:
        raise_constraints([f"Value '{size}' at 'pageSize' failed to satisfy constraint: Member must have value "
                           + ("greater than or equal to 1" if size < 1 else "less than or equal to 25")])
    arn, token = p.get("TableArn"), p.get("NextToken")
    return ListExports(arn if isinstance(arn, str) else None, size, token if isinstance(token, str) else None)
