"""Control plane: CreateTable, DescribeTable, ListTables, DeleteTable, and provisioning.

A table is a TableDefinition in ``dyn.catalog`` plus its partitions in ``dyn.partitions``,
each with its own log topic.  CreateTable publishes the definition as CREATING and answers at
once (as DynamoDB does); provisioning then creates the log topics, publishes the partitions,
has the storage nodes open them, and publishes ACTIVE, normally well within a second.
Provisioning is idempotent and resumed by any router that starts and finds a table still
CREATING or DELETING, so a router that dies half-way leaves nothing stuck.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
import zlib
from typing import Any

from dynamolog import errors
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, MetadataWriter

from .routing import Routing
from .validate import constraint_errors, require_table_name

log = logging.getLogger(__name__)

HASH_SPACE = 1 << 64
#: log topic settings: records of up to 2 MB (a 400 KB item with its old image, framed)
LOG_TOPIC_CONFIGS = {"max.message.bytes": str(4 * 1024 * 1024), "unclean.leader.election.enable": "false"}
ACCOUNT = "000000000000"


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
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": table["read_capacity_units"] if provisioned else 0,
            "WriteCapacityUnits": table["write_capacity_units"] if provisioned else 0,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table['table_name']}",
        "TableId": table["table_id"],
        "DeletionProtectionEnabled": False,
    }
    if not provisioned:
        desc["BillingModeSummary"] = {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": table["created_at_ms"] / 1000.0,
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
        self, settings: Settings, metadata: Metadata, writer: MetadataWriter, routing: Routing, initial_partitions: int
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.writer = writer
        self.routing = routing
        self.initial_partitions = initial_partitions
        self._work: dict[str, asyncio.Task[None]] = {}

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
        table = self.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        if table["status"] == "CREATING":
            raise errors.resource_in_use(f"Attempt to change a resource which is still in use: Table is being created: {name}")
        if table["status"] == "DELETING":
            raise errors.resource_in_use(f"Attempt to change a resource which is still in use: Table is being deleted: {name}")
        table = dict(table, status="DELETING")
        await self.writer.put_table(table)
        self._start_work(name)
        return {"TableDescription": describe(table, self.settings.region)}

    # -- provisioning ----------------------------------------------------------------------
    def resume_pending(self) -> None:
        """Finish any table left CREATING or DELETING (by this or another router)."""
        for name, table in list(self.metadata.catalog.items.items()):
            if table["status"] in ("CREATING", "DELETING"):
                self._start_work(name)

    def _start_work(self, name: str) -> None:
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
                elif table["status"] == "DELETING":
                    await self._deprovision(table)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tables: provisioning %s failed (attempt %d); retrying", name, attempt)
                await asyncio.sleep(min(5.0, 0.2 * attempt))

    def _place(self, table: dict[str, Any], index: int) -> str:
        nodes = sorted(self.metadata.nodes.items)
        if not nodes:
            raise RuntimeError("no storage node has registered yet")
        return nodes[(zlib.crc32(table["table_id"].encode()) + index) % len(nodes)]

    async def _provision(self, table: dict[str, Any]) -> None:
        t0 = time.monotonic()
        n = len(table["partition_ids"])
        parts = []
        for i, pid in enumerate(table["partition_ids"]):
            existing = self.metadata.partitions.items.get(pid)
            if existing is not None:
                parts.append(existing)
                continue
            node = self._place(table, i)
            parts.append({
                "partition_id": pid,
                "table_name": table["table_name"],
                "table_id": table["table_id"],
                "hash_start": i * HASH_SPACE // n,
                "hash_end": (i + 1) * HASH_SPACE // n - 1,
                "log_topic": self.settings.log_topic(table["table_name"], pid),
                "replicas": [node],
                "leader": node,
                "leader_epoch": 1,
                "state": "ACTIVE",
                "parent": None,
                "children": [],
            })
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            for part in parts:
                await admin.create_topic(part["log_topic"], configs=LOG_TOPIC_CONFIGS)
            await admin.wait_for_topics([p["log_topic"] for p in parts])
        t_topics = time.monotonic()
        for part in parts:
            await self.writer.put_partition(part)
        await asyncio.gather(*(
            self.routing.client(part["leader"]).call("open", partition=part, timeout_s=60) for part in parts
        ))
        current = self.metadata.catalog.items.get(table["table_name"])
        if current is None or current["table_id"] != table["table_id"] or current["status"] != "CREATING":
            return
        await self.writer.put_table(dict(current, status="ACTIVE"))
        log.info("table %s ACTIVE after %.0f ms (%d partitions; topics %.0f ms, opening %.0f ms)", table["table_name"],
                 (time.monotonic() - t0) * 1000, n, (t_topics - t0) * 1000, (time.monotonic() - t_topics) * 1000)

    async def _deprovision(self, table: dict[str, Any]) -> None:
        parts = [self.metadata.partitions.items[pid] for pid in table["partition_ids"] if pid in self.metadata.partitions.items]
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
        current = self.metadata.catalog.items.get(table["table_name"])
        if current is not None and current["table_id"] == table["table_id"]:
            await self.writer.delete_table(table["table_name"])
        log.info("table %s deleted", table["table_name"])

    # -- validation --------------------------------------------------------------------------
    def _validate_create(self, p: dict[str, Any]) -> dict[str, Any]:
        from .validate import validate_create_table

        spec = validate_create_table(p)
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
            "tags": {},
            "deleted": False,
        })
        return spec
