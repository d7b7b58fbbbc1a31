"""Application Auto Scaling for DynamoDB tables, through boto3's ``application-autoscaling`` client.

Each test says why it exists.  These run against the session's system (default settings: the
alarms' period is DynamoDB's minute, so nothing here waits for a scaling decision; the
evaluation itself is tested in tests/integration/test_autoscaling.py with short periods).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, make_client, wait_active
from .helpers import assert_error

pytestmark = pytest.mark.api

READ = "dynamodb:table:ReadCapacityUnits"
WRITE = "dynamodb:table:WriteCapacityUnits"


@pytest.fixture(scope="module")
def aas(endpoint: str) -> Any:
    return make_client(endpoint, "application-autoscaling", retries=1)


@pytest.fixture(scope="module")
def raw_aas(endpoint: str) -> Any:
    return make_client(endpoint, "application-autoscaling", retries=1, parameter_validation=False)


def provisioned(create_table: TableFactory, rcu: int = 5, wcu: int = 5) -> str:
    return create_table(BillingMode="PROVISIONED",
                        ProvisionedThroughput={"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu})


def policy(target: float = 70.0, metric: str = "DynamoDBWriteCapacityUtilization", **extra: Any) -> dict[str, Any]:
    return {"TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric}, **extra}


def test_register_describe_and_deregister_a_table_target(aas: Any, create_table: TableFactory) -> None:
    # The round trip every tool (the console, CDK, Terraform) makes when it turns auto scaling on.
    name = provisioned(create_table)
    arn = aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                       ScalableDimension=WRITE, MinCapacity=5, MaxCapacity=50)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:")
    found = aas.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=[f"table/{name}"])
    [t] = found["ScalableTargets"]
    assert (t["ResourceId"], t["ScalableDimension"], t["MinCapacity"], t["MaxCapacity"]) == \
        (f"table/{name}", WRITE, 5, 50)
    assert t["ScalableTargetARN"] == arn
    assert t["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                   "ScheduledScalingSuspended": False}
    # registering again updates only what is given
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                 ScalableDimension=WRITE, MaxCapacity=80)
    [t] = aas.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=[f"table/{name}"])["ScalableTargets"]
    assert (t["MinCapacity"], t["MaxCapacity"], t["ScalableTargetARN"]) == (5, 80, arn)
    aas.deregister_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}", ScalableDimension=WRITE)
    assert aas.describe_scalable_targets(ServiceNamespace="dynamodb",
                                         ResourceIds=[f"table/{name}"])["ScalableTargets"] == []


def test_a_range_above_the_current_capacity_raises_it_at_once(aas: Any, ddb: Any, create_table: TableFactory) -> None:
    # Registering a target moves the table's capacity into the range (Application Auto Scaling's
    # documented behaviour), and says so in the scaling activities.
    name = provisioned(create_table, rcu=5, wcu=5)
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                 ScalableDimension=READ, MinCapacity=12, MaxCapacity=40)
    wait_active(ddb, name)
    pt = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (12, 5)
    [a] = aas.describe_scaling_activities(ServiceNamespace="dynamodb", ResourceId=f"table/{name}")["ScalingActivities"]
    assert a["StatusCode"] == "Successful"
    assert a["Description"] == "Setting read capacity units to 12."
    # moved back down into a lower range, the table keeps the highest capacity it had as its
    # warm throughput (DynamoDB's rule, decision 0056)
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                 ScalableDimension=READ, MinCapacity=6, MaxCapacity=8)
    wait_active(ddb, name)
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["ProvisionedThroughput"]["ReadCapacityUnits"] == 8
    assert (t["WarmThroughput"]["ReadUnitsPerSecond"], t["WarmThroughput"]["WriteUnitsPerSecond"]) == (12, 5)


def test_put_describe_and_delete_a_target_tracking_policy(aas: Any, create_table: TableFactory) -> None:
    # A target-tracking policy on the write utilization, with the two alarms it is evaluated by.
    name = provisioned(create_table)
    rid = f"table/{name}"
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=rid, ScalableDimension=WRITE,
                                 MinCapacity=5, MaxCapacity=100)
    out = aas.put_scaling_policy(PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
                                 ScalableDimension=WRITE, PolicyType="TargetTrackingScaling",
                                 TargetTrackingScalingPolicyConfiguration=policy(70.0, ScaleOutCooldown=30))
    assert ":scalingPolicy:" in out["PolicyARN"] and out["PolicyARN"].endswith("policyName/writes")
    assert sorted(a["AlarmName"].split("-")[-2] for a in out["Alarms"]) == ["AlarmHigh", "AlarmLow"]
    [p] = aas.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingPolicies"]
    cfg = p["TargetTrackingScalingPolicyConfiguration"]
    assert (p["PolicyName"], p["PolicyType"], cfg["TargetValue"], cfg["ScaleOutCooldown"]) == \
        ("writes", "TargetTrackingScaling", 70.0, 30)
    assert cfg["PredefinedMetricSpecification"]["PredefinedMetricType"] == "DynamoDBWriteCapacityUtilization"
    # a second policy on the same metric is refused; changing the first is not
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="other", ServiceNamespace="dynamodb", ResourceId=rid,
                               ScalableDimension=WRITE, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=policy(50.0))
    assert_error(e, "ValidationException", "Only one TargetTrackingScaling policy for a given metric")
    aas.put_scaling_policy(PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
                           ScalableDimension=WRITE, PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration=policy(40.0))
    [p] = aas.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingPolicies"]
    assert p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 40.0
    aas.delete_scaling_policy(PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
                              ScalableDimension=WRITE)
    assert aas.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingPolicies"] == []
    with pytest.raises(ClientError) as e:
        aas.delete_scaling_policy(PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
                                  ScalableDimension=WRITE)
    assert_error(e, "ObjectNotFoundException", "No scaling policy found")


@pytest.mark.parametrize("target", [19.9, 90.5, 5])
def test_a_target_out_of_20_to_90_percent_is_refused(aas: Any, create_table: TableFactory, target: float) -> None:
    # DynamoDB's target utilization is 20..90 %; anything else changes nothing.
    name = provisioned(create_table)
    rid = f"table/{name}"
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=rid, ScalableDimension=WRITE,
                                 MinCapacity=5, MaxCapacity=10)
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace="dynamodb", ResourceId=rid, ScalableDimension=WRITE,
                               PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=policy(target))
    assert_error(e, "ValidationException", "between 20 and 90")
    assert aas.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingPolicies"] == []


def test_auto_scaling_of_an_on_demand_table_is_refused(aas: Any, create_table: TableFactory) -> None:
    # An on-demand table has no provisioned capacity to scale.
    name = create_table()  # PAY_PER_REQUEST
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                     ScalableDimension=WRITE, MinCapacity=1, MaxCapacity=10)
    assert_error(e, "ValidationException", "PAY_PER_REQUEST")
    assert aas.describe_scalable_targets(ServiceNamespace="dynamodb",
                                         ResourceIds=[f"table/{name}"])["ScalableTargets"] == []


def test_bad_targets_are_refused(aas: Any, raw_aas: Any, create_table: TableFactory) -> None:
    # The errors a mistyped resource id, dimension or range gets, and that nothing is registered.
    name = provisioned(create_table)
    for rid, dim in ((f"table/{name}", "dynamodb:index:ReadCapacityUnits"), (name, READ),
                     (f"table/{name}/index/nope", READ)):
        with pytest.raises(ClientError) as e:
            aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=rid, ScalableDimension=dim,
                                         MinCapacity=1, MaxCapacity=10)
        assert_error(e, "ValidationException", "Unsupported service namespace, resource type or scalable dimension")
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId="table/no_such_table_here",
                                     ScalableDimension=READ, MinCapacity=1, MaxCapacity=10)
    assert_error(e, "ValidationException", "DynamoDB table does not exist: table/no_such_table_here")
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                     ScalableDimension=READ, MinCapacity=20, MaxCapacity=10)
    assert_error(e, "ValidationException", "Minimum capacity cannot be greater than maximum capacity")
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}", ScalableDimension=READ)
    assert_error(e, "ValidationException", "MinCapacity and MaxCapacity are required")
    with pytest.raises(ClientError) as e:
        raw_aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                         ScalableDimension="dynamodb:table:Everything", MinCapacity=1, MaxCapacity=2)
    assert_error(e, "ValidationException", "1 validation error detected: Value 'dynamodb:table:Everything' at "
                                           "'scalableDimension' failed to satisfy constraint")
    with pytest.raises(ClientError) as e:
        aas.deregister_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                                       ScalableDimension=READ)
    assert_error(e, "ObjectNotFoundException", "No scalable target registered")
    assert aas.describe_scalable_targets(ServiceNamespace="dynamodb",
                                         ResourceIds=[f"table/{name}"])["ScalableTargets"] == []


def test_a_policy_needs_a_registered_target(aas: Any, create_table: TableFactory) -> None:
    # PutScalingPolicy before RegisterScalableTarget: the target is not found.
    name = provisioned(create_table)
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace="dynamodb", ResourceId=f"table/{name}",
                               ScalableDimension=WRITE, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=policy())
    assert_error(e, "ObjectNotFoundException", "No scalable target registered")


def test_an_index_target(aas: Any, ddb: Any) -> None:
    # A global secondary index scales on its own dimension.
    name = f"test_{uuid.uuid4().hex[:10]}"
    ddb.create_table(TableName=name, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "g", "AttributeType": "S"}],
                     GlobalSecondaryIndexes=[{
                         "IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "ALL"},
                         "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}])
    wait_active(ddb, name)
    rid = f"table/{name}/index/byg"
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=rid,
                                 ScalableDimension="dynamodb:index:WriteCapacityUnits", MinCapacity=8, MaxCapacity=20)
    wait_active(ddb, name)
    [g] = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    assert g["ProvisionedThroughput"]["WriteCapacityUnits"] == 8
    [t] = aas.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=[rid])["ScalableTargets"]
    assert t["ScalableDimension"] == "dynamodb:index:WriteCapacityUnits"
    ddb.delete_table(TableName=name)


def test_describe_pages(aas: Any, create_table: TableFactory) -> None:
    # MaxResults / NextToken page through the targets.
    names = [provisioned(create_table) for _ in range(3)]
    for n in names:
        aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{n}", ScalableDimension=READ,
                                     MinCapacity=5, MaxCapacity=10)
    ids = [f"table/{n}" for n in names]
    seen: list[str] = []
    kw: dict[str, Any] = {"ServiceNamespace": "dynamodb", "ResourceIds": ids, "MaxResults": 2}
    while True:
        page = aas.describe_scalable_targets(**kw)
        assert len(page["ScalableTargets"]) <= 2
        seen += [t["ResourceId"] for t in page["ScalableTargets"]]
        if "NextToken" not in page:
            break
        kw["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(ids)
