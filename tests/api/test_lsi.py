"""Local secondary indexes, black box (DynamoDB Developer Guide, "Local secondary indexes"; API
Reference CreateTable / Query / Scan / PutItem ReturnItemCollectionMetrics).

A local index is kept by the storage node in the same RocksDB WriteBatch as its items, so a
strongly consistent Query of the index sees a write as soon as it is acknowledged: these tests
never wait for an index.  The item-collection size limit is tested in
tests/integration/test_lsi_collections.py (it needs a system with a small limit)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import S, all_items, assert_error, unique

DEFS = [{"AttributeName": "cust", "AttributeType": "S"}, {"AttributeName": "order", "AttributeType": "S"},
        {"AttributeName": "ts", "AttributeType": "N"}, {"AttributeName": "status", "AttributeType": "S"}]
KEYS = [{"AttributeName": "cust", "KeyType": "HASH"}, {"AttributeName": "order", "KeyType": "RANGE"}]


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


def lsi(name: str, range_key: str, projection: str = "ALL", include: list[str] | None = None,
        hash_key: str = "cust") -> dict[str, Any]:
    proj: dict[str, Any] = {"ProjectionType": projection}
    if include:
        proj["NonKeyAttributes"] = include
    return {"IndexName": name, "Projection": proj,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}]}


@pytest.fixture(scope="module")
def orders(ddb: Any) -> Any:
    name = unique("lsi_orders_")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=DEFS, KeySchema=KEYS,
                     LocalSecondaryIndexes=[lsi("byTs", "ts"), lsi("byStatus", "status", "KEYS_ONLY"),
                                            lsi("tsNote", "ts", "INCLUDE", ["note"])])
    from .conftest import wait_active

    wait_active(ddb, name)
    yield name
    ddb.delete_table(TableName=name)


def put(ddb: Any, table: str, cust: str, order: str, **attrs: Any) -> None:
    item = {"cust": S(cust), "order": S(order)}
    for k, v in attrs.items():
        item[k] = N(v) if isinstance(v, int) else S(v)
    ddb.put_item(TableName=table, Item=item)


def query(ddb: Any, table: str, index: str, cond: str, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return dict(ddb.query(TableName=table, IndexName=index, KeyConditionExpression=cond,
                          ExpressionAttributeValues=values, ConsistentRead=True, **kw))


def orders_of(res: dict[str, Any]) -> list[str]:
    return [i["order"]["S"] for i in res["Items"]]


def test_describe_table_shows_the_local_indexes(ddb: Any, orders: str) -> None:
    desc = ddb.describe_table(TableName=orders)["Table"]
    by_name = {i["IndexName"]: i for i in desc["LocalSecondaryIndexes"]}
    assert set(by_name) == {"byTs", "byStatus", "tsNote"}
    assert by_name["byTs"]["KeySchema"] == [{"AttributeName": "cust", "KeyType": "HASH"},
                                            {"AttributeName": "ts", "KeyType": "RANGE"}]
    assert by_name["byStatus"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert by_name["tsNote"]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}
    assert by_name["byTs"]["IndexArn"] == desc["TableArn"] + "/index/byTs"
    assert "GlobalSecondaryIndexes" not in desc


def test_consistent_query_sees_each_write_at_once_in_index_order(ddb: Any, orders: str) -> None:
    c = unique("c")
    for order, ts in (("o1", 30), ("o2", 10), ("o3", 20)):
        put(ddb, orders, c, order, ts=ts, status="NEW", note=f"n-{order}")
        # no waiting: the index entry was written with the item
        assert order in orders_of(query(ddb, orders, "byTs", "cust = :c", {":c": S(c)}))
    res = query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})
    assert orders_of(res) == ["o2", "o3", "o1"]  # by ts, not by the table's sort key
    assert [i["ts"]["N"] for i in res["Items"]] == ["10", "20", "30"]
    assert res["Items"][0] == {"cust": S(c), "order": S("o2"), "ts": N(10), "status": S("NEW"), "note": S("n-o2")}
    back = query(ddb, orders, "byTs", "cust = :c", {":c": S(c)}, ScanIndexForward=False)
    assert orders_of(back) == ["o1", "o3", "o2"]
    between = query(ddb, orders, "byTs", "cust = :c AND ts BETWEEN :a AND :b", {":c": S(c), ":a": N(15), ":b": N(30)})
    assert orders_of(between) == ["o3", "o1"]
    # the other customer's items are not in this collection
    other = unique("c")
    put(ddb, orders, other, "o9", ts=15)
    assert orders_of(query(ddb, orders, "byTs", "cust = :c AND ts < :t", {":c": S(c), ":t": N(25)})) == ["o2", "o3"]


def test_index_key_change_moves_the_entry_and_a_missing_key_leaves_none(ddb: Any, orders: str) -> None:
    c = unique("c")
    put(ddb, orders, c, "a", ts=1, status="NEW")
    put(ddb, orders, c, "b", ts=2, status="NEW")
    ddb.update_item(TableName=orders, Key={"cust": S(c), "order": S("a")}, UpdateExpression="SET ts = :t",
                    ExpressionAttributeValues={":t": N(5)})
    res = query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})
    assert [(i["order"]["S"], i["ts"]["N"]) for i in res["Items"]] == [("b", "2"), ("a", "5")]
    assert orders_of(query(ddb, orders, "byTs", "cust = :c AND ts = :t", {":c": S(c), ":t": N(1)})) == []
    # sparse: an item without the index sort key is not in the index
    ddb.update_item(TableName=orders, Key={"cust": S(c), "order": S("a")}, UpdateExpression="REMOVE ts")
    assert orders_of(query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})) == ["b"]
    assert orders_of(query(ddb, orders, "byStatus", "cust = :c AND #s = :s", {":c": S(c), ":s": S("NEW")},
                           ExpressionAttributeNames={"#s": "status"})) == ["a", "b"]
    ddb.delete_item(TableName=orders, Key={"cust": S(c), "order": S("b")})
    assert orders_of(query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})) == []
    assert orders_of(query(ddb, orders, "byStatus", "cust = :c", {":c": S(c)})) == ["a"]
    # a transaction's writes maintain the index too
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": orders, "Item": {"cust": S(c), "order": S("t1"), "ts": N(7), "status": S("TX")}}},
        {"Delete": {"TableName": orders, "Key": {"cust": S(c), "order": S("a")}}},
    ])
    assert orders_of(query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})) == ["t1"]
    assert orders_of(query(ddb, orders, "byStatus", "cust = :c", {":c": S(c)})) == ["t1"]


def test_projections_and_fetching_attributes_the_index_does_not_hold(ddb: Any, orders: str) -> None:
    c = unique("c")
    put(ddb, orders, c, "x", ts=1, status="OPEN", note="hello", extra="big")
    keys_only = query(ddb, orders, "byStatus", "cust = :c", {":c": S(c)})["Items"]
    assert keys_only == [{"cust": S(c), "order": S("x"), "status": S("OPEN")}]
    include = query(ddb, orders, "tsNote", "cust = :c", {":c": S(c)})["Items"]
    assert include == [{"cust": S(c), "order": S("x"), "ts": N(1), "note": S("hello")}]
    # a local index may return what it does not project: the item is read from the table
    full = query(ddb, orders, "byStatus", "cust = :c", {":c": S(c)}, Select="ALL_ATTRIBUTES")["Items"]
    assert full == [{"cust": S(c), "order": S("x"), "ts": N(1), "status": S("OPEN"), "note": S("hello"),
                     "extra": S("big")}]
    some = query(ddb, orders, "byStatus", "cust = :c", {":c": S(c)}, ProjectionExpression="extra, #s",
                 ExpressionAttributeNames={"#s": "status"})["Items"]
    assert some == [{"extra": S("big"), "status": S("OPEN")}]
    # a filter on an attribute the index does not hold, answering the projected attributes
    hit = query(ddb, orders, "byStatus", "cust = :c", {":c": S(c), ":e": S("big")}, FilterExpression="extra = :e")
    assert hit["Items"] == keys_only and hit["Count"] == 1 and hit["ScannedCount"] == 1
    miss = query(ddb, orders, "byStatus", "cust = :c", {":c": S(c), ":e": S("small")}, FilterExpression="extra = :e")
    assert miss["Items"] == [] and miss["ScannedCount"] == 1


def test_index_key_attributes_must_have_the_index_type_and_not_be_empty(ddb: Any, orders: str) -> None:
    c = unique("c")
    put(ddb, orders, c, "k", ts=1, status="OK")
    with pytest.raises(ClientError) as e:
        put(ddb, orders, c, "k", ts="one")
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Type mismatch for Index Key "
                 "ts Expected: N Actual: S IndexName: ")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=orders, Key={"cust": S(c), "order": S("k")}, UpdateExpression="SET #s = :e",
                        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":e": S("")})
    assert_error(e, "ValidationException", "A value specified for a secondary index key is not supported. The "
                 "AttributeValue for a key attribute cannot contain an empty string value. IndexName: byStatus, "
                 "IndexKey: status")
    # a batch with one such item is refused as a whole: none of its writes is done
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={orders: [
            {"PutRequest": {"Item": {"cust": S(c), "order": S("fine")}}},
            {"PutRequest": {"Item": {"cust": S(c), "order": S("bad"), "ts": S("x")}}}]})
    assert_error(e, "ValidationException", "Type mismatch for Index Key ts Expected: N Actual: S")
    assert "Item" not in ddb.get_item(TableName=orders, Key={"cust": S(c), "order": S("fine")}, ConsistentRead=True)
    # nothing changed: item and index entries as before
    assert ddb.get_item(TableName=orders, Key={"cust": S(c), "order": S("k")}, ConsistentRead=True)["Item"] == {
        "cust": S(c), "order": S("k"), "ts": N(1), "status": S("OK")}
    assert orders_of(query(ddb, orders, "byStatus", "cust = :c AND #s = :s", {":c": S(c), ":s": S("OK")},
                           ExpressionAttributeNames={"#s": "status"})) == ["k"]


def test_pages_of_an_index_query_and_scan(ddb: Any, orders: str) -> None:
    c = unique("c")
    for i in range(7):
        put(ddb, orders, c, f"o{i}", ts=100 - i)
    seen: list[str] = []
    kw: dict[str, Any] = {}
    while True:
        res = query(ddb, orders, "byTs", "cust = :c", {":c": S(c)}, Limit=3, **kw)
        seen += orders_of(res)
        if "LastEvaluatedKey" not in res:
            break
        assert set(res["LastEvaluatedKey"]) == {"cust", "order", "ts"}
        kw = {"ExclusiveStartKey": res["LastEvaluatedKey"]}
    assert seen == [f"o{i}" for i in range(6, -1, -1)]
    # Scan of the index: every indexed item of the table, each collection in index order
    scanned = all_items(ddb.scan, TableName=orders, IndexName="byTs", Limit=50)
    mine = [i for i in scanned if i["cust"] == S(c)]
    assert [i["order"]["S"] for i in mine] == [f"o{i}" for i in range(6, -1, -1)]
    assert all("ts" in i for i in scanned)


def test_item_collection_metrics_on_writes(ddb: Any, orders: str) -> None:
    c = unique("c")
    expect = {"ItemCollectionKey": {"cust": S(c)}, "SizeEstimateRangeGB": [0.0, 1.0]}
    r = ddb.put_item(TableName=orders, Item={"cust": S(c), "order": S("1"), "ts": N(1)},
                     ReturnItemCollectionMetrics="SIZE")
    assert r["ItemCollectionMetrics"] == expect
    r = ddb.update_item(TableName=orders, Key={"cust": S(c), "order": S("1")}, UpdateExpression="SET ts = :t",
                        ExpressionAttributeValues={":t": N(2)}, ReturnItemCollectionMetrics="SIZE")
    assert r["ItemCollectionMetrics"] == expect
    r = ddb.batch_write_item(RequestItems={orders: [{"PutRequest": {"Item": {"cust": S(c), "order": S("2")}}}]},
                             ReturnItemCollectionMetrics="SIZE")
    assert r["ItemCollectionMetrics"] == {orders: [expect]}
    r = ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": orders, "Item": {"cust": S(c), "order": S("5")}}},
        {"ConditionCheck": {"TableName": orders, "Key": {"cust": S(c), "order": S("2")},
                            "ConditionExpression": "attribute_exists(cust)"}},
    ], ReturnItemCollectionMetrics="SIZE")
    assert r["ItemCollectionMetrics"] == {orders: [expect]}  # the put only: a check changes no collection
    r = ddb.delete_item(TableName=orders, Key={"cust": S(c), "order": S("1")}, ReturnItemCollectionMetrics="SIZE")
    assert r["ItemCollectionMetrics"] == expect
    assert "ItemCollectionMetrics" not in ddb.put_item(TableName=orders, Item={"cust": S(c), "order": S("3")})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=orders, Item={"cust": S(c), "order": S("4")}, ReturnItemCollectionMetrics="ALL")
    assert_error(e, "ValidationException", "Value 'ALL' at 'returnItemCollectionMetrics' failed to satisfy "
                 "constraint: Member must satisfy enum value set: [SIZE, NONE]")


def test_no_item_collection_metrics_for_a_table_without_local_indexes(ddb: Any, range_table: str) -> None:
    r = ddb.put_item(TableName=range_table, Item={"pk": S(unique()), "sk": N(1)}, ReturnItemCollectionMetrics="SIZE")
    assert "ItemCollectionMetrics" not in r


def test_strongly_consistent_reads_are_allowed_on_local_indexes_only(ddb: Any, orders: str) -> None:
    c = unique("c")
    put(ddb, orders, c, "1", ts=1)
    res = ddb.query(TableName=orders, IndexName="byTs", KeyConditionExpression="cust = :c",
                    ExpressionAttributeValues={":c": S(c)}, ConsistentRead=False)
    assert res["ScannedCount"] <= 1  # eventually consistent: allowed, may lag
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=orders, IndexName="nope", KeyConditionExpression="cust = :c",
                  ExpressionAttributeValues={":c": S(c)})
    assert_error(e, "ValidationException", "The table does not have the specified index: nope")


@pytest.mark.parametrize("args, phrase", [
    ({"KeySchema": [{"AttributeName": "cust", "KeyType": "HASH"}],
      "AttributeDefinitions": DEFS[:2], "LocalSecondaryIndexes": [lsi("ix1", "order")]},
     "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required "
     "when specifying a LocalSecondaryIndex"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS[:3], "LocalSecondaryIndexes": [lsi("ix1", "ts", hash_key="order")]},
     "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table "
     "KeySchema for index: ix1. index hash key: order, table hash key: cust"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS[:3],
      "LocalSecondaryIndexes": [lsi(f"ix{i}", "ts") for i in range(6)]},
     "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS[:3],
      "LocalSecondaryIndexes": [lsi("same", "ts")],
      "GlobalSecondaryIndexes": [{"IndexName": "same", "Projection": {"ProjectionType": "ALL"},
                                  "KeySchema": [{"AttributeName": "ts", "KeyType": "HASH"}]}]},
     "One or more parameter values were invalid: Duplicate index name: same"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS[:2],
      "LocalSecondaryIndexes": [lsi("ix1", "ts")]},
     "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS,
      "LocalSecondaryIndexes": [lsi("ix1", "ts")]},
     "One or more parameter values were invalid: Some AttributeDefinitions are not used"),
    ({"KeySchema": KEYS, "AttributeDefinitions": DEFS[:3],
      "LocalSecondaryIndexes": [lsi("ix1", "ts", "KEYS_ONLY", ["note"])]},
     "One or more parameter values were invalid: NonKeyAttributes cannot be specified when ProjectionType is "
     "KEYS_ONLY"),
])
def test_create_table_refuses_bad_local_indexes_and_creates_nothing(ddb: Any, args: dict[str, Any],
                                                                      phrase: str) -> None:
    name = unique("lsi_bad_")
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **args)
    assert_error(e, "ValidationException", phrase)
    with pytest.raises(ClientError) as gone:
        ddb.describe_table(TableName=name)
    assert_error(gone, "ResourceNotFoundException")


def test_partiql_select_from_a_local_index(ddb: Any, orders: str) -> None:
    c = unique("c")
    for order, ts in (("a", 3), ("b", 1), ("c", 2)):
        put(ddb, orders, c, order, ts=ts)
    res = ddb.execute_statement(Statement=f'SELECT "order", ts FROM "{orders}"."byTs" WHERE cust = ? AND ts >= ?',
                                Parameters=[S(c), N(2)], ConsistentRead=True)
    assert res["Items"] == [{"order": S("c"), "ts": N(2)}, {"order": S("a"), "ts": N(3)}]
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement=f'SELECT * FROM "{orders}"."noSuchIndex" WHERE cust = ?', Parameters=[S(c)])
    assert_error(e, "ValidationException", "The table does not have the specified index: noSuchIndex")
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement=f'DELETE FROM "{orders}"."byTs" WHERE cust = ? AND "order" = ?',
                              Parameters=[S(c), S("a")])
    assert_error(e, "ValidationException")
    assert len(query(ddb, orders, "byTs", "cust = :c", {":c": S(c)})["Items"]) == 3
