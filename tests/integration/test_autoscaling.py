"""Auto scaling on the real system: a write load above the target scales a table out, and the load
ending scales it back in, through boto3's application-autoscaling client.

The system runs with the alarms' period shortened to 2 s (DYNAMOLOG_SCALING_PERIOD_S), two
periods above the target to scale out and three below to scale in, so the whole cycle takes
seconds; the arithmetic is DynamoDB's (services/admin/scaling.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

PERIOD_S = 2.0


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("autoscaling")),
                             extra_env={"DYNAMOLOG_SCALING_PERIOD_S": str(PERIOD_S),
                                        "DYNAMOLOG_SCALING_OUT_PERIODS": "2",
                                        "DYNAMOLOG_SCALING_IN_PERIODS": "3"})
    try:
        yield sysm, url
    finally:
        sysm.down()


def write_capacity(ddb: Any, name: str) -> int:
    return int(ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]["WriteCapacityUnits"])


def wait_for(predicate: Any, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def test_a_sustained_load_scales_out_and_its_end_scales_in(system: tuple[Any, str]) -> None:
    _, url = system
    ddb = make_client(url, retries=0)
    aas = make_client(url, "application-autoscaling")
    name = f"as_{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 10})
    wait_active(ddb, name)
    rid = f"table/{name}"
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=rid,
                                 ScalableDimension="dynamodb:table:WriteCapacityUnits", MinCapacity=10, MaxCapacity=200)
    aas.put_scaling_policy(PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
                           ScalableDimension="dynamodb:table:WriteCapacityUnits", PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 50.0,
                               "PredefinedMetricSpecification": {
                                   "PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}})
    # about 30 one-unit writes a second from three threads (throttled ones are simply counted)
    stop = threading.Event()
    acked = [0]
    throttled = [0]

    def writer(n: int) -> None:
        c = make_client(url, retries=0)
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                c.put_item(TableName=name, Item={"pk": {"S": f"w{n}-{i}"}, "v": {"S": "x" * 500}})
                acked[0] += 1
            except c.exceptions.ProvisionedThroughputExceededException:
                throttled[0] += 1
            i += 1
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    try:
        took = wait_for(lambda: write_capacity(ddb, name) > 10, 12 * PERIOD_S, "a scale-out")
    finally:
        stop.set()
        for t in threads:
            t.join()
    scaled = write_capacity(ddb, name)
    assert acked[0] > 0
    # consumption over a 50 % target: at least about 1.5x the 10 units it had, within the maximum
    assert 15 <= scaled <= 200, scaled
    assert took <= 8 * PERIOD_S, took  # two periods above target, plus the period in progress
    activities = aas.describe_scaling_activities(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingActivities"]
    assert activities[0]["StatusCode"] == "Successful"
    assert activities[0]["Description"] == f"Setting write capacity units to {scaled}."
    assert "AlarmHigh" in activities[0]["Cause"]
    # idle now: three periods far below the target scale it back to the minimum (a decrease)
    wait_active(ddb, name)
    wait_for(lambda: write_capacity(ddb, name) == 10, 12 * PERIOD_S, "a scale-in")
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 1
    latest = aas.describe_scaling_activities(ServiceNamespace="dynamodb", ResourceId=rid)["ScalingActivities"][0]
    assert "AlarmLow" in latest["Cause"] and latest["Description"] == "Setting write capacity units to 10."
