"""Control plane: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable, and provisioning.

A table is a TableDefinition in ``dyn.catalog`` plus its partitions in ``dyn.partitions``,
each with its own log topic.  CreateTable publishes the definition as CREATING and answers at
once (as DynamoDB does); provisioning then creates the log topics, publishes the partitions,
has the storage nodes open them, and publishes ACTIVE, normally well within a second.
Provisioning is idempotent and resumed by any router that starts and finds a table still
CREATING or DELETING, so a router that dies half-way leaves nothing stuck.  UpdateTable
publishes UPDATING with the new billing settings and then ACTIVE (resumed the same way).
Changes that read and rewrite a TableDefinition hold the table's lock, so that two requests
on one router do not overwrite each other's change.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
import uuid
from typing import Any

from dynamolog import errors, placement
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, MetadataWriter

from .control import ACCOUNT, Control, parse_tags, table_arn
from .routing import Routing
from .validate import check_enum, constraint_errors, raise_constraints, require_table_name

log = logging.getLogger(__name__)

HASH_SPACE = 1 << 64
#: log topic settings: records of up to 2 MB (a 400 KB item with its old image, framed)
#: partition logs: kept forever (a replica is rebuilt from its log, docs/architecture.md invariant 4), no unclean
#: leader election (an out-of-sync broker never becomes leader and drops acknowledged records)
#: replicas per partition (DynamoDB: three, in three availability zones)
REPLICAS = placement.REPLICAS
LOG_TOPIC_CONFIGS = {"max.message.bytes": str(4 * 1024 * 1024), "unclean.leader.election.enable": "false",
                     "retention.ms": "-1", "retention.bytes": "-1"}
__all__ = ["ACCOUNT", "Tables", "attribute_types", "describe", "key_names"]
DAY_MS = 86_400_000
#: throughput decreases allowed at any time of a UTC day; after them, one per DECREASE_INTERVAL_MS
FREE_DECREASES_PER_DAY = 4
DECREASE_INTERVAL_MS = 3_600_000
#: UpdateTable parameters this version refuses (they count as "something to update")
UNSUPPORTED_UPDATES = ("ReplicaUpdates", "SSESpecification",
                       "TableClass", "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput")


def decreases_today(table: dict[str, Any], now_ms: int | None = None) -> int:
    """Throughput decreases of the current UTC day (the count is kept for the day of the last one)."""
    last = table.get("last_decrease_ms")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if last is None or last // DAY_MS != now_ms // DAY_MS:
        return 0
    return int(table.get("decreases_today") or 0)


def describe(table: dict[str, Any], region: str) -> dict[str, Any]:
    """The TableDescription DynamoDB answers for a table."""
    provisioned = table["billing_mode"] == "PROVISIONED"
    desc: dict[str, Any] = {
        "AttributeDefinitions": [
            {"AttributeName": a["attribute_name"], "AttributeType": a["attribute_type"]}
            for a in table["attribute_definitions"]
        ],
        "TableName": table["table_name"],
        "KeySchema": [{"AttributeName": k["attribute_name"], "KeyType": k["key_type"]} for k in table["key_schema"]],
        "TableStatus": table["status"],
        "CreationDateTime": table["created_at_ms"] / 1000.0,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": decreases_today(table),
            "ReadCapacityUnits": table["read_capacity_units"] if provisioned else 0,
            "WriteCapacityUnits": table["write_capacity_units"] if provisioned else 0,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": table_arn(region, table["table_name"]),
        "TableId": table["table_id"],
        "DeletionProtectionEnabled": False,
    }
    from .gsi import describe_indexes, describe_local_indexes
    from .streams import describe_stream_fields

    desc.update(describe_stream_fields(table, region))
    if table.get("global_indexes"):
        desc["GlobalSecondaryIndexes"] = describe_indexes(table, desc["TableArn"])
    if table.get("local_indexes"):
        desc["LocalSecondaryIndexes"] = describe_local_indexes(table, desc["TableArn"])
    for field, ms in (("LastIncreaseDateTime", table.get("last_increase_ms")),
                      ("LastDecreaseDateTime", table.get("last_decrease_ms"))):
        if ms is not None:
            desc["ProvisionedThroughput"][field] = ms / 1000.0
    # a table created PROVISIONED and never switched has no BillingModeSummary (as DynamoDB)
    on_demand_since = table.get("pay_per_request_since_ms")
    if not provisioned or on_demand_since is not None:
        desc["BillingModeSummary"] = {
            "BillingMode": table["billing_mode"],
            "LastUpdateToPayPerRequestDateTime": (on_demand_since or table["created_at_ms"]) / 1000.0,
        }
    return desc


def key_names(table: dict[str, Any]) -> tuple[str, str | None]:
    """(hash key name, range key name or None)."""
    hash_key = range_key = None
    for k in table["key_schema"]:
        if k["key_type"] == "HASH":
            hash_key = k["attribute_name"]
        else:
            range_key = k["attribute_name"]
    assert hash_key is not None
    return hash_key, range_key


def attribute_types(table: dict[str, Any]) -> dict[str, str]:
    return {a["attribute_name"]: a["attribute_type"] for a in table["attribute_definitions"]}


class Tables:
    """The control-plane operations of a router."""

    def __init__(
        self, settings: Settings, metadata: Metadata, writer: MetadataWriter, routing: Routing, initial_partitions: int,
        *, provisioner: bool = False,
    ) -> None:
        """``provisioner``: this process (the auto-admin) carries out CREATING / UPDATING /
        DELETING tables; a router only publishes them (docs/architecture.md, Control plane)."""
        self.settings = settings
        self.provisioner = provisioner
        self.metadata = metadata
        self.writer = writer
        self.routing = routing
        self.initial_partitions = initial_partitions
        self._work: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.control = Control(self)

    def lock(self, name: str) -> asyncio.Lock:
        """The lock held while a TableDefinition is read and rewritten."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    # -- lookups used by the data plane ----------------------------------------------------
    def get(self, name: Any) -> dict[str, Any]:
        """The table named ``name`` for a data-plane request, or ResourceNotFoundException."""
        table = self.metadata.catalog.items.get(name) if isinstance(name, str) else None
        if table is None or table["status"] == "DELETING":
            raise errors.resource_not_found()
        return table

    async def get_active(self, name: Any) -> dict[str, Any]:
        """Like :meth:`get`, but waits a little for a table that is still CREATING."""
        table = self.get(name)
        if table["status"] == "CREATING":
            await self.metadata.catalog.wait_until(
                lambda: self.metadata.catalog.items.get(name, {}).get("status") != "CREATING", 10.0
            )
            table = self.get(name)
            if table["status"] == "CREATING":
                raise errors.resource_not_found()
        return table

    # -- operations ------------------------------------------------------------------------
    async def create_table(self, p: dict[str, Any]) -> dict[str, Any]:
        table = self._validate_create(p)
        name = table["table_name"]
        async with self.lock(name):
            existing = self.metadata.catalog.items.get(name)
            if existing is not None:
                raise errors.resource_in_use(f"Table already exists: {name}")
            await self.writer.put_table(table)
        self._start_work(name)
        return {"TableDescription": describe(table, self.settings.region)}

    async def describe_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = require_table_name(p)
        table = self.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        return {"Table": describe(table, self.settings.region)}

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
        if problems:
            raise errors.validation(f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
                                    + "; ".join(problems))
        names = sorted(self.metadata.catalog.items)
        if start is not None:
            names = [n for n in names if n > start]
        out: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    async def delete_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = require_table_name(p)
        async with self.lock(name):
            table = self.metadata.catalog.items.get(name)
            if table is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            if table["status"] in ("CREATING", "DELETING"):
                raise _in_use(table)
            table = dict(table, status="DELETING")
            await self.writer.put_table(table)
        self._start_work(name)
        return {"TableDescription": describe(table, self.settings.region)}

    async def update_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name_or_arn(p.get("TableName"))
        mode, rcu, wcu = _validate_update(p)
        stream: tuple[bool, str | None] | None = None
        if p.get("StreamSpecification") is not None:
            from .streams import parse_stream_specification

            stream = parse_stream_specification(p["StreamSpecification"])
        async with self.lock(name):
            table = self.metadata.catalog.items.get(name)
            if table is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            if table["status"] != "ACTIVE":
                raise _in_use(table)
            if p.get("GlobalSecondaryIndexUpdates") is not None:
                from .gsi import apply_index_updates

                updated = dict(table, status="UPDATING")
                apply_index_updates(updated, table, p)
                if stream is not None:
                    from .streams import apply_stream_change

                    apply_stream_change(updated, table, stream[0], stream[1], int(time.time() * 1000))
                if mode is None and rcu is None:
                    await self.writer.put_table(updated)
                    self._start_work(name)
                    return {"TableDescription": describe(updated, self.settings.region)}
                table = updated
                stream = None
            if stream is not None:
                from .streams import apply_stream_change

                updated = dict(table, status="UPDATING")
                apply_stream_change(updated, table, stream[0], stream[1], int(time.time() * 1000))
                if mode is None and rcu is None:
                    await self.writer.put_table(updated)
                    self._start_work(name)
                    return {"TableDescription": describe(updated, self.settings.region)}
                table = updated
            current = table["billing_mode"]
            target = mode or current
            if rcu is not None and target == "PAY_PER_REQUEST":
                raise errors.validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor "
                                        "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
            now = int(time.time() * 1000)
            updated = dict(table, status="UPDATING")
            if target == "PAY_PER_REQUEST":
                if current == "PAY_PER_REQUEST":  # nothing changes (as DynamoDB, no error)
                    if stream is not None:  # but the stream does
                        await self.writer.put_table(updated)
                        self._start_work(name)
                        return {"TableDescription": describe(updated, self.settings.region)}
                    return {"TableDescription": describe(table, self.settings.region)}
                updated.update(billing_mode="PAY_PER_REQUEST", read_capacity_units=0, write_capacity_units=0,
                               pay_per_request_since_ms=now)
            else:
                assert rcu is not None and wcu is not None
                old_r, old_w = ((table["read_capacity_units"], table["write_capacity_units"])
                                if current == "PROVISIONED" else (0, 0))
                if (rcu, wcu) == (old_r, old_w):
                    raise errors.validation(
                        "The provisioned throughput for the table will not change. The requested value equals the "
                        f"current value. Current ReadCapacityUnits provisioned for the table: {old_r}. Requested "
                        f"ReadCapacityUnits: {rcu}. Current WriteCapacityUnits provisioned for the table: {old_w}. "
                        f"Requested WriteCapacityUnits: {wcu}. Refer to the Amazon DynamoDB Developer Guide for "
                        "current limits and how to request higher limits.")
                if rcu > old_r or wcu > old_w:
                    updated["last_increase_ms"] = now
                if rcu < old_r or wcu < old_w:
                    _check_decrease_allowed(table, now)
                    updated.update(last_decrease_ms=now, decreases_today=decreases_today(table, now) + 1)
                if current == "PAY_PER_REQUEST":  # keeps reporting when it was last on demand
                    updated["pay_per_request_since_ms"] = table.get("pay_per_request_since_ms") or table["created_at_ms"]
                updated.update(billing_mode="PROVISIONED", read_capacity_units=rcu, write_capacity_units=wcu)
            await self.writer.put_table(updated)
        self._start_work(name)
        return {"TableDescription": describe(updated, self.settings.region)}

    def _name_or_arn(self, name: Any) -> str:
        """UpdateTable's TableName: a table name or the table's ARN."""
        if isinstance(name, str) and name.startswith("arn:"):
            from .control import parse_arn

            region, account, table = parse_arn(name)
            if region != self.settings.region or account != ACCOUNT:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            name = table
        raise_constraints(constraint_errors("tableName", name))
        return str(name)

    # -- provisioning ----------------------------------------------------------------------
    def resume_pending(self) -> None:
        """Finish any table left CREATING, UPDATING or DELETING (by this or another router)."""
        for name, table in list(self.metadata.catalog.items.items()):
            if table["status"] in ("CREATING", "UPDATING", "DELETING"):
                self._start_work(name)

    def _start_work(self, name: str) -> None:
        if not self.provisioner:
            return  # the auto-admin does it; it follows dyn.catalog
        task = self._work.get(name)
        if task is not None and not task.done():
            return
        task = asyncio.ensure_future(self._drive(name))
        self._work[name] = task

    async def _drive(self, name: str) -> None:
        for attempt in range(1, 1000):
            table = self.metadata.catalog.items.get(name)
            if table is None:
                return
            try:
                if table["status"] == "CREATING":
                    await self._provision(table)
                elif table["status"] == "UPDATING":
                    await self._finish_update(table)
                elif table["status"] == "DELETING":
                    await self._deprovision(table)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tables: provisioning %s failed (attempt %d); retrying", name, attempt)
                await asyncio.sleep(min(5.0, 0.2 * attempt))

    def _place(self, table: dict[str, Any], index: int) -> list[str]:
        """The replicas of a new partition (``dynamolog.placement``)."""
        nodes = self.metadata.nodes.items
        return placement.place_new(nodes, table["table_id"], index, {n: i.get("zone") for n, i in nodes.items()})

    def _new_parts(self, table: dict[str, Any], unit_id: str, topic_name: str,
                   pids: list[str]) -> list[dict[str, Any]]:
        """PartitionInfos (existing ones as they are) of a table's or an index's partitions."""
        n = len(pids)
        parts = []
        for i, pid in enumerate(pids):
            existing = self.metadata.partitions.items.get(pid)
            if existing is not None:
                parts.append(existing)
                continue
            replicas = self._place(table, i + (0 if unit_id == table["table_id"] else 1))
            parts.append({
                "partition_id": pid,
                "table_name": table["table_name"],
                "table_id": unit_id,
                "hash_start": i * HASH_SPACE // n,
                "hash_end": (i + 1) * HASH_SPACE // n - 1,
                "log_topic": self.settings.log_topic(topic_name, pid),
                "replicas": replicas,
                "leader": replicas[0],
                "leader_epoch": 1,
                "state": "ACTIVE",
                "parent": None,
                "children": [],
            })
        return parts

    def _index_parts(self, table: dict[str, Any], index: dict[str, Any]) -> list[dict[str, Any]]:
        return self._new_parts(table, index["index_id"], f"{table['table_name']}.{index['index_name']}",
                               index["partition_ids"])

    async def _open_parts(self, parts: list[dict[str, Any]]) -> None:
        """Create the log topics, publish the partitions, open them on their nodes."""
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            for part in parts:
                await admin.create_topic(part["log_topic"], configs=LOG_TOPIC_CONFIGS)
            await admin.wait_for_topics([p["log_topic"] for p in parts])
        for part in parts:
            await self.writer.put_partition(part)
        await asyncio.gather(*(
            self.routing.client(part["leader"]).call("open", partition=part, timeout_s=60) for part in parts
        ))
        await asyncio.gather(*(
            self.routing.client(node).call("open", partition=part, timeout_s=60)
            for part in parts for node in part["replicas"] if node != part["leader"]
        ), return_exceptions=True)

    async def _drop_parts(self, parts: list[dict[str, Any]]) -> None:
        for part in parts:
            await self.writer.put_partition(dict(part, state="DELETED"))
        for part in parts:
            for node in part["replicas"]:
                try:
                    await self.routing.client(node).call("drop", pid=part["partition_id"], timeout_s=30)
                except (TimeoutError, ConnectionError) as e:
                    # the node drops it on its own when it sees the DELETED state
                    log.warning("tables: node %s did not confirm dropping %s: %s", node, part["partition_id"], e)
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.delete_topics([p["log_topic"] for p in parts])
        for part in parts:
            await self.writer.delete_partition(part["partition_id"])

    async def _provision(self, table: dict[str, Any]) -> None:
        t0 = time.monotonic()
        n = len(table["partition_ids"])
        parts = self._new_parts(table, table["table_id"], table["table_name"], table["partition_ids"])
        for index in table.get("global_indexes") or []:
            parts += self._index_parts(table, index)
        t_topics = time.monotonic()
        await self._open_parts(parts)
        async with self.lock(table["table_name"]):
            current = self.metadata.catalog.items.get(table["table_name"])
            if current is None or current["table_id"] != table["table_id"] or current["status"] != "CREATING":
                return
            await self.writer.put_table(dict(current, status="ACTIVE"))
        log.info("table %s ACTIVE after %.0f ms (%d partitions; topics %.0f ms, opening %.0f ms)", table["table_name"],
                 (time.monotonic() - t0) * 1000, n, (t_topics - t0) * 1000, (time.monotonic() - t_topics) * 1000)

    async def _finish_update(self, table: dict[str, Any]) -> None:
        """UPDATING -> ACTIVE.  Billing changes need no data movement yet (no throttling, and
        partitions are not split for throughput), so the update is complete once published."""
        name = table["table_name"]
        # a new global index: its partitions (the indexer backfills them, then marks it ACTIVE);
        # a deleted one: its partitions dropped, then it leaves the table definition
        for index in table.get("global_indexes") or []:
            if index["status"] == "CREATING":
                await self._open_parts(self._index_parts(table, index))
            elif index["status"] == "DELETING":
                await self._drop_parts([self.metadata.partitions.items[pid] for pid in index["partition_ids"]
                                        if pid in self.metadata.partitions.items])
        async with self.lock(name):
            current = self.metadata.catalog.items.get(name)
            if current is None or current["table_id"] != table["table_id"] or current["status"] != "UPDATING":
                return
            kept = [i for i in current.get("global_indexes") or [] if i["status"] != "DELETING"]
            await self.writer.put_table(dict(current, status="ACTIVE", global_indexes=kept))
        log.info("table %s updated", name)

    async def _deprovision(self, table: dict[str, Any]) -> None:
        pids = list(table["partition_ids"])
        for index in table.get("global_indexes") or []:
            pids += index["partition_ids"]
        await self._drop_parts([self.metadata.partitions.items[pid] for pid in pids
                                if pid in self.metadata.partitions.items])
        current = self.metadata.catalog.items.get(table["table_name"])
        if current is not None and current["table_id"] == table["table_id"]:
            await self.writer.delete_table(table["table_name"])
        log.info("table %s deleted", table["table_name"])

    # -- validation --------------------------------------------------------------------------
    def _validate_create(self, p: dict[str, Any]) -> dict[str, Any]:
        from .validate import validate_create_table

        spec = validate_create_table(p)
        tags = parse_tags(p["Tags"]) if p.get("Tags") is not None else {}
        table_id = str(uuid.uuid4())
        partitions = self.initial_partitions
        if spec["billing_mode"] == "PROVISIONED":
            wanted = -(-spec["read_capacity_units"] // 3000) + -(-spec["write_capacity_units"] // 1000)
            partitions = max(partitions, min(16, wanted))
        short = re.sub("-", "", table_id)[:12]
        spec.update({
            "table_id": table_id,
            "status": "CREATING",
            "created_at_ms": int(time.time() * 1000),
            "partition_ids": [f"{short}-{i}" for i in range(partitions)],
            "tags": tags,
            "deleted": False,
            "last_increase_ms": None,
            "last_decrease_ms": None,
            "decreases_today": 0,
            "pay_per_request_since_ms": None,
            "stream_enabled": False,
            "stream_view_type": None,
            "stream_label": None,
            "stream_created_ms": None,
            "stream_disabled_ms": None,
            "ttl_attribute": None,
        })
        from .gsi import parse_global_indexes

        spec["global_indexes"] = parse_global_indexes(
            p, {a["attribute_name"]: a["attribute_type"] for a in spec["attribute_definitions"]},
            spec["billing_mode"], table_id, spec["partition_ids"])
        from .gsi import parse_local_indexes

        spec["local_indexes"] = parse_local_indexes(
            p, {a["attribute_name"]: a["attribute_type"] for a in spec["attribute_definitions"]},
            spec["key_schema"], table_id, spec["global_indexes"])
        if p.get("StreamSpecification") is not None:
            from .streams import parse_stream_specification, stream_label

            enabled, view = parse_stream_specification(p["StreamSpecification"])
            if enabled:
                spec.update(stream_enabled=True, stream_view_type=view, stream_label=stream_label(spec["created_at_ms"]),
                            stream_created_ms=spec["created_at_ms"])
        return spec


def _in_use(table: dict[str, Any]) -> errors.ApiError:
    doing = {"CREATING": "created", "UPDATING": "updated", "DELETING": "deleted"}.get(table["status"], "updated")
    return errors.resource_in_use(
        f"Attempt to change a resource which is still in use: Table is being {doing}: {table['table_name']}")


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
                          "GlobalSecondaryIndexUpdates") + UNSUPPORTED_UPDATES
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


def _utc_words(ms: int) -> str:
    """A time as DynamoDB writes it in limit messages: ``Wednesday, July 25, 2018 6:11:31 PM UTC``."""
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    hour = t.hour % 12 or 12
    return f"{t:%A, %B} {t.day}, {t.year} {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'} UTC"


def _check_decrease_allowed(table: dict[str, Any], now: int) -> None:
    """DynamoDB's decrease quota: 4 at any time in a UTC day, then one per hour."""
    n = decreases_today(table, now)
    last = table.get("last_decrease_ms")
    if n < FREE_DECREASES_PER_DAY or last is None or now - last >= DECREASE_INTERVAL_MS:
        return
    raise errors.limit_exceeded(
        "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. After the "
        f"first {FREE_DECREASES_PER_DAY} decreases, each subsequent decrease in the same UTC day can be performed at "
        f"most once every {DECREASE_INTERVAL_MS // 1000} seconds. Number of decreases today: {n}. Last decrease at "
        f"{_utc_words(last)}. Next decrease can be made at {_utc_words(last + DECREASE_INTERVAL_MS)}")
