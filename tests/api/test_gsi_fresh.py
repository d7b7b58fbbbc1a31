"""Read-your-writes for global secondary indexes, a guarantee beyond DynamoDB's (whose index
reads are only eventually consistent, API Reference "Query": ConsistentRead is not supported on
global secondary indexes): a Query or Scan of an index sees every table write acknowledged
before it was sent.  Against DynamoDB itself these tests may fail now and then: they state
Dynamolog's guarantee (docs/guarantees.md), not DynamoDB's."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import wait_active
from .helpers import S, eventually, unique

pytestmark = pytest.mark.api


def _with_index(ddb: Any) -> str:
    """A new ACTIVE table with the index ``byGrp`` on ``grp``."""
    name = unique("fresh_")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "grp", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "byGrp",
                                              "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "ALL"}}])
    wait_active(ddb, name)
    return name


@pytest.fixture(scope="module")
def fresh_table(ddb: Any) -> Any:
    name = _with_index(ddb)
    yield name
    ddb.delete_table(TableName=name)


def by_group(ddb: Any, table: str, grp: str) -> list[dict[str, Any]]:
    return list(ddb.query(TableName=table, IndexName="byGrp", KeyConditionExpression="grp = :g",
                          ExpressionAttributeValues={":g": S(grp)})["Items"])


def test_first_write_after_create_is_in_the_index(ddb: Any) -> None:
    """Put right after CreateTable reported ACTIVE, then query the index: the item is there."""
    table = _with_index(ddb)
    try:
        ddb.put_item(TableName=table, Item={"pk": S("a"), "grp": S("g")})
        assert [i["pk"] for i in by_group(ddb, table, "g")] == [S("a")]
    finally:
        ddb.delete_table(TableName=table)


def test_put_then_query_the_index(ddb: Any, fresh_table: str) -> None:
    for i in range(20):
        grp = unique("g")
        ddb.put_item(TableName=fresh_table, Item={"pk": S(f"p{i}"), "grp": S(grp), "n": {"N": str(i)}})
        assert [it["n"] for it in by_group(ddb, fresh_table, grp)] == [{"N": str(i)}]


def test_update_then_query_sees_no_stale_entry(ddb: Any, fresh_table: str) -> None:
    """An update that moves the item to another index key: the old key no longer finds it."""
    old, new, k = unique("g"), unique("g"), unique("k")
    ddb.put_item(TableName=fresh_table, Item={"pk": S(k), "grp": S(old)})
    assert len(by_group(ddb, fresh_table, old)) == 1
    ddb.update_item(TableName=fresh_table, Key={"pk": S(k)}, UpdateExpression="SET grp = :g",
                    ExpressionAttributeValues={":g": S(new)})
    assert by_group(ddb, fresh_table, old) == []
    assert [i["pk"] for i in by_group(ddb, fresh_table, new)] == [S(k)]


def test_delete_then_scan_the_index(ddb: Any, fresh_table: str) -> None:
    grp, k = unique("g"), unique("k")
    ddb.put_item(TableName=fresh_table, Item={"pk": S(k), "grp": S(grp)})
    ddb.delete_item(TableName=fresh_table, Key={"pk": S(k)})
    items = ddb.scan(TableName=fresh_table, IndexName="byGrp", FilterExpression="grp = :g",
                     ExpressionAttributeValues={":g": S(grp)})["Items"]
    assert items == []


def test_recreated_index_shows_no_entry_of_the_old_one(ddb: Any) -> None:
    """An index deleted and created again under the same name holds the table's items, all of
    them (those written while the first index was kept up to date too), and nothing else."""
    table = _with_index(ddb)

    def status() -> str | None:
        desc = ddb.describe_table(TableName=table)["Table"]
        return next((i["IndexStatus"] for i in desc.get("GlobalSecondaryIndexes", [])
                     if i["IndexName"] == "byGrp"), None)

    try:
        ddb.put_item(TableName=table, Item={"pk": S("gone"), "grp": S("g")})
        ddb.put_item(TableName=table, Item={"pk": S("stays"), "grp": S("g")})
        assert len(by_group(ddb, table, "g")) == 2
        ddb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "byGrp"}}])
        assert eventually(lambda: status() is None and ddb.describe_table(
            TableName=table)["Table"]["TableStatus"] == "ACTIVE", 60)
        ddb.delete_item(TableName=table, Key={"pk": S("gone")})
        ddb.put_item(TableName=table, Item={"pk": S("kept"), "grp": S("g")})
        ddb.update_table(TableName=table, AttributeDefinitions=[{"AttributeName": "grp", "AttributeType": "S"}],
                         GlobalSecondaryIndexUpdates=[{"Create": {
                             "IndexName": "byGrp", "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                             "Projection": {"ProjectionType": "ALL"}}}])
        assert eventually(lambda: status() == "ACTIVE", 60)
        assert sorted(i["pk"]["S"] for i in by_group(ddb, table, "g")) == ["kept", "stays"]
    finally:
        ddb.delete_table(TableName=table)
