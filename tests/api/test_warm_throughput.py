"""WarmThroughput (decision 0056): every table and global index describes one (an on-demand one
at least 12,000 read / 4,000 write units a second, a provisioned one its highest capacity);
CreateTable and UpdateTable raise it, never lower it, with DynamoDB's errors; and a warmed
on-demand table takes at once what a new one throttles."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, make_client, wait_active
from .helpers import assert_error, unique

pytestmark = pytest.mark.api

KEYS = {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "g", "AttributeType": "S"}]}
BY_G = {"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"}}
START_DOCS = ("See: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"
              "#on-demand-capacity-mode-initial")


def _warm(r: int, w: int, status: str = "ACTIVE") -> dict[str, Any]:
    return {"ReadUnitsPerSecond": r, "WriteUnitsPerSecond": w, "Status": status}


def test_every_table_and_index_describes_its_warm_throughput(ddb: Any, indexed: Any) -> None:
    # On demand: DynamoDB's start, 12,000 read and 4,000 write units a second; provisioned: the
    # capacity provisioned. The index has its own.
    od = indexed(BillingMode="PAY_PER_REQUEST", GlobalSecondaryIndexes=[BY_G])
    t = ddb.describe_table(TableName=od)["Table"]
    assert t["WarmThroughput"] == _warm(12000, 4000)
    assert t["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(12000, 4000)
    prov = indexed(BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
                   GlobalSecondaryIndexes=[{**BY_G, "ProvisionedThroughput": {"ReadCapacityUnits": 3,
                                                                              "WriteCapacityUnits": 2}}])
    t = ddb.describe_table(TableName=prov)["Table"]
    assert t["WarmThroughput"] == _warm(5, 7)
    assert t["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(3, 2)


def test_create_table_warms_the_table_and_its_index(ddb: Any, indexed: Any) -> None:
    name = indexed(BillingMode="PAY_PER_REQUEST", WarmThroughput={"ReadUnitsPerSecond": 20000,
                                                                  "WriteUnitsPerSecond": 10000},
                   GlobalSecondaryIndexes=[{**BY_G, "WarmThroughput": {"WriteUnitsPerSecond": 8000}}])
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["WarmThroughput"] == _warm(20000, 10000)
    assert t["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(12000, 8000)
    assert t["TableStatus"] == "ACTIVE"


@pytest.mark.parametrize(("args", "message"), [
    ({"BillingMode": "PAY_PER_REQUEST", "WarmThroughput": {"ReadUnitsPerSecond": 100, "WriteUnitsPerSecond": 100}},
     "One or more parameter values were invalid: Requested ReadUnitsPerSecond for WarmThroughput for table is "
     f"lower than initial throughput for OnDemand. {START_DOCS}"),
    ({"BillingMode": "PAY_PER_REQUEST", "WarmThroughput": {"WriteUnitsPerSecond": 3999}},
     "One or more parameter values were invalid: Requested WriteUnitsPerSecond for WarmThroughput for table is "
     f"lower than initial throughput for OnDemand. {START_DOCS}"),
    ({"BillingMode": "PAY_PER_REQUEST", "GlobalSecondaryIndexes": [{**BY_G, "WarmThroughput": {
        "ReadUnitsPerSecond": 11999}}]},
     "One or more parameter values were invalid: Requested ReadUnitsPerSecond for WarmThroughput for index byG is "
     f"lower than initial throughput for OnDemand. {START_DOCS}"),
    ({"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
      "WarmThroughput": {"ReadUnitsPerSecond": 5, "WriteUnitsPerSecond": 5}},
     "One or more parameter values were invalid: Requested ReadUnitsPerSecond for WarmThroughput for table is "
     "lower than ReadCapacityUnits of ProvisionedThroughput"),
])
def test_create_table_refuses_less_than_the_start_and_makes_nothing(ddb: Any, args: dict[str, Any],
                                                                    message: str) -> None:
    name = unique("test_")
    keys = KEYS if "GlobalSecondaryIndexes" in args else {**KEYS, "AttributeDefinitions": KEYS["AttributeDefinitions"][:1]}
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=name, **keys, **args)
    assert_error(e, "ValidationException", message)
    assert e.value.response["Error"]["Message"] == message
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert_error(e, "ResourceNotFoundException")


def test_update_table_raises_warm_throughput_and_never_lowers_it(ddb: Any, indexed: Any) -> None:
    name = indexed(BillingMode="PAY_PER_REQUEST", GlobalSecondaryIndexes=[BY_G])
    out = ddb.update_table(TableName=name, WarmThroughput={"WriteUnitsPerSecond": 6000})["TableDescription"]
    # as DynamoDB: the table stays ACTIVE while its warm throughput is UPDATING
    assert out["TableStatus"] == "ACTIVE" and out["WarmThroughput"] == _warm(12000, 6000, "UPDATING")
    assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == _warm(12000, 6000)
    for spec, member in (({"WriteUnitsPerSecond": 5000}, "WriteUnitsPerSecond"),
                         ({"ReadUnitsPerSecond": 11000, "WriteUnitsPerSecond": 9000}, "ReadUnitsPerSecond")):
        with pytest.raises(ClientError) as e:
            ddb.update_table(TableName=name, WarmThroughput=spec)
        assert e.value.response["Error"]["Message"] == (
            f"One or more parameter values were invalid: Requested {member} for WarmThroughput for table is lower "
            "than current WarmThroughput, decreasing WarmThroughput is not supported")
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["WarmThroughput"] == _warm(12000, 6000)  # the refused requests changed nothing
    assert ddb.update_table(TableName=name, WarmThroughput={"WriteUnitsPerSecond": 6000})  # equal: accepted
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
        {"Update": {"IndexName": "byG", "WarmThroughput": {"ReadUnitsPerSecond": 15000}}}])
    wait_active(ddb, name)
    assert ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]["WarmThroughput"] == _warm(
        15000, 4000)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
            {"Update": {"IndexName": "byG", "WarmThroughput": {"ReadUnitsPerSecond": 14000}}}])
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Requested ReadUnitsPerSecond "
                 "for WarmThroughput for index byG is lower than current WarmThroughput, decreasing WarmThroughput "
                 "is not supported")
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
            {"Update": {"IndexName": "byG", "WarmThroughput": {}}}])
    assert_error(e, "ValidationException", "One or more parameter values were invalid: WarmThroughput must have at "
                 "least one of ReadUnitsPerSecond or WriteUnitsPerSecond specified for index: byG")


def test_provisioned_warm_throughput_follows_the_highest_capacity(ddb: Any, create_table: TableFactory) -> None:
    # It rises with the capacity, stays when the capacity falls, becomes the on-demand start
    # on a switch to on demand and keeps it on the way back.
    name = create_table(BillingMode="PROVISIONED",
                        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    for (r, w), warm in (((8, 9), (8, 9)), ((2, 2), (8, 9))):
        ddb.update_table(TableName=name, ProvisionedThroughput={"ReadCapacityUnits": r, "WriteCapacityUnits": w})
        wait_active(ddb, name)
        assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == _warm(*warm)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=name, WarmThroughput={"ReadUnitsPerSecond": 7})
    assert_error(e, "ValidationException", "decreasing WarmThroughput is not supported")
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, name)
    assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == _warm(12000, 4000)
    ddb.update_table(TableName=name, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    wait_active(ddb, name)
    assert ddb.describe_table(TableName=name)["Table"]["WarmThroughput"] == _warm(12000, 4000)


def _burst(once: Any, name: str, puts: int) -> int:
    """``puts`` PutItems of about 290 write units each, eight at a time; how many were throttled."""
    body = "x" * 300_000

    def put(i: int) -> bool:
        try:
            once.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "d": {"S": body}})
            return False
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ThrottlingException", e.response
            return True

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(put, range(puts)))


def test_a_warmed_on_demand_table_takes_at_once_what_a_new_one_throttles(
        endpoint: str, create_table: TableFactory) -> None:
    # 40 items of 293 write units, about 11,700 units, within a second or two: a new on-demand
    # table serves 4,000 units a second at once and throttles part of them; one warmed to
    # 40,000 write units a second takes them all.
    once = make_client(endpoint, retries=0)
    new = create_table()
    warmed = create_table(WarmThroughput={"WriteUnitsPerSecond": 40000})
    assert _burst(once, new, 40) > 0
    assert _burst(once, warmed, 40) == 0
    stored = 0
    pages = make_client(endpoint).get_paginator("scan").paginate(TableName=warmed, Select="COUNT",
                                                                 ConsistentRead=True)
    for page in pages:  # a page holds 1 MB: three or four of these items
        stored += page["Count"]
    assert stored == 40
