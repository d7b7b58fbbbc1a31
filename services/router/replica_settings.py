"""A global table's capacity and auto scaling settings across its replicas (decision 0042).

- ``UpdateTableReplicaAutoScaling`` / ``DescribeTableReplicaAutoScaling`` (2019.11.21): the
  auto scaling of a table's write capacity (and of its indexes' write capacity) is the same in
  every replica: an update is applied in this region and in every other replica's region; read
  capacity is scaled per replica (``ReplicaUpdates``).
- ``UpdateGlobalTableSettings`` / ``DescribeGlobalTableSettings`` (2017.11.29): the same, plus
  the provisioned units and the billing mode, for a global table made with CreateGlobalTable.
- UpdateTable ``ReplicaUpdates`` ``Update``: a replica's own read capacity
  (``ProvisionedThroughputOverride``, ``OnDemandThroughputOverride``, per index too).

Every region applies its share itself (:meth:`ReplicaSettings.apply_local`): a plan of wanted
units and auto scaling updates, turned into one UpdateTable of its table (only what changes)
and the Application Auto Scaling requests of its auto-admin (services/admin/scaling.py).  The
other regions' shares travel with the replication key as ``UpdateTableReplica``, which answers
that region's settings; a plan without changes is how a region's settings are described.
Everything a request names is checked here before any region changes anything.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dynamolog import errors, regions
from dynamolog.catalog import TableDefinition
from dynamolog.scaling import TARGET_MAX, TARGET_MIN

if TYPE_CHECKING:
    from .replicas import GlobalTables

#: the table classes DynamoDB knows; this version keeps every table STANDARD
TABLE_CLASSES = ("STANDARD", "STANDARD_INFREQUENT_ACCESS")
_KIND = {"read": "Read", "write": "Write"}


def _field(name: str) -> str:
    return name[0].lower() + name[1:]


def _invalid(message: str) -> errors.ApiError:
    return errors.validation(f"One or more parameter values were invalid: {message}")


def _units(v: Any, where: str, problems: list[str]) -> None:
    if v is None:
        return
    if not isinstance(v, int) or isinstance(v, bool):
        raise errors.serialization("Unexpected value type in payload")
    if v < 1:
        problems.append(f"Value '{v}' at '{where}' failed to satisfy constraint: Member must have value greater "
                        "than or equal to 1")


def check_scaling_update(u: Any, where: str, problems: list[str]) -> None:
    """An AutoScalingSettingsUpdate's form (DynamoDB's constraint messages)."""
    if u is None:
        return
    if not isinstance(u, dict):
        raise errors.serialization("Unexpected value type in payload")
    _units(u.get("MinimumUnits"), f"{where}.minimumUnits", problems)
    _units(u.get("MaximumUnits"), f"{where}.maximumUnits", problems)
    if u.get("AutoScalingDisabled") is not None and not isinstance(u["AutoScalingDisabled"], bool):
        raise errors.serialization("Unexpected value type in payload")
    policy = u.get("ScalingPolicyUpdate")
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise errors.serialization("Unexpected value type in payload")
    cfg = policy.get("TargetTrackingScalingPolicyConfiguration")
    if cfg is None:
        problems.append(f"Value null at '{where}.scalingPolicyUpdate.targetTrackingScalingPolicyConfiguration' "
                        "failed to satisfy constraint: Member must not be null")
        return
    if not isinstance(cfg, dict):
        raise errors.serialization("Unexpected value type in payload")
    value = cfg.get("TargetValue")
    if value is None:
        problems.append(f"Value null at '{where}.scalingPolicyUpdate.targetTrackingScalingPolicyConfiguration."
                        "targetValue' failed to satisfy constraint: Member must not be null")
    elif not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise errors.serialization("Unexpected value type in payload")
    elif not TARGET_MIN <= value <= TARGET_MAX:
        raise errors.validation(f"Target value {value:g} is out of range: it must be between {TARGET_MIN:g} and "
                                f"{TARGET_MAX:g}")
    for name in ("ScaleInCooldown", "ScaleOutCooldown"):
        v = cfg.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise errors.serialization("Unexpected value type in payload")


def _raise(problems: list[str]) -> None:
    if problems:
        n = len(problems)
        raise errors.validation(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise errors.serialization("Unexpected value type in payload")
    return v


def _resource(table: str, index: str | None) -> str:
    return f"table/{table}" + (f"/index/{index}" if index else "")


def _dimension(index: str | None, kind: str) -> str:
    return f"dynamodb:{'index' if index else 'table'}:{_KIND[kind]}CapacityUnits"


class Plan:
    """One region's share of a settings change: wanted units and auto scaling updates."""

    def __init__(self) -> None:
        self.billing_mode: str | None = None
        #: (index or "", "read" / "write") -> provisioned units
        self.units: dict[tuple[str, str], int] = {}
        #: index or "" -> MaxReadRequestUnits
        self.max_reads: dict[str, int] = {}
        #: (index or "", "read" / "write") -> AutoScalingSettingsUpdate
        self.scaling: dict[tuple[str, str], dict[str, Any]] = {}

    def empty(self) -> bool:
        return not (self.billing_mode or self.units or self.max_reads or self.scaling)

    def encode(self) -> dict[str, Any]:
        return {"BillingMode": self.billing_mode,
                "Units": [[i, k, v] for (i, k), v in self.units.items()],
                "MaxReads": self.max_reads,
                "Scaling": [[i, k, v] for (i, k), v in self.scaling.items()]}

    @classmethod
    def decode(cls, d: dict[str, Any]) -> Plan:
        p = cls()
        p.billing_mode = d.get("BillingMode")
        p.units = {(str(i), str(k)): int(v) for i, k, v in d.get("Units", [])}
        p.max_reads = {str(k): int(v) for k, v in (d.get("MaxReads") or {}).items()}
        p.scaling = {(str(i), str(k)): dict(v) for i, k, v in d.get("Scaling", [])}
        return p


class ReplicaSettings:
    """The four settings operations and UpdateTable's replica ``Update``."""

    def __init__(self, gt: GlobalTables) -> None:
        self.gt = gt

    @property
    def region(self) -> str:
        return self.gt.settings.region

    # -- one region's share ------------------------------------------------------------------
    async def apply_local(self, name: str, plan: Plan) -> dict[str, Any]:
        """Apply a plan to this region's table; answer this region's settings."""
        table = self._table(name)
        if not plan.empty():
            update = self._update_table_request(table, plan)
            if update is not None:
                await self.gt.tables.update_table(update)
            for (index, kind), u in plan.scaling.items():
                await self._apply_scaling(name, index or None, kind, u)
        return await self.region_settings(self._table(name))

    def _table(self, name: str) -> TableDefinition:
        table = self.gt.tables.metadata.catalog.items.get(name)
        if table is None or table.status == "DELETING":
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        return table

    @staticmethod
    def _update_table_request(table: TableDefinition, plan: Plan) -> dict[str, Any] | None:
        """The UpdateTable request that makes ``table`` what the plan wants (None: it is already)."""
        p: dict[str, Any] = {"TableName": table.table_name}
        mode = plan.billing_mode or table.billing_mode
        if mode != table.billing_mode:
            p["BillingMode"] = mode
        if mode == "PROVISIONED":
            r = plan.units.get(("", "read"), table.read_capacity_units)
            w = plan.units.get(("", "write"), table.write_capacity_units)
            if (r, w) != (table.read_capacity_units, table.write_capacity_units) or "BillingMode" in p:
                p["ProvisionedThroughput"] = {"ReadCapacityUnits": r, "WriteCapacityUnits": w}
            gsis = []
            for g in table.global_indexes:
                gr = plan.units.get((g.index_name, "read"), g.read_capacity_units)
                gw = plan.units.get((g.index_name, "write"), g.write_capacity_units)
                if (gr, gw) != (g.read_capacity_units, g.write_capacity_units):
                    gsis.append({"Update": {"IndexName": g.index_name, "ProvisionedThroughput": {
                        "ReadCapacityUnits": gr, "WriteCapacityUnits": gw}}})
            if gsis:
                p["GlobalSecondaryIndexUpdates"] = gsis
        elif "" in plan.max_reads and plan.max_reads[""] != table.max_read_request_units:
            p["OnDemandThroughput"] = {"MaxReadRequestUnits": plan.max_reads[""]}
        return p if len(p) > 1 else None

    async def _admin(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.gt.catalog.admin_call("scaling", action=action, params=params)
        except errors.ApiError as e:
            if e.type_name in ("ValidationException", "ObjectNotFoundException"):
                raise errors.validation(e.message) from None
            raise

    async def _apply_scaling(self, name: str, index: str | None, kind: str, u: dict[str, Any]) -> None:
        target = {"ServiceNamespace": "dynamodb", "ResourceId": _resource(name, index),
                  "ScalableDimension": _dimension(index, kind)}
        if u.get("AutoScalingDisabled"):
            found = await self._admin("DescribeScalableTargets", {**target, "ResourceIds": [target["ResourceId"]]})
            if found.get("ScalableTargets"):
                await self._admin("DeregisterScalableTarget", target)
            return
        reg: dict[str, Any] = dict(target)
        if u.get("MinimumUnits") is not None:
            reg["MinCapacity"] = u["MinimumUnits"]
        if u.get("MaximumUnits") is not None:
            reg["MaxCapacity"] = u["MaximumUnits"]
        if u.get("AutoScalingRoleArn") is not None:
            reg["RoleARN"] = u["AutoScalingRoleArn"]
        await self._admin("RegisterScalableTarget", reg)
        policy = u.get("ScalingPolicyUpdate")
        if policy is not None:
            cfg = dict(policy["TargetTrackingScalingPolicyConfiguration"])
            cfg["PredefinedMetricSpecification"] = {
                "PredefinedMetricType": f"DynamoDB{_KIND[kind]}CapacityUtilization"}
            await self._admin("PutScalingPolicy", {
                **target, "PolicyName": policy.get("PolicyName") or
                f"DynamoDB{_KIND[kind]}CapacityUtilization:{target['ResourceId']}",
                "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": cfg})

    async def region_settings(self, table: TableDefinition) -> dict[str, Any]:
        """This region's table: its units and its auto scaling settings (AutoScalingSettings-
        Description per resource and kind)."""
        ids = [_resource(table.table_name, None)] + [_resource(table.table_name, g.index_name)
                                                    for g in table.global_indexes]
        targets = (await self._admin("DescribeScalableTargets", {"ServiceNamespace": "dynamodb",
                                                                 "ResourceIds": ids}))["ScalableTargets"]
        scaling: dict[str, dict[str, Any]] = {}
        for t in targets:
            policies = (await self._admin("DescribeScalingPolicies", {
                "ServiceNamespace": "dynamodb", "ResourceId": t["ResourceId"],
                "ScalableDimension": t["ScalableDimension"]}))["ScalingPolicies"]
            desc: dict[str, Any] = {"MinimumUnits": t["MinCapacity"], "MaximumUnits": t["MaxCapacity"],
                                    "AutoScalingDisabled": False}
            if t.get("RoleARN"):
                desc["AutoScalingRoleArn"] = t["RoleARN"]
            desc["ScalingPolicies"] = [
                {"PolicyName": p["PolicyName"], "TargetTrackingScalingPolicyConfiguration": {
                    k: v for k, v in p["TargetTrackingScalingPolicyConfiguration"].items()
                    if k in ("DisableScaleIn", "ScaleInCooldown", "ScaleOutCooldown", "TargetValue")}}
                for p in policies]
            index = t["ResourceId"].split("/index/")[1] if "/index/" in t["ResourceId"] else ""
            kind = "read" if t["ScalableDimension"].endswith("ReadCapacityUnits") else "write"
            scaling[f"{index}|{kind}"] = desc
        return {"TableName": table.table_name, "TableStatus": table.status, "BillingMode": table.billing_mode,
                "PayPerRequestSinceMs": table.pay_per_request_since_ms,
                "Read": table.read_capacity_units, "Write": table.write_capacity_units,
                "MaxRead": table.max_read_request_units,
                "Indexes": [{"IndexName": g.index_name, "IndexStatus": g.status, "Read": g.read_capacity_units,
                             "Write": g.write_capacity_units} for g in table.global_indexes],
                "Scaling": scaling}

    async def apply(self, name: str, plans: dict[str, Plan], regions_in_order: list[str]) -> dict[str, dict[str, Any]]:
        """Apply each region's plan (this region first); every region's settings after it."""
        out: dict[str, dict[str, Any]] = {}
        for r in regions_in_order:
            plan = plans.get(r, Plan())
            if r == self.region:
                out[r] = await self.apply_local(name, plan)
            else:
                out[r] = await self.gt._call(r, "UpdateTableReplica", {"TableName": name, "Plan": plan.encode()})
        return out

    async def update_table_replica(self, p: dict[str, Any]) -> dict[str, Any]:
        """The destination region's side (replication key): apply this region's share."""
        name = str(p.get("TableName"))
        if self.gt.regions.replicas(name) is None:
            raise errors.validation(f"Table {name} in region {self.region} is not a replica")
        plan = p.get("Plan")
        return await self.apply_local(name, Plan.decode(plan if isinstance(plan, dict) else {}))

    # -- checks shared by the operations -----------------------------------------------------
    def _replicated(self, name: str) -> tuple[TableDefinition, dict[str, str]]:
        """The table and its replicas' statuses (this region's only, for a table without replicas)."""
        table = self._table(name)
        rep = self.gt.regions.replicas(name)
        return table, dict(rep.status) if rep else {self.region: "ACTIVE"}

    @staticmethod
    def _index_names(table: TableDefinition) -> set[str]:
        return {g.index_name for g in table.global_indexes}

    # -- UpdateTableReplicaAutoScaling / DescribeTableReplicaAutoScaling ----------------------
    @staticmethod
    def _auto_scaling_description(name: str, table: TableDefinition, status: dict[str, str],
                                  settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
        reps = []
        for r in sorted(status):
            s = settings[r]
            sc = s["Scaling"]

            def at(index: str, kind: str, sc: dict[str, Any] = sc) -> dict[str, Any]:
                return dict(sc.get(f"{index}|{kind}") or {"AutoScalingDisabled": True})
            rep: dict[str, Any] = {"RegionName": r, "ReplicaStatus": status[r]}
            if s["Indexes"]:
                rep["GlobalSecondaryIndexes"] = [
                    {"IndexName": i["IndexName"], "IndexStatus": i["IndexStatus"],
                     "ProvisionedReadCapacityAutoScalingSettings": at(i["IndexName"], "read"),
                     "ProvisionedWriteCapacityAutoScalingSettings": at(i["IndexName"], "write")}
                    for i in s["Indexes"]]
            rep["ReplicaProvisionedReadCapacityAutoScalingSettings"] = at("", "read")
            rep["ReplicaProvisionedWriteCapacityAutoScalingSettings"] = at("", "write")
            reps.append(rep)
        return {"TableName": name, "TableStatus": table.status, "Replicas": reps}

    async def describe_table_replica_auto_scaling(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("TableName")
        if not isinstance(name, str) or not name:
            raise errors.validation("1 validation error detected: Value null at 'tableName' failed to satisfy "
                                    "constraint: Member must not be null")
        table, status = self._replicated(name)
        settings = await self.apply(name, {}, sorted(status))
        return {"TableAutoScalingDescription": self._auto_scaling_description(name, table, status, settings)}

    async def update_table_replica_auto_scaling(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("TableName")
        problems: list[str] = []
        if not isinstance(name, str) or not name:
            problems.append("Value null at 'tableName' failed to satisfy constraint: Member must not be null")
        write = p.get("ProvisionedWriteCapacityAutoScalingUpdate")
        check_scaling_update(write, "provisionedWriteCapacityAutoScalingUpdate", problems)
        gsi_updates = _list(p.get("GlobalSecondaryIndexUpdates"))
        for n, g in enumerate(gsi_updates, 1):
            check_scaling_update(g.get("ProvisionedWriteCapacityAutoScalingUpdate"),
                                 f"globalSecondaryIndexUpdates.{n}.member.provisionedWriteCapacityAutoScalingUpdate",
                                 problems)
        replica_updates = _list(p.get("ReplicaUpdates"))
        for n, r in enumerate(replica_updates, 1):
            if not isinstance(r.get("RegionName"), str):
                problems.append(f"Value null at 'replicaUpdates.{n}.member.regionName' failed to satisfy constraint: "
                                "Member must not be null")
            check_scaling_update(r.get("ReplicaProvisionedReadCapacityAutoScalingUpdate"),
                                 f"replicaUpdates.{n}.member.replicaProvisionedReadCapacityAutoScalingUpdate", problems)
            for m, g in enumerate(_list(r.get("ReplicaGlobalSecondaryIndexUpdates")), 1):
                check_scaling_update(g.get("ProvisionedReadCapacityAutoScalingUpdate"),
                                     f"replicaUpdates.{n}.member.replicaGlobalSecondaryIndexUpdates.{m}.member."
                                     "provisionedReadCapacityAutoScalingUpdate", problems)
        _raise(problems)
        assert isinstance(name, str)
        table, status = self._replicated(name)
        if table.status != "ACTIVE":
            raise errors.resource_in_use(f"Attempt to change a resource which is still in use: Table: {name}")
        if write is None and not gsi_updates and not replica_updates:
            raise errors.validation("At least one of ProvisionedWriteCapacityAutoScalingUpdate, "
                                    "GlobalSecondaryIndexUpdates or ReplicaUpdates is required")
        if table.billing_mode != "PROVISIONED":
            raise _invalid(f"Auto scaling applies to provisioned capacity; table {name} is in on-demand "
                           "(PAY_PER_REQUEST) mode")
        indexes = self._index_names(table)
        # write capacity: alike in every replica
        common = Plan()
        if write is not None:
            common.scaling[("", "write")] = write
        for g in gsi_updates:
            index = g.get("IndexName")
            if index not in indexes:
                raise errors.resource_not_found(f"Requested resource not found: Index: {index} not found for "
                                                f"table {name}")
            if g.get("ProvisionedWriteCapacityAutoScalingUpdate") is not None:
                common.scaling[(str(index), "write")] = g["ProvisionedWriteCapacityAutoScalingUpdate"]
        plans = {r: Plan() for r in status}
        for plan in plans.values():
            plan.scaling.update(common.scaling)
        # read capacity: per replica
        seen: set[str] = set()
        for r in replica_updates:
            region = r["RegionName"]
            if region not in status:
                raise errors.resource_not_found(f"Requested resource not found: Replica {region} not found for "
                                                f"table {name}")
            if region in seen:
                raise _invalid(f"Region {region} appears in more than one ReplicaUpdate")
            seen.add(region)
            if r.get("ReplicaProvisionedReadCapacityAutoScalingUpdate") is not None:
                plans[region].scaling[("", "read")] = r["ReplicaProvisionedReadCapacityAutoScalingUpdate"]
            for g in _list(r.get("ReplicaGlobalSecondaryIndexUpdates")):
                index = g.get("IndexName")
                if index not in indexes:
                    raise errors.resource_not_found(f"Requested resource not found: Index: {index} not found for "
                                                    f"table {name}")
                if g.get("ProvisionedReadCapacityAutoScalingUpdate") is not None:
                    plans[region].scaling[(str(index), "read")] = g["ProvisionedReadCapacityAutoScalingUpdate"]
        self._check_new_targets(plans)
        order = [self.region] + sorted(r for r in status if r != self.region)
        settings = await self.apply(name, plans, order)
        return {"TableAutoScalingDescription": self._auto_scaling_description(name, table, status, settings)}

    @staticmethod
    def _check_new_targets(plans: dict[str, Plan]) -> None:
        """Bounds that cannot hold anywhere are refused before any region changes."""
        for plan in plans.values():
            for u in plan.scaling.values():
                lo, hi = u.get("MinimumUnits"), u.get("MaximumUnits")
                if lo is not None and hi is not None and lo > hi and not u.get("AutoScalingDisabled"):
                    raise _invalid("MinimumUnits cannot be greater than MaximumUnits")

    # -- UpdateGlobalTableSettings / DescribeGlobalTableSettings (2017.11.29) ----------------
    def _legacy(self, p: dict[str, Any]) -> tuple[str, TableDefinition, dict[str, str]]:
        name = p.get("GlobalTableName")
        if not isinstance(name, str) or not name:
            raise errors.validation("1 validation error detected: Value null at 'globalTableName' failed to "
                                    "satisfy constraint: Member must not be null")
        self.gt._global_description(name)  # GlobalTableNotFoundException unless a 2017.11.29 global table
        rep = self.gt.regions.replicas(name)
        assert rep is not None
        return name, self._table(name), dict(rep.status)

    @staticmethod
    def _replica_settings(status: dict[str, str], settings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in sorted(status):
            s = settings[r]
            sc = s["Scaling"]

            def at(index: str, kind: str, sc: dict[str, Any] = sc) -> dict[str, Any]:
                return dict(sc.get(f"{index}|{kind}") or {"AutoScalingDisabled": True})
            summary: dict[str, Any] = {"BillingMode": s["BillingMode"]}
            if s.get("PayPerRequestSinceMs"):
                summary["LastUpdateToPayPerRequestDateTime"] = s["PayPerRequestSinceMs"] / 1000.0
            d: dict[str, Any] = {"RegionName": r, "ReplicaStatus": status[r], "ReplicaBillingModeSummary": summary,
                                 "ReplicaProvisionedReadCapacityUnits": s["Read"],
                                 "ReplicaProvisionedReadCapacityAutoScalingSettings": at("", "read"),
                                 "ReplicaProvisionedWriteCapacityUnits": s["Write"],
                                 "ReplicaProvisionedWriteCapacityAutoScalingSettings": at("", "write")}
            if s["Indexes"]:
                d["ReplicaGlobalSecondaryIndexSettings"] = [
                    {"IndexName": i["IndexName"], "IndexStatus": i["IndexStatus"],
                     "ProvisionedReadCapacityUnits": i["Read"],
                     "ProvisionedReadCapacityAutoScalingSettings": at(i["IndexName"], "read"),
                     "ProvisionedWriteCapacityUnits": i["Write"],
                     "ProvisionedWriteCapacityAutoScalingSettings": at(i["IndexName"], "write")}
                    for i in s["Indexes"]]
            d["ReplicaTableClassSummary"] = {"TableClass": "STANDARD"}
            out.append(d)
        return out

    async def describe_global_table_settings(self, p: dict[str, Any]) -> dict[str, Any]:
        name, _, status = self._legacy(p)
        settings = await self.apply(name, {}, sorted(status))
        return {"GlobalTableName": name, "ReplicaSettings": self._replica_settings(status, settings)}

    async def update_global_table_settings(self, p: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        mode = p.get("GlobalTableBillingMode")
        if mode is not None and mode not in ("PROVISIONED", "PAY_PER_REQUEST"):
            problems.append(f"Value '{mode}' at 'globalTableBillingMode' failed to satisfy constraint: Member must "
                            "satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]")
        write_units = p.get("GlobalTableProvisionedWriteCapacityUnits")
        _units(write_units, "globalTableProvisionedWriteCapacityUnits", problems)
        write_scaling = p.get("GlobalTableProvisionedWriteCapacityAutoScalingSettingsUpdate")
        check_scaling_update(write_scaling, "globalTableProvisionedWriteCapacityAutoScalingSettingsUpdate", problems)
        gsi_updates = _list(p.get("GlobalTableGlobalSecondaryIndexSettingsUpdate"))
        for n, g in enumerate(gsi_updates, 1):
            where = f"globalTableGlobalSecondaryIndexSettingsUpdate.{n}.member"
            _units(g.get("ProvisionedWriteCapacityUnits"), f"{where}.provisionedWriteCapacityUnits", problems)
            check_scaling_update(g.get("ProvisionedWriteCapacityAutoScalingSettingsUpdate"),
                                 f"{where}.provisionedWriteCapacityAutoScalingSettingsUpdate", problems)
        replica_updates = _list(p.get("ReplicaSettingsUpdate"))
        for n, r in enumerate(replica_updates, 1):
            where = f"replicaSettingsUpdate.{n}.member"
            if not isinstance(r.get("RegionName"), str):
                problems.append(f"Value null at '{where}.regionName' failed to satisfy constraint: Member must not "
                                "be null")
            _units(r.get("ReplicaProvisionedReadCapacityUnits"), f"{where}.replicaProvisionedReadCapacityUnits",
                   problems)
            check_scaling_update(r.get("ReplicaProvisionedReadCapacityAutoScalingSettingsUpdate"),
                                 f"{where}.replicaProvisionedReadCapacityAutoScalingSettingsUpdate", problems)
            cls = r.get("ReplicaTableClass")
            if cls is not None and cls not in TABLE_CLASSES:
                problems.append(f"Value '{cls}' at '{where}.replicaTableClass' failed to satisfy constraint: Member "
                                f"must satisfy enum value set: [{', '.join(TABLE_CLASSES)}]")
            for m, g in enumerate(_list(r.get("ReplicaGlobalSecondaryIndexSettingsUpdate")), 1):
                w = f"{where}.replicaGlobalSecondaryIndexSettingsUpdate.{m}.member"
                _units(g.get("ProvisionedReadCapacityUnits"), f"{w}.provisionedReadCapacityUnits", problems)
                check_scaling_update(g.get("ProvisionedReadCapacityAutoScalingSettingsUpdate"),
                                     f"{w}.provisionedReadCapacityAutoScalingSettingsUpdate", problems)
        _raise(problems)
        name, table, status = self._legacy(p)
        indexes = self._index_names(table)
        common = Plan()
        common.billing_mode = mode
        if write_units is not None:
            common.units[("", "write")] = write_units
        if write_scaling is not None:
            common.scaling[("", "write")] = write_scaling
        for g in gsi_updates:
            index = g.get("IndexName")
            if index not in indexes:
                raise errors.ApiError("IndexNotFoundException", f"Index {index} not found for global table {name}")
            if g.get("ProvisionedWriteCapacityUnits") is not None:
                common.units[(str(index), "write")] = g["ProvisionedWriteCapacityUnits"]
            if g.get("ProvisionedWriteCapacityAutoScalingSettingsUpdate") is not None:
                common.scaling[(str(index), "write")] = g["ProvisionedWriteCapacityAutoScalingSettingsUpdate"]
        plans: dict[str, Plan] = {}
        for r in status:
            plan = plans[r] = Plan()
            plan.billing_mode, plan.units, plan.scaling = common.billing_mode, dict(common.units), dict(common.scaling)
        for r in replica_updates:
            region = r["RegionName"]
            if region not in status:
                raise errors.ApiError("ReplicaNotFoundException", f"Replica {region} not found for global table "
                                      f"{name}")
            if r.get("ReplicaTableClass") == "STANDARD_INFREQUENT_ACCESS":
                raise errors.validation("ReplicaTableClass STANDARD_INFREQUENT_ACCESS is not supported by this "
                                        "Dynamolog version yet")
            plan = plans[region]
            if r.get("ReplicaProvisionedReadCapacityUnits") is not None:
                plan.units[("", "read")] = r["ReplicaProvisionedReadCapacityUnits"]
            if r.get("ReplicaProvisionedReadCapacityAutoScalingSettingsUpdate") is not None:
                plan.scaling[("", "read")] = r["ReplicaProvisionedReadCapacityAutoScalingSettingsUpdate"]
            for g in _list(r.get("ReplicaGlobalSecondaryIndexSettingsUpdate")):
                index = g.get("IndexName")
                if index not in indexes:
                    raise errors.ApiError("IndexNotFoundException", f"Index {index} not found for global table "
                                          f"{name}")
                if g.get("ProvisionedReadCapacityUnits") is not None:
                    plan.units[(str(index), "read")] = g["ProvisionedReadCapacityUnits"]
                if g.get("ProvisionedReadCapacityAutoScalingSettingsUpdate") is not None:
                    plan.scaling[(str(index), "read")] = g["ProvisionedReadCapacityAutoScalingSettingsUpdate"]
        if all(pl.empty() for pl in plans.values()):
            raise errors.validation("At least one of GlobalTableBillingMode, GlobalTableProvisionedWriteCapacityUnits, "
                                    "GlobalTableProvisionedWriteCapacityAutoScalingSettingsUpdate, "
                                    "GlobalTableGlobalSecondaryIndexSettingsUpdate or ReplicaSettingsUpdate is required")
        target_mode = mode or table.billing_mode
        if target_mode == "PAY_PER_REQUEST" and any(pl.units or pl.scaling for pl in plans.values()):
            raise _invalid("Provisioned capacity and auto scaling cannot be set for a global table in on-demand "
                           "(PAY_PER_REQUEST) mode")
        if mode == "PROVISIONED" and table.billing_mode != "PROVISIONED" and not all(
                ("", "read") in pl.units and ("", "write") in pl.units for pl in plans.values()):
            raise _invalid("Switching a global table to PROVISIONED needs GlobalTableProvisionedWriteCapacityUnits "
                           "and ReplicaProvisionedReadCapacityUnits for every replica")
        self._check_new_targets(plans)
        order = [self.region] + sorted(r for r in status if r != self.region)
        settings = await self.apply(name, plans, order)
        return {"GlobalTableName": name, "ReplicaSettings": self._replica_settings(status, settings)}

    # -- UpdateTable ReplicaUpdates Update -----------------------------------------------------
    def override_plan(self, table: TableDefinition, body: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
        """The plan and the overrides to record of one ``Update`` of a replica (checked, nothing
        changed yet)."""
        if body.get("KMSMasterKeyId") is not None:
            raise errors.validation("KMSMasterKeyId is not supported by this Dynamolog version yet (tables are not "
                                    "encrypted with keys of their own)")
        cls = body.get("TableClassOverride")
        if cls is not None:
            if cls not in TABLE_CLASSES:
                raise errors.validation(f"1 validation error detected: Value '{cls}' at 'tableClassOverride' failed "
                                        "to satisfy constraint: Member must satisfy enum value set: "
                                        f"[{', '.join(TABLE_CLASSES)}]")
            if cls != "STANDARD":
                raise errors.validation(f"TableClassOverride {cls} is not supported by this Dynamolog version yet")
        plan, recorded = Plan(), {}
        provisioned = table.billing_mode == "PROVISIONED"

        def one(index: str, src: dict[str, Any], where: str) -> dict[str, Any]:
            kept: dict[str, Any] = {}
            pto, odo = src.get("ProvisionedThroughputOverride"), src.get("OnDemandThroughputOverride")
            problems: list[str] = []
            if pto is not None:
                if not isinstance(pto, dict):
                    raise errors.serialization("Unexpected value type in payload")
                _units(pto.get("ReadCapacityUnits"), f"{where}provisionedThroughputOverride.readCapacityUnits",
                       problems)
            if odo is not None:
                if not isinstance(odo, dict):
                    raise errors.serialization("Unexpected value type in payload")
                _units(odo.get("MaxReadRequestUnits"), f"{where}onDemandThroughputOverride.maxReadRequestUnits",
                       problems)
            _raise(problems)
            if pto is not None and pto.get("ReadCapacityUnits") is not None:
                if not provisioned:
                    raise _invalid("ProvisionedThroughputOverride can be specified only for a table in PROVISIONED "
                                   "billing mode")
                plan.units[(index, "read")] = pto["ReadCapacityUnits"]
                kept["ProvisionedThroughputOverride"] = {"ReadCapacityUnits": pto["ReadCapacityUnits"]}
            if odo is not None and odo.get("MaxReadRequestUnits") is not None:
                if provisioned:
                    raise _invalid("OnDemandThroughputOverride can be specified only for a table in PAY_PER_REQUEST "
                                   "billing mode")
                if index:
                    raise _invalid("OnDemandThroughputOverride of an index is not supported by this Dynamolog "
                                   "version yet")
                plan.max_reads[index] = odo["MaxReadRequestUnits"]
                kept["OnDemandThroughputOverride"] = {"MaxReadRequestUnits": odo["MaxReadRequestUnits"]}
            return kept

        recorded.update(one("", body, ""))
        gsis = body.get("GlobalSecondaryIndexes")
        if gsis is not None:
            if not isinstance(gsis, list) or not gsis:
                raise errors.validation("1 validation error detected: Value '[]' at 'globalSecondaryIndexes' failed "
                                        "to satisfy constraint: Member must have length greater than or equal to 1")
            names = self._index_names(table)
            kept_gsis = []
            for g in gsis:
                index = g.get("IndexName") if isinstance(g, dict) else None
                if index not in names:
                    raise errors.resource_not_found(f"Requested resource not found: Index: {index} not found for "
                                                    f"table {table.table_name}")
                k = one(str(index), g, "globalSecondaryIndexes.member.")
                if k:
                    kept_gsis.append({"IndexName": index, **k})
            if kept_gsis:
                recorded["GlobalSecondaryIndexes"] = kept_gsis
        if cls is not None:
            recorded["ReplicaTableClassSummary"] = {"TableClass": cls}
        return plan, recorded

    async def apply_overrides(self, name: str, region: str, plan: Plan, recorded: dict[str, Any]) -> None:
        """Apply an ``Update``'s plan in the replica's region, then record the overrides here."""
        if not plan.empty():
            await self.gt._call(region, "UpdateTableReplica", {"TableName": name, "Plan": plan.encode()})
        rep = self.gt.regions.replicas(name)
        if rep is not None and recorded:
            merged = {**rep.overrides.get(region, {}), **recorded}
            await regions.put_replicas(self.gt.settings, replace(rep, overrides={**rep.overrides, region: merged}))
