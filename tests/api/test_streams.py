"""DynamoDB Streams and time to live, black box with boto3's ``dynamodb`` and ``dynamodbstreams``
clients (DynamoDB Developer Guide: "Change data capture for DynamoDB Streams", "Time to Live";
DynamoDB Streams API reference)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import make_client
from .helpers import S, assert_error, raw_ddb, unique  # noqa: F401 - raw_ddb is a fixture


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


@pytest.fixture(scope="module")
def streams(endpoint: str) -> Any:
    return make_client(endpoint, "dynamodbstreams")


def stream_table(create_table: Any, view: str, **extra: Any) -> str:
    return str(create_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": view}, **extra))


def read_all(streams: Any, arn: str, want: int, timeout_s: float = 20.0, kind: str = "TRIM_HORIZON",
             ) -> list[dict[str, Any]]:
    """Every record of every shard from TRIM_HORIZON until ``want`` records came (or the timeout)."""
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    its = {s["ShardId"]: streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"],
                                                    ShardIteratorType=kind)["ShardIterator"] for s in shards}
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        for sid, it in list(its.items()):
            if it is None:
                continue
            res = streams.get_records(ShardIterator=it)
            out.extend(res["Records"])
            its[sid] = res.get("NextShardIterator")
        if len(out) < want:
            time.sleep(0.1)
    return out


def test_describe_table_and_list_streams_show_the_stream(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "NEW_AND_OLD_IMAGES")
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    arn = desc["LatestStreamArn"]
    assert arn == f"{desc['TableArn']}/stream/{desc['LatestStreamLabel']}"
    listed = streams.list_streams(TableName=table)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": table, "StreamLabel": desc["LatestStreamLabel"]}]
    sd = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert sd["StreamStatus"] == "ENABLED" and sd["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert sd["TableName"] == table and sd["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert sd["Shards"] and all(s["ShardId"].startswith("shardId-") for s in sd["Shards"])


def test_insert_modify_remove_with_both_images_in_order(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "NEW_AND_OLD_IMAGES")
    k = unique()
    ddb.put_item(TableName=table, Item={"pk": S(k), "n": N(1)})
    ddb.update_item(TableName=table, Key={"pk": S(k)}, UpdateExpression="SET n = :two",
                    ExpressionAttributeValues={":two": N(2)})
    ddb.delete_item(TableName=table, Key={"pk": S(k)})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    recs = read_all(streams, arn, 3)
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY", "REMOVE"]
    ins, mod, rem = (r["dynamodb"] for r in recs)
    assert ins["Keys"] == {"pk": S(k)} and ins["NewImage"] == {"pk": S(k), "n": N(1)} and "OldImage" not in ins
    assert mod["OldImage"] == {"pk": S(k), "n": N(1)} and mod["NewImage"] == {"pk": S(k), "n": N(2)}
    assert rem["OldImage"] == {"pk": S(k), "n": N(2)} and "NewImage" not in rem
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in recs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for r in recs:
        assert r["eventSource"] == "aws:dynamodb" and r["eventVersion"] == "1.1" and r["awsRegion"]
        assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES" and r["dynamodb"]["SizeBytes"] > 0
        assert r["dynamodb"]["ApproximateCreationDateTime"]
        assert "userIdentity" not in r
    assert len({r["eventID"] for r in recs}) == 3


@pytest.mark.parametrize("view,new,old", [("KEYS_ONLY", False, False), ("NEW_IMAGE", True, False),
                                          ("OLD_IMAGE", False, True)])
def test_view_types_choose_the_images(ddb: Any, streams: Any, create_table: Any, view: str, new: bool,
                                      old: bool) -> None:
    table = stream_table(create_table, view)
    k = unique()
    ddb.put_item(TableName=table, Item={"pk": S(k), "n": N(1)})
    ddb.put_item(TableName=table, Item={"pk": S(k), "n": N(2)})
    recs = read_all(streams, ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"], 2)
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY"]
    mod = recs[1]["dynamodb"]
    assert mod["Keys"] == {"pk": S(k)} and mod["StreamViewType"] == view
    assert ("NewImage" in mod) == new and ("OldImage" in mod) == old
    if new:
        assert mod["NewImage"]["n"] == N(2)
    if old:
        assert mod["OldImage"]["n"] == N(1)


def test_a_write_that_changes_nothing_has_no_record(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "NEW_IMAGE")
    k = unique()
    item = {"pk": S(k), "n": N(1)}
    ddb.put_item(TableName=table, Item=item)
    ddb.put_item(TableName=table, Item=item)  # the same item again
    ddb.delete_item(TableName=table, Key={"pk": S(unique())})  # nothing to delete
    with pytest.raises(ClientError):
        ddb.put_item(TableName=table, Item={"pk": S(k), "n": N(9)}, ConditionExpression="attribute_not_exists(pk)")
    marker = unique()
    ddb.put_item(TableName=table, Item={"pk": S(marker)})
    # wait for a third record that must not come (shards are read in turn, so compare as a set)
    recs = read_all(streams, ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"], 3, timeout_s=3.0)
    assert sorted((r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in recs) == sorted(
        [("INSERT", k), ("INSERT", marker)])


def test_iterator_types(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "KEYS_ONLY")
    ddb.put_item(TableName=table, Item={"pk": S("only")})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    (first,) = read_all(streams, arn, 1)
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    shard = next(sh["ShardId"] for sh in shards if shard_has_records(streams, arn, sh["ShardId"]))
    seq = first["dynamodb"]["SequenceNumber"]

    def records(kind: str, **kw: Any) -> list[dict[str, Any]]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]
        return list(streams.get_records(ShardIterator=it)["Records"])

    assert [r["dynamodb"]["SequenceNumber"] for r in records("AT_SEQUENCE_NUMBER", SequenceNumber=seq)] == [seq]
    assert records("AFTER_SEQUENCE_NUMBER", SequenceNumber=seq) == []
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert streams.get_records(ShardIterator=latest)["Records"] == []
    ddb.put_item(TableName=table, Item={"pk": S("only"), "v": S("changed")})
    deadline = time.monotonic() + 10
    got: list[dict[str, Any]] = []
    it = latest
    while not got and time.monotonic() < deadline:
        res = streams.get_records(ShardIterator=it)
        got, it = res["Records"], res["NextShardIterator"]
    assert [r["eventName"] for r in got] == ["MODIFY"]


def shard_has_records(streams: Any, arn: str, shard: str) -> bool:
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return bool(streams.get_records(ShardIterator=it)["Records"])


def test_stream_api_errors(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "KEYS_ONLY")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=arn.replace(table, unique("nosuch")))
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    with pytest.raises(ClientError) as e:
        streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER")
    assert_error(e, "ValidationException")
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator="not-an-iterator")
    assert_error(e, "ValidationException")


def test_disabling_and_enabling_a_stream(ddb: Any, streams: Any, create_table: Any) -> None:
    table = str(create_table())
    assert "StreamSpecification" not in ddb.describe_table(TableName=table)["Table"]
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    wait_active(ddb, table)
    desc = ddb.describe_table(TableName=table)["Table"]
    assert desc["StreamSpecification"]["StreamEnabled"] is True
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    assert_error(e, "ValidationException", "Table already has an enabled stream")
    ddb.put_item(TableName=table, Item={"pk": S("a")})
    assert len(read_all(streams, desc["LatestStreamArn"], 1)) == 1
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    wait_active(ddb, table)
    sd = streams.describe_stream(StreamArn=desc["LatestStreamArn"])["StreamDescription"]
    assert sd["StreamStatus"] == "DISABLED"
    assert all("EndingSequenceNumber" in s["SequenceNumberRange"] for s in sd["Shards"])


def test_stream_specification_validation(raw_ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(TableName=unique("t_"), BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             StreamSpecification={"StreamEnabled": True, "StreamViewType": "EVERYTHING"})
    assert_error(e, "ValidationException", "Member must satisfy enum value set")
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(TableName=unique("t_"), BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             StreamSpecification={"StreamEnabled": True})
    assert_error(e, "ValidationException", "StreamViewType")


def test_transactions_appear_in_the_stream(ddb: Any, streams: Any, create_table: Any) -> None:
    table = stream_table(create_table, "NEW_AND_OLD_IMAGES")
    a, b = unique(), unique()
    ddb.put_item(TableName=table, Item={"pk": S(b), "n": N(1)})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": S(a), "n": N(5)}}},
        {"Update": {"TableName": table, "Key": {"pk": S(b)}, "UpdateExpression": "SET n = :z",
                    "ExpressionAttributeValues": {":z": N(0)}}},
        {"Delete": {"TableName": table, "Key": {"pk": S(unique())}}},
    ])
    recs = read_all(streams, ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"], 3)
    by_key = {r["dynamodb"]["Keys"]["pk"]["S"]: r for r in recs}
    assert by_key[a]["eventName"] == "INSERT" and by_key[a]["dynamodb"]["NewImage"]["n"] == N(5)
    assert by_key[b]["eventName"] == "MODIFY" and by_key[b]["dynamodb"]["OldImage"]["n"] == N(1)
    assert by_key[b]["dynamodb"]["NewImage"]["n"] == N(0)
    assert len(recs) == 3  # b's insert, a's insert, b's modify; the delete of a missing item is no change


# -- time to live -------------------------------------------------------------------------------------
def wait_active(ddb: Any, table: str) -> None:
    deadline = time.monotonic() + 30
    while ddb.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_time_to_live_settings(ddb: Any, create_table: Any) -> None:
    table = str(create_table())
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    res = ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True,
                                                                            "AttributeName": "expires"})
    assert res["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "expires"}
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    with pytest.raises(ClientError) as e:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    assert_error(e, "ValidationException", "TimeToLive is already enabled")
    with pytest.raises(ClientError) as e:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "other"})
    assert_error(e, "ValidationException", "TimeToLive is active on a different AttributeName")
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires"})
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    with pytest.raises(ClientError) as e:
        ddb.describe_time_to_live(TableName=unique("missing_"))
    assert_error(e, "ResourceNotFoundException")


def test_unknown_stream_arn_is_named(ddb: Any, streams: Any, create_table: Any) -> None:
    """DescribeStream and GetShardIterator of a stream that does not exist name the ARN."""
    table = stream_table(create_table, "KEYS_ONLY")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    label = arn.rsplit("/", 1)[1]
    unknown = arn.replace(label, "2000-01-01T00:00:00.000")
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=unknown)
    assert_error(e, "ResourceNotFoundException", f"Requested resource not found: Stream: {unknown} not found")
    with pytest.raises(ClientError) as e:
        streams.get_shard_iterator(StreamArn=unknown, ShardId="shardId-00000000000000000000-00000000",
                                   ShardIteratorType="TRIM_HORIZON")
    assert_error(e, "ResourceNotFoundException", f"Requested resource not found: Stream: {unknown} not found")


def test_iterators_at_and_after_the_first_record_of_a_shard(ddb: Any, streams: Any, create_table: Any) -> None:
    """The first record of a shard, by its own sequence number and by the shard's starting one."""
    table = stream_table(create_table, "KEYS_ONLY")
    for i in range(3):
        ddb.put_item(TableName=table, Item={"pk": S("same"), "v": N(i)})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = read_all(streams, arn, 3)
    assert len(records) == 3
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    shard = next(sh for sh in shards if shard_has_records(streams, arn, sh["ShardId"]))
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert shard["SequenceNumberRange"]["StartingSequenceNumber"] == seqs[0]

    def read(kind: str, seq: str, want: int) -> list[str]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=kind,
                                        SequenceNumber=seq)["ShardIterator"]
        out: list[str] = []
        deadline = time.monotonic() + 10
        while len(out) < want and it and time.monotonic() < deadline:
            res = streams.get_records(ShardIterator=it)
            out += [r["dynamodb"]["SequenceNumber"] for r in res["Records"]]
            it = res.get("NextShardIterator")
        return out

    assert read("AT_SEQUENCE_NUMBER", seqs[0], 3) == seqs
    assert read("AFTER_SEQUENCE_NUMBER", seqs[0], 2) == seqs[1:]
    start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
    assert read("AT_SEQUENCE_NUMBER", start, 3) == seqs


def test_iterators_on_a_shard_without_records(ddb: Any, streams: Any, create_table: Any) -> None:
    """TrimmedDataAccessException is only for a sequence number older than the trim point (API
    Reference, TrimmedDataAccessException): on a shard with no record, AT_SEQUENCE_NUMBER and
    AFTER_SEQUENCE_NUMBER of its StartingSequenceNumber, or of a record of another shard, give an
    iterator that reads nothing yet."""
    table = stream_table(create_table, "KEYS_ONLY")
    ddb.put_item(TableName=table, Item={"pk": S("one"), "v": N(1)})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = read_all(streams, arn, 1)
    seq = records[0]["dynamodb"]["SequenceNumber"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    empty = [sh for sh in shards if not shard_has_records(streams, arn, sh["ShardId"])]
    assert empty, "the table has two partitions and one item: one shard is empty"
    shard = empty[0]
    start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        for number in (start, seq):
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=kind,
                                            SequenceNumber=number)["ShardIterator"]
            res = streams.get_records(ShardIterator=it)
            assert res["Records"] == [] and res["NextShardIterator"]
