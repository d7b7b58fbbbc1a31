"""DynamoDB's legacy parameters: Expected, ConditionalOperator, AttributeUpdates, AttributesToGet,
KeyConditions, QueryFilter and ScanFilter, their behaviour and their refusals.

Items live in the session's shared tables (``hash_table``: key ``pk`` S; ``range_table``: ``pk`` S
+ ``sk`` N); every test writes under its own random partition key.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import all_items, assert_error, unique

pytestmark = pytest.mark.api

INVALID = "One or more parameter values were invalid: "


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def put_new(ddb: Any, table: str, **attrs: Any) -> dict[str, Any]:
    k = {"pk": S(unique())}
    ddb.put_item(TableName=table, Item=k | attrs)
    return k


def get(ddb: Any, table: str, k: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=k, ConsistentRead=True).get("Item")
    return item


def refused(call: Any, phrase: str = "", **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        call(**kw)
    assert_error(e, "ValidationException", phrase)
    return str(e.value.response["Error"]["Message"])


def conditional_failed(call: Any, **kw: Any) -> None:
    with pytest.raises(ClientError) as e:
        call(**kw)
    assert_error(e, "ConditionalCheckFailedException")


@pytest.fixture(scope="module")
def songs(ddb: Any, range_table: str) -> tuple[str, str]:
    """(table, pk) of a partition with sk 1..6."""
    pk = unique()
    for i in range(1, 7):
        ddb.put_item(TableName=range_table, Item={
            "pk": S(pk), "sk": N(str(i)), "title": S(f"song{i}"), "plays": N(str(i * 10)),
            "tags": {"SS": ["even" if i % 2 == 0 else "odd"]}, **({"hit": {"BOOL": True}} if i > 4 else {}),
        })
    return range_table, pk


# -- Expected on PutItem / DeleteItem / UpdateItem ----------------------------------------------
def test_put_expected_exists_false(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    ddb.put_item(TableName=hash_table, Item=k | {"v": N("1")}, Expected={"pk": {"Exists": False}})
    conditional_failed(ddb.put_item, TableName=hash_table, Item=k | {"v": N("2")}, Expected={"pk": {"Exists": False}})
    assert get(ddb, hash_table, k) == k | {"v": N("1")}


def test_put_expected_value(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, v=N("1"))
    ddb.put_item(TableName=hash_table, Item=k | {"v": N("2")}, Expected={"v": {"Value": N("1")}})
    ddb.put_item(TableName=hash_table, Item=k | {"v": N("3")}, Expected={"v": {"Value": N("2"), "Exists": True}})
    conditional_failed(ddb.put_item, TableName=hash_table, Item=k | {"v": N("4")}, Expected={"v": {"Value": N("2")}})
    assert get(ddb, hash_table, k) == k | {"v": N("3")}


def test_delete_expected_comparison_operators(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, v=N("5"), s=S("hello"))
    conditional_failed(ddb.delete_item, TableName=hash_table, Key=k,
                       Expected={"v": {"ComparisonOperator": "GT", "AttributeValueList": [N("5")]}})
    conditional_failed(ddb.delete_item, TableName=hash_table, Key=k,
                       Expected={"s": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [S("ell")]}})
    ddb.delete_item(TableName=hash_table, Key=k, Expected={
        "v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N("1"), N("5")]},
        "s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("he")]},
        "missing": {"ComparisonOperator": "NULL"},
    })
    assert get(ddb, hash_table, k) is None


@pytest.mark.parametrize(("op", "args", "ok"), [
    ("EQ", [N("5")], True), ("NE", [N("5")], False), ("LE", [N("5")], True), ("LT", [N("5")], False),
    ("GE", [N("6")], False), ("GT", [N("4")], True), ("NOT_NULL", [], True), ("NULL", [], False),
    ("IN", [N("1"), N("5")], True), ("IN", [N("1"), N("2")], False), ("CONTAINS", [N("5")], False),
])
def test_expected_operator_on_number(ddb: Any, hash_table: str, op: str, args: list[Any], ok: bool) -> None:
    k = put_new(ddb, hash_table, v=N("5"))
    call = dict(TableName=hash_table, Key=k, AttributeUpdates={"done": {"Value": {"BOOL": True}}},
                Expected={"v": {"ComparisonOperator": op, "AttributeValueList": args}})
    if ok:
        ddb.update_item(**call)
        assert get(ddb, hash_table, k) == k | {"v": N("5"), "done": {"BOOL": True}}
    else:
        conditional_failed(ddb.update_item, **call)


def test_expected_conditional_operator(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, a=N("1"), b=N("2"))
    both = {"a": {"Value": N("1")}, "b": {"Value": N("9")}}
    conditional_failed(ddb.put_item, TableName=hash_table, Item=k, Expected=both)
    conditional_failed(ddb.put_item, TableName=hash_table, Item=k, Expected=both, ConditionalOperator="AND")
    ddb.put_item(TableName=hash_table, Item=k | {"c": N("3")}, Expected=both, ConditionalOperator="OR")
    assert get(ddb, hash_table, k) == k | {"c": N("3")}


def test_return_values_on_legacy_condition(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, v=N("1"))
    old = ddb.put_item(TableName=hash_table, Item=k | {"v": N("2")}, Expected={"v": {"Value": N("1")}},
                       ReturnValues="ALL_OLD")
    assert old["Attributes"] == k | {"v": N("1")}


# -- AttributeUpdates ---------------------------------------------------------------------------
def test_attribute_updates(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, n=N("5"), gone=S("x"), ss={"SS": ["a", "b"]}, lst={"L": [N("1")]})
    res = ddb.update_item(TableName=hash_table, Key=k, ReturnValues="ALL_NEW", AttributeUpdates={
        "put": {"Value": S("v")},
        "put2": {"Action": "PUT", "Value": {"M": {"x": N("1")}}},
        "gone": {"Action": "DELETE"},
        "n": {"Action": "ADD", "Value": N("-2")},
        "fresh": {"Action": "ADD", "Value": N("3")},
        "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
        "lst": {"Action": "ADD", "Value": {"L": [N("2")]}},
        "newset": {"Action": "ADD", "Value": {"NS": ["7"]}},
    })
    want = k | {"n": N("3"), "ss": {"SS": ["b"]}, "lst": {"L": [N("1"), N("2")]}, "put": S("v"),
                "put2": {"M": {"x": N("1")}}, "fresh": N("3"), "newset": {"NS": ["7"]}}
    assert res["Attributes"] == want
    assert get(ddb, hash_table, k) == want


def test_attribute_updates_create_item(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    ddb.update_item(TableName=hash_table, Key=k, AttributeUpdates={
        "count": {"Action": "ADD", "Value": N("1")}, "names": {"Action": "ADD", "Value": {"SS": ["x"]}},
        "nothing": {"Action": "DELETE"}})
    assert get(ddb, hash_table, k) == k | {"count": N("1"), "names": {"SS": ["x"]}}


def test_attribute_updates_with_expected(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, version=N("1"))
    update = {"version": {"Action": "ADD", "Value": N("1")}}
    ddb.update_item(TableName=hash_table, Key=k, AttributeUpdates=update, Expected={"version": {"Value": N("1")}})
    conditional_failed(ddb.update_item, TableName=hash_table, Key=k, AttributeUpdates=update,
                       Expected={"version": {"Value": N("1")}})
    assert get(ddb, hash_table, k) == k | {"version": N("2")}


def test_attribute_updates_errors(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    upd = ddb.update_item
    refused(upd, INVALID + "Only DELETE action is allowed when no attribute value is specified",
            TableName=hash_table, Key=k, AttributeUpdates={"a": {"Action": "PUT"}})
    refused(upd, INVALID + "DELETE action with value is not supported for the type S",
            TableName=hash_table, Key=k, AttributeUpdates={"a": {"Action": "DELETE", "Value": S("x")}})
    refused(upd, "ADD action is not supported for the type S",
            TableName=hash_table, Key=k, AttributeUpdates={"a": {"Action": "ADD", "Value": S("x")}})
    refused(upd, "Cannot update attribute pk. This attribute is part of the key",
            TableName=hash_table, Key=k, AttributeUpdates={"pk": {"Value": S("y")}})
    refused(upd, "Can not use both expression and non-expression parameters in the same request: "
                 "Non-expression parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}",
            TableName=hash_table, Key=k, AttributeUpdates={"a": {"Value": S("x")}}, UpdateExpression="REMOVE b")
    refused(upd, "Non-expression parameters: {Expected} Expression parameters: {UpdateExpression}",
            TableName=hash_table, Key=k, Expected={"a": {"Exists": False}}, UpdateExpression="REMOVE b")
    assert get(ddb, hash_table, k) is None


# -- Expected errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(("expected", "message"), [
    ({"a": {"Exists": True}}, INVALID + "Value must be provided when Exists is true for Attribute: a"),
    ({"a": {"Exists": False, "Value": N("1")}}, INVALID + "Value cannot be used when Exists is false for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": []}},
     INVALID + "Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [N("1"), N("2")]}},
     INVALID + "Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N("1")]}},
     INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
    ({"a": {"ComparisonOperator": "NOT_NULL", "AttributeValueList": [N("1")]}},
     INVALID + "Invalid number of argument(s) for the NOT_NULL ComparisonOperator"),
    ({"a": {"ComparisonOperator": "EQ", "Exists": True, "Value": N("1")}},
     INVALID + "Exists and ComparisonOperator cannot be used together for Attribute: a"),
])
def test_expected_errors(ddb: Any, hash_table: str, expected: dict[str, Any], message: str) -> None:
    k = {"pk": S(unique())}
    assert refused(ddb.put_item, TableName=hash_table, Item=k, Expected=expected) == message
    assert get(ddb, hash_table, k) is None


def test_conditional_operator_errors(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    refused(ddb.put_item, "ConditionalOperator", TableName=hash_table, Item=k, ConditionalOperator="OR")
    refused(ddb.put_item, "ConditionalOperator", TableName=hash_table, Item=k, ConditionalOperator="OR",
            Expected={"a": {"Exists": False}})
    refused(ddb.delete_item, "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}",
            TableName=hash_table, Key=k, Expected={"a": {"Exists": False}}, ConditionExpression="attribute_exists(b)")
    assert get(ddb, hash_table, k) is None


def test_expression_attribute_names_need_expressions(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    assert refused(ddb.put_item, TableName=hash_table, Item=k, Expected={"a": {"Exists": False}},
                   ExpressionAttributeNames={"#a": "a"}) == (
        "ExpressionAttributeNames can only be specified when using expressions")
    refused(ddb.put_item, "ExpressionAttributeValues can only be specified when using expressions",
            TableName=hash_table, Item=k, Expected={"a": {"Exists": False}}, ExpressionAttributeValues={":a": N("1")})


# -- AttributesToGet ------------------------------------------------------------------------------
def test_get_item_attributes_to_get(ddb: Any, hash_table: str) -> None:
    k = put_new(ddb, hash_table, a=N("1"), b=N("2"), **{"x.y": S("dotted"), "select": S("reserved word")})
    got = ddb.get_item(TableName=hash_table, Key=k, AttributesToGet=["a", "x.y", "select", "missing"],
                       ConsistentRead=True)
    assert got["Item"] == {"a": N("1"), "x.y": S("dotted"), "select": S("reserved word")}


def test_attributes_to_get_errors(ddb: Any, hash_table: str) -> None:
    k = {"pk": S(unique())}
    assert refused(ddb.get_item, TableName=hash_table, Key=k, AttributesToGet=["a"], ProjectionExpression="a") == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}")
    refused(ddb.get_item, "Duplicate value in attribute name: a", TableName=hash_table, Key=k,
            AttributesToGet=["a", "a"])
    refused(ddb.scan, "Cannot specify the AttributesToGet when choosing to get", TableName=hash_table,
            AttributesToGet=["a"], Select="ALL_ATTRIBUTES")
    assert refused(ddb.get_item, TableName=hash_table, Key=k, AttributesToGet=["a"],
                   ExpressionAttributeNames={"#a": "a"}) == (
        "ExpressionAttributeNames can only be specified when using expressions")


# -- KeyConditions, QueryFilter, ScanFilter -------------------------------------------------------
def sks(items: list[dict[str, Any]]) -> list[int]:
    return [int(i["sk"]["N"]) for i in items]


def key_eq(pk: str) -> dict[str, Any]:
    return {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(pk)]}}


@pytest.mark.parametrize(("op", "args", "want"), [
    (None, [], [1, 2, 3, 4, 5, 6]),
    ("EQ", [N("3")], [3]),
    ("LT", [N("3")], [1, 2]),
    ("LE", [N("3")], [1, 2, 3]),
    ("GT", [N("4")], [5, 6]),
    ("GE", [N("4")], [4, 5, 6]),
    ("BETWEEN", [N("2"), N("4")], [2, 3, 4]),
])
def test_query_key_conditions(ddb: Any, songs: tuple[str, str], op: str | None, args: list[Any],
                              want: list[int]) -> None:
    table, pk = songs
    conds = key_eq(pk) | ({"sk": {"ComparisonOperator": op, "AttributeValueList": args}} if op else {})
    assert sks(all_items(ddb.query, TableName=table, KeyConditions=conds)) == want
    assert sks(all_items(ddb.query, TableName=table, KeyConditions=conds, ScanIndexForward=False)) == want[::-1]


def test_query_key_conditions_begins_with(ddb: Any, create_table: Any) -> None:
    table = create_table(range=("sk", "S"))
    for sk in ("apple", "apricot", "banana"):
        ddb.put_item(TableName=table, Item={"pk": S("p"), "sk": S(sk)})
    items = all_items(ddb.query, TableName=table, KeyConditions=key_eq("p") | {
        "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("ap")]}})
    assert [i["sk"]["S"] for i in items] == ["apple", "apricot"]


def test_query_filter_and_attributes_to_get(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    res = ddb.query(TableName=table, KeyConditions=key_eq(pk), AttributesToGet=["sk", "plays"], QueryFilter={
        "plays": {"ComparisonOperator": "GE", "AttributeValueList": [N("30")]},
        "tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [S("even")]}})
    assert res["Items"] == [{"sk": N("4"), "plays": N("40")}, {"sk": N("6"), "plays": N("60")}]
    assert res["Count"] == 2 and res["ScannedCount"] == 6
    res = ddb.query(TableName=table, KeyConditions=key_eq(pk), ConditionalOperator="OR", QueryFilter={
        "plays": {"ComparisonOperator": "LT", "AttributeValueList": [N("20")]},
        "hit": {"ComparisonOperator": "NOT_NULL"}}, Select="COUNT")
    assert res["Count"] == 3 and "Items" not in res


def test_key_conditions_with_filter_expression(ddb: Any, songs: tuple[str, str]) -> None:
    # DynamoDB accepts KeyConditions together with FilterExpression and ProjectionExpression
    table, pk = songs
    res = ddb.query(TableName=table, KeyConditions=key_eq(pk), FilterExpression="plays > :p",
                    ProjectionExpression="sk", ExpressionAttributeValues={":p": N("40")})
    assert res["Items"] == [{"sk": N("5")}, {"sk": N("6")}]


def test_scan_filter(ddb: Any, create_table: Any) -> None:
    table = create_table()
    for i in range(8):
        ddb.put_item(TableName=table, Item={"pk": S(f"k{i}"), "n": N(str(i)),
                                            **({"odd": {"BOOL": True}} if i % 2 else {})})
    items = all_items(ddb.scan, TableName=table, ScanFilter={
        "n": {"ComparisonOperator": "IN", "AttributeValueList": [N("1"), N("2"), N("3")]},
        "odd": {"ComparisonOperator": "NULL"}}, ConsistentRead=True)
    assert [i["pk"]["S"] for i in items] == ["k2"]
    items = all_items(ddb.scan, TableName=table, AttributesToGet=["n"], ConditionalOperator="OR", ScanFilter={
        "n": {"ComparisonOperator": "LT", "AttributeValueList": [N("1")]},
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("k7")]}}, ConsistentRead=True)
    assert sorted(int(i["n"]["N"]) for i in items) == [0, 7]
    assert all(set(i) == {"n"} for i in items)


def test_query_and_scan_errors(ddb: Any, songs: tuple[str, str]) -> None:
    table, pk = songs
    assert refused(ddb.query, TableName=table, KeyConditionExpression="pk = :p",
                   ExpressionAttributeValues={":p": S(pk)},
                   QueryFilter={"plays": {"ComparisonOperator": "NOT_NULL"}}) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {QueryFilter} Expression parameters: {KeyConditionExpression}")
    refused(ddb.query, "Non-expression parameters: {KeyConditions} Expression parameters: {KeyConditionExpression}",
            TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S(pk)},
            KeyConditions=key_eq(pk))
    refused(ddb.scan, "Non-expression parameters: {ScanFilter} Expression parameters: {FilterExpression}",
            TableName=table, FilterExpression="attribute_exists(plays)",
            ScanFilter={"plays": {"ComparisonOperator": "NOT_NULL"}})
    refused(ddb.query, "Attempted conditional constraint is not an indexable operation", TableName=table,
            KeyConditions=key_eq(pk) | {"sk": {"ComparisonOperator": "NE", "AttributeValueList": [N("1")]}})
    refused(ddb.query, "Query condition missed key schema element: pk", TableName=table,
            KeyConditions={"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [N("1")]}})
    refused(ddb.query, INVALID + "Invalid number of argument(s) for the BETWEEN ComparisonOperator", TableName=table,
            KeyConditions=key_eq(pk) | {"sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N("1")]}})
    refused(ddb.query, "Condition parameter type does not match schema type", TableName=table,
            KeyConditions=key_eq(pk) | {"sk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("1")]}})
    refused(ddb.query, "ConditionalOperator", TableName=table, KeyConditions=key_eq(pk), ConditionalOperator="OR")
    refused(ddb.scan, "ConditionalOperator", TableName=table, ConditionalOperator="AND",
            ScanFilter={"plays": {"ComparisonOperator": "NOT_NULL"}})
    refused(ddb.scan, INVALID + "Invalid number of argument(s) for the GT ComparisonOperator", TableName=table,
            ScanFilter={"plays": {"ComparisonOperator": "GT", "AttributeValueList": []}})
    refused(ddb.scan, "ExpressionAttributeNames can only be specified when using expressions", TableName=table,
            ScanFilter={"plays": {"ComparisonOperator": "NOT_NULL"}}, ExpressionAttributeNames={"#p": "plays"})
