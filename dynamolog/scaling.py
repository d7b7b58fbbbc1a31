"""Auto scaling's model: scalable targets, target-tracking policies and scaling activities.

Application Auto Scaling (API version 2016-02-06, JSON 1.1, ``X-Amz-Target:
AnyScaleFrontendService.<Operation>``) is served on the router's endpoint for the ``dynamodb``
namespace; the auto-admin keeps the targets (topic ``<ns>.scaling``, compacted, schema
``schemas/ScalableTarget.avsc``) and evaluates their policies (``services/admin/scaling.py``).
This module is what both share: the typed records, the resource ids and dimensions, ARNs and
the wire shapes of the answers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from . import codec
from .catalog import ACCOUNT

#: the one namespace this system scales
NAMESPACE = "dynamodb"
#: scalable dimension -> (resource kind, read or write)
DIMENSIONS = {
    "dynamodb:table:ReadCapacityUnits": ("table", "read"),
    "dynamodb:table:WriteCapacityUnits": ("table", "write"),
    "dynamodb:index:ReadCapacityUnits": ("index", "read"),
    "dynamodb:index:WriteCapacityUnits": ("index", "write"),
}
#: predefined metric type -> read or write
METRICS = {"DynamoDBReadCapacityUtilization": "read", "DynamoDBWriteCapacityUtilization": "write"}
#: the target utilization DynamoDB accepts, in percent
TARGET_MIN, TARGET_MAX = 20.0, 90.0
#: scale-in alarm: utilization this many points below the target
SCALE_IN_MARGIN = 20.0
#: activities kept per target (newest first)
ACTIVITIES_KEPT = 50
_RESOURCE = re.compile(r"^table/([a-zA-Z0-9_.-]{3,255})(?:/index/([a-zA-Z0-9_.-]{3,255}))?$")


def parse_resource(resource_id: str) -> tuple[str, str | None] | None:
    """``table/T`` -> (T, None); ``table/T/index/I`` -> (T, I); anything else -> None."""
    m = _RESOURCE.match(resource_id)
    return None if m is None else (m.group(1), m.group(2))


def key(resource_id: str, dimension: str) -> str:
    """The target's key in ``<ns>.scaling``."""
    return f"{resource_id}|{dimension}"


@dataclass(frozen=True)
class ScalingPolicy:
    """A TargetTrackingScaling policy on a predefined DynamoDB utilization metric."""

    policy_name: str
    policy_id: str
    """The unique part of its ARN and of its alarms' names."""
    metric_type: str
    """DynamoDBReadCapacityUtilization or DynamoDBWriteCapacityUtilization."""
    target_value: float
    """Utilization (consumed / provisioned, percent) to keep."""
    scale_out_cooldown_s: int = 0
    scale_in_cooldown_s: int = 0
    disable_scale_in: bool = False
    created_ms: int = 0


@dataclass(frozen=True)
class ScalingActivity:
    """One scaling action (or an attempt that failed), as DescribeScalingActivities shows it."""

    activity_id: str
    description: str
    cause: str
    start_ms: int
    end_ms: int | None
    status_code: str
    """Successful or Failed."""
    status_message: str = ""


@dataclass(frozen=True)
class ScalableTarget:
    """A registered table or index dimension (``schemas/ScalableTarget.avsc``)."""

    resource_id: str
    dimension: str
    table_id: str
    """The table it was registered for: a table deleted and created again is another table."""
    target_id: str
    min_capacity: int
    max_capacity: int
    created_ms: int
    scale_in_suspended: bool = False
    scale_out_suspended: bool = False
    scheduled_suspended: bool = False
    policies: tuple[ScalingPolicy, ...] = ()
    activities: tuple[ScalingActivity, ...] = ()
    """Newest first, at most :data:`ACTIVITIES_KEPT`."""
    last_scale_out_ms: int | None = None
    last_scale_in_ms: int | None = None

    @property
    def key(self) -> str:
        return key(self.resource_id, self.dimension)

    @property
    def kind(self) -> str:
        """``read`` or ``write``."""
        return DIMENSIONS[self.dimension][1]

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["policies"] = [asdict(p) for p in self.policies]
        d["activities"] = [asdict(a) for a in self.activities]
        return d

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> ScalableTarget:
        return cls(**{**r, "policies": tuple(ScalingPolicy(**p) for p in r.get("policies") or ()),
                      "activities": tuple(ScalingActivity(**a) for a in r.get("activities") or ())})

    def encode(self) -> bytes:
        return codec.encode_scalable_target(self.to_record())

    @classmethod
    def decode(cls, b: bytes) -> ScalableTarget:
        return cls.from_record(codec.decode_scalable_target(b))


# -- answers (the API's shapes) ------------------------------------------------------------

def target_arn(region: str, target: ScalableTarget) -> str:
    return f"arn:aws:application-autoscaling:{region}:{ACCOUNT}:scalable-target/{target.target_id}"


def policy_arn(region: str, target: ScalableTarget, policy: ScalingPolicy) -> str:
    return (f"arn:aws:autoscaling:{region}:{ACCOUNT}:scalingPolicy:{policy.policy_id}:resource/dynamodb/"
            f"{target.resource_id}:policyName/{policy.policy_name}")


def alarms(region: str, target: ScalableTarget, policy: ScalingPolicy) -> list[dict[str, str]]:
    """The two alarms a policy's target tracking evaluates (high: scale out, low: scale in)."""
    out = []
    for side in ("AlarmHigh", "AlarmLow"):
        name = f"TargetTracking-{target.resource_id}-{side}-{policy.policy_id}"
        out.append({"AlarmName": name, "AlarmARN": f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"})
    return out


def describe_target(region: str, t: ScalableTarget) -> dict[str, Any]:
    return {"ServiceNamespace": NAMESPACE, "ResourceId": t.resource_id, "ScalableDimension": t.dimension,
            "MinCapacity": t.min_capacity, "MaxCapacity": t.max_capacity,
            "RoleARN": (f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/dynamodb.application-autoscaling."
                        "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"),
            "CreationTime": t.created_ms / 1000,
            "SuspendedState": {"DynamicScalingInSuspended": t.scale_in_suspended,
                               "DynamicScalingOutSuspended": t.scale_out_suspended,
                               "ScheduledScalingSuspended": t.scheduled_suspended},
            "ScalableTargetARN": target_arn(region, t)}


def describe_policy(region: str, t: ScalableTarget, p: ScalingPolicy) -> dict[str, Any]:
    return {"PolicyARN": policy_arn(region, t, p), "PolicyName": p.policy_name, "ServiceNamespace": NAMESPACE,
            "ResourceId": t.resource_id, "ScalableDimension": t.dimension, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": p.target_value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": p.metric_type},
                "ScaleOutCooldown": p.scale_out_cooldown_s, "ScaleInCooldown": p.scale_in_cooldown_s,
                "DisableScaleIn": p.disable_scale_in},
            "Alarms": alarms(region, t, p), "CreationTime": p.created_ms / 1000}


def describe_activity(t: ScalableTarget, a: ScalingActivity) -> dict[str, Any]:
    out: dict[str, Any] = {"ActivityId": a.activity_id, "ServiceNamespace": NAMESPACE, "ResourceId": t.resource_id,
                           "ScalableDimension": t.dimension, "Description": a.description, "Cause": a.cause,
                           "StartTime": a.start_ms / 1000, "StatusCode": a.status_code}
    if a.end_ms is not None:
        out["EndTime"] = a.end_ms / 1000
    if a.status_message:
        out["StatusMessage"] = a.status_message
    return out
