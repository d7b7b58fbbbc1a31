"""Application Auto Scaling on the router's endpoint: the form of each request, then the auto-admin.

boto3's ``application-autoscaling`` client (and the AWS CLI's) pointed at a Dynamolog endpoint
sends JSON 1.1 with ``X-Amz-Target: AnyScaleFrontendService.<Operation>``, signed for the
service ``application-autoscaling``.  Each operation's members are checked here (types, required
members, the ``dynamodb`` namespace and its dimensions, the target-tracking configuration), in
one pass and before any I/O, with Application Auto Scaling's errors (``ValidationException``,
``ObjectNotFoundException``, ...; ``__type`` without a namespace, as that service answers);
the request is then carried out by the auto-admin (``services/admin/scaling.py``), which holds
the targets and knows whether the table exists and is provisioned.
"""

from __future__ import annotations

import math
from typing import Any

from dynamolog import errors
from dynamolog.catalog_client import CatalogClient
from dynamolog.scaling import DIMENSIONS, METRICS, NAMESPACE, TARGET_MAX, TARGET_MIN, parse_resource

#: X-Amz-Target prefix of Application Auto Scaling
TARGET_PREFIX = "AnyScaleFrontendService."
#: the ServiceNamespace enum, in the service's order
SERVICE_NAMESPACES = ("ecs", "elasticmapreduce", "ec2", "appstream", "dynamodb", "rds", "sagemaker",
                      "custom-resource", "comprehend", "lambda", "cassandra", "kafka", "elasticache", "neptune",
                      "workspaces")
#: seconds a cooldown may be (the service's limit)
COOLDOWN_MAX_S = 31_536_000
OPERATIONS = ("RegisterScalableTarget", "DeregisterScalableTarget", "DescribeScalableTargets", "PutScalingPolicy",
              "DeleteScalingPolicy", "DescribeScalingPolicies", "DescribeScalingActivities")


def _validation(message: str) -> errors.ApiError:
    return errors.ApiError("ValidationException", message, namespace="")


def _unsupported() -> errors.ApiError:
    return _validation("Unsupported service namespace, resource type or scalable dimension")


class _Form:
    """Collects DynamoDB-style constraint messages (``1 validation error detected: ...``)."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.p = p
        self.problems: list[str] = []

    def required(self, *names: str) -> None:
        for name in names:
            if self.p.get(name) is None:
                self.problems.append(f"Value null at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                                     "Member must not be null")

    def string(self, name: str, *, max_len: int = 1600) -> None:
        v = self.p.get(name)
        if v is None:
            return
        if not isinstance(v, str):
            raise errors.serialization("Unexpected value type in payload")
        if not 1 <= len(v) <= max_len:
            self.problems.append(f"Value '{v}' at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                                 f"Member must have length less than or equal to {max_len}" if v else
                                 f"Value '' at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                                 "Member must have length greater than or equal to 1")

    def enum(self, name: str, values: tuple[str, ...] | list[str]) -> None:
        v = self.p.get(name)
        if v is None:
            return
        if not isinstance(v, str):
            raise errors.serialization("Unexpected value type in payload")
        if v not in values:
            self.problems.append(f"Value '{v}' at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                                 f"Member must satisfy enum value set: [{', '.join(values)}]")

    def integer(self, name: str, *, low: int = 0) -> None:
        v = self.p.get(name)
        if v is None:
            return
        if not isinstance(v, int) or isinstance(v, bool):
            raise errors.serialization("Unexpected value type in payload")
        if v < low:
            self.problems.append(f"Value '{v}' at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
                                 f"Member must have value greater than or equal to {low}")

    def done(self) -> None:
        if self.problems:
            n = len(self.problems)
            raise _validation(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(self.problems))


def _target_form(p: dict[str, Any], *, needs_dimension: bool = True) -> None:
    """ServiceNamespace, ResourceId and ScalableDimension: present, and a DynamoDB table or index
    with a dimension of its kind."""
    f = _Form(p)
    f.required("ServiceNamespace", *(("ResourceId", "ScalableDimension") if needs_dimension else ()))
    f.enum("ServiceNamespace", SERVICE_NAMESPACES)
    f.string("ResourceId")
    f.enum("ScalableDimension", [*DIMENSIONS, "custom-resource:ResourceType:Property"])
    f.done()
    if p["ServiceNamespace"] != NAMESPACE:
        raise _unsupported()
    for resource in ([p["ResourceId"]] if p.get("ResourceId") is not None else []):
        _check_resource(resource, p.get("ScalableDimension"))


def _check_resource(resource_id: Any, dimension: str | None) -> None:
    parsed = parse_resource(resource_id) if isinstance(resource_id, str) else None
    if parsed is None:
        raise _unsupported()
    if dimension is not None:
        kind = DIMENSIONS.get(dimension)
        if kind is None or (kind[0] == "index") != (parsed[1] is not None):
            raise _unsupported()


def _paging(p: dict[str, Any]) -> None:
    f = _Form(p)
    f.integer("MaxResults")
    f.string("NextToken", max_len=2048)
    f.done()
    if p.get("MaxResults") is not None and p["MaxResults"] > 50:
        raise _validation("MaxResults must be less than or equal to 50")


class AutoScaling:
    """The operations (one method each); the auto-admin carries them out."""

    def __init__(self, catalog: CatalogClient) -> None:
        self.catalog = catalog

    async def _admin(self, action: str, p: dict[str, Any]) -> dict[str, Any]:
        return await self.catalog.admin_call("scaling", action=action, params=p)

    async def register_scalable_target(self, p: dict[str, Any]) -> dict[str, Any]:
        _target_form(p)
        f = _Form(p)
        f.integer("MinCapacity")
        f.integer("MaxCapacity")
        f.string("RoleARN")
        f.done()
        suspended = p.get("SuspendedState")
        if suspended is not None and (not isinstance(suspended, dict) or any(
                not isinstance(v, bool) for v in suspended.values())):
            raise errors.serialization("Unexpected value type in payload")
        return await self._admin("RegisterScalableTarget", p)

    async def deregister_scalable_target(self, p: dict[str, Any]) -> dict[str, Any]:
        _target_form(p)
        return await self._admin("DeregisterScalableTarget", p)

    async def describe_scalable_targets(self, p: dict[str, Any]) -> dict[str, Any]:
        _target_form(p, needs_dimension=False)
        ids = p.get("ResourceIds")
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise errors.serialization("Unexpected value type in payload")
            for resource in ids:
                _check_resource(resource, p.get("ScalableDimension"))
        _paging(p)
        return await self._admin("DescribeScalableTargets", p)

    async def put_scaling_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        f = _Form(p)
        f.required("PolicyName")
        f.string("PolicyName", max_len=256)
        f.enum("PolicyType", ("StepScaling", "TargetTrackingScaling", "PredictiveScaling"))
        f.done()
        _target_form(p)
        kind = p.get("PolicyType") or "StepScaling"
        if kind != "TargetTrackingScaling":
            raise _validation(f"Unsupported policy type {kind} for service namespace {NAMESPACE}: only "
                              "TargetTrackingScaling is supported")
        cfg = p.get("TargetTrackingScalingPolicyConfiguration")
        if cfg is None:
            raise _validation("TargetTrackingScalingPolicyConfiguration is required for a policy of type "
                              "TargetTrackingScaling")
        if not isinstance(cfg, dict):
            raise errors.serialization("Unexpected value type in payload")
        c = _Form(cfg)
        c.required("TargetValue")
        c.integer("ScaleOutCooldown")
        c.integer("ScaleInCooldown")
        c.done()
        value = cfg["TargetValue"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise errors.serialization("Unexpected value type in payload")
        if "CustomizedMetricSpecification" in cfg:
            raise _validation("CustomizedMetricSpecification is not supported for service namespace dynamodb; "
                              "use a PredefinedMetricSpecification")
        spec = cfg.get("PredefinedMetricSpecification")
        metric = spec.get("PredefinedMetricType") if isinstance(spec, dict) else None
        if metric is None:
            raise _validation("Either a PredefinedMetricSpecification or a CustomizedMetricSpecification must be "
                              "specified")
        if metric not in METRICS:
            raise _validation(f"Unsupported metric type {metric} for service namespace {NAMESPACE}")
        if METRICS[metric] != DIMENSIONS[p["ScalableDimension"]][1]:
            raise _validation(f"The metric type {metric} does not match the scalable dimension "
                              f"{p['ScalableDimension']}")
        if not TARGET_MIN <= value <= TARGET_MAX:
            raise _validation(f"Target value {value:g} is out of range for {metric}: it must be between "
                              f"{TARGET_MIN:g} and {TARGET_MAX:g}")
        for name in ("ScaleOutCooldown", "ScaleInCooldown"):
            if (cfg.get(name) or 0) > COOLDOWN_MAX_S:
                raise _validation(f"{name} must be less than or equal to {COOLDOWN_MAX_S}")
        if cfg.get("DisableScaleIn") is not None and not isinstance(cfg["DisableScaleIn"], bool):
            raise errors.serialization("Unexpected value type in payload")
        return await self._admin("PutScalingPolicy", p)

    async def delete_scaling_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        f = _Form(p)
        f.required("PolicyName")
        f.string("PolicyName", max_len=256)
        f.done()
        _target_form(p)
        return await self._admin("DeleteScalingPolicy", p)

    async def describe_scaling_policies(self, p: dict[str, Any]) -> dict[str, Any]:
        _target_form(p, needs_dimension=False)
        names = p.get("PolicyNames")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise errors.serialization("Unexpected value type in payload")
        _paging(p)
        return await self._admin("DescribeScalingPolicies", p)

    async def describe_scaling_activities(self, p: dict[str, Any]) -> dict[str, Any]:
        _target_form(p, needs_dimension=False)
        _paging(p)
        return await self._admin("DescribeScalingActivities", p)

    def operations(self) -> dict[str, Any]:
        """Operation name -> method, for the router's dispatch."""
        return {name: getattr(self, "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_"))
                for name in OPERATIONS}
