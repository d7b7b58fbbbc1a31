"""Global secondary indexes, black box (DynamoDB Developer Guide, "Using Global Secondary Indexes";
API Reference CreateTable / UpdateTable / Query / Scan).  Index reads are eventually consistent,
so the tests wait for an index to show a write."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import (  # noqa: F401 - raw_ddb is a fixture
    TARGET_PREFIX,
    S,
    all_items,
    assert_error,
    eventually,
    raw_ddb,
    raw_request,
    unique,
)

DEFS = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "cust", "AttributeType": "S"},
        {"AttributeName": "ts", "AttributeType": "N"}]


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


def gsi(name: str, hash_key: str, range_key: str | None = None, projection: str = "ALL",
        include: list[str] | None = None) -> dict[str, Any]:
    ks = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        ks.append({"AttributeName": range_key, "KeyType": "RANGE"})
    proj: dict[str, Any] = {"ProjectionType": projection}
    if include:
        proj["NonKeyAttributes"] = include
    return {"IndexName": name, "KeySchema": ks, "Projection": proj}


@pytest.fixture(scope="module")
def orders(ddb: Any) -> Any:
    name = unique("orders_")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=DEFS,
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[gsi("byCust", "cust", "ts"),
                                             gsi("keysOnly", "cust", None, "KEYS_ONLY"),
                                             gsi("include", "ts", None, "INCLUDE", ["note"])])
    from .conftest import wait_active

    wait_active(ddb, name)
    yield name
    ddb.delete_table(TableName=name)


def query(ddb: Any, table: str, index: str, cond: str, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return dict(ddb.query(TableName=table, IndexName=index, KeyConditionExpression=cond,
                          ExpressionAttributeValues=values, **kw))


def test_describe_table_shows_the_indexes(ddb: Any, orders: str) -> None:
    desc = ddb.describe_table(TableName=orders)["Table"]
    by_name = {i["IndexName"]: i for i in desc["GlobalSecondaryIndexes"]}
    assert set(by_name) == {"byCust", "keysOnly", "include"}
    assert by_name["byCust"]["KeySchema"] == [{"AttributeName": "cust", "KeyType": "HASH"},
                                              {"AttributeName": "ts", "KeyType": "RANGE"}]
    assert by_name["include"]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}
    assert all(i["IndexStatus"] == "ACTIVE" for i in by_name.values())
    assert by_name["byCust"]["IndexArn"] == f"{desc['TableArn']}/index/byCust"


def test_query_by_index_key_in_index_order_with_paging(ddb: Any, orders: str) -> None:
    cust = unique("c")
    for i in range(6):
        ddb.put_item(TableName=orders, Item={"pk": S(f"{cust}-o{i}"), "cust": S(cust), "ts": N(100 - i),
                                             "note": S(f"n{i}")})
    res = eventually(lambda: (r := query(ddb, orders, "byCust", "cust = :c", {":c": S(cust)}))["Count"] == 6 and r)
    assert [int(it["ts"]["N"]) for it in res["Items"]] == [95, 96, 97, 98, 99, 100]
    assert res["Items"][0] == {"pk": S(f"{cust}-o5"), "cust": S(cust), "ts": N(95), "note": S("n5")}
    page = query(ddb, orders, "byCust", "cust = :c AND ts BETWEEN :a AND :b", {":c": S(cust), ":a": N(96),
                                                                              ":b": N(99)}, Limit=2,
                 ScanIndexForward=False)
    assert [it["ts"]["N"] for it in page["Items"]] == ["99", "98"]
    assert page["LastEvaluatedKey"] == {"cust": S(cust), "ts": N(98), "pk": S(f"{cust}-o2")}
    rest = query(ddb, orders, "byCust", "cust = :c AND ts BETWEEN :a AND :b", {":c": S(cust), ":a": N(96),
                                                                              ":b": N(99)},
                 ExclusiveStartKey=page["LastEvaluatedKey"], ScanIndexForward=False)
    assert [it["ts"]["N"] for it in rest["Items"]] == ["97", "96"]


def test_changing_the_index_key_moves_the_entry(ddb: Any, orders: str) -> None:
    a, b, k = unique("c"), unique("c"), unique("o")
    ddb.put_item(TableName=orders, Item={"pk": S(k), "cust": S(a), "ts": N(1)})
    assert eventually(lambda: query(ddb, orders, "byCust", "cust = :c", {":c": S(a)})["Count"] == 1)
    ddb.update_item(TableName=orders, Key={"pk": S(k)}, UpdateExpression="SET cust = :b",
                    ExpressionAttributeValues={":b": S(b)})
    assert eventually(lambda: query(ddb, orders, "byCust", "cust = :c", {":c": S(b)})["Count"] == 1)
    # the old entry's delete and the new entry's put go to the index independently
    assert eventually(lambda: query(ddb, orders, "byCust", "cust = :c", {":c": S(a)})["Count"] == 0)
    ddb.delete_item(TableName=orders, Key={"pk": S(k)})
    assert eventually(lambda: query(ddb, orders, "byCust", "cust = :c", {":c": S(b)})["Count"] == 0)


def test_items_without_the_index_key_are_not_indexed(ddb: Any, orders: str) -> None:
    cust = unique("c")
    ddb.put_item(TableName=orders, Item={"pk": S(unique()), "cust": S(cust)})  # no ts: not in byCust
    ddb.put_item(TableName=orders, Item={"pk": S(unique()), "cust": S(cust), "ts": N(5)})
    assert eventually(lambda: query(ddb, orders, "keysOnly", "cust = :c", {":c": S(cust)})["Count"] == 2)
    # each index is fed on its own: wait for this one too, then make sure the sparse item stays out
    assert eventually(lambda: query(ddb, orders, "byCust", "cust = :c", {":c": S(cust)})["Count"] >= 1)
    time.sleep(0.5)
    assert query(ddb, orders, "byCust", "cust = :c", {":c": S(cust)})["Count"] == 1


def test_projections(ddb: Any, orders: str) -> None:
    cust, k = unique("c"), unique("o")
    ts = 700_000 + int(k[-5:], 16) % 100_000
    ddb.put_item(TableName=orders, Item={"pk": S(k), "cust": S(cust), "ts": N(ts), "note": S("hi"), "x": S("y")})
    keys = eventually(lambda: (r := query(ddb, orders, "keysOnly", "cust = :c", {":c": S(cust)}))["Count"] and r)
    assert keys["Items"] == [{"pk": S(k), "cust": S(cust)}]
    inc = eventually(lambda: (r := query(ddb, orders, "include", "ts = :t", {":t": N(ts)}))["Count"] and r)
    assert inc["Items"] == [{"pk": S(k), "ts": N(ts), "note": S("hi")}]  # cust is not projected there
    with pytest.raises(ClientError) as e:
        query(ddb, orders, "keysOnly", "cust = :c", {":c": S(cust)}, Select="ALL_ATTRIBUTES")
    assert_error(e, "ValidationException", "Select type ALL_ATTRIBUTES is not supported for global secondary index")
    got = query(ddb, orders, "include", "ts = :t", {":t": N(ts)}, Select="ALL_PROJECTED_ATTRIBUTES")
    assert got["Items"] == inc["Items"]


def test_index_reads_are_eventually_consistent_only(ddb: Any, orders: str) -> None:
    with pytest.raises(ClientError) as e:
        query(ddb, orders, "byCust", "cust = :c", {":c": S("x")}, ConsistentRead=True)
    assert_error(e, "ValidationException", "Consistent reads are not supported on global secondary indexes")
    with pytest.raises(ClientError) as e:
        query(ddb, orders, "noSuchIndex", "cust = :c", {":c": S("x")})
    assert_error(e, "ValidationException", "The table does not have the specified index: noSuchIndex")


def test_scan_an_index(ddb: Any, orders: str) -> None:
    cust = unique("c")
    for i in range(3):
        ddb.put_item(TableName=orders, Item={"pk": S(f"{cust}-{i}"), "cust": S(cust), "ts": N(i)})

    def scanned() -> list[dict[str, Any]]:
        return all_items(ddb.scan, TableName=orders, IndexName="byCust", Limit=2, FilterExpression="cust = :c",
                         ExpressionAttributeValues={":c": S(cust)})

    items = eventually(lambda: (r if len(r := scanned()) == 3 else None))
    assert sorted(int(i["ts"]["N"]) for i in items) == [0, 1, 2]


def test_create_table_index_validation(raw_ddb: Any) -> None:
    base = {"TableName": unique("t_"), "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(**base, AttributeDefinitions=DEFS[:1], GlobalSecondaryIndexes=[gsi("idx1", "cust")])
    assert_error(e, "ValidationException", "Some index key attributes are not defined in AttributeDefinitions")
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(**base, AttributeDefinitions=DEFS[:2],
                             GlobalSecondaryIndexes=[gsi("idx1", "cust"), gsi("idx1", "cust")])
    assert_error(e, "ValidationException", "Duplicate index name: idx1")
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(**base, AttributeDefinitions=DEFS, GlobalSecondaryIndexes=[gsi("idx1", "cust")])
    assert_error(e, "ValidationException", "Some AttributeDefinitions are not used")
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(**dict(base, BillingMode="PROVISIONED",
                                    ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}),
                             AttributeDefinitions=DEFS[:2], GlobalSecondaryIndexes=[gsi("idx1", "cust")])
    assert_error(e, "ValidationException", "ProvisionedThroughput must be specified for index: idx1")
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(**base, AttributeDefinitions=DEFS[:2],
                             GlobalSecondaryIndexes=[gsi("idx1", "cust", None, "INCLUDE")])
    assert_error(e, "ValidationException", "NonKeyAttributes must be specified")


def test_an_index_key_schema_that_is_not_a_list_is_a_serialization_error(ddb: Any, endpoint: str) -> None:
    # A fuzzed CreateTable with "KeySchema": true in a global index was answered 500 (the check
    # of which definitions the keys use iterated it); DynamoDB cannot read such a request at all.
    name = unique("t_")
    for bad in (True, "pk", {"AttributeName": "g", "KeyType": "HASH"}):
        body = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "g", "AttributeType": "S"}],
                "GlobalSecondaryIndexes": [{"IndexName": "gi", "KeySchema": bad,
                                            "Projection": {"ProjectionType": "ALL"}}]}
        answer = raw_request(ddb, endpoint, target=f"{TARGET_PREFIX}CreateTable", body=json.dumps(body).encode())
        assert answer.status == 400, (bad, answer.status, answer.body)
        assert answer.json() == {"__type": "com.amazon.coral.service#SerializationException",
                                 "message": "Unexpected value type in payload"}, bad
    assert name not in ddb.list_tables()["TableNames"]


def test_an_index_added_later_is_backfilled_then_deleted(ddb: Any, create_table: Any) -> None:
    from .conftest import wait_active

    table = str(create_table())
    for i in range(20):
        ddb.put_item(TableName=table, Item={"pk": S(f"k{i}"), "grp": S(f"g{i % 4}")})
    ddb.update_table(TableName=table, AttributeDefinitions=[{"AttributeName": "grp", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": gsi("byGrp", "grp")}])

    def status() -> str | None:
        desc = ddb.describe_table(TableName=table)["Table"]
        return next((i["IndexStatus"] for i in desc.get("GlobalSecondaryIndexes", [])
                     if i["IndexName"] == "byGrp"), None)

    assert eventually(lambda: status() == "ACTIVE", 30)
    wait_active(ddb, table)
    got = query(ddb, table, "byGrp", "grp = :g", {":g": S("g1")})
    assert sorted(it["pk"]["S"] for it in got["Items"]) == ["k1", "k13", "k17", "k5", "k9"]
    ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byGrp"}}])
    assert eventually(lambda: status() is None and ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE",
               30)
    with pytest.raises(ClientError) as e:
        query(ddb, table, "byGrp", "grp = :g", {":g": S("g1")})
    assert_error(e, "ValidationException", "The table does not have the specified index")


def test_a_write_with_an_index_key_of_the_wrong_type_is_refused(ddb: Any, orders: str) -> None:
    pk = unique("p")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=orders, Item={"pk": S(pk), "cust": N(5)})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Type mismatch for Index Key "
                 "cust Expected: S Actual: N IndexName: ")
    ddb.put_item(TableName=orders, Item={"pk": S(pk), "cust": S("c"), "ts": N(1)})
    with pytest.raises(ClientError) as e:  # an update's result is checked too
        ddb.update_item(TableName=orders, Key={"pk": S(pk)}, UpdateExpression="SET ts = :t",
                        ExpressionAttributeValues={":t": S("later")})
    assert_error(e, "ValidationException", "Type mismatch for Index Key ts Expected: N Actual: S IndexName: byCust")
    assert ddb.get_item(TableName=orders, Key={"pk": S(pk)}, ConsistentRead=True)["Item"]["ts"] == N(1)


def test_partiql_select_from_a_global_index(ddb: Any, orders: str) -> None:
    cust = unique("cust")
    for i in range(3):
        ddb.put_item(TableName=orders, Item={"pk": S(unique("p")), "cust": S(cust), "ts": N(i)})

    def rows() -> list[dict[str, Any]]:
        res = ddb.execute_statement(Statement=f'SELECT ts FROM "{orders}"."byCust" WHERE cust = ?',
                                    Parameters=[S(cust)])
        return list(res["Items"]) if len(res["Items"]) == 3 else []

    assert eventually(rows) == [{"ts": N(0)}, {"ts": N(1)}, {"ts": N(2)}]


def test_backfill_leaves_out_items_whose_index_key_has_another_type(ddb: Any, create_table: Any) -> None:
    # Developer Guide, "Detecting and correcting index key violations": an item whose attribute
    # has another type than the index key's is left out of the index during the backfill, which
    # goes on; the index becomes ACTIVE, and afterwards a write that would violate the index key
    # is refused. (DynamoDB itself reports no violation; its Violation Detector tool finds them
    # with a Scan: the items are those a Scan shows and the index does not.)
    from .conftest import wait_active

    table = str(create_table())
    ddb.put_item(TableName=table, Item={"pk": S("good"), "grp": S("g")})
    ddb.put_item(TableName=table, Item={"pk": S("bad"), "grp": N(7)})
    ddb.update_table(TableName=table, AttributeDefinitions=[{"AttributeName": "grp", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": gsi("byGrp", "grp")}])

    def status() -> str | None:
        desc = ddb.describe_table(TableName=table)["Table"]
        return next((i["IndexStatus"] for i in desc.get("GlobalSecondaryIndexes", [])
                     if i["IndexName"] == "byGrp"), None)

    assert eventually(lambda: status() == "ACTIVE", 30)
    wait_active(ddb, table)
    assert [it["pk"] for it in ddb.scan(TableName=table, IndexName="byGrp")["Items"]] == [S("good")]
    assert ddb.get_item(TableName=table, Key={"pk": S("bad")}, ConsistentRead=True)["Item"]["grp"] == N(7)
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S("bad")}, UpdateExpression="SET note = :o",
                        ExpressionAttributeValues={":o": S("x")})
    assert_error(e, "ValidationException", "Type mismatch for Index Key grp Expected: S Actual: N IndexName: byGrp")
    ddb.update_item(TableName=table, Key={"pk": S("bad")}, UpdateExpression="SET grp = :g",
                    ExpressionAttributeValues={":g": S("g")})
    assert eventually(lambda: len(ddb.scan(TableName=table, IndexName="byGrp")["Items"]) == 2, 10)
