"""ReturnConsumedCapacity arithmetic, Select semantics, Limit before the filter, the 1 MB page.

DynamoDB's item size: the UTF-8 lengths of the attribute names plus their values' sizes
(a string its UTF-8 length).  Writes cost 1 unit per KB (rounded up) of the larger of the old
and new item; reads 1 unit per 4 KB, half when eventually consistent; a Query or Scan is
charged on the summed size of the items it read, whether the filter kept them or not.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import assert_error, unique

pytestmark = pytest.mark.api


def _item(pk: str, size: int, sk: int | None = None) -> dict[str, Any]:
    """An item of exactly ``size`` bytes (DynamoDB's item size)."""
    item: dict[str, Any] = {"pk": {"S": pk}}
    used = 2 + len(pk)
    if sk is not None:
        item["sk"] = {"N": str(sk)}
        used += 2 + 2  # name + one-digit number (1 byte of digits + 1)
    item["d"] = {"S": "x" * (size - used - 1)}
    return item


def _cc(res: dict[str, Any]) -> dict[str, Any]:
    cc: dict[str, Any] = res["ConsumedCapacity"]
    return cc


def test_put_item_capacity_is_the_larger_of_old_and_new(ddb: Any, hash_table: str) -> None:
    pk = unique()
    res = ddb.put_item(TableName=hash_table, Item=_item(pk, 1500), ReturnConsumedCapacity="TOTAL")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}
    res = ddb.put_item(TableName=hash_table, Item=_item(pk, 1024), ReturnConsumedCapacity="TOTAL")
    assert _cc(res)["CapacityUnits"] == 2.0  # the old item (1500 bytes) was larger
    res = ddb.put_item(TableName=hash_table, Item=_item(pk, 1024), ReturnConsumedCapacity="TOTAL")
    assert _cc(res)["CapacityUnits"] == 1.0  # exactly 1 KB
    res = ddb.put_item(TableName=hash_table, Item=_item(pk, 3 * 1024 + 1), ReturnConsumedCapacity="INDEXES")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0,
                        "Table": {"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}}
    res = ddb.put_item(TableName=hash_table, Item=_item(pk, 100), ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in res


def test_update_and_delete_capacity(ddb: Any, hash_table: str) -> None:
    pk = unique()
    ddb.put_item(TableName=hash_table, Item=_item(pk, 3000))
    res = ddb.update_item(TableName=hash_table, Key={"pk": {"S": pk}}, UpdateExpression="SET n = :n",
                          ExpressionAttributeValues={":n": {"N": "1"}}, ReturnConsumedCapacity="TOTAL")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}
    res = ddb.update_item(TableName=hash_table, Key={"pk": {"S": pk}}, UpdateExpression="SET e = :e",
                          ExpressionAttributeValues={":e": {"S": "y" * 2000}}, ReturnConsumedCapacity="TOTAL")
    assert _cc(res)["CapacityUnits"] == 5.0  # new item ~5 KB
    res = ddb.update_item(TableName=hash_table, Key={"pk": {"S": pk}}, UpdateExpression="REMOVE e, d",
                          ReturnConsumedCapacity="INDEXES")
    assert _cc(res)["CapacityUnits"] == 5.0  # the old item was the larger
    assert _cc(res)["Table"] == {"CapacityUnits": 5.0, "WriteCapacityUnits": 5.0}
    res = ddb.update_item(TableName=hash_table, Key={"pk": {"S": unique()}}, UpdateExpression="SET n = :n",
                          ExpressionAttributeValues={":n": {"N": "1"}}, ReturnConsumedCapacity="TOTAL")
    assert _cc(res)["CapacityUnits"] == 1.0
    pk2 = unique()
    ddb.put_item(TableName=hash_table, Item=_item(pk2, 2049))
    res = ddb.delete_item(TableName=hash_table, Key={"pk": {"S": pk2}}, ReturnConsumedCapacity="TOTAL")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}
    res = ddb.delete_item(TableName=hash_table, Key={"pk": {"S": pk2}}, ReturnConsumedCapacity="TOTAL")
    assert _cc(res)["CapacityUnits"] == 1.0  # nothing to delete


def test_get_item_capacity(ddb: Any, hash_table: str) -> None:
    pk = unique()
    ddb.put_item(TableName=hash_table, Item=_item(pk, 4097))
    k = {"pk": {"S": pk}}
    res = ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}
    res = ddb.get_item(TableName=hash_table, Key=k, ReturnConsumedCapacity="INDEXES")
    assert _cc(res) == {"TableName": hash_table, "CapacityUnits": 1.0, "ReadCapacityUnits": 1.0,
                        "Table": {"CapacityUnits": 1.0, "ReadCapacityUnits": 1.0}}
    # a projection returns less, but the whole item is read
    res = ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=True, ProjectionExpression="pk",
                       ReturnConsumedCapacity="TOTAL")
    assert res["Item"] == k and _cc(res)["CapacityUnits"] == 2.0
    res = ddb.get_item(TableName=hash_table, Key={"pk": {"S": unique()}}, ReturnConsumedCapacity="TOTAL")
    assert "Item" not in res and _cc(res)["CapacityUnits"] == 0.5


def test_unknown_return_consumed_capacity_is_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": {"S": unique()}}, ReturnConsumedCapacity="ALL")
    assert_error(e, "ValidationException", "at 'returnConsumedCapacity' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [INDEXES, TOTAL, NONE]")


def test_query_and_scan_capacity_counts_items_read_not_returned(ddb: Any, range_table: str) -> None:
    pk = unique()
    for sk in range(1, 4):
        ddb.put_item(TableName=range_table, Item=_item(pk, 1500, sk) | {"f": {"N": str(sk)}})
    # each item is 1500 + 3 bytes ("f" and one digit): 4509 bytes read -> 2 units, 1 when eventually consistent
    args = dict(TableName=range_table, KeyConditionExpression="pk = :p", FilterExpression="f = :none",
                ExpressionAttributeValues={":p": {"S": pk}, ":none": {"N": "9"}})
    res = ddb.query(**args, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert res["Count"] == 0 and res["ScannedCount"] == 3
    assert _cc(res) == {"TableName": range_table, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}
    res = ddb.query(**args, ReturnConsumedCapacity="INDEXES")
    assert _cc(res)["CapacityUnits"] == 1.0 and _cc(res)["Table"] == {"CapacityUnits": 1.0, "ReadCapacityUnits": 1.0}
    res = ddb.query(**args, ConsistentRead=True, Limit=2, ReturnConsumedCapacity="TOTAL")
    assert res["ScannedCount"] == 2 and _cc(res)["CapacityUnits"] == 1.0  # 3006 bytes
    res = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", ProjectionExpression="sk",
                    ExpressionAttributeValues={":p": {"S": pk}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    assert res["Count"] == 3 and _cc(res)["CapacityUnits"] == 2.0
    res = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", Select="COUNT",
                    ExpressionAttributeValues={":p": {"S": unique()}}, ReturnConsumedCapacity="TOTAL")
    assert res["Count"] == 0 and _cc(res)["CapacityUnits"] == 0.5


def test_select_semantics(ddb: Any, range_table: str) -> None:
    pk = unique()
    for sk in range(1, 6):
        ddb.put_item(TableName=range_table, Item={"pk": {"S": pk}, "sk": {"N": str(sk)}, "a": {"N": str(sk % 2)},
                                                  "b": {"S": "b"}})
    base = dict(TableName=range_table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}},
                ConsistentRead=True)
    res = ddb.query(**base, Select="COUNT")
    assert "Items" not in res and res["Count"] == 5 and res["ScannedCount"] == 5
    res = ddb.query(**base, Select="SPECIFIC_ATTRIBUTES", ProjectionExpression="sk, b")
    assert res["Items"][0] == {"sk": {"N": "1"}, "b": {"S": "b"}}
    res = ddb.query(**base, ProjectionExpression="a")
    assert res["Items"][0] == {"a": {"N": "1"}}
    res = ddb.query(**base, Select="ALL_ATTRIBUTES")
    assert res["Items"][0] == {"pk": {"S": pk}, "sk": {"N": "1"}, "a": {"N": "1"}, "b": {"S": "b"}}
    with pytest.raises(ClientError) as e:
        ddb.query(**base, Select="SPECIFIC_ATTRIBUTES")
    assert_error(e, "ValidationException", "SPECIFIC_ATTRIBUTES")
    with pytest.raises(ClientError) as e:
        ddb.query(**base, Select="ALL_ATTRIBUTES", ProjectionExpression="a")
    assert_error(e, "ValidationException", "Cannot specify the ProjectionExpression when choosing to get "
                 "ALL_ATTRIBUTES")
    with pytest.raises(ClientError) as e:
        ddb.query(**base, Select="COUNT", ProjectionExpression="a")
    assert_error(e, "ValidationException", "Cannot specify the ProjectionExpression when choosing to get only the Count")
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=range_table, Select="ALL_PROJECTED_ATTRIBUTES")
    assert_error(e, "ValidationException", "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")

    # Limit counts items read before the filter: ScannedCount vs Count
    filt = dict(FilterExpression="a = :one", ExpressionAttributeValues={":p": {"S": pk}, ":one": {"N": "1"}})
    args = {k: v for k, v in base.items() if k != "ExpressionAttributeValues"} | filt
    res = ddb.query(**args, Limit=3)
    assert res["ScannedCount"] == 3 and res["Count"] == 2  # sk 1 and 3
    assert res["LastEvaluatedKey"] == {"pk": {"S": pk}, "sk": {"N": "3"}}
    res = ddb.query(**args, Limit=3, ExclusiveStartKey=res["LastEvaluatedKey"])
    assert res["ScannedCount"] == 2 and res["Count"] == 1 and "LastEvaluatedKey" not in res
    res = ddb.query(**args, Limit=2, Select="COUNT")
    assert res == res | {"Count": 1, "ScannedCount": 2} and "Items" not in res


def test_scan_page_stops_at_1_mb(ddb: Any, create_table: Any) -> None:
    table = create_table()
    size = 400 * 1024 - 100
    keys = [f"big{i}" for i in range(8)]  # about 3.1 MB
    for k in keys:
        ddb.put_item(TableName=table, Item=_item(k, size))
    seen: list[str] = []
    pages = []
    start: dict[str, Any] | None = None
    while True:
        args: dict[str, Any] = dict(TableName=table, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
        if start:
            args["ExclusiveStartKey"] = start
        res = ddb.scan(**args)
        pages.append(res)
        seen += [i["pk"]["S"] for i in res["Items"]]
        start = res.get("LastEvaluatedKey")
        if not start:
            break
    first = pages[0]
    # the page stops once 1 MB is read: the item that crosses 1 MB is the last one
    assert first["Count"] == first["ScannedCount"] == 3 and "LastEvaluatedKey" in first
    assert first["LastEvaluatedKey"] == {"pk": first["Items"][-1]["pk"]}
    assert _cc(first)["CapacityUnits"] == float(math.ceil(3 * size / 4096))
    assert sorted(seen) == sorted(keys) and len(pages) >= 3
    res = ddb.scan(TableName=table, Select="COUNT")
    assert res["Count"] == 3 and "LastEvaluatedKey" in res  # COUNT pages at 1 MB too
