"""Global tables, version 2019.11.21: UpdateTable ``ReplicaUpdates`` and the replicas in
DescribeTable (decision 0033).

A replica is created in a linked region (dynamolog/regions.py) by calling that region's router
with the replication key: ``CreateTableReplica`` (the table with this one's key schema, indexes,
capacity mode and a NEW_AND_OLD_IMAGES stream) and ``DeleteTableReplica``, the two operations
DynamoDB's own ReplicaUpdates invoke in the destination region.  Each region records the table's
replica set in its regions topic; RepOut then ships the table's logs from their start, so the
items written before the replica existed are copied first, and the new replica becomes ACTIVE
once its region has applied them (services/repout/repout.py, ``caught_up``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from dynamolog import errors, regions
from dynamolog.catalog import ACCOUNT, TableDefinition
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings

from .replica_settings import Plan, ReplicaSettings
from .streams import apply_stream_change
from .tables import Tables, describe

log = logging.getLogger(__name__)

VERSION = "2019.11.21"
LEGACY_VERSION = "2017.11.29"
#: the fields of UpdateTable another change cannot be combined with ReplicaUpdates in
_OTHER_UPDATES = ("AttributeDefinitions", "BillingMode", "ProvisionedThroughput", "GlobalSecondaryIndexUpdates",
                  "StreamSpecification", "SSESpecification", "TableClass", "DeletionProtectionEnabled",
                  "OnDemandThroughput", "WarmThroughput")


def _local_region_error() -> errors.ApiError:
    return errors.validation("Cannot add, delete, or update the local region through ReplicaUpdates. Use "
                             "CreateTable, DeleteTable, or UpdateTable as required.")


def create_params(table: TableDefinition, region: str) -> dict[str, Any]:
    """The CreateTable request of a replica of ``table`` (key schema, indexes, capacity mode and
    a NEW_AND_OLD_IMAGES stream, as DynamoDB makes a replica)."""
    d = describe(table, region)
    p: dict[str, Any] = {"TableName": table.table_name, "KeySchema": d["KeySchema"],
                         "AttributeDefinitions": d["AttributeDefinitions"], "BillingMode": table.billing_mode,
                         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    # a replica is made as warm as its table (DynamoDB applies warm throughput to every replica)
    p["WarmThroughput"] = {k: v for k, v in d["WarmThroughput"].items() if k != "Status"}
    provisioned = table.billing_mode == "PROVISIONED"
    if provisioned:
        p["ProvisionedThroughput"] = {"ReadCapacityUnits": table.read_capacity_units,
                                      "WriteCapacityUnits": table.write_capacity_units}
    gsis = []
    for i in d.get("GlobalSecondaryIndexes", []):
        g = {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        if provisioned:
            g["ProvisionedThroughput"] = {k: i["ProvisionedThroughput"][k]
                                          for k in ("ReadCapacityUnits", "WriteCapacityUnits")}
        gsis.append(g)
    if gsis:
        p["GlobalSecondaryIndexes"] = gsis
    lsis = [{"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in d.get("LocalSecondaryIndexes", [])]
    if lsis:
        p["LocalSecondaryIndexes"] = lsis
    return p


class GlobalTables:
    """UpdateTable with ReplicaUpdates, DescribeTable's Replicas, and the destination region's
    CreateTableReplica / DeleteTableReplica."""

    def __init__(self, settings: Settings, tables: Tables, catalog: CatalogClient, master: bytes | None) -> None:
        self.settings = settings
        self.tables = tables
        self.catalog = catalog
        self.regions = regions.RegionsView(settings, master)
        #: capacity and auto scaling across the replicas (services/router/replica_settings.py)
        self.replica_settings = ReplicaSettings(self)

    async def start(self) -> None:
        await self.regions.start()

    async def close(self) -> None:
        await self.regions.close()

    # -- describing ----------------------------------------------------------------------------
    def replica_fields(self, name: str) -> dict[str, Any]:
        """``Replicas`` (the other regions' replicas and their status) and ``GlobalTableVersion``
        of a TableDescription; {} for a table that is not replicated."""
        rep = self.regions.replicas(name)
        if rep is None or len(rep.status) < 2:
            return {}
        return {"GlobalTableVersion": rep.version,
                "Replicas": [{"RegionName": r, "ReplicaStatus": s, **rep.overrides.get(r, {})}
                             for r, s in sorted(rep.status.items()) if r != self.settings.region]}

    async def describe_table(self, p: dict[str, Any]) -> dict[str, Any]:
        out = await self.tables.describe_table(p)
        name = out["Table"]["TableName"]
        out["Table"].update(self.replica_fields(name))
        return out

    # -- UpdateTable ---------------------------------------------------------------------------
    async def update_table(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("ReplicaUpdates") is None:
            out = await self.tables.update_table(p)
            out["TableDescription"].update(self.replica_fields(out["TableDescription"]["TableName"]))
            return out
        updates = self._parse(p)
        bodies = {r: b for (_, r), b in zip(updates, (next(u[k] for k in ("Create", "Update", "Delete")
                                                              if u.get(k) is not None) for u in p["ReplicaUpdates"]),
                                            strict=True)}
        name = str(p.get("TableName"))
        table = self.tables.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        if table.status != "ACTIVE":
            raise errors.resource_in_use(f"Table is being updated: {name}" if table.status == "UPDATING"
                                         else f"Attempt to change a resource which is still in use: Table: {name}")
        current = self.regions.replicas(name)
        status = dict(current.status) if current else {self.settings.region: "ACTIVE"}
        linked = self.regions.regions()
        overrides: dict[str, tuple[Plan, dict[str, Any]]] = {}
        for action, region in updates:  # every check before any change: bad input changes nothing
            if region == self.settings.region:
                raise _local_region_error()
            if region not in linked:
                raise errors.validation(f"Region {region} is not a region this one replicates with (link it with "
                                        "`dynamolog regions add`)")
            if action == "Create":
                if region in status:
                    raise errors.validation(f"Failed to create a replica in region {region}: the table already "
                                            "has a replica there")
            elif region not in status:
                raise errors.validation(f"Failed to {action.lower()} the replica in region {region}: the table "
                                        "has no replica there")
            if action == "Update":
                overrides[region] = self.replica_settings.override_plan(table, bodies[region])
        if any(a == "Create" for a, _ in updates):
            await self._check_capacity(table)
            table = await self._ensure_stream(table)
        for action, region in updates:
            if action == "Create":
                status[region] = "CREATING"
                await self._call(region, "CreateTableReplica", {
                    "Table": create_params(table, self.settings.region), "Replicas": status, "Version": VERSION})
                await regions.put_replicas(self.settings, regions.Replicas(
                    name, dict(status), current.version if current else VERSION,
                    current.created_ms if current else regions.now_ms(),
                    dict(current.overrides) if current else {}))
            elif action == "Update":
                await self.replica_settings.apply_overrides(name, region, *overrides[region])
            elif action == "Delete":
                await self._call(region, "DeleteTableReplica", {"TableName": name})
                del status[region]
                if len(status) > 1:
                    await regions.put_replicas(self.settings, regions.Replicas(
                        name, dict(status), current.version if current else VERSION,
                        current.created_ms if current else 0,
                        {r: o for r, o in (current.overrides if current else {}).items() if r in status}))
                else:
                    await regions.remove_replicas(self.settings, name)
        await self.regions.view.wait_until(lambda: self._status_is(name, status) and self._overrides_are(
            name, {r: rec for r, (_, rec) in overrides.items() if rec}), 5.0)
        desc = describe(table, self.settings.region)
        desc.update(self.replica_fields(name))
        return {"TableDescription": desc}

    def _status_is(self, name: str, status: dict[str, str]) -> bool:
        rep = self.regions.replicas(name)
        return (rep.status if rep else {self.settings.region: "ACTIVE"}) == status or (rep is None and len(status) < 2)

    def _overrides_are(self, name: str, wanted: dict[str, dict[str, Any]]) -> bool:
        rep = self.regions.replicas(name)
        have = rep.overrides if rep else {}
        return all(all(have.get(r, {}).get(k) == v for k, v in o.items()) for r, o in wanted.items())

    def _parse(self, p: dict[str, Any]) -> list[tuple[str, str]]:
        others = [k for k in _OTHER_UPDATES if p.get(k) is not None]
        if others:
            raise errors.validation("One or more parameter values were invalid: ReplicaUpdates cannot be combined "
                                    f"with other updates in one request ({', '.join(others)})")
        ups = p["ReplicaUpdates"]
        if not isinstance(ups, list) or not ups:
            raise errors.validation("1 validation error detected: Value null at 'replicaUpdates' failed to satisfy "
                                    "constraint: Member must have length greater than or equal to 1")
        out: list[tuple[str, str]] = []
        for u in ups:
            actions = [k for k in ("Create", "Update", "Delete") if isinstance(u, dict) and u.get(k) is not None]
            if len(actions) != 1:
                raise errors.validation("One or more parameter values were invalid: One of Create, Update, or "
                                        "Delete must be specified in each ReplicaUpdate")
            body = u[actions[0]]
            region = body.get("RegionName") if isinstance(body, dict) else None
            if not isinstance(region, str) or not region:
                raise errors.validation("1 validation error detected: Value null at 'regionName' failed to satisfy "
                                        "constraint: Member must not be null")
            if any(r == region for _, r in out):
                raise errors.validation(f"One or more parameter values were invalid: Region {region} appears in "
                                        "more than one ReplicaUpdate")
            out.append((actions[0], region))
        return out

    async def _check_capacity(self, table: TableDefinition) -> None:
        """A replica needs on-demand capacity, or provisioned write capacity that is auto scaled."""
        if table.billing_mode != "PROVISIONED":
            return
        try:
            found = await self.catalog.admin_call("scaling", action="DescribeScalableTargets", params={
                "ServiceNamespace": "dynamodb", "ResourceIds": [f"table/{table.table_name}"],
                "ScalableDimension": "dynamodb:table:WriteCapacityUnits"})
        except errors.ApiError:
            found = {}
        if not found.get("ScalableTargets"):
            raise errors.validation("Table write capacity should either be Pay-Per-Request or AutoScaled.")

    async def _ensure_stream(self, table: TableDefinition) -> TableDefinition:
        """Version 2019.11.21 turns on a NEW_AND_OLD_IMAGES stream where the table has none; a
        stream of another view type cannot carry the replication."""
        if table.stream_enabled:
            if table.stream_view_type != "NEW_AND_OLD_IMAGES":
                raise errors.validation("One or more parameter values were invalid: Table StreamViewType must be "
                                        "NEW_AND_OLD_IMAGES to add replicas")
            return table
        now = int(time.time() * 1000)

        def enable(current: TableDefinition | None) -> TableDefinition | None:
            if current is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {table.table_name} not found")
            if current.stream_enabled:
                return None
            return apply_stream_change(replace(current), current, True, "NEW_AND_OLD_IMAGES", now)

        changed = await self.catalog.change(table.table_name, enable)
        return changed or table

    async def _call(self, region: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
        from dynamolog.client.core import Client
        from dynamolog.client.errors import ClientError

        r = self.regions.regions()[region]
        try:
            async with Client(r.endpoint, region=region, access_key=r.key_id, secret_key=r.secret, timeout=10.0,
                              max_retries=2) as c:
                return await c.call(op, params)
        except ClientError as e:
            raise errors.ApiError(e.code, e.message, status=e.status) from None
        except (OSError, TimeoutError) as e:
            raise errors.ApiError("InternalServerError", f"Region {region} could not be reached ({e}); retry the "
                                  "request", status=500) from None

    # -- the destination region's side ---------------------------------------------------------
    async def create_table_replica(self, p: dict[str, Any]) -> dict[str, Any]:
        """Create this region's replica of a table (called by the region that adds the replica,
        with the replication key); with ``Existing`` (2017.11.29) the table must exist here
        already, with a NEW_AND_OLD_IMAGES stream, and becomes the replica."""
        params = p.get("Table")
        status = p.get("Replicas")
        if not isinstance(params, dict) or not isinstance(status, dict):
            raise errors.validation("CreateTableReplica needs Table and Replicas")
        name = str(params.get("TableName"))
        existing = self.tables.metadata.catalog.items.get(name)
        if p.get("Existing"):
            if existing is None:
                raise errors.ApiError("TableNotFoundException", f"Table: {name} not found in region "
                                      f"{self.settings.region}")
            if not existing.stream_enabled or existing.stream_view_type != "NEW_AND_OLD_IMAGES":
                raise errors.validation(f"One or more parameter values were invalid: Table {name} in region "
                                        f"{self.settings.region} must have a NEW_AND_OLD_IMAGES stream")
            current = self.regions.replicas(name)
            if current is not None and p.get("Check"):
                raise errors.ApiError("GlobalTableAlreadyExistsException", f"Global table with name: {name} "
                                      "already exists")
            if p.get("Check"):
                return {}
            out = {"TableDescription": describe(existing, self.settings.region)}
        elif existing is not None:
            raise errors.validation(f"Failed to create a replica in region {self.settings.region}: a table named "
                                    f"{name} already exists there")
        else:
            out = await self.tables.create_table(params)
        await regions.put_replicas(self.settings, regions.Replicas(
            name, {str(k): str(v) for k, v in status.items()}, str(p.get("Version") or VERSION), regions.now_ms()))
        return out

    async def delete_table_replica(self, p: dict[str, Any]) -> dict[str, Any]:
        """Delete this region's replica (called by the region that removes it)."""
        name = str(p.get("TableName"))
        if self.regions.replicas(name) is None:
            raise errors.validation(f"Table {name} in region {self.settings.region} is not a replica")
        await regions.remove_replicas(self.settings, name)
        if p.get("KeepTable"):  # 2017.11.29: the table stays, as a table of this region only
            return {}
        return await self.tables.delete_table({"TableName": name})

    # -- version 2017.11.29 ---------------------------------------------------------------------
    def _global_description(self, name: str) -> dict[str, Any]:
        rep = self.regions.replicas(name)
        if rep is None or rep.version != LEGACY_VERSION:
            raise errors.ApiError("GlobalTableNotFoundException", f"Global table not found: Global table with name: "
                                  f"{name} does not exist.")
        states = set(rep.status.values())
        return {"GlobalTableName": name, "GlobalTableArn": f"arn:aws:dynamodb::{ACCOUNT}:global-table/{name}",
                "CreationDateTime": rep.created_ms / 1000.0,
                "GlobalTableStatus": "ACTIVE" if states == {"ACTIVE"} else "CREATING",
                "ReplicationGroup": [{"RegionName": r} for r in rep.regions]}

    def _regions_of(self, group: Any, field: str) -> list[str]:
        if not isinstance(group, list) or not group:
            raise errors.validation(f"1 validation error detected: Value null at '{field}' failed to satisfy "
                                    "constraint: Member must not be null")
        out = []
        for g in group:
            region = g.get("RegionName") if isinstance(g, dict) else None
            if not isinstance(region, str) or not region:
                raise errors.validation("1 validation error detected: Value null at 'regionName' failed to "
                                        "satisfy constraint: Member must not be null")
            out.append(region)
        return out

    def _legacy_table(self, name: str) -> TableDefinition:
        table = self.tables.metadata.catalog.items.get(name)
        if table is None:
            raise errors.ApiError("TableNotFoundException", f"Table: {name} not found")
        if not table.stream_enabled or table.stream_view_type != "NEW_AND_OLD_IMAGES":
            raise errors.validation("One or more parameter values were invalid: Table must have a "
                                    "NEW_AND_OLD_IMAGES stream to be part of a global table (2017.11.29)")
        return table

    async def create_global_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("GlobalTableName")
        if not isinstance(name, str) or not name:
            raise errors.validation("1 validation error detected: Value null at 'globalTableName' failed to "
                                    "satisfy constraint: Member must not be null")
        group = self._regions_of(p.get("ReplicationGroup"), "replicationGroup")
        if self.regions.replicas(name) is not None:
            raise errors.ApiError("GlobalTableAlreadyExistsException", f"Global table with name: {name} already "
                                  "exists")
        table = self._legacy_table(name)
        linked = self.regions.regions()
        others = [r for r in group if r != self.settings.region]
        for r in others:
            if r not in linked:
                raise errors.validation(f"Region {r} is not a region this one replicates with (link it with "
                                        "`dynamolog regions add`)")
        status = {r: "CREATING" for r in group} | {self.settings.region: "ACTIVE"}
        for r in others:  # every region's table checked before any change
            await self._call(r, "CreateTableReplica", {"Table": {"TableName": name}, "Replicas": status,
                                                       "Version": LEGACY_VERSION, "Existing": True, "Check": True})
        for r in others:
            await self._call(r, "CreateTableReplica", {"Table": {"TableName": name}, "Replicas": status,
                                                       "Version": LEGACY_VERSION, "Existing": True})
        await regions.put_replicas(self.settings, regions.Replicas(name, status, LEGACY_VERSION, regions.now_ms()))
        await self.regions.view.wait_until(lambda: self.regions.replicas(name) is not None, 5.0)
        del table
        return {"GlobalTableDescription": self._global_description(name)}

    async def describe_global_table(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"GlobalTableDescription": self._global_description(str(p.get("GlobalTableName")))}

    async def update_global_table(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p.get("GlobalTableName"))
        self._global_description(name)
        rep = self.regions.replicas(name)
        assert rep is not None
        ups = p.get("ReplicaUpdates")
        if not isinstance(ups, list) or not ups:
            raise errors.validation("1 validation error detected: Value null at 'replicaUpdates' failed to satisfy "
                                    "constraint: Member must not be null")
        status = dict(rep.status)
        plan: list[tuple[str, str]] = []
        for u in ups:
            action = next((k for k in ("Create", "Delete") if isinstance(u, dict) and u.get(k) is not None), None)
            if action is None:
                raise errors.validation("One or more parameter values were invalid: One of Create or Delete must be "
                                        "specified in each ReplicaUpdate")
            region = self._regions_of([u[action]], "regionName")[0]
            if action == "Create" and region in status:
                raise errors.ApiError("ReplicaAlreadyExistsException", f"Replica already exists in region {region}")
            if action == "Delete" and region not in status:
                raise errors.ApiError("ReplicaNotFoundException", f"Replica not found in region {region}")
            if region != self.settings.region and region not in self.regions.regions():
                raise errors.validation(f"Region {region} is not a region this one replicates with (link it with "
                                        "`dynamolog regions add`)")
            plan.append((action, region))
        for action, region in plan:
            if action == "Create":
                status[region] = "CREATING"
                await self._call(region, "CreateTableReplica", {"Table": {"TableName": name}, "Replicas": status,
                                                                "Version": LEGACY_VERSION, "Existing": True})
            else:
                if region != self.settings.region:
                    await self._call(region, "DeleteTableReplica", {"TableName": name, "KeepTable": True})
                del status[region]
        if len(status) > 1 and self.settings.region in status:
            await regions.put_replicas(self.settings, replace(rep, status=status))
        else:
            await regions.remove_replicas(self.settings, name)
        await self.regions.view.wait_until(lambda: self._status_is(name, status), 5.0)
        return {"GlobalTableDescription": {**self._global_description(name)} if len(status) > 1 else {
            "GlobalTableName": name, "ReplicationGroup": [{"RegionName": r} for r in sorted(status)],
            "GlobalTableStatus": "ACTIVE"}}

    async def list_global_tables(self, p: dict[str, Any]) -> dict[str, Any]:
        region = p.get("RegionName")
        limit = p.get("Limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise errors.validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                                    "constraint: Member must have value greater than or equal to 1")
        start = p.get("ExclusiveStartGlobalTableName")
        names = sorted(n for n, r in self.regions.tables().items() if r.version == LEGACY_VERSION
                       and (region is None or region in r.status) and (start is None or n > start))
        out: dict[str, Any] = {"GlobalTables": [
            {"GlobalTableName": n, "ReplicationGroup": [{"RegionName": r}
                                                        for r in self.regions.tables()[n].regions]}
            for n in names[:limit]]}
        if len(names) > limit:
            out["LastEvaluatedGlobalTableName"] = names[limit - 1]
        return out
