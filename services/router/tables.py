"""Control plane: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable.

A table is a TableDefinition in ``dyn.catalog`` plus its partitions in ``dyn.partitions``,
each with its own log topic.  A router validates a request completely (DynamoDB's exact errors,
before any I/O), then sends the change to the auto-admin, the catalog's one writer
(:mod:`dynamolog.catalog_client`), which publishes it only if it was made on the table's current
record; otherwise the change is made again on the newer record, so two routers racing on
CreateTable end with one table and the other answers ResourceInUseException.  CreateTable
publishes the definition as CREATING and answers at once (as DynamoDB does); the auto-admin then
provisions it (``services/admin/provision.py``) and publishes ACTIVE, normally well within a
second.  UpdateTable publishes UPDATING, DeleteTable DELETING, carried out the same way.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from dynamolog import errors
from dynamolog.catalog import (
    ACCOUNT,
    AttributeDefinition,
    KeySchemaElement,
    TableDefinition,
    in_use,
    parse_arn,
    table_arn,
)
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings
from dynamolog.metadata import Metadata
from dynamolog.routing import Routing
from dynamolog.stats import StatsView
from dynamolog.throughput import decreases_today, keep_warm, record_change

from . import throughput, warm
from .control import Control, parse_tags
from .figures import with_figures
from .gsi import (
    apply_index_updates,
    describe_indexes,
    describe_local_indexes,
    parse_global_indexes,
    parse_local_indexes,
)
from .policies import with_create_policy
from .streams import apply_stream_change, describe_stream_fields, parse_stream_specification, stream_label
from .validate import check_enum, constraint_errors, raise_constraints, require_table_name, validate_create_table

__all__ = ["Tables", "describe", "updated_table"]
#: UpdateTable parameters this version refuses (they count as "something to update")
UNSUPPORTED_UPDATES = ("ReplicaUpdates", "SSESpecification",
                       "TableClass", "DeletionProtectionEnabled")


def describe(table: TableDefinition, region: str) -> dict[str, Any]:
    """The TableDescription DynamoDB answers for a table."""
    provisioned = table.billing_mode == "PROVISIONED"
    desc: dict[str, Any] = {
        "AttributeDefinitions": [
            {"AttributeName": a.attribute_name, "AttributeType": a.attribute_type}
            for a in table.attribute_definitions
        ],
        "TableName": table.table_name,
        "KeySchema": [{"AttributeName": k.attribute_name, "KeyType": k.key_type} for k in table.key_schema],
        "TableStatus": table.status,
        "CreationDateTime": table.created_at_ms / 1000.0,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": decreases_today(table),
            "ReadCapacityUnits": table.read_capacity_units if provisioned else 0,
            "WriteCapacityUnits": table.write_capacity_units if provisioned else 0,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": table_arn(region, table.table_name),
        "TableId": table.table_id,
        "DeletionProtectionEnabled": False,
    }
    desc.update(throughput.describe(table))
    desc.update(warm.describe(table, table.billing_mode))
    desc.update(describe_stream_fields(table, region))
    if table.restore_summary:  # a restored table (services/router/backups.py); "_" keys are internal
        restored = {k: v for k, v in orjson.loads(table.restore_summary).items() if k[:1] != "_"}
        if restored:  # an imported table has none
            desc["RestoreSummary"] = restored
    if table.global_indexes:
        desc["GlobalSecondaryIndexes"] = describe_indexes(table, desc["TableArn"])
    if table.local_indexes:
        desc["LocalSecondaryIndexes"] = describe_local_indexes(table, desc["TableArn"])
    for field, ms in (("LastIncreaseDateTime", table.last_increase_ms),
                      ("LastDecreaseDateTime", table.last_decrease_ms)):
        if ms is not None:
            desc["ProvisionedThroughput"][field] = ms / 1000.0
    # a table created PROVISIONED and never switched has no BillingModeSummary (as DynamoDB)
    on_demand_since = table.pay_per_request_since_ms
    if not provisioned or on_demand_since is not None:
        desc["BillingModeSummary"] = {
            "BillingMode": table.billing_mode,
            "LastUpdateToPayPerRequestDateTime": (on_demand_since or table.created_at_ms) / 1000.0,
        }
    return desc


class Tables:
    """The control-plane operations of a router."""

    def __init__(self, settings: Settings, metadata: Metadata, catalog: CatalogClient, routing: Routing,
                 initial_partitions: int) -> None:
        self.settings = settings
        self.metadata = metadata
        self.catalog = catalog
        self.routing = routing
        self.initial_partitions = initial_partitions
        self.control = Control(self)
        #: tables' measured item counts and sizes (DescribeTable), set by the router
        self.stats: StatsView | None = None

    # -- lookups used by the data plane ----------------------------------------------------
    def resolve(self, name: Any) -> Any:
        """A data-plane request's TableName: a table name, or a table's ARN (as DynamoDB takes
        it), given as the name of the table it names in this system (None for an ARN of another
        region or account, or a malformed one)."""
        if isinstance(name, str) and name.startswith("arn:"):
            try:
                region, account, table = parse_arn(name)
            except errors.ApiError:
                return None
            return table if region == self.settings.region and account == ACCOUNT else None
        return name

    def get(self, name: Any) -> TableDefinition:
        """The table named ``name`` (or its ARN) for a data-plane request, or ResourceNotFoundException."""
        name = self.resolve(name)
        table = self.metadata.catalog.items.get(name) if isinstance(name, str) else None
        if table is None or table.status == "DELETING":
            raise errors.resource_not_found()
        return table

    async def get_active(self, name: Any) -> TableDefinition:
        """Like :meth:`get`, but waits a little for a table that is still CREATING."""
        table = self.get(name)
        name = table.table_name
        if table.status == "CREATING":
            await self.metadata.catalog.wait_until(
                lambda: getattr(self.metadata.catalog.items.get(name), "status", None) != "CREATING", 10.0
            )
            table = self.get(name)
            if table.status == "CREATING":
                raise errors.resource_not_found()
        return table

    # -- operations ------------------------------------------------------------------------
    async def create_table(self, p: dict[str, Any]) -> dict[str, Any]:
        table = self._validate_create(p)
        name = table.table_name

        def create(current: TableDefinition | None) -> TableDefinition | None:
            if current is not None:
                if current.table_id == table.table_id:
                    return None  # this request's own table (an answer that was lost)
                raise errors.resource_in_use(f"Table already exists: {name}")
            return table

        await self.catalog.change(name, create)
        return {"TableDescription": describe(table, self.settings.region)}

    async def describe_table(self, p: dict[str, Any]) -> dict[str, Any]:
        given = require_table_name(p)
        name = self.resolve(given) or given
        table = self.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        return {"Table": with_figures(describe(table, self.settings.region), table, self.stats)}

    async def list_tables(self, p: dict[str, Any]) -> dict[str, Any]:
        problems = []
        limit = p.get("Limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise errors.serialization("NUMBER_VALUE cannot be converted to Integer") if not isinstance(
                limit, int) else errors.validation("Limit must be an integer")
        if limit < 1 or limit > 100:
            problems.append(
                f"Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value "
                + ("greater than or equal to 1" if limit < 1 else "less than or equal to 100")
            )
        start = p.get("ExclusiveStartTableName")
        if start is not None:
            problems += constraint_errors("exclusiveStartTableName", start)
        raise_constraints(problems)
        names = sorted(self.metadata.catalog.items)
        if start is not None:
            names = [n for n in names if n > start]
        out: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    async def delete_table(self, p: dict[str, Any]) -> dict[str, Any]:
        given = require_table_name(p)
        name = self.resolve(given) or given

        def delete(table: TableDefinition | None) -> TableDefinition | None:
            if table is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            if table.status in ("CREATING", "DELETING"):
                raise in_use(table)
            return replace(table, status="DELETING")

        table = await self.catalog.change(name, delete)
        assert table is not None
        return {"TableDescription": describe(table, self.settings.region)}

    async def update_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name_or_arn(p.get("TableName"))
        mode, rcu, wcu = _validate_update(p)
        stream = (parse_stream_specification(p["StreamSpecification"])
                  if p.get("StreamSpecification") is not None else None)
        warmed = warm.parse(p.get("WarmThroughput"), update=True)
        before: list[tuple[int, int]] = []

        def update(table: TableDefinition | None) -> TableDefinition | None:
            if table is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            before[:] = [warm.current(table, table.billing_mode)]
            updated = _with_on_demand(table, updated_table(table, p, mode, rcu, wcu, stream,
                                                           int(time.time() * 1000)), p)
            if warmed is None:
                return updated
            after = updated if updated is not None else table
            return warm.raised(after, warmed, after.billing_mode)

        table = await self.catalog.change(name, update)
        assert table is not None
        desc = describe(table, self.settings.region)
        if warmed is not None and before and warm.current(table, table.billing_mode) != before[0]:
            desc["WarmThroughput"]["Status"] = "UPDATING"  # DynamoDB's answer while it pre-warms
        return {"TableDescription": desc}

    def _name_or_arn(self, name: Any) -> str:
        """UpdateTable's TableName: a table name or the table's ARN."""
        if isinstance(name, str) and name.startswith("arn:"):
            region, account, table = parse_arn(name)
            if region != self.settings.region or account != ACCOUNT:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            name = table
        raise_constraints(constraint_errors("tableName", name))
        return str(name)

    # -- validation --------------------------------------------------------------------------
    def _validate_create(self, p: dict[str, Any]) -> TableDefinition:
        spec = validate_create_table(p)
        tags = parse_tags(p["Tags"]) if p.get("Tags") is not None else {}
        table_id = str(uuid.uuid4())
        partitions = self.initial_partitions
        if spec["billing_mode"] == "PROVISIONED":
            wanted = -(-spec["read_capacity_units"] // 3000) + -(-spec["write_capacity_units"] // 1000)
            partitions = max(partitions, min(16, wanted))
        short = re.sub("-", "", table_id)[:12]
        key_schema = tuple(KeySchemaElement(**k) for k in spec["key_schema"])
        attribute_definitions = tuple(AttributeDefinition(**a) for a in spec["attribute_definitions"])
        defined = {a.attribute_name: a.attribute_type for a in attribute_definitions}
        partition_ids = tuple(f"{short}-{i}" for i in range(partitions))
        global_indexes = parse_global_indexes(p, defined, spec["billing_mode"], table_id, partition_ids)
        table = TableDefinition(
            table_name=spec["table_name"],
            table_id=table_id,
            key_schema=key_schema,
            attribute_definitions=attribute_definitions,
            billing_mode=spec["billing_mode"],
            read_capacity_units=spec["read_capacity_units"],
            write_capacity_units=spec["write_capacity_units"],
            status="CREATING",
            created_at_ms=int(time.time() * 1000),
            partition_ids=partition_ids,
            tags=tags,
            global_indexes=tuple(global_indexes),
            local_indexes=tuple(parse_local_indexes(p, defined, key_schema, table_id, global_indexes)),
        )
        if p.get("ResourcePolicy") is not None:
            table = with_create_policy(table, p["ResourcePolicy"], self.settings.region)
        table = throughput.apply(table, throughput.parse(p.get("OnDemandThroughput"), table.billing_mode, update=False))
        table = warm.at_creation(table, warm.parse(p.get("WarmThroughput")), table.billing_mode)
        if p.get("StreamSpecification") is not None:
            enabled, view = parse_stream_specification(p["StreamSpecification"])
            if enabled:
                table = replace(table, stream_enabled=True, stream_view_type=view,
                                stream_label=stream_label(table.created_at_ms), stream_created_ms=table.created_at_ms)
        return table


def updated_table(table: TableDefinition, p: dict[str, Any], mode: str | None, rcu: int | None, wcu: int | None,
                  stream: tuple[bool, str | None] | None, now: int) -> TableDefinition | None:
    """The definition an UpdateTable request makes of ``table`` (None: nothing changes), or the
    DynamoDB error it gets.  A pure function of the table: it runs again on a newer record when
    another change of the table was published first."""
    if table.status != "ACTIVE":
        raise in_use(table)
    changed = False
    if p.get("GlobalSecondaryIndexUpdates") is not None:
        table, changed = apply_index_updates(replace(table, status="UPDATING"), table, p), True
    if stream is not None:
        table, changed = apply_stream_change(replace(table, status="UPDATING"), table, stream[0], stream[1], now), True
    if mode is None and rcu is None:
        return table if changed else None
    current = table.billing_mode
    target = mode or current
    if rcu is not None and target == "PAY_PER_REQUEST":
        raise errors.validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor "
                                "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
    updated = replace(table, status="UPDATING")
    if target == "PAY_PER_REQUEST":
        if current == "PAY_PER_REQUEST":  # nothing changes (as DynamoDB, no error), but the stream may
            return table if changed else None
        return replace(keep_warm(updated, on_demand=False), billing_mode="PAY_PER_REQUEST", read_capacity_units=0,
                       write_capacity_units=0, pay_per_request_since_ms=now)
    assert rcu is not None and wcu is not None
    old_r, old_w = ((table.read_capacity_units, table.write_capacity_units)
                    if current == "PROVISIONED" else (0, 0))
    if (rcu, wcu) == (old_r, old_w):
        raise errors.validation(
            "The provisioned throughput for the table will not change. The requested value equals the "
            f"current value. Current ReadCapacityUnits provisioned for the table: {old_r}. Requested "
            f"ReadCapacityUnits: {rcu}. Current WriteCapacityUnits provisioned for the table: {old_w}. "
            f"Requested WriteCapacityUnits: {wcu}. Refer to the Amazon DynamoDB Developer Guide for "
            "current limits and how to request higher limits.")
    updated = record_change(keep_warm(updated, on_demand=current == "PAY_PER_REQUEST"), (old_r, old_w), (rcu, wcu),
                            now)
    if current == "PAY_PER_REQUEST":  # keeps reporting when it was last on demand
        updated = replace(updated, pay_per_request_since_ms=table.pay_per_request_since_ms or table.created_at_ms)
    return replace(updated, billing_mode="PROVISIONED", read_capacity_units=rcu, write_capacity_units=wcu)


def _with_on_demand(table: TableDefinition, updated: TableDefinition | None,
                    p: dict[str, Any]) -> TableDefinition | None:
    """UpdateTable's OnDemandThroughput on top of the rest of the change (a switch to
    PROVISIONED clears the maxima)."""
    after = updated if updated is not None else table
    if after.billing_mode == "PROVISIONED" and table.billing_mode != "PROVISIONED":
        after = throughput.cleared(after)
    members = throughput.parse(p.get("OnDemandThroughput"), after.billing_mode, update=True)
    if members is None:
        return updated if updated is None else after
    return replace(throughput.apply(after, members), status="UPDATING")


def _validate_update(p: dict[str, Any]) -> tuple[str | None, int | None, int | None]:
    """(BillingMode, ReadCapacityUnits, WriteCapacityUnits) of an UpdateTable request, each None
    when not given; everything that does not need the table is checked here."""
    problems: list[str] = []
    check_enum(problems, p, "BillingMode", "billingMode", ("PROVISIONED", "PAY_PER_REQUEST"))
    pt = p.get("ProvisionedThroughput")
    if pt is not None:
        if not isinstance(pt, dict):
            raise errors.serialization("Unexpected value type in payload")
        for param, field in (("ReadCapacityUnits", "readCapacityUnits"), ("WriteCapacityUnits", "writeCapacityUnits")):
            v = pt.get(param)
            if v is None:
                problems.append(f"Value null at 'provisionedThroughput.{field}' failed to satisfy constraint: "
                                "Member must not be null")
            elif not isinstance(v, int) or isinstance(v, bool):
                raise errors.serialization("NUMBER_VALUE cannot be converted to Long" if isinstance(v, float)
                                           else "Unexpected value type in payload")
            elif v < 1:
                problems.append(f"Value '{v}' at 'provisionedThroughput.{field}' failed to satisfy constraint: "
                                "Member must have value greater than or equal to 1")
    raise_constraints(problems)
    wanted = [k for k in ("ProvisionedThroughput", "BillingMode", "StreamSpecification",
                          "GlobalSecondaryIndexUpdates", "OnDemandThroughput", "WarmThroughput") + UNSUPPORTED_UPDATES
              if p.get(k) not in (None, [])]
    if not wanted:
        raise errors.validation("At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
                                "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")
    for k in UNSUPPORTED_UPDATES:
        if k in wanted:
            raise errors.validation(f"{k} is not supported by this Dynamolog version yet")
    mode = p.get("BillingMode")
    if mode == "PROVISIONED" and pt is None:
        raise errors.validation("One or more parameter values were invalid: ProvisionedThroughput must be specified "
                                "when BillingMode is PROVISIONED")
    if pt is None:
        return mode, None, None
    for param in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if pt[param] > 1_000_000_000_000:
            raise errors.validation(f"Given value {pt[param]} for {param} is out of bounds")
    return mode, pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]
