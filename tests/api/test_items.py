"""PutItem, GetItem, DeleteItem, UpdateItem: values, expressions, conditions and refusals.

Items live in the session's shared tables (``hash_table``: key ``pk`` S; ``range_table``: ``pk`` S
+ ``sk`` N); every test writes under its own random partition key.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import N, S, assert_error, eventually, get, key, put_new, sets_sorted, unique, unique_table_name

pytestmark = pytest.mark.api

NUM38 = "12345678901234567890123456789012345678"




# -- PutItem / GetItem ----------------------------------------------------------------------
def test_round_trip_every_type(ddb: Any, hash_table: str) -> None:
    # Every attribute type comes back exactly as written (sets in any order).
    k, item = put_new(
        ddb, hash_table,
        s=S("héllo ✓ wörld"), n_neg=N("-17"), n_dec=N("3.14159"), n_38=N(NUM38), n_neg38=N("-0." + NUM38),
        b={"B": b"\x00\x01\xfe\xff"}, t={"BOOL": True}, f={"BOOL": False}, nul={"NULL": True},
        m={"M": {"x": S("y"), "inner": {"M": {"z": N("1")}}, "empty": {"M": {}}}},
        l={"L": [S("a"), N("2"), {"L": []}, {"M": {"q": {"BOOL": False}}}]},
        ss={"SS": ["b", "a", "c"]}, ns={"NS": ["1", "-2.5", "300"]}, bs={"BS": [b"\x01", b"\x00\xff"]},
    )
    assert sets_sorted(get(ddb, hash_table, k)) == sets_sorted(item)


def test_numbers_normalized(ddb: Any, hash_table: str) -> None:
    # DynamoDB stores numbers, not strings: leading and trailing zeros are not kept.
    k, _ = put_new(ddb, hash_table, a=N("1.50"), b=N("0100"), c=N("-007.250"), d=N("0.0"),
                   ns={"NS": ["1.50", "0100"]})
    got = get(ddb, hash_table, k)
    assert got is not None
    assert (got["a"], got["b"], got["c"], got["d"]) == (N("1.5"), N("100"), N("-7.25"), N("0"))
    assert sorted(got["ns"]["NS"]) == ["1.5", "100"]


def test_get_missing_item(ddb: Any, hash_table: str) -> None:
    # A key with no item answers without an "Item" field (not an error).
    resp = ddb.get_item(TableName=hash_table, Key=key(unique()), ConsistentRead=True)
    assert "Item" not in resp


def test_get_consistent_read(ddb: Any, hash_table: str) -> None:
    # A strongly consistent read sees the write that was just acknowledged.
    k, item = put_new(ddb, hash_table, v=N("1"))
    assert ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=True)["Item"] == item


def test_get_eventually_consistent_read(ddb: Any, hash_table: str) -> None:
    # An eventually consistent read (the default) sees the write soon.
    k, item = put_new(ddb, hash_table, v=N("2"))
    got = eventually(lambda: ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=False).get("Item"))
    assert got == item
    assert ddb.get_item(TableName=hash_table, Key=k)["Item"] == item


def test_projection_expression(ddb: Any, hash_table: str) -> None:
    # ProjectionExpression returns only the named paths: nested map keys, list elements, and a
    # reserved word ("name") through ExpressionAttributeNames.
    k, _ = put_new(ddb, hash_table, name=S("n"), other=S("o"),
                   a={"M": {"b": N("1"), "c": S("x")}}, l={"L": [S("l0"), S("l1"), S("l2")]})
    got = ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=True,
                       ProjectionExpression="a.b, #n, l[1]", ExpressionAttributeNames={"#n": "name"})["Item"]
    assert got == {"a": {"M": {"b": N("1")}}, "name": S("n"), "l": {"L": [S("l1")]}}


def test_put_overwrites_whole_item(ddb: Any, hash_table: str) -> None:
    # PutItem replaces the item: attributes of the old item that the new one lacks are gone.
    k, _ = put_new(ddb, hash_table, a=S("old"), b=S("old"))
    ddb.put_item(TableName=hash_table, Item=k | {"a": S("new")})
    assert get(ddb, hash_table, k) == k | {"a": S("new")}


def test_put_return_all_old(ddb: Any, hash_table: str) -> None:
    # ReturnValues=ALL_OLD on PutItem: nothing for a new item, the replaced item otherwise.
    k = key(unique())
    first = ddb.put_item(TableName=hash_table, Item=k | {"v": N("1")}, ReturnValues="ALL_OLD")
    assert "Attributes" not in first
    second = ddb.put_item(TableName=hash_table, Item=k | {"v": N("2")}, ReturnValues="ALL_OLD")
    assert second["Attributes"] == k | {"v": N("1")}


def test_delete_return_all_old(ddb: Any, hash_table: str) -> None:
    # DeleteItem with ReturnValues=ALL_OLD returns the deleted item, which is then gone.
    k, item = put_new(ddb, hash_table, v=S("x"))
    resp = ddb.delete_item(TableName=hash_table, Key=k, ReturnValues="ALL_OLD")
    assert resp["Attributes"] == item
    assert get(ddb, hash_table, k) is None


def test_delete_missing_item(ddb: Any, hash_table: str) -> None:
    # Deleting an item that does not exist succeeds and returns nothing.
    resp = ddb.delete_item(TableName=hash_table, Key=key(unique()), ReturnValues="ALL_OLD")
    assert "Attributes" not in resp


def test_range_table_round_trip(ddb: Any, range_table: str) -> None:
    # Items of one partition key are told apart by their sort key.
    pk = unique()
    for sk in ("1", "-1", "1.5"):
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": N(sk), "v": S(sk)})
    for sk in ("1", "-1", "1.5"):
        assert get(ddb, range_table, {"pk": S(pk), "sk": N(sk)}) == {"pk": S(pk), "sk": N(sk), "v": S(sk)}
    assert get(ddb, range_table, {"pk": S(pk), "sk": N("2")}) is None


# -- UpdateItem -----------------------------------------------------------------------------
def test_update_set_new_and_existing(ddb: Any, hash_table: str) -> None:
    # SET replaces existing attributes and adds new ones; others are untouched.
    k, _ = put_new(ddb, hash_table, a=N("1"), b=S("keep"))
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a, c = :c",
                    ExpressionAttributeValues={":a": N("2"), ":c": S("new")})
    assert get(ddb, hash_table, k) == k | {"a": N("2"), "b": S("keep"), "c": S("new")}


def test_update_arithmetic(ddb: Any, hash_table: str) -> None:
    # SET with + and - computes on numbers exactly (decimal, not float).
    k, _ = put_new(ddb, hash_table, up=N("10"), down=N("0.3"))
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET up = up + :x, down = down - :y",
                    ExpressionAttributeValues={":x": N("0.1"), ":y": N("0.1")})
    got = get(ddb, hash_table, k)
    assert got is not None
    assert (got["up"], got["down"]) == (N("10.1"), N("0.2"))


def test_update_if_not_exists(ddb: Any, hash_table: str) -> None:
    # if_not_exists keeps an existing value and fills in a missing one.
    k, _ = put_new(ddb, hash_table, a=N("1"))
    ddb.update_item(TableName=hash_table, Key=k,
                    UpdateExpression="SET a = if_not_exists(a, :d), b = if_not_exists(b, :d)",
                    ExpressionAttributeValues={":d": N("0")})
    assert get(ddb, hash_table, k) == k | {"a": N("1"), "b": N("0")}


def test_update_list_append(ddb: Any, hash_table: str) -> None:
    # list_append adds at the end or, with the operands swapped, at the front.
    k, _ = put_new(ddb, hash_table, tail_list={"L": [N("1")]}, head_list={"L": [N("1")]})
    ddb.update_item(TableName=hash_table, Key=k,
                    UpdateExpression="SET tail_list = list_append(tail_list, :more), "
                                     "head_list = list_append(:more, head_list)",
                    ExpressionAttributeValues={":more": {"L": [N("2"), N("3")]}})
    got = get(ddb, hash_table, k)
    assert got is not None
    assert got["tail_list"] == {"L": [N("1"), N("2"), N("3")]}
    assert got["head_list"] == {"L": [N("2"), N("3"), N("1")]}


def test_update_remove(ddb: Any, hash_table: str) -> None:
    # REMOVE deletes top-level attributes and nested map entries.
    k, _ = put_new(ddb, hash_table, a=N("1"), b=N("2"), m={"M": {"x": N("1"), "y": N("2")}})
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE a, m.x")
    assert get(ddb, hash_table, k) == k | {"b": N("2"), "m": {"M": {"y": N("2")}}}


def test_update_creates_missing_item(ddb: Any, hash_table: str) -> None:
    # UpdateItem on a missing key creates the item (key plus the SET attributes).
    k = key(unique())
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a",
                    ExpressionAttributeValues={":a": S("x")})
    assert get(ddb, hash_table, k) == k | {"a": S("x")}


@pytest.mark.parametrize("rv, expected", [
    ("ALL_NEW", {"pk": None, "a": N("2"), "b": S("keep"), "c": S("new")}),
    ("UPDATED_NEW", {"a": N("2"), "c": S("new")}),
    ("ALL_OLD", {"pk": None, "a": N("1"), "b": S("keep")}),
    ("UPDATED_OLD", {"a": N("1")}),
])
def test_update_return_values(ddb: Any, hash_table: str, rv: str, expected: dict[str, Any]) -> None:
    # ReturnValues of UpdateItem: the whole item or only the updated attributes, before or after.
    k, _ = put_new(ddb, hash_table, a=N("1"), b=S("keep"))
    resp = ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a, c = :c",
                           ExpressionAttributeValues={":a": N("2"), ":c": S("new")}, ReturnValues=rv)
    want = {name: (k["pk"] if v is None else v) for name, v in expected.items()}
    assert resp["Attributes"] == want


def test_update_return_values_nested(ddb: Any, hash_table: str) -> None:
    # UPDATED_OLD / UPDATED_NEW of a nested update return only the updated nested value, inside
    # its enclosing maps and lists, not the whole top-level attribute.
    k, _ = put_new(ddb, hash_table, a={"M": {"b": S("dog"), "c": {"L": [N("1"), N("2")]}}}, d=S("cat"))
    resp = ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a.b = :v", ReturnValues="UPDATED_OLD",
                           ExpressionAttributeValues={":v": S("hi")})
    assert resp["Attributes"] == {"a": {"M": {"b": S("dog")}}}
    resp = ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a.c[1] = :v",
                           ReturnValues="UPDATED_NEW", ExpressionAttributeValues={":v": N("5")})
    assert resp["Attributes"] == {"a": {"M": {"c": {"L": [N("5")]}}}}


def test_update_return_values_remove(ddb: Any, hash_table: str) -> None:
    # A removed attribute is in UPDATED_OLD and absent from UPDATED_NEW.
    k, _ = put_new(ddb, hash_table, a=N("1"), b=N("2"))
    resp = ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE a SET b = :v",
                           ExpressionAttributeValues={":v": N("3")}, ReturnValues="UPDATED_NEW")
    assert resp["Attributes"] == {"b": N("3")}
    resp = ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE b", ReturnValues="UPDATED_OLD")
    assert resp["Attributes"] == {"b": N("3")}


def test_update_arithmetic_on_missing_attribute(ddb: Any, hash_table: str) -> None:
    # "SET a = a + :x" needs a to exist (if_not_exists is the way to start a counter).
    k, item = put_new(ddb, hash_table, b=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = a + :x",
                        ExpressionAttributeValues={":x": N("1")})
    assert_error(e, "ValidationException",
                 "The provided expression refers to an attribute that does not exist in the item")
    assert get(ddb, hash_table, k) == item


def test_update_arithmetic_on_string(ddb: Any, hash_table: str) -> None:
    # + works on numbers only.
    k, item = put_new(ddb, hash_table, s=S("abc"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET s = s + :x",
                        ExpressionAttributeValues={":x": N("1")})
    assert_error(e, "ValidationException", "An operand in the update expression has an incorrect data type")
    assert get(ddb, hash_table, k) == item


def test_update_list_append_on_non_list(ddb: Any, hash_table: str) -> None:
    # list_append needs two lists.
    k, item = put_new(ddb, hash_table, s=S("abc"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET s = list_append(s, :l)",
                        ExpressionAttributeValues={":l": {"L": [N("1")]}})
    assert_error(e, "ValidationException", "An operand in the update expression has an incorrect data type")
    assert get(ddb, hash_table, k) == item


def test_update_grows_item_too_large(ddb: Any, hash_table: str) -> None:
    # An update may not grow an item past 400 KB; the item stays as it was.
    k, item = put_new(ddb, hash_table, a=S("x" * 300_000))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET b = :b",
                        ExpressionAttributeValues={":b": S("y" * 200_000)})
    assert_error(e, "ValidationException", "Item size to update has exceeded the maximum allowed size")
    assert get(ddb, hash_table, k) == item


def test_update_remove_key_attribute(ddb: Any, hash_table: str) -> None:
    # REMOVE of a key attribute is refused like SET of one.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="REMOVE pk")
    assert_error(e, "ValidationException", "Cannot update attribute pk. This attribute is part of the key")
    assert get(ddb, hash_table, k) == item


def test_update_key_attribute(ddb: Any, hash_table: str) -> None:
    # Key attributes cannot be changed by UpdateItem; the item stays as it was.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET pk = :p, a = :a",
                        ExpressionAttributeValues={":p": S("other"), ":a": N("2")})
    assert_error(e, "ValidationException", "Cannot update attribute pk. This attribute is part of the key")
    assert get(ddb, hash_table, k) == item


# -- ConditionExpression --------------------------------------------------------------------
def test_put_if_not_exists(ddb: Any, hash_table: str) -> None:
    # attribute_not_exists(pk) makes PutItem create-only: the second put fails, item unchanged.
    k = key(unique())
    ddb.put_item(TableName=hash_table, Item=k | {"v": N("1")}, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"v": N("2")}, ConditionExpression="attribute_not_exists(pk)")
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert get(ddb, hash_table, k) == k | {"v": N("1")}


def test_update_if_exists_on_missing_item(ddb: Any, hash_table: str) -> None:
    # attribute_exists guards an update from creating an item.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a",
                        ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":a": N("1")})
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert get(ddb, hash_table, k) is None


def test_update_if_exists_on_existing_item(ddb: Any, hash_table: str) -> None:
    # attribute_exists holds for an existing item, so the update happens.
    k, _ = put_new(ddb, hash_table, a=N("1"))
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a",
                    ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":a": N("2")})
    assert get(ddb, hash_table, k) == k | {"a": N("2")}


def test_delete_condition_fails(ddb: Any, hash_table: str) -> None:
    # A failed condition on DeleteItem keeps the item.
    k, item = put_new(ddb, hash_table, v=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=hash_table, Key=k, ConditionExpression="v = :two",
                        ExpressionAttributeValues={":two": N("2")})
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert get(ddb, hash_table, k) == item


def test_delete_condition_holds(ddb: Any, hash_table: str) -> None:
    # A condition that holds lets DeleteItem delete.
    k, _ = put_new(ddb, hash_table, v=N("1"))
    ddb.delete_item(TableName=hash_table, Key=k, ConditionExpression="v = :one",
                    ExpressionAttributeValues={":one": N("1")})
    assert get(ddb, hash_table, k) is None


@pytest.mark.parametrize("condition, holds", [
    ("v = :five", True),
    ("v = :ten", False),
    ("v <> :ten", True),
    ("v <> :five", False),
    ("v < :ten", True),
    ("v < :five", False),
    ("v > :three", True),
    ("v > :ten", False),
    ("s = :abc AND v < :ten", True),
    ("s = :abc AND v > :ten", False),
    ("s <> :abc OR v = :five", True),
    ("s <> :abc OR v > :ten", False),
    ("attribute_exists(s) AND attribute_not_exists(absent)", True),
    ("attribute_exists(absent) OR attribute_not_exists(s)", False),
])
def test_condition_comparisons(ddb: Any, hash_table: str, condition: str, holds: bool) -> None:
    # Comparisons and AND/OR in a ConditionExpression decide whether an UpdateItem happens.
    k, item = put_new(ddb, hash_table, v=N("5"), s=S("abc"))
    pool = {":five": N("5"), ":ten": N("10"), ":three": N("3"), ":abc": S("abc")}
    values = {name: v for name, v in pool.items() if name in condition} | {":t": {"BOOL": True}}
    args = dict(TableName=hash_table, Key=k, UpdateExpression="SET touched = :t", ConditionExpression=condition,
                ExpressionAttributeValues=values)
    if holds:
        ddb.update_item(**args)
        assert get(ddb, hash_table, k) == item | {"touched": {"BOOL": True}}
    else:
        with pytest.raises(ClientError) as e:
            ddb.update_item(**args)
        assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
        assert get(ddb, hash_table, k) == item


def test_condition_failure_returns_old_item(ddb: Any, hash_table: str) -> None:
    # ReturnValuesOnConditionCheckFailure=ALL_OLD puts the current item in the error.
    k, item = put_new(ddb, hash_table, v=N("1"), s=S("x"))
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"v": N("9")}, ConditionExpression="v = :two",
                     ExpressionAttributeValues={":two": N("2")}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert e.value.response["Item"] == item
    assert get(ddb, hash_table, k) == item


# -- bad input: ValidationException, nothing changed -----------------------------------------
def test_condition_failure_on_missing_item_returns_no_item(ddb: Any, hash_table: str) -> None:
    # With ReturnValuesOnConditionCheckFailure=ALL_OLD and no item, the error carries no Item.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :a",
                        ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":a": N("1")},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert "Item" not in e.value.response
    assert get(ddb, hash_table, k) is None


def test_put_missing_hash_key(ddb: Any, hash_table: str) -> None:
    # An item without its partition key is refused.
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"other": S(unique())})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Missing the key pk in the item")


def test_put_missing_range_key(ddb: Any, range_table: str) -> None:
    # An item without its sort key is refused, and nothing is written under its partition key.
    pk = unique()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "v": S("x")})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Missing the key sk in the item")
    resp = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": S(pk)}, ConsistentRead=True)
    assert resp["Count"] == 0


def test_put_wrong_key_type(ddb: Any, range_table: str) -> None:
    # A key attribute must have the type of its AttributeDefinition.
    pk = unique()
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": S("1")})
    assert_error(e, "ValidationException",
                 "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S")
    resp = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": S(pk)}, ConsistentRead=True)
    assert resp["Count"] == 0


def test_put_empty_string_key(ddb: Any, hash_table: str) -> None:
    # Key attributes cannot be empty strings (other attributes can).
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(""), "v": S("x")})
    assert_error(e, "ValidationException",
                 "The AttributeValue for a key attribute cannot contain an empty string value. Key: pk")


def test_put_empty_string_non_key(ddb: Any, hash_table: str) -> None:
    # ... while an empty string is a fine value for a non-key attribute.
    k, item = put_new(ddb, hash_table, empty=S(""))
    assert get(ddb, hash_table, k) == item


def test_get_key_with_extra_attribute(ddb: Any, hash_table: str) -> None:
    # GetItem's Key has exactly the key attributes.
    k, _ = put_new(ddb, hash_table, v=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key=k | {"v": N("1")})
    assert_error(e, "ValidationException", "The provided key element does not match the schema")


def test_get_key_wrong_type(ddb: Any, hash_table: str) -> None:
    # GetItem's Key values have the key's types.
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": N("1")})
    assert_error(e, "ValidationException", "The provided key element does not match the schema")


def test_get_key_missing_range(ddb: Any, range_table: str) -> None:
    # A range table's Key needs the sort key too.
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=range_table, Key={"pk": S(unique())})
    assert_error(e, "ValidationException", "The provided key element does not match the schema")


def test_put_invalid_number(ddb: Any, hash_table: str) -> None:
    # N values must be numbers.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"n": N("12abc")})
    assert_error(e, "ValidationException", "A value provided cannot be converted into a number")
    assert get(ddb, hash_table, k) is None


def test_put_number_too_precise(ddb: Any, hash_table: str) -> None:
    # Numbers have at most 38 significant digits.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"n": N(NUM38 + "9")})
    assert_error(e, "ValidationException", "Attempting to store more than 38 significant digits in a Number")
    assert get(ddb, hash_table, k) is None


def test_put_empty_set(ddb: Any, hash_table: str) -> None:
    # Sets cannot be empty.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"ss": {"SS": []}})
    assert_error(e, "ValidationException", "may not be empty")
    assert get(ddb, hash_table, k) is None


def test_put_duplicate_set_members(ddb: Any, hash_table: str) -> None:
    # A set cannot hold the same member twice.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"ss": {"SS": ["a", "a"]}})
    assert_error(e, "ValidationException", "contains duplicates")
    assert get(ddb, hash_table, k) is None


def test_put_hash_key_too_long(ddb: Any, hash_table: str) -> None:
    # Partition keys are limited to 2048 bytes.
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S("k" * 2049)})
    assert_error(e, "ValidationException", "Size of hashkey has exceeded the maximum size limit")
    assert get(ddb, hash_table, {"pk": S("k" * 2048)}) is None


def test_unused_expression_value(ddb: Any, hash_table: str) -> None:
    # Every ExpressionAttributeValues entry must be used by some expression.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k, ConditionExpression="attribute_not_exists(pk)",
                     ExpressionAttributeValues={":x": N("1")})
    assert_error(e, "ValidationException", "Value provided in ExpressionAttributeValues unused in expressions: "
                                           "keys: {:x}")
    assert get(ddb, hash_table, k) is None


def test_unused_expression_name(ddb: Any, hash_table: str) -> None:
    # Every ExpressionAttributeNames entry must be used by some expression.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k, ConditionExpression="attribute_not_exists(pk)",
                     ExpressionAttributeNames={"#n": "x"})
    assert_error(e, "ValidationException", "Value provided in ExpressionAttributeNames unused in expressions: "
                                           "keys: {#n}")
    assert get(ddb, hash_table, k) is None


def test_undefined_expression_value(ddb: Any, hash_table: str) -> None:
    # A :value used in an expression must be defined.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = :v")
    assert_error(e, "ValidationException",
                 "An expression attribute value used in expression is not defined; attribute value: :v")
    assert get(ddb, hash_table, k) == item


def test_undefined_expression_name(ddb: Any, hash_table: str) -> None:
    # A #name used in an expression must be defined.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=hash_table, Key=k, ConditionExpression="attribute_exists(#n)")
    assert_error(e, "ValidationException",
                 "An expression attribute name used in the document path is not defined; attribute name: #n")
    assert get(ddb, hash_table, k) == item


def test_condition_syntax_error(ddb: Any, hash_table: str) -> None:
    # A ConditionExpression that does not parse.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"a": N("2")}, ConditionExpression="a = = :v",
                     ExpressionAttributeValues={":v": N("1")})
    assert_error(e, "ValidationException", "Invalid ConditionExpression: Syntax error")
    assert get(ddb, hash_table, k) == item


def test_update_syntax_error(ddb: Any, hash_table: str) -> None:
    # An UpdateExpression that does not parse.
    k, item = put_new(ddb, hash_table, a=N("1"))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a :v",
                        ExpressionAttributeValues={":v": N("2")})
    assert_error(e, "ValidationException", "Invalid UpdateExpression: Syntax error")
    assert get(ddb, hash_table, k) == item


def test_put_invalid_return_values(ddb: Any, hash_table: str) -> None:
    # PutItem can only return ALL_OLD (or NONE).
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k, ReturnValues="ALL_NEW")
    assert_error(e, "ValidationException", "Return values set to invalid value")
    assert get(ddb, hash_table, k) is None


def test_put_item_too_large(ddb: Any, hash_table: str) -> None:
    # Items are limited to 400 KB.
    k = key(unique())
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=k | {"big": S("x" * (400 * 1024))})
    assert_error(e, "ValidationException", "Item size has exceeded the maximum allowed size")
    assert get(ddb, hash_table, k) is None


def test_put_item_just_under_limit(ddb: Any, hash_table: str) -> None:
    # ... and an item a little under 400 KB is fine.
    k = key(unique())
    item = k | {"big": S("x" * (400 * 1024 - 100))}
    ddb.put_item(TableName=hash_table, Item=item)
    assert get(ddb, hash_table, k) == item


MISSING_TABLE_CALLS = {
    "PutItem": lambda ddb, t: ddb.put_item(TableName=t, Item={"pk": S("x")}),
    "GetItem": lambda ddb, t: ddb.get_item(TableName=t, Key={"pk": S("x")}),
    "DeleteItem": lambda ddb, t: ddb.delete_item(TableName=t, Key={"pk": S("x")}),
    "UpdateItem": lambda ddb, t: ddb.update_item(TableName=t, Key={"pk": S("x")}, UpdateExpression="SET a = :a",
                                                 ExpressionAttributeValues={":a": N("1")}),
    "Query": lambda ddb, t: ddb.query(TableName=t, KeyConditionExpression="pk = :p",
                                      ExpressionAttributeValues={":p": S("x")}),
    "Scan": lambda ddb, t: ddb.scan(TableName=t),
}


@pytest.mark.parametrize("operation", sorted(MISSING_TABLE_CALLS))
def test_missing_table(ddb: Any, operation: str) -> None:
    # Every data operation on a table that does not exist answers ResourceNotFoundException.
    with pytest.raises(ClientError) as e:
        MISSING_TABLE_CALLS[operation](ddb, unique_table_name())
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
