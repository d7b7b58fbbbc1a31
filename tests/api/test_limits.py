"""DynamoDB's limits on requests: expression size and operators, numbers, sets, empty strings,
key sizes and document nesting, each refused with DynamoDB's error code and wording."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import assert_error, unique

pytestmark = pytest.mark.api

BIG = "9.9999999999999999999999999999999999999E+125"


def _key() -> dict[str, Any]:
    return {"pk": {"S": unique()}}


# -- expressions ---------------------------------------------------------------------------
def test_expression_size_limit(ddb: Any, hash_table: str) -> None:
    names = " OR ".join(f"attribute_exists(a{i:04d})" for i in range(200))  # > 4 KB, < 300 operators
    assert len(names) > 4096
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression=names)
    assert_error(e, "ValidationException", "Invalid ConditionExpression: Expression size has exceeded the maximum "
                 f"allowed size; expression size: {len(names)}")


def test_expression_of_4096_bytes_is_allowed(ddb: Any, hash_table: str) -> None:
    cond = "attribute_not_exists(pk) AND attribute_not_exists(b" + "x" * 10 + ")"
    cond = cond + " " * (4096 - len(cond))
    ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression=cond)


def test_operator_count_limit(ddb: Any, hash_table: str) -> None:
    cond = " OR ".join(["a = :v"] * 151)  # 151 comparisons + 150 ORs = 301 operators
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression=cond,
                     ExpressionAttributeValues={":v": {"S": "x"}})
    assert_error(e, "ValidationException", "Invalid ConditionExpression: The expression contains too many "
                 "operators; operator count: 301")
    ok = "attribute_not_exists(pk) OR " + " OR ".join(["a = :v"] * 149)  # 1 + 1 + 149 + 148 = 299 operators
    ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression=ok,
                 ExpressionAttributeValues={":v": {"S": "x"}})


def test_update_and_filter_expression_limits(ddb: Any, hash_table: str) -> None:
    upd = "SET " + ", ".join(f"a{i:05d} = :v" for i in range(400))
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=_key(), UpdateExpression=upd,
                        ExpressionAttributeValues={":v": {"S": "x"}})
    assert_error(e, "ValidationException", "Invalid UpdateExpression: Expression size has exceeded the maximum "
                 "allowed size")
    filt = " AND ".join(["a <> :v"] * 160)
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, FilterExpression=filt, ExpressionAttributeValues={":v": {"S": "x"}})
    assert_error(e, "ValidationException", "Invalid FilterExpression: The expression contains too many operators; "
                 "operator count: 319")


def test_expression_attribute_names_and_values_refusals(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression="attribute_not_exists(#a)",
                     ExpressionAttributeNames={"a": "x"})
    assert_error(e, "ValidationException", 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"')
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key(), ConditionExpression="a = :v",
                     ExpressionAttributeValues={":v": {"SS": []}})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: An string set  may not be empty")


# -- keys and documents --------------------------------------------------------------------
def test_key_size_limits(ddb: Any, range_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=range_table, Item={"pk": {"S": "x" * 2049}, "sk": {"N": "1"}})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Size of hashkey has exceeded "
                 "the maximum size limit of2048 bytes")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=range_table, Key={"pk": {"S": "é" * 1025}, "sk": {"N": "1"}})
    assert_error(e, "ValidationException", "Size of hashkey has exceeded the maximum size limit of2048 bytes")
    ddb.put_item(TableName=range_table, Item={"pk": {"S": "x" * 2048}, "sk": {"N": "1"}})


def test_nesting_depth_limit(ddb: Any, hash_table: str) -> None:
    def nest(depth: int) -> dict[str, Any]:
        v: dict[str, Any] = {"S": "leaf"}
        for i in range(depth):
            v = {"M": {"m": v}} if i % 2 else {"L": [v]}
        return v

    ddb.put_item(TableName=hash_table, Item=_key() | {"doc": nest(32)})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key() | {"doc": nest(33)})
    assert_error(e, "ValidationException", "Nesting Levels have exceeded supported limits")


def test_document_path_nesting_limit(ddb: Any, hash_table: str) -> None:
    # A document path of 32 levels is taken, one of 33 refused, in every kind of expression
    # (DynamoDB: "The document path has too many nesting levels; nesting levels: 33").
    key = _key()
    ddb.put_item(TableName=hash_table, Item=key | {"a": {"S": "x"}})
    ddb.get_item(TableName=hash_table, Key=key, ProjectionExpression="a" + ".b" * 31)
    too_deep = "a" + ".b" * 15 + "[0]" * 17
    phrase = "The document path has too many nesting levels; nesting levels: 33"
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key=key, ProjectionExpression=too_deep)
    assert_error(e, "ValidationException", f"Invalid ProjectionExpression: {phrase}")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=key, UpdateExpression=f"SET {too_deep} = :v",
                        ExpressionAttributeValues={":v": {"S": "y"}})
    assert_error(e, "ValidationException", f"Invalid UpdateExpression: {phrase}")
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=hash_table, Key=key, ConditionExpression=f"attribute_exists({too_deep})")
    assert_error(e, "ValidationException", f"Invalid ConditionExpression: {phrase}")
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, FilterExpression=f"attribute_exists({too_deep})")
    assert_error(e, "ValidationException", f"Invalid FilterExpression: {phrase}")
    assert ddb.get_item(TableName=hash_table, Key=key, ConsistentRead=True)["Item"] == key | {"a": {"S": "x"}}


# -- numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, phrase", [
    ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
    ("1E+126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ("-1E+126", "Number overflow"),
    ("1E-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
])
def test_number_limits_in_items_and_keys(ddb: Any, hash_table: str, range_table: str, text: str,
                                         phrase: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key() | {"n": {"N": text}})
    assert_error(e, "ValidationException", phrase)
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=range_table, Item=_key() | {"sk": {"N": text}})
    assert_error(e, "ValidationException", phrase)


def test_number_limits_accept_the_extremes(ddb: Any, range_table: str) -> None:
    k = _key()
    for n in (BIG, "-" + BIG, "1E-130", "1" * 38):
        ddb.put_item(TableName=range_table, Item=k | {"sk": {"N": n}, "v": {"N": n}})
    got = ddb.get_item(TableName=range_table, Key=k | {"sk": {"N": "1E-130"}}, ConsistentRead=True)["Item"]
    assert got["v"] == {"N": "0." + "0" * 129 + "1"} or got["v"]["N"].lower() in ("1e-130",)


def test_number_overflow_in_update_arithmetic(ddb: Any, hash_table: str) -> None:
    k = _key()
    ddb.put_item(TableName=hash_table, Item=k | {"a": {"N": BIG}, "b": {"N": "1E-130"}})
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = a + :big",
                        ExpressionAttributeValues={":big": {"N": BIG}})
    assert_error(e, "ValidationException", "Number overflow. Attempting to store a number with magnitude larger "
                 "than supported range")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="ADD a :big",
                        ExpressionAttributeValues={":big": {"N": BIG}})
    assert_error(e, "ValidationException", "Number overflow")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET b = b - :v",
                        ExpressionAttributeValues={":v": {"N": "1.1E-130"}})
    assert_error(e, "ValidationException", "Number underflow")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET b = b + :one",
                        ExpressionAttributeValues={":one": {"N": "1"}})
    assert_error(e, "ValidationException", "Attempting to store more than 38 significant digits in a Number")
    ddb.update_item(TableName=hash_table, Key=k, UpdateExpression="SET a = a - :big ADD c :v",
                    ExpressionAttributeValues={":big": {"N": BIG}, ":v": {"N": "2"}})
    got = ddb.get_item(TableName=hash_table, Key=k, ConsistentRead=True)["Item"]
    assert got["a"] == {"N": "0"} and got["c"] == {"N": "2"}


def test_number_limits_in_expression_values(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=_key(), UpdateExpression="ADD a :v",
                        ExpressionAttributeValues={":v": {"N": "1" * 39}})
    assert_error(e, "ValidationException", "Attempting to store more than 38 significant digits in a Number")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=_key(), UpdateExpression="ADD s :v",
                        ExpressionAttributeValues={":v": {"NS": ["1", "1E+126"]}})
    assert_error(e, "ValidationException", "Number overflow")


# -- sets and empty values -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["SS", "NS", "BS"])
def test_empty_sets_are_refused(ddb: Any, hash_table: str, kind: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key() | {"s": {kind: []}})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: An")
    assert_error(e, "ValidationException", "set  may not be empty")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=_key(), UpdateExpression="ADD s :v",
                        ExpressionAttributeValues={":v": {kind: []}})
    assert_error(e, "ValidationException", "set  may not be empty")


@pytest.mark.parametrize("kind, members", [("SS", ["a", "b", "a"]), ("NS", ["1", "1.0"]), ("BS", ["AA==", "AA=="])])
def test_duplicate_set_members_are_refused(ddb: Any, hash_table: str, kind: str, members: list[str]) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item=_key() | {"s": {kind: members}})
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Input collection")
    assert_error(e, "ValidationException", "contains duplicates.")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key=_key(), UpdateExpression="DELETE s :v",
                        ExpressionAttributeValues={":v": {kind: members}})
    assert_error(e, "ValidationException", "contains duplicates.")


def test_empty_strings_and_binaries_outside_keys(ddb: Any, range_table: str) -> None:
    k = _key() | {"sk": {"N": "1"}}
    doc = {"M": {"e": {"S": ""}, "l": {"L": [{"S": ""}, {"B": b""}]}}}
    ddb.put_item(TableName=range_table, Item=k | {"s": {"S": ""}, "b": {"B": b""}, "doc": doc, "ss": {"SS": [""]}})
    got = ddb.get_item(TableName=range_table, Key=k, ConsistentRead=True)["Item"]
    assert got["s"] == {"S": ""} and got["b"] == {"B": b""} and got["ss"] == {"SS": [""]}
    ddb.update_item(TableName=range_table, Key=k, UpdateExpression="SET t = :e",
                    ExpressionAttributeValues={":e": {"S": ""}})
    assert ddb.get_item(TableName=range_table, Key=k, ConsistentRead=True)["Item"]["t"] == {"S": ""}


def test_empty_strings_in_keys_are_refused(ddb: Any, hash_table: str, create_table: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": {"S": ""}})
    assert_error(e, "ValidationException", "One or more parameter values are not valid. The AttributeValue for a "
                 "key attribute cannot contain an empty string value. Key: pk")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": {"S": ""}})
    assert_error(e, "ValidationException", "cannot contain an empty string value. Key: pk")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key={"pk": {"S": ""}}, UpdateExpression="SET a = :v",
                        ExpressionAttributeValues={":v": {"S": "x"}})
    assert_error(e, "ValidationException", "cannot contain an empty string value. Key: pk")
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=hash_table, KeyConditionExpression="pk = :v", ExpressionAttributeValues={":v": {"S": ""}})
    assert_error(e, "ValidationException", "cannot contain an empty string value. Key: pk")
