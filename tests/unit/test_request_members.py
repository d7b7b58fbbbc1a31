"""Required members at every depth, from DynamoDB's request shapes (services/router/requests/members.py)."""

from __future__ import annotations

from services.router.requests.members import missing

DDB = "DynamoDB_20120810."
NULL = "failed to satisfy constraint: Member must not be null"


def test_nested_member_of_a_list_element() -> None:
    p = {"TableName": "tbl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
         "AttributeDefinitions": [{"AttributeName": "pk"}]}
    assert missing(DDB, "CreateTable", p) == [f"Value null at 'attributeDefinitions.1.member.attributeType' {NULL}"]


def test_map_values_are_spelt_by_their_key() -> None:
    assert missing(DDB, "BatchGetItem", {"RequestItems": {"t1": {"Keys": [{}]}, "t2": {}}}) == [
        f"Value null at 'requestItems.t2.member.keys' {NULL}"]


def test_json_null_is_absent() -> None:
    assert missing(DDB, "GetItem", {"TableName": "tbl", "Key": None}) == [f"Value null at 'key' {NULL}"]


def test_table_name_constraints_come_first() -> None:
    assert missing(DDB, "GetItem", {"TableName": "ab"}) == [
        "Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
        f"Value null at 'key' {NULL}"]


def test_only_table_name_missing_is_left_to_the_operation() -> None:
    assert missing(DDB, "DescribeTable", {}) == []


def test_a_table_arn_is_not_a_bad_name() -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/tbl"
    assert missing(DDB, "GetItem", {"TableName": arn}) == [f"Value null at 'key' {NULL}"]


def test_complete_requests_and_items_pass() -> None:
    deep: dict[str, object] = {"S": "x"}
    for _ in range(30):
        deep = {"M": {"a": deep}}
    assert missing(DDB, "PutItem", {"TableName": "tbl", "Item": {"pk": {"S": "a"}, "d": deep}}) == []
    assert missing(DDB, "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "a"}}}},
        {"Delete": {"TableName": "tbl"}}]}) == [f"Value null at 'transactItems.2.member.delete.key' {NULL}"]


def test_unknown_operations_and_services_have_no_rules() -> None:
    assert missing(DDB, "NoSuchOperation", {}) == []
    assert missing("AnyScaleFrontendService.", "RegisterScalableTarget", {}) == []
