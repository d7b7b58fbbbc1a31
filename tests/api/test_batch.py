"""BatchWriteItem and BatchGetItem: writes and reads across tables, limits, refusals, capacity.

Items live in the session's shared tables (``hash_table``: key ``pk`` S; ``range_table``: ``pk`` S
+ ``sk`` N); every test uses its own random partition keys.  A refused batch must change nothing,
so the refusal tests put a valid request beside the invalid one and check it was not applied.

The last two tests are not black-box: they drive the router's batch code with a storage layer
that fails, to show that retriable failures become ``UnprocessedItems`` / ``UnprocessedKeys``.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .conftest import credentials_for
from .helpers import assert_error, raw_ddb, unique  # noqa: F401 (fixture)

pytestmark = pytest.mark.api


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def put(item: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": item}}


def delete(key: dict[str, Any]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": key}}


def get(ddb: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return item


def absent(ddb: Any, table: str, *keys: dict[str, Any]) -> bool:
    return all(get(ddb, table, k) is None for k in keys)


def by_pk(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["pk"]["S"]: i for i in items}


def capacity(resp: dict[str, Any]) -> dict[str, Any]:
    """ConsumedCapacity of a batch answer by table name (the order of the list is not fixed)."""
    return {c["TableName"]: c for c in resp["ConsumedCapacity"]}


# -- BatchWriteItem ---------------------------------------------------------------------------
def test_write_puts_and_deletes_across_tables(ddb: Any, hash_table: str, range_table: str) -> None:
    # Puts and deletes in two tables in one call; the answer is just an empty UnprocessedItems.
    old = {"pk": S(unique()), "v": N("1")}
    ddb.put_item(TableName=hash_table, Item=old)
    a = {"pk": S(unique()), "s": S("a"), "l": {"L": [N("1"), {"M": {"x": {"BOOL": True}}}]}}
    b = {"pk": S(unique()), "sk": N("-1.5"), "ss": {"SS": ["x", "y"]}}
    resp = ddb.batch_write_item(RequestItems={
        hash_table: [put(a), delete({"pk": old["pk"]})],
        range_table: [put(b)],
    })
    assert resp["UnprocessedItems"] == {}
    assert "ConsumedCapacity" not in resp
    assert get(ddb, hash_table, {"pk": a["pk"]}) == a
    got = get(ddb, range_table, {"pk": b["pk"], "sk": b["sk"]})
    assert got is not None and got["sk"] == b["sk"] and sorted(got["ss"]["SS"]) == ["x", "y"]
    assert absent(ddb, hash_table, {"pk": old["pk"]})


def test_write_25_requests_with_consumed_capacity(ddb: Any, hash_table: str, range_table: str) -> None:
    # 25 requests in total are allowed; ConsumedCapacity has one entry per table, 1 unit per KB
    # (rounded up) per item written.
    big = [{"pk": S(unique()), "blob": S("x" * 1500)} for _ in range(2)]  # 2 units each
    small = [{"pk": S(unique())} for _ in range(20)]
    ranged = [{"pk": S(unique()), "sk": N(str(i))} for i in range(3)]
    resp = ddb.batch_write_item(
        RequestItems={hash_table: [put(i) for i in big + small], range_table: [put(i) for i in ranged]},
        ReturnConsumedCapacity="TOTAL",
    )
    assert resp["UnprocessedItems"] == {}
    assert len(resp["ConsumedCapacity"]) == 2
    assert capacity(resp) == {hash_table: {"TableName": hash_table, "CapacityUnits": 24.0},
                              range_table: {"TableName": range_table, "CapacityUnits": 3.0}}
    resp = ddb.batch_write_item(RequestItems={hash_table: [delete({"pk": i["pk"]}) for i in big]},
                                ReturnConsumedCapacity="INDEXES", ReturnItemCollectionMetrics="SIZE")
    assert resp["UnprocessedItems"] == {}
    [cc] = resp["ConsumedCapacity"]
    assert cc["TableName"] == hash_table and cc["Table"]["CapacityUnits"] == cc["CapacityUnits"] > 0
    assert absent(ddb, hash_table, *({"pk": i["pk"]} for i in big))
    assert get(ddb, hash_table, {"pk": small[-1]["pk"]}) == small[-1]


def test_write_more_than_25_in_one_table_refused(ddb: Any, hash_table: str) -> None:
    items = [{"pk": S(unique())} for _ in range(26)]
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={hash_table: [put(i) for i in items]})
    assert_error(e, "ValidationException", "Member must have length less than or equal to 25")
    assert_error(e, "ValidationException", "at 'requestItems' failed to satisfy constraint")
    assert absent(ddb, hash_table, {"pk": items[0]["pk"]}, {"pk": items[-1]["pk"]})


def test_write_more_than_25_across_tables_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    a = [{"pk": S(unique())} for _ in range(13)]
    b = [{"pk": S(unique()), "sk": N("1")} for _ in range(13)]
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={hash_table: [put(i) for i in a], range_table: [put(i) for i in b]})
    assert_error(e, "ValidationException", "Too many items requested for the BatchWriteItem call")
    assert absent(ddb, hash_table, {"pk": a[0]["pk"]})
    assert absent(ddb, range_table, {"pk": b[0]["pk"], "sk": N("1")})


def test_write_duplicate_keys_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    # The same item twice in one table (put+delete, or put+put with numbers spelled differently).
    other = {"pk": S(unique())}
    item = {"pk": S(unique()), "v": N("1")}
    for requests in ([put(other), put(item), delete({"pk": item["pk"]})],
                     [delete({"pk": item["pk"]}), put(other), put(item)]):
        with pytest.raises(ClientError) as e:
            ddb.batch_write_item(RequestItems={hash_table: requests})
        assert_error(e, "ValidationException", "Provided list of item keys contains duplicates")
    r = {"pk": S(unique()), "sk": N("1.50")}
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={range_table: [put(r), put({"pk": r["pk"], "sk": N("1.5")})]})
    assert_error(e, "ValidationException", "Provided list of item keys contains duplicates")
    assert absent(ddb, hash_table, {"pk": other["pk"]}, {"pk": item["pk"]})
    assert absent(ddb, range_table, {"pk": r["pk"], "sk": N("1.5")})


def test_write_same_key_in_two_requests_for_different_keys_is_fine(ddb: Any, range_table: str) -> None:
    # Same partition key, different sort keys: two items, not duplicates.
    pk = S(unique())
    resp = ddb.batch_write_item(RequestItems={range_table: [put({"pk": pk, "sk": N("1")}),
                                                            put({"pk": pk, "sk": N("2")})]})
    assert resp["UnprocessedItems"] == {}
    assert len(ddb.query(TableName=range_table, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": pk}, ConsistentRead=True)["Items"]) == 2


def test_write_request_with_both_or_neither_refused(raw_ddb: Any, ddb: Any, hash_table: str) -> None:
    ok = {"pk": S(unique())}
    both = {"PutRequest": {"Item": {"pk": S(unique())}}, "DeleteRequest": {"Key": {"pk": S(unique())}}}
    for bad in (both, {}):
        with pytest.raises(ClientError) as e:
            raw_ddb.batch_write_item(RequestItems={hash_table: [put(ok), bad]})
        assert_error(e, "ValidationException", "must contain exactly one of the supported datatypes")
    assert absent(ddb, hash_table, {"pk": ok["pk"]}, {"pk": both["PutRequest"]["Item"]["pk"]})


def test_write_unknown_table_refused(ddb: Any, hash_table: str) -> None:
    ok = {"pk": S(unique())}
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={hash_table: [put(ok)], unique("test_missing_"): [put({"pk": S("x")})]})
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
    assert absent(ddb, hash_table, {"pk": ok["pk"]})


def test_write_key_not_matching_schema_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    # Each request is checked against its table's key schema like PutItem/DeleteItem would be;
    # one bad request refuses the whole batch.
    ok = {"pk": S(unique())}
    bad_requests = [
        (hash_table, put({"other": S("x")})),  # missing key attribute
        (hash_table, put({"pk": N("1")})),  # wrong key type
        (range_table, put({"pk": S(unique())})),  # missing range key
        (hash_table, delete({"pk": S(unique()), "extra": S("x")})),  # extra key attribute
        (range_table, delete({"pk": S(unique())})),  # incomplete key
    ]
    for table, bad in bad_requests:
        requests = {hash_table: [put(ok)]}
        requests.setdefault(table, []).append(bad)
        with pytest.raises(ClientError) as e:
            ddb.batch_write_item(RequestItems=requests)
        assert_error(e, "ValidationException", "The provided key element does not match the schema")
    assert absent(ddb, hash_table, {"pk": ok["pk"]})


def test_write_invalid_values_refused(ddb: Any, hash_table: str) -> None:
    ok = {"pk": S(unique())}
    cases = [
        (put({"pk": S(unique()), "big": S("x" * (400 * 1024))}), "Item size has exceeded the maximum allowed size"),
        (put({"pk": S("")}), "cannot contain an empty string value"),
        (put({"pk": S(unique()), "n": N("not a number")}), "A value provided cannot be converted into a number"),
        (delete({"pk": S("")}), "cannot contain an empty string value"),
    ]
    for bad, phrase in cases:
        with pytest.raises(ClientError) as e:
            ddb.batch_write_item(RequestItems={hash_table: [put(ok), bad]})
        assert_error(e, "ValidationException", phrase)
    assert absent(ddb, hash_table, {"pk": ok["pk"]})


def test_write_empty_request_items_refused(raw_ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.batch_write_item(RequestItems={})
    assert_error(e, "ValidationException", "Member must have length greater than or equal to 1")
    with pytest.raises(ClientError) as e:
        raw_ddb.batch_write_item(RequestItems={hash_table: []})
    assert_error(e, "ValidationException", "Member must have length greater than or equal to 1")
    with pytest.raises(ClientError) as e:
        raw_ddb.batch_write_item(RequestItems={hash_table: [put({"pk": S(unique())})]},
                                 ReturnConsumedCapacity="SOME")
    assert_error(e, "ValidationException", "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]")


def test_batch_writer_end_to_end(endpoint: str, ddb: Any, hash_table: str) -> None:
    # boto3's high-level batch writer: buffers, sends 25 at a time, resends UnprocessedItems.
    creds = credentials_for(endpoint)
    resource = boto3.resource(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1" if creds else None,
        aws_access_key_id=creds[0] if creds else None, aws_secret_access_key=creds[1] if creds else None,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )
    table = resource.Table(hash_table)
    prefix = unique("bw")
    with table.batch_writer() as writer:
        for i in range(60):
            writer.put_item(Item={"pk": f"{prefix}-{i}", "n": i, "tags": {"a", "b"}})
    with table.batch_writer(overwrite_by_pkeys=["pk"]) as writer:
        for i in range(0, 60, 2):
            writer.delete_item(Key={"pk": f"{prefix}-{i}"})
        writer.put_item(Item={"pk": f"{prefix}-1", "n": 100})
        writer.put_item(Item={"pk": f"{prefix}-1", "n": 101})  # replaces the one before in the buffer
    found: dict[str, Any] = {}
    keys = [{"pk": f"{prefix}-{i}"} for i in range(60)]
    for start in range(0, 60, 30):
        resp = resource.batch_get_item(RequestItems={hash_table: {"Keys": keys[start:start + 30],
                                                                  "ConsistentRead": True}})
        assert resp["UnprocessedKeys"] == {}
        found.update({i["pk"]: i for i in resp["Responses"][hash_table]})
    assert sorted(found) == sorted(f"{prefix}-{i}" for i in range(1, 60, 2))
    assert found[f"{prefix}-1"]["n"] == 101
    assert found[f"{prefix}-3"] == {"pk": f"{prefix}-3", "n": 3, "tags": {"a", "b"}}


# -- BatchGetItem -----------------------------------------------------------------------------
def test_get_across_tables_missing_items_omitted(ddb: Any, hash_table: str, range_table: str) -> None:
    a = {"pk": S(unique()), "v": S("a")}
    b = {"pk": S(unique()), "sk": N("7"), "v": S("b")}
    ddb.batch_write_item(RequestItems={hash_table: [put(a)], range_table: [put(b)]})
    resp = ddb.batch_get_item(RequestItems={
        hash_table: {"Keys": [{"pk": a["pk"]}, {"pk": S(unique())}], "ConsistentRead": True},
        range_table: {"Keys": [{"pk": b["pk"], "sk": N("7")}, {"pk": b["pk"], "sk": N("8")}], "ConsistentRead": True},
    })
    assert resp["Responses"] == {hash_table: [a], range_table: [b]}
    assert resp["UnprocessedKeys"] == {}
    assert "ConsumedCapacity" not in resp
    resp = ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())}]}})
    assert resp["Responses"] == {hash_table: []}


def test_get_eventually_consistent_and_projection(ddb: Any, hash_table: str) -> None:
    items: list[dict[str, Any]] = [
        {"pk": S(unique()), "name": S(f"n{i}"), "m": {"M": {"x": N(str(i)), "y": S("y")}}, "z": S("z")}
        for i in range(5)]
    ddb.batch_write_item(RequestItems={hash_table: [put(i) for i in items]})

    def read() -> list[dict[str, Any]]:
        resp = ddb.batch_get_item(RequestItems={hash_table: {
            "Keys": [{"pk": i["pk"]} for i in items], "ProjectionExpression": "pk, #n, m.x",
            "ExpressionAttributeNames": {"#n": "name"}}})
        assert resp["UnprocessedKeys"] == {}
        got: list[dict[str, Any]] = resp["Responses"][hash_table]
        return got

    got = read()
    for _ in range(100):  # eventually consistent: a replica may still be catching up
        if len(got) == len(items):
            break
        got = read()
    assert by_pk(got) == {i["pk"]["S"]: {"pk": i["pk"], "name": i["name"], "m": {"M": {"x": i["m"]["M"]["x"]}}}
                          for i in items}


def test_get_consumed_capacity(ddb: Any, hash_table: str, range_table: str) -> None:
    # One entry per table; each key costs its item's size in 4 KB units (at least 1, missing
    # items too), halved for eventually consistent reads.
    large = {"pk": S(unique()), "b": S("b" * 5000)}  # 2 units
    small = {"pk": S(unique())}
    ddb.batch_write_item(RequestItems={hash_table: [put(large), put(small)]})
    keys = [{"pk": large["pk"]}, {"pk": small["pk"]}, {"pk": S(unique())}]
    resp = ddb.batch_get_item(RequestItems={
        hash_table: {"Keys": keys, "ConsistentRead": True},
        range_table: {"Keys": [{"pk": S(unique()), "sk": N("1")}], "ConsistentRead": True},
    }, ReturnConsumedCapacity="TOTAL")
    assert len(resp["ConsumedCapacity"]) == 2
    assert capacity(resp) == {hash_table: {"TableName": hash_table, "CapacityUnits": 4.0},
                              range_table: {"TableName": range_table, "CapacityUnits": 1.0}}
    resp = ddb.batch_get_item(RequestItems={hash_table: {"Keys": keys, "ConsistentRead": True}},
                              ReturnConsumedCapacity="INDEXES")
    assert resp["ConsumedCapacity"] == [{"TableName": hash_table, "CapacityUnits": 4.0,
                                         "Table": {"CapacityUnits": 4.0}}]
    resp = ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())}]}},
                              ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"] == [{"TableName": hash_table, "CapacityUnits": 0.5}]


def test_get_too_many_keys_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={
            hash_table: {"Keys": [{"pk": S(unique())} for _ in range(60)]},
            range_table: {"Keys": [{"pk": S(unique()), "sk": N("1")} for _ in range(41)]},
        })
    assert_error(e, "ValidationException", "Too many items requested for the BatchGetItem call")
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())} for _ in range(101)]}})
    assert_error(e, "ValidationException", "Member must have length less than or equal to 100")
    resp = ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())} for _ in range(100)]}})
    assert resp == resp | {"Responses": {hash_table: []}, "UnprocessedKeys": {}}


def test_get_duplicate_keys_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    k = {"pk": S(unique())}
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={hash_table: {"Keys": [k, {"pk": S(unique())}, k]}})
    assert_error(e, "ValidationException", "Provided list of item keys contains duplicates")
    with pytest.raises(ClientError) as e:  # the same number spelled two ways is the same key
        ddb.batch_get_item(RequestItems={range_table: {"Keys": [{"pk": k["pk"], "sk": N("10")},
                                                                {"pk": k["pk"], "sk": N("1e1")}]}})
    assert_error(e, "ValidationException", "Provided list of item keys contains duplicates")


def test_get_key_not_matching_schema_refused(ddb: Any, hash_table: str, range_table: str) -> None:
    for table, key in [(hash_table, {"pk": N("1")}), (hash_table, {"other": S("x")}),
                       (hash_table, {"pk": S("x"), "extra": S("y")}), (range_table, {"pk": S("x")})]:
        with pytest.raises(ClientError) as e:
            ddb.batch_get_item(RequestItems={table: {"Keys": [key]}})
        assert_error(e, "ValidationException", "The provided key element does not match the schema")


def test_get_unknown_table_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())}]},
                                         unique("test_missing_"): {"Keys": [{"pk": S("x")}]}})
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_get_invalid_projection_refused(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": S(unique())}], "ProjectionExpression": "#a",
                                                      "ExpressionAttributeNames": {"#a": "a", "#b": "b"}}})
    assert_error(e, "ValidationException", "unused in expressions")


def test_get_response_limit_returns_unprocessed_keys(ddb: Any, hash_table: str) -> None:
    # 42 items of ~400 KB are more than the 16 MB an answer may hold: what does not fit comes
    # back in UnprocessedKeys with the table's read parameters, and reading those gets the rest.
    items = [{"pk": S(unique()), "big": S("x" * 399_900)} for _ in range(42)]
    for start in range(0, 42, 21):
        # 8 MB at once is more than a partition's 1,000 write units a second: what was throttled
        # comes back unprocessed and is sent again, as an SDK's batch writer does
        request = {hash_table: [put(i) for i in items[start:start + 21]]}
        for _ in range(60):
            try:
                request = ddb.batch_write_item(RequestItems=request)["UnprocessedItems"]
            except ddb.exceptions.ProvisionedThroughputExceededException:
                pass  # every item was throttled: send them all again
            if not request:
                break
            time.sleep(0.5)
        assert request == {}
    params = {"ProjectionExpression": "#k, big", "ExpressionAttributeNames": {"#k": "pk"}, "ConsistentRead": True}
    resp = ddb.batch_get_item(RequestItems={hash_table: {"Keys": [{"pk": i["pk"]} for i in items]} | params})
    got = by_pk(resp["Responses"][hash_table])
    assert len(got) == 41
    rest = resp["UnprocessedKeys"][hash_table]
    assert len(rest["Keys"]) == 1 and {k: v for k, v in rest.items() if k != "Keys"} == params
    again = ddb.batch_get_item(RequestItems={hash_table: rest})
    assert again["UnprocessedKeys"] == {}
    got.update(by_pk(again["Responses"][hash_table]))
    assert got == by_pk(items)
