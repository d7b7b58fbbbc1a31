"""Capacity enforcement seen by a client: ProvisionedThroughputExceededException with its
ThrottlingReasons, boto3's retries, batches answering throttled items as unprocessed (failing
only when every item was throttled), transactions cancelled with ThrottlingError, a global
index that throttles the table's writes, and an on-demand table's OnDemandThroughput maximum.
A throttled request changes nothing.

A table's capacity is divided over its partitions and each partition starts with one second
of it saved; a 10 KB item costs 10 write units (3 read units, consistently read), so after one
such write a partition of a 1 WCU table (two partitions: 0.5 units a second each) refuses
writes for about 19 seconds, long enough for every test below to see it refuse.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, make_client
from .helpers import assert_error, unique

pytestmark = pytest.mark.api

BIG = "x" * (10 * 1024)
TINY = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 1000, "WriteCapacityUnits": 1}}


@pytest.fixture(scope="module")
def once(endpoint: str) -> Any:
    """A client that does not retry, to see the throttling answer itself."""
    return make_client(endpoint, retries=0)


def _reasons(e: pytest.ExceptionInfo[ClientError], member: str = "ThrottlingReasons") -> list[dict[str, str]]:
    out: list[dict[str, str]] = e.value.response[member]
    return out


def _arn(ddb: Any, name: str) -> str:
    return str(ddb.describe_table(TableName=name)["Table"]["TableArn"])


def _drain_writes(ddb: Any, name: str, keys: int = 12) -> list[str]:
    """Write big items under ``keys`` new keys until every partition refuses; returns the keys
    that were written (the others were throttled)."""
    written = []
    for _ in range(keys):
        pk = unique()
        try:
            ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "d": {"S": BIG}})
            written.append(pk)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    return written


def test_a_throttled_write_answers_the_exception_with_its_reason_and_changes_nothing(
        once: Any, create_table: TableFactory) -> None:
    # The provisioned table's partition is out of write units: the next write is refused with
    # HTTP 400 ProvisionedThroughputExceededException naming the table, and is not applied.
    name = create_table(**TINY)
    pk = unique()
    once.put_item(TableName=name, Item={"pk": {"S": pk}, "v": {"N": "1"}, "d": {"S": BIG}})
    with pytest.raises(ClientError) as e:
        once.put_item(TableName=name, Item={"pk": {"S": pk}, "v": {"N": "2"}})
    assert_error(e, "ProvisionedThroughputExceededException",
                 "The level of configured provisioned throughput for the table was exceeded")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _reasons(e) == [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": _arn(once, name)}]
    with pytest.raises(ClientError) as e:
        once.update_item(TableName=name, Key={"pk": {"S": pk}}, UpdateExpression="SET v = :v",
                         ExpressionAttributeValues={":v": {"N": "3"}})
    assert_error(e, "ProvisionedThroughputExceededException")
    with pytest.raises(ClientError) as e:
        once.delete_item(TableName=name, Key={"pk": {"S": pk}})
    assert_error(e, "ProvisionedThroughputExceededException")
    item = once.get_item(TableName=name, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert item["v"] == {"N": "1"}


def test_boto3_retries_a_throttled_write_until_it_passes(endpoint: str, create_table: TableFactory) -> None:
    # The exception is retriable: boto3's standard retry mode backs off and the write lands.
    name = create_table(**{"BillingMode": "PROVISIONED",
                           "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 4}})
    ddb = make_client(endpoint, retries=12)
    pk = unique()
    ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "d": {"S": "x" * 3000}})  # 3 units of a 2-unit share
    ddb.put_item(TableName=name, Item={"pk": {"S": pk}, "v": {"N": "2"}})
    assert ddb.get_item(TableName=name, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]["v"] == {"N": "2"}


def test_batch_write_answers_throttled_items_unprocessed_and_fails_when_all_are(
        once: Any, create_table: TableFactory) -> None:
    # A batch spread over both partitions: each partition takes its first item and refuses the
    # rest, which come back in UnprocessedItems and are not written.  A second batch right
    # after finds every partition out of units: the whole call fails.
    name = create_table(**TINY)
    keys = [unique() for _ in range(12)]
    res = once.batch_write_item(RequestItems={name: [
        {"PutRequest": {"Item": {"pk": {"S": k}, "d": {"S": BIG}}}} for k in keys]})
    left = [r["PutRequest"]["Item"]["pk"]["S"] for r in res["UnprocessedItems"].get(name, [])]
    assert 0 < len(left) < len(keys)
    for k in keys:
        got = once.get_item(TableName=name, Key={"pk": {"S": k}}, ConsistentRead=True, ProjectionExpression="pk")
        assert ("Item" in got) == (k not in left)
    with pytest.raises(ClientError) as e:
        once.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {"pk": {"S": unique()}}}} for _ in range(6)]})
    assert_error(e, "ProvisionedThroughputExceededException")


def test_batch_get_answers_throttled_keys_unprocessed_and_fails_when_all_are(
        endpoint: str, once: Any, create_table: TableFactory) -> None:
    # Reads draw on the read buckets the same way (a 100 KB item read consistently: 25 units of
    # a 0.5 unit share: the partition refuses reads for the next 50 s).
    name = create_table(**{"BillingMode": "PROVISIONED",
                           "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1000}})
    keys = [unique() for _ in range(10)]
    writer = make_client(endpoint, retries=12)
    for k in keys:
        writer.put_item(TableName=name, Item={"pk": {"S": k}, "d": {"S": BIG * 10}})
    res = once.batch_get_item(RequestItems={name: {"Keys": [{"pk": {"S": k}} for k in keys],
                                                   "ConsistentRead": True, "ProjectionExpression": "pk"}})
    got = [i["pk"]["S"] for i in res["Responses"][name]]
    left = [k["pk"]["S"] for k in res["UnprocessedKeys"][name]["Keys"]]
    assert 0 < len(got) < len(keys) and sorted(got + left) == sorted(keys)
    assert res["UnprocessedKeys"][name]["ConsistentRead"] is True
    with pytest.raises(ClientError) as e:
        once.batch_get_item(RequestItems={name: {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True}})
    assert_error(e, "ProvisionedThroughputExceededException")
    with pytest.raises(ClientError) as e:
        once.get_item(TableName=name, Key={"pk": {"S": keys[0]}}, ConsistentRead=True)
    assert _reasons(e) == [{"reason": "TableReadProvisionedThroughputExceeded", "resource": _arn(once, name)}]


def test_a_throttled_transaction_is_cancelled_with_throttling_error(once: Any, create_table: TableFactory) -> None:
    # TransactWriteItems on partitions out of write units: cancelled, one ThrottlingError per
    # item of a refusing partition, nothing written.
    name = create_table(**TINY)
    _drain_writes(once, name)
    a, b = unique(), unique()
    with pytest.raises(ClientError) as e:
        once.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": {"pk": {"S": k}}}}
                                                 for k in (a, b)])
    assert_error(e, "TransactionCanceledException", "ThrottlingError")
    codes = {r["Code"] for r in e.value.response["CancellationReasons"]}
    assert codes <= {"ThrottlingError", "None"} and "ThrottlingError" in codes
    for k in (a, b):
        assert "Item" not in once.get_item(TableName=name, Key={"pk": {"S": k}}, ConsistentRead=True)


def test_a_global_index_out_of_write_capacity_throttles_the_table(once: Any, indexed: Any) -> None:
    # The table has capacity to spare, its index does not: writes to the table are refused with
    # the index's reason and ARN (DynamoDB throttles the base table for an under-provisioned GSI).
    name = indexed(
        BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 100, "WriteCapacityUnits": 100},
        GlobalSecondaryIndexes=[{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"},
                                 "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}])
    refused = None
    for _ in range(12):
        try:
            once.put_item(TableName=name, Item={"pk": {"S": unique()}, "g": {"S": "x"}, "d": {"S": BIG}})
        except ClientError as e:
            refused = e
            break
    assert refused is not None
    assert refused.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert "global secondary indexes" in refused.response["Error"]["Message"]
    assert refused.response["ThrottlingReasons"] == [
        {"reason": "IndexWriteProvisionedThroughputExceeded", "resource": _arn(once, name) + "/index/byG"}]


def test_on_demand_maximum_throttles_past_it(once: Any, create_table: TableFactory) -> None:
    # An on-demand table with OnDemandThroughput: past its maximum, ThrottlingException with
    # the MaxOnDemandThroughputExceeded reason; without one it takes the same load.
    name = create_table(OnDemandThroughput={"MaxWriteRequestUnits": 1})
    with pytest.raises(ClientError) as e:
        _put_big_until_refused(once, name)
    assert_error(e, "ThrottlingException", "maximum OnDemandThroughput")
    assert _reasons(e, "throttlingReasons") == [
        {"reason": "TableWriteMaxOnDemandThroughputExceeded", "resource": _arn(once, name)}]
    free = create_table()
    for _ in range(12):
        once.put_item(TableName=free, Item={"pk": {"S": unique()}, "d": {"S": BIG}})


def _put_big_until_refused(ddb: Any, name: str) -> None:
    for _ in range(12):
        ddb.put_item(TableName=name, Item={"pk": {"S": unique()}, "d": {"S": BIG}})


def test_on_demand_throughput_is_described_merged_and_removed(ddb: Any, indexed: Any) -> None:
    # CreateTable sets it (table and index), DescribeTable shows the members set, UpdateTable
    # merges member-wise and -1 removes one; a switch to PROVISIONED clears it.
    name = indexed(
        BillingMode="PAY_PER_REQUEST", OnDemandThroughput={"MaxReadRequestUnits": 20, "MaxWriteRequestUnits": 15},
        GlobalSecondaryIndexes=[{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"},
                                 "OnDemandThroughput": {"MaxWriteRequestUnits": 7}}])
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["OnDemandThroughput"] == {"MaxReadRequestUnits": 20, "MaxWriteRequestUnits": 15}
    assert t["GlobalSecondaryIndexes"][0]["OnDemandThroughput"] == {"MaxWriteRequestUnits": 7}
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxReadRequestUnits": 40})
    _wait_active(ddb, name)
    assert ddb.describe_table(TableName=name)["Table"]["OnDemandThroughput"] == {
        "MaxReadRequestUnits": 40, "MaxWriteRequestUnits": 15}
    ddb.update_table(TableName=name, OnDemandThroughput={"MaxWriteRequestUnits": -1})
    _wait_active(ddb, name)
    assert ddb.describe_table(TableName=name)["Table"]["OnDemandThroughput"] == {"MaxReadRequestUnits": 40}
    ddb.update_table(TableName=name, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                     GlobalSecondaryIndexUpdates=[{"Update": {"IndexName": "byG", "ProvisionedThroughput": {
                         "ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}}])
    _wait_active(ddb, name)
    assert "OnDemandThroughput" not in ddb.describe_table(TableName=name)["Table"]


def _wait_active(ddb: Any, name: str) -> None:
    from .conftest import wait_active
    wait_active(ddb, name)


def test_on_demand_throughput_is_refused_on_a_provisioned_table(
        ddb: Any, create_table: TableFactory) -> None:
    # Only an on-demand table takes a maximum; the first member given is named, and the table
    # is left as it was.
    prov = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique("test_"), KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         OnDemandThroughput={"MaxWriteRequestUnits": 5, "MaxReadRequestUnits": 5}, **prov)
    assert_error(e, "ValidationException", "One or more parameter values were invalid: MaxReadRequestUnits for "
                 "OnDemandThroughput cannot be specified when table BillingMode is PROVISIONED.")
    name = create_table(**prov)
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=name, OnDemandThroughput={"MaxWriteRequestUnits": 5})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: MaxWriteRequestUnits for "
                 "OnDemandThroughput cannot be specified when the table BillingMode is PROVISIONED")
    t = ddb.describe_table(TableName=name)["Table"]
    assert t["TableStatus"] == "ACTIVE" and "OnDemandThroughput" not in t
    od = create_table()
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=od, OnDemandThroughput={"MaxWriteRequestUnits": 0})
    assert_error(e, "ValidationException", "MaxWriteRequestUnits")
    assert "OnDemandThroughput" not in ddb.describe_table(TableName=od)["Table"]
