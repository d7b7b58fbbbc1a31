"""Auto scaling in the auto-admin: Application Auto Scaling's targets, policies and alarms.

The router validates the form of each Application Auto Scaling request and sends it here over
the internal RPC (op ``scaling``); this module checks it against the system's state (the table
exists, is provisioned, the target is registered), keeps the targets in ``<ns>.scaling``
(compacted, one record per target with its policies and latest activities, written by this
process only, under the auto-admin's fenced transactional id) and evaluates every
target-tracking policy as DynamoDB's alarms do:

- every ``Settings.scaling_period_s`` (DynamoDB: one minute) the consumed units of the period,
  summed over the resource's partition leaders (:class:`ConsumptionMeter`), over the period's
  length, over the provisioned units, is the period's utilization;
- **scale out** after ``Settings.scaling_out_periods`` (2) consecutive periods above the target:
  the new capacity is the consumption over the target (``ceil(rate / target)``), at most
  MaxCapacity, unless ScaleOutCooldown has not passed since the last scale-out;
- **scale in** after ``Settings.scaling_in_periods`` (15) consecutive periods
  :data:`~dynamolog.scaling.SCALE_IN_MARGIN` (20) points or more below the target: to the same
  formula, at least MinCapacity, unless DisableScaleIn, ScaleInCooldown, or the table's
  decrease quota (:mod:`dynamolog.throughput`), which makes the activity Failed with
  DynamoDB's LimitExceededException message.

A capacity change is a catalog change made here, in the catalog's one writer, under the table's
lock (docs/decisions/0019-catalog-single-writer.md): UPDATING, then the provisioner makes it
ACTIVE.  The alarm counters live in memory: an auto-admin that takes over starts counting again
(decisions come at most one evaluation window later).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dynamolog import errors
from dynamolog.catalog import TableDefinition
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.metadata import Metadata, MetadataWriter, TopicView
from dynamolog.scaling import (
    ACTIVITIES_KEPT,
    METRICS,
    NAMESPACE,
    SCALE_IN_MARGIN,
    ScalableTarget,
    ScalingActivity,
    ScalingPolicy,
    alarms,
    describe_activity,
    describe_policy,
    describe_target,
    key,
    parse_resource,
    policy_arn,
    target_arn,
)
from dynamolog.throughput import keep_warm, record_change

from .writer import CatalogWriter

log = logging.getLogger(__name__)


def _validation(message: str) -> errors.ApiError:
    return errors.ApiError("ValidationException", message, namespace="")


def _not_found(message: str) -> errors.ApiError:
    return errors.ApiError("ObjectNotFoundException", message, namespace="")


class ConsumptionMeter:
    """Consumed units per resource and kind, from the cumulative counters partition leaders
    report (a counter that went down is a new leader's, counting from zero)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._sum: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, resource: str, partition_id: str, kind: str, total: float) -> None:
        """``resource``: the table id, or ``<table id>#<index>``; ``kind``: read or write;
        ``total``: the units the partition's leader has counted since it started leading."""
        prev = self._last.get((partition_id, kind))
        self._last[(partition_id, kind)] = total
        if prev is None:
            return  # the first sight of a counter: its past belongs to no period we measure
        self._sum[(resource, kind)] += total - prev if total >= prev else total

    def take(self) -> dict[tuple[str, str], float]:
        """The units consumed since the last call, per (resource, kind)."""
        out = dict(self._sum)
        self._sum.clear()
        return out


@dataclass
class _Alarm:
    """Consecutive periods a policy's high and low alarms have been breached."""

    high: int = 0
    low: int = 0


@dataclass(frozen=True)
class Decision:
    """What one evaluation decided for one policy."""

    target_key: str
    policy_name: str
    direction: str
    """out or in"""
    capacity: int
    utilization: float
    cause: str


class Scaling:
    """The auto-admin's auto scaling (see the module docstring)."""

    def __init__(self, settings: Settings, metadata: Metadata, writer: MetadataWriter, catalog: CatalogWriter,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.metadata = metadata
        self.writer = writer
        self.catalog = catalog
        self.clock = clock
        self.meter = ConsumptionMeter()
        self.targets: TopicView[ScalableTarget] = TopicView(settings, settings.scaling_topic, ScalableTarget.decode)
        self._alarms: dict[tuple[str, str], _Alarm] = defaultdict(_Alarm)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._period_start = clock()
        #: evaluations run and capacity changes made, for status and tests
        self.evaluations = 0
        self.actions = 0

    async def start(self) -> None:
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.ensure_compacted_topic(self.settings.scaling_topic)
            await admin.wait_for_topics([self.settings.scaling_topic])
        await self.targets.start()
        self._period_start = self.clock()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.targets.close()

    # -- state -----------------------------------------------------------------------------
    async def _put(self, target: ScalableTarget) -> None:
        await self.writer.put_record(self.settings.scaling_topic, target.key, target.encode())
        self.targets.put_local(target.key, target)

    async def _delete(self, target_key: str) -> None:
        await self.writer.put_record(self.settings.scaling_topic, target_key, None)
        self.targets.put_local(target_key, None)

    def _table(self, resource_id: str) -> tuple[TableDefinition, str | None]:
        """The table (and index name) a resource id names; ValidationException if it has none."""
        parsed = parse_resource(resource_id)
        if parsed is None:
            raise _validation("Unsupported service namespace, resource type or scalable dimension")
        name, index = parsed
        table = self.metadata.catalog.items.get(name)
        if table is None or table.status == "DELETING":
            raise _validation(f"DynamoDB table does not exist: table/{name}")
        if index is not None and all(g.index_name != index for g in table.global_indexes):
            raise _validation(f"DynamoDB global secondary index does not exist: {resource_id}")
        return table, index

    def _registered(self, resource_id: str, dimension: str) -> ScalableTarget:
        t = self.targets.items.get(key(resource_id, dimension))
        if t is None or not self._current(t):
            raise _not_found(f"No scalable target registered for service namespace: {NAMESPACE}, resource ID: "
                             f"{resource_id}, scalable dimension: {dimension}")
        return t

    def _current(self, t: ScalableTarget) -> bool:
        """The table it was registered for still exists (not a newer table of the same name)."""
        parsed = parse_resource(t.resource_id)
        table = None if parsed is None else self.metadata.catalog.items.get(parsed[0])
        return table is not None and table.table_id == t.table_id

    @staticmethod
    def _provisioned(table: TableDefinition, index: str | None, kind: str) -> int:
        if index is None:
            return table.read_capacity_units if kind == "read" else table.write_capacity_units
        g = next(g for g in table.global_indexes if g.index_name == index)
        return g.read_capacity_units if kind == "read" else g.write_capacity_units

    # -- the API ---------------------------------------------------------------------------
    async def handle(self, action: str, p: dict[str, Any]) -> dict[str, Any]:
        """One Application Auto Scaling request whose form the router checked."""
        fn = {
            "RegisterScalableTarget": self.register,
            "DeregisterScalableTarget": self.deregister,
            "DescribeScalableTargets": self.describe_targets,
            "PutScalingPolicy": self.put_policy,
            "DeleteScalingPolicy": self.delete_policy,
            "DescribeScalingPolicies": self.describe_policies,
            "DescribeScalingActivities": self.describe_activities,
        }.get(action)
        if fn is None:
            raise errors.ApiError("UnknownOperationException", "", namespace="")
        async with self._lock:  # one change of the targets at a time: each is read, then rewritten
            return await fn(p)

    async def register(self, p: dict[str, Any]) -> dict[str, Any]:
        resource_id, dimension = p["ResourceId"], p["ScalableDimension"]
        table, index = self._table(resource_id)
        if table.billing_mode != "PROVISIONED":
            raise _validation(f"Auto scaling is not supported for a table in on-demand (PAY_PER_REQUEST) mode: "
                              f"{resource_id}")
        now = int(self.clock() * 1000)
        old = self.targets.items.get(key(resource_id, dimension))
        if old is not None and not self._current(old):
            old = None
        lo, hi = p.get("MinCapacity"), p.get("MaxCapacity")
        if old is None and (lo is None or hi is None):
            raise _validation("MinCapacity and MaxCapacity are required for registering a new scalable target")
        lo = old.min_capacity if lo is None and old is not None else lo
        hi = old.max_capacity if hi is None and old is not None else hi
        assert lo is not None and hi is not None
        if lo > hi:
            raise _validation("Minimum capacity cannot be greater than maximum capacity")
        suspended = p.get("SuspendedState") or {}
        base = old or ScalableTarget(resource_id=resource_id, dimension=dimension, table_id=table.table_id,
                                     target_id=uuid.uuid4().hex, min_capacity=lo, max_capacity=hi, created_ms=now)
        target = replace(
            base, min_capacity=lo, max_capacity=hi,
            scale_in_suspended=bool(suspended.get("DynamicScalingInSuspended", base.scale_in_suspended)),
            scale_out_suspended=bool(suspended.get("DynamicScalingOutSuspended", base.scale_out_suspended)),
            scheduled_suspended=bool(suspended.get("ScheduledScalingSuspended", base.scheduled_suspended)))
        await self._put(target)
        # the current capacity moves into the new range at once (as Application Auto Scaling does)
        current = self._provisioned(table, index, target.kind)
        if not lo <= current <= hi:
            bound = lo if current < lo else hi
            await self._scale(target, bound, "in" if current > hi else "out",
                              f"the scalable target's range changed to {lo}-{hi}")
        return {"ScalableTargetARN": target_arn(self.settings.region, target)}

    async def deregister(self, p: dict[str, Any]) -> dict[str, Any]:
        t = self._registered(p["ResourceId"], p["ScalableDimension"])
        await self._delete(t.key)
        return {}

    def _matching(self, p: dict[str, Any]) -> list[ScalableTarget]:
        ids = p.get("ResourceIds") or ([p["ResourceId"]] if p.get("ResourceId") else None)
        dimension = p.get("ScalableDimension")
        out = [t for t in self.targets.items.values() if self._current(t)
               and (ids is None or t.resource_id in ids) and (dimension is None or t.dimension == dimension)]
        out.sort(key=lambda t: (t.created_ms, t.key))
        return out

    @staticmethod
    def _page(rows: list[Any], p: dict[str, Any], default_max: int) -> tuple[list[Any], dict[str, Any]]:
        start = 0
        token = p.get("NextToken")
        if token is not None:
            try:
                start = int(token)
            except ValueError:
                raise errors.ApiError("InvalidNextTokenException", "Invalid token", namespace="") from None
        limit = int(p.get("MaxResults") or default_max)
        page = rows[start:start + limit]
        more = {"NextToken": str(start + limit)} if start + limit < len(rows) else {}
        return page, more

    async def describe_targets(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [describe_target(self.settings.region, t) for t in self._matching(p)]
        page, more = self._page(rows, p, 50)
        return {"ScalableTargets": page, **more}

    async def put_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        table, _index = self._table(p["ResourceId"])
        if table.billing_mode != "PROVISIONED":
            raise _validation(f"Auto scaling is not supported for a table in on-demand (PAY_PER_REQUEST) mode: "
                              f"{p['ResourceId']}")
        t = self._registered(p["ResourceId"], p["ScalableDimension"])
        cfg = p["TargetTrackingScalingPolicyConfiguration"]
        metric = cfg["PredefinedMetricSpecification"]["PredefinedMetricType"]
        name = p["PolicyName"]
        for other in t.policies:
            if other.policy_name != name and other.metric_type == metric:
                raise _validation("Only one TargetTrackingScaling policy for a given metric specification is allowed.")
        old = next((x for x in t.policies if x.policy_name == name), None)
        policy = ScalingPolicy(
            policy_name=name, policy_id=old.policy_id if old else uuid.uuid4().hex, metric_type=metric,
            target_value=float(cfg["TargetValue"]), scale_out_cooldown_s=int(cfg.get("ScaleOutCooldown") or 0),
            scale_in_cooldown_s=int(cfg.get("ScaleInCooldown") or 0),
            disable_scale_in=bool(cfg.get("DisableScaleIn", False)),
            created_ms=old.created_ms if old else int(self.clock() * 1000))
        policies = tuple(x for x in t.policies if x.policy_name != name) + (policy,)
        target = replace(t, policies=policies)
        await self._put(target)
        self._alarms.pop((target.key, name), None)
        return {"PolicyARN": policy_arn(self.settings.region, target, policy),
                "Alarms": alarms(self.settings.region, target, policy)}

    async def delete_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        t = self.targets.items.get(key(p["ResourceId"], p["ScalableDimension"]))
        name = p["PolicyName"]
        if t is None or not self._current(t) or all(x.policy_name != name for x in t.policies):
            raise _not_found(f"No scaling policy found for service namespace: {NAMESPACE}, resource ID: "
                             f"{p['ResourceId']}, scalable dimension: {p['ScalableDimension']}, policy name: {name}")
        await self._put(replace(t, policies=tuple(x for x in t.policies if x.policy_name != name)))
        self._alarms.pop((t.key, name), None)
        return {}

    async def describe_policies(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("PolicyNames")
        rows = [describe_policy(self.settings.region, t, x) for t in self._matching(p) for x in t.policies
                if names is None or x.policy_name in names]
        page, more = self._page(rows, p, 10)
        return {"ScalingPolicies": page, **more}

    async def describe_activities(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [(a.start_ms, describe_activity(t, a)) for t in self._matching(p) for a in t.activities]
        rows.sort(key=lambda r: -r[0])
        page, more = self._page([r for _, r in rows], p, 50)
        return {"ScalingActivities": page, **more}

    # -- evaluation ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.scaling_period_s)
            try:
                async with self._lock:
                    await self.evaluate()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auto scaling: an evaluation failed; going on")

    def decide(self, consumed: dict[tuple[str, str], float], elapsed_s: float, now_ms: int) -> list[Decision]:
        """The period's alarms: which policies act now (a pure function of the consumption, the
        targets, the catalog and the alarm counters, which it advances)."""
        out: list[Decision] = []
        for t in list(self.targets.items.values()):
            if not self._current(t):
                continue
            try:
                table, index = self._table(t.resource_id)
            except errors.ApiError:
                continue
            if table.billing_mode != "PROVISIONED":
                continue
            provisioned = self._provisioned(table, index, t.kind)
            resource = table.table_id if index is None else f"{table.table_id}#{index}"
            for policy in t.policies:
                rate = consumed.get((resource, METRICS[policy.metric_type]), 0.0) / max(elapsed_s, 1e-9)
                utilization = 100.0 * rate / max(provisioned, 1)
                alarm = self._alarms[(t.key, policy.policy_name)]
                alarm.high = alarm.high + 1 if utilization > policy.target_value else 0
                alarm.low = alarm.low + 1 if utilization < policy.target_value - SCALE_IN_MARGIN else 0
                wanted = math.ceil(rate * 100.0 / policy.target_value)
                name_high, name_low = (a["AlarmName"] for a in alarms(self.settings.region, t, policy))
                if alarm.high >= self.settings.scaling_out_periods:
                    alarm.high = 0
                    capacity = min(t.max_capacity, max(wanted, t.min_capacity))
                    cooled = t.last_scale_out_ms is None or now_ms - t.last_scale_out_ms >= \
                        policy.scale_out_cooldown_s * 1000
                    if capacity > provisioned and cooled and not t.scale_out_suspended:
                        out.append(Decision(t.key, policy.policy_name, "out", capacity, utilization,
                                            f"monitor alarm {name_high} in state ALARM triggered policy "
                                            f"{policy.policy_name}"))
                elif alarm.low >= self.settings.scaling_in_periods:
                    alarm.low = 0
                    capacity = max(t.min_capacity, min(wanted, t.max_capacity))
                    cooled = t.last_scale_in_ms is None or now_ms - t.last_scale_in_ms >= \
                        policy.scale_in_cooldown_s * 1000
                    if (capacity < provisioned and cooled and not policy.disable_scale_in
                            and not t.scale_in_suspended):
                        out.append(Decision(t.key, policy.policy_name, "in", capacity, utilization,
                                            f"monitor alarm {name_low} in state ALARM triggered policy "
                                            f"{policy.policy_name}"))
        return out

    async def evaluate(self) -> list[Decision]:
        """One period: read the meter, decide, act."""
        now = self.clock()
        elapsed = now - self._period_start
        self._period_start = now
        decisions = self.decide(self.meter.take(), elapsed, int(now * 1000))
        self.evaluations += 1
        for d in decisions:
            t = self.targets.items.get(d.target_key)
            if t is not None:
                log.info("auto scaling: %s %s: utilization %.0f%%, scale %s to %d (%s)", t.resource_id, t.dimension,
                         d.utilization, d.direction, d.capacity, d.cause)
                await self._scale(t, d.capacity, d.direction, d.cause)
        return decisions

    async def _scale(self, t: ScalableTarget, capacity: int, direction: str, cause: str) -> None:
        """Set the target's capacity through the catalog's writer and record the activity."""
        parsed = parse_resource(t.resource_id)
        assert parsed is not None
        name, index = parsed
        unit = "read" if t.kind == "read" else "write"
        started = int(self.clock() * 1000)
        status, message = "Successful", ""
        async with self.catalog.lock(name):
            table = self.metadata.catalog.items.get(name)
            try:
                if table is None or table.table_id != t.table_id:
                    raise _validation(f"DynamoDB table does not exist: table/{name}")
                if table.status != "ACTIVE":
                    raise errors.ApiError("ResourceInUseException", f"Table is being updated: {name}")
                new = self._with_capacity(table, index, t.kind, capacity, started)
                if new is not None:
                    await self.writer.put_table(new)
                    self.actions += 1
            except errors.ApiError as e:
                status, message = "Failed", f"Failed to set {unit} capacity units to {capacity}. Reason: {e.message}"
                log.warning("auto scaling: %s %s: %s", t.resource_id, t.dimension, message)
        activity = ScalingActivity(
            activity_id=str(uuid.uuid4()), cause=cause, start_ms=started, end_ms=int(self.clock() * 1000),
            description=f"Setting {unit} capacity units to {capacity}.", status_code=status, status_message=message)
        current = self.targets.items.get(t.key) or t
        updated = replace(current, activities=(activity, *current.activities)[:ACTIVITIES_KEPT])
        if status == "Successful" and direction == "out":
            updated = replace(updated, last_scale_out_ms=started)
        elif status == "Successful":
            updated = replace(updated, last_scale_in_ms=started)
        await self._put(updated)

    @staticmethod
    def _with_capacity(table: TableDefinition, index: str | None, kind: str, capacity: int,
                       now: int) -> TableDefinition | None:
        """The table with one dimension set to ``capacity`` (None when it already is); the decrease
        quota applies to the table's own dimensions."""
        if index is None:
            old = (table.read_capacity_units, table.write_capacity_units)
            new = (capacity, old[1]) if kind == "read" else (old[0], capacity)
            if new == old:
                return None
            updated = record_change(table, old, new, now)
            return replace(updated, status="UPDATING", read_capacity_units=new[0], write_capacity_units=new[1])
        indexes = []
        changed = False
        for g in table.global_indexes:
            if g.index_name == index:
                before = g
                kept = keep_warm(g, on_demand=False)  # a scale-in keeps the index's highest capacity warm
                g = replace(kept, read_capacity_units=capacity) if kind == "read" else \
                    replace(kept, write_capacity_units=capacity)
                changed = (g.read_capacity_units, g.write_capacity_units) != (
                    before.read_capacity_units, before.write_capacity_units)
            indexes.append(g)
        return replace(table, status="UPDATING", global_indexes=tuple(indexes)) if changed else None

    def observe_ping(self, answer: dict[str, Any]) -> None:
        """Feed the meter from a storage node's ping answer: per partition it leads, the units
        its leader charged (``capacity``: read / write, and each global index's write share)."""
        for pid, c in (answer.get("capacity") or {}).items():
            part = self.metadata.partitions.items.get(pid)
            if part is None or not isinstance(c, dict):
                continue
            for kind in ("read", "write"):
                if kind == "write" and "#" in part.table_id:
                    continue  # an index's writes are charged at its table's partitions (below)
                if isinstance(c.get(kind), dict):
                    self.meter.observe(part.table_id, pid, kind, float(c[kind].get("consumed", 0.0)))
            for name, limit in (c.get("indexes") or {}).items():
                if isinstance(limit, dict):
                    self.meter.observe(f"{part.table_id}#{name}", f"{pid}#{name}", "write",
                                       float(limit.get("consumed", 0.0)))

    def status(self) -> dict[str, Any]:
        return {"targets": len(self.targets.items), "evaluations": self.evaluations, "actions": self.actions}
