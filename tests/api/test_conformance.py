"""Request-shape rules found by DynamoDB conformance suites: a required member missing at any
depth of a request, and the ``N validation error(s) detected:`` form of constraint messages.

Which members are required is the API reference's ("Required: Yes" on each member of a request
structure: AttributeDefinition.AttributeType, GlobalSecondaryIndex.Projection,
KeysAndAttributes.Keys, Put.Item, GetItem.Key, Tag.Key); every such absence is one constraint
message in the form ``Value null at '<path>' failed to satisfy constraint: Member must not be
null``, paths spelt with list positions from 1 and ``.member``.  Requests go through a client
with boto3's own parameter validation off, so that they reach the server.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_gone
from .helpers import S, assert_error, raw_ddb, unique, unique_table_name  # noqa: F401 (fixture)

pytestmark = pytest.mark.api

NOT_NULL = "failed to satisfy constraint: Member must not be null"


def refused(call: Any, path: str, **kw: Any) -> None:
    with pytest.raises(ClientError) as e:
        call(**kw)
    assert_error(e, "ValidationException", f"1 validation error detected: Value null at '{path}' {NOT_NULL}")


def test_create_table_attribute_definition_without_type(raw_ddb: Any, ddb: Any) -> None:
    """Found by a fuzzer: this answered HTTP 500.  The table must not appear either."""
    name = unique_table_name()
    refused(raw_ddb.create_table, "attributeDefinitions.1.member.attributeType", TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk"}], BillingMode="PAY_PER_REQUEST")
    wait_gone(ddb, name, timeout_s=1)


def test_create_table_attribute_definition_without_name(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "attributeDefinitions.2.member.attributeName", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")


def test_create_table_key_schema_element_without_key_type(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "keySchema.1.member.keyType", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")


def test_create_table_global_index_without_projection(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "globalSecondaryIndexes.1.member.projection", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexes=[{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
            BillingMode="PAY_PER_REQUEST")


def test_get_item_without_key(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.get_item, "key", TableName=hash_table)


def test_missing_members_are_counted_together(raw_ddb: Any) -> None:
    """Several problems are one message with the count and ``; `` between them."""
    with pytest.raises(ClientError) as e:
        raw_ddb.get_item(TableName="ab")
    assert_error(e, "ValidationException", "2 validation errors detected: Value 'ab' at 'tableName' failed to "
                 "satisfy constraint: Member must have length greater than or equal to 3; "
                 f"Value null at 'key' {NOT_NULL}")


def test_batch_get_without_keys(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.batch_get_item, f"requestItems.{hash_table}.member.keys", RequestItems={hash_table: {}})


def test_transact_put_without_item_writes_nothing(raw_ddb: Any, ddb: Any, hash_table: str) -> None:
    k = unique()
    refused(raw_ddb.transact_write_items, "transactItems.2.member.put.item", TransactItems=[
        {"Put": {"TableName": hash_table, "Item": {"pk": S(k)}}}, {"Put": {"TableName": hash_table}}])
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": S(k)}, ConsistentRead=True)


def test_tag_without_key(raw_ddb: Any, ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    refused(raw_ddb.tag_resource, "tags.1.member.key", ResourceArn=arn, Tags=[{"Value": "v"}])


def test_update_time_to_live_without_enabled(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.update_time_to_live, "timeToLiveSpecification.enabled", TableName=hash_table,
            TimeToLiveSpecification={"AttributeName": "t"})


# -- the counted form of semantic messages (item: validation errors in DynamoDB's current form) ----
def test_unused_expression_attribute_name_is_counted(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": S(unique())}, ProjectionExpression="a",
                     ExpressionAttributeNames={"#count": "count"})
    assert_error(e, "ValidationException", "1 validation error detected: Value provided in ExpressionAttributeNames "
                 "unused in expressions: keys: {#count}")


def test_unused_expression_attribute_value_is_counted(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=hash_table, Key={"pk": S(unique())}, UpdateExpression="SET a = :a",
                        ExpressionAttributeValues={":a": S("x"), ":b": S("y")})
    assert_error(e, "ValidationException", "1 validation error detected: Value provided in ExpressionAttributeValues "
                 "unused in expressions: keys: {:b}")


def test_empty_update_expression_is_counted(raw_ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.update_item(TableName=hash_table, Key={"pk": S(unique())}, UpdateExpression="")
    assert_error(e, "ValidationException", "1 validation error detected: Invalid UpdateExpression: The expression can "
                 "not be empty;")


def test_empty_set_is_counted(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(unique()), "s": {"SS": []}})
    assert_error(e, "ValidationException", "1 validation error detected: One or more parameter values were invalid: "
                 "An string set  may not be empty")


# -- Select and projection rules ----------------------------------------------------------------
@pytest.mark.parametrize(("select", "ending"), [
    ("ALL_ATTRIBUTES", "ALL_ATTRIBUTES"),
    ("COUNT", "only the Count"),
])
def test_projection_expression_refused_with_select(ddb: Any, range_table: str, select: str, ending: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("x")},
                  Select=select, ProjectionExpression="a")
    assert_error(e, "ValidationException", "1 validation error detected: Cannot specify the ProjectionExpression "
                 f"when choosing to get {ending}")


def test_attributes_to_get_refused_with_all_attributes(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, Select="ALL_ATTRIBUTES", AttributesToGet=["a"])
    assert_error(e, "ValidationException", "1 validation error detected: Cannot specify the AttributesToGet when "
                 "choosing to get ALL_ATTRIBUTES")


def test_specific_attributes_needs_a_projection(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, Select="SPECIFIC_ATTRIBUTES")
    assert_error(e, "ValidationException", "1 validation error detected: Must specify the AttributesToGet or "
                 "ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES")


def test_all_projected_attributes_needs_an_index(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, Select="ALL_PROJECTED_ATTRIBUTES")
    assert_error(e, "ValidationException", "1 validation error detected: ALL_PROJECTED_ATTRIBUTES can be used only "
                 "when Querying using an IndexName")


def test_select_is_case_sensitive_and_lists_the_enum(raw_ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.scan(TableName=hash_table, Select="count")
    assert_error(e, "ValidationException", "1 validation error detected: Value 'count' at 'select' failed to satisfy "
                 "constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
                 "ALL_PROJECTED_ATTRIBUTES]")


def test_overlapping_projection_paths(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": S(unique())}, ProjectionExpression="a.b, a")
    assert_error(e, "ValidationException", "Invalid ProjectionExpression: Two document paths overlap with each other; "
                 "must remove or rewrite one of these paths; path one: [a, b], path two: [a]")


def test_conflicting_projection_paths(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": S(unique())}, ProjectionExpression="a.b, a[0]")
    assert_error(e, "ValidationException", "Invalid ProjectionExpression: Two document paths conflict with each "
                 "other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]")


def test_projection_with_key_condition_returns_only_projected(ddb: Any, range_table: str) -> None:
    pk = unique()
    ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": {"N": "1"}, "a": {"M": {"b": S("x"), "c": S("y")}},
                                              "d": S("z")})
    got = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p AND sk = :s",
                    ExpressionAttributeValues={":p": S(pk), ":s": {"N": "1"}}, ProjectionExpression="a.b, sk")
    assert got["Items"] == [{"a": {"M": {"b": S("x")}}, "sk": {"N": "1"}}]


# -- update-expression clashes --------------------------------------------------------------------
def update_refused(ddb: Any, table: str, expression: str, phrase: str, **kw: Any) -> None:
    k = unique()
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table, Key={"pk": S(k)}, UpdateExpression=expression, **kw)
    assert_error(e, "ValidationException", phrase)
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": S(k)}, ConsistentRead=True)


def test_two_set_sections(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "SET a = :v SET b = :v", 'Invalid UpdateExpression: The "SET" section can only '
                   "be used once in an update expression;", ExpressionAttributeValues={":v": S("x")})


def test_two_remove_sections(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "REMOVE a REMOVE b", 'Invalid UpdateExpression: The "REMOVE" section can only '
                   "be used once in an update expression;")


def test_add_and_delete_of_one_set(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "ADD s :s DELETE s :s", "Invalid UpdateExpression: Two document paths overlap "
                   "with each other; must remove or rewrite one of these paths; path one: [s], path two: [s]",
                   ExpressionAttributeValues={":s": {"SS": ["a"]}})


def test_overlap_names_paths_as_written(ddb: Any, hash_table: str) -> None:
    """A ``#name`` is shown as written, though the clash is found after substitution."""
    update_refused(ddb, hash_table, "SET #a = :v, a.b = :v", "Invalid UpdateExpression: Two document paths overlap "
                   "with each other; must remove or rewrite one of these paths; path one: [#a], path two: [a, b]",
                   ExpressionAttributeNames={"#a": "a"}, ExpressionAttributeValues={":v": S("x")})


def test_conflicting_update_paths(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "SET a.b = :v, a[0] = :v", "Invalid UpdateExpression: Two document paths "
                   "conflict with each other; must remove or rewrite one of these paths; path one: [a, b], "
                   "path two: [a, [0]]", ExpressionAttributeValues={":v": S("x")})


def test_unknown_function_in_update(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "SET a = foo(:v)", "Invalid UpdateExpression: Invalid function name; "
                   "function: foo", ExpressionAttributeValues={":v": S("x")})


def test_add_to_a_missing_item_starts_from_zero(ddb: Any, hash_table: str) -> None:
    """Developer guide: ADD on an item that does not exist uses 0 as the initial number."""
    k = unique()
    got = ddb.update_item(TableName=hash_table, Key={"pk": S(k)}, UpdateExpression="ADD n :n",
                          ExpressionAttributeValues={":n": {"N": "-3"}}, ReturnValues="ALL_NEW")
    assert got["Attributes"] == {"pk": S(k), "n": {"N": "-3"}}


def test_set_of_a_nested_path_in_a_missing_item(ddb: Any, hash_table: str) -> None:
    update_refused(ddb, hash_table, "SET a.b = :v", "The document path provided in the update expression is invalid "
                   "for update", ExpressionAttributeValues={":v": S("x")})


# -- CreateTable ----------------------------------------------------------------------------------
def test_duplicate_attribute_definition_names_the_attribute(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique_table_name(), KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "pk", "AttributeType": "N"}],
                         BillingMode="PAY_PER_REQUEST")
    assert_error(e, "ValidationException", "Attribute Name is duplicated: pk")


def test_unused_attribute_definition(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique_table_name(), KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "x", "AttributeType": "N"}],
                         BillingMode="PAY_PER_REQUEST")
    assert_error(e, "ValidationException", "One or more parameter values were invalid: Number of attributes in "
                 "KeySchema does not exactly match number of attributes defined in AttributeDefinitions")


def test_provisioned_without_units(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=unique_table_name(), KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    assert_error(e, "ValidationException", "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
                 "BillingMode is PROVISIONED")


# -- tags -----------------------------------------------------------------------------------------
def test_tag_resource_of_another_account_is_access_denied(ddb: Any) -> None:
    """Another account's table is not found but refused: only that account's resource-based
    policy could let this caller in."""
    region = ddb.meta.region_name
    arn = f"arn:aws:dynamodb:{region}:123456789012:table/{unique_table_name()}"
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    assert_error(e, "AccessDeniedException", f"is not authorized to perform: dynamodb:TagResource on resource: {arn}")
    with pytest.raises(ClientError) as e:
        ddb.list_tags_of_resource(ResourceArn=arn)
    assert_error(e, "AccessDeniedException", "dynamodb:ListTagsOfResource")


# -- parallel scan, table ARNs, binary data in batches ------------------------------------------------
def test_segment_must_be_below_total_segments(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, Segment=4, TotalSegments=4)
    assert_error(e, "ValidationException", "The Segment parameter is zero-based and must be less than parameter "
                 "TotalSegments: Segment: 4 is not less than TotalSegments: 4")


def test_total_segments_without_segment(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=hash_table, TotalSegments=2)
    assert_error(e, "ValidationException", "The Segment parameter is required but was not present in the request "
                 "when parameter TotalSegments is present")


def test_batch_write_and_get_by_table_arn_with_binary_data(ddb: Any, hash_table: str) -> None:
    """API Reference: RequestItems may name a table by its ARN; binary values travel base64 in
    both directions and come back byte for byte."""
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    k = unique()
    blob = bytes(range(256))
    got = ddb.batch_write_item(RequestItems={arn: [{"PutRequest": {"Item": {
        "pk": S(k), "b": {"B": blob}, "bs": {"BS": [b"\x00", b"\xff\xfe"]}}}}]})
    assert got["UnprocessedItems"] == {}
    read = ddb.batch_get_item(RequestItems={arn: {"Keys": [{"pk": S(k)}], "ConsistentRead": True}})["Responses"]
    (items,) = read.values()
    assert items == [{"pk": S(k), "b": {"B": blob}, "bs": {"BS": [b"\x00", b"\xff\xfe"]}}]
    assert ddb.get_item(TableName=arn, Key={"pk": S(k)}, ConsistentRead=True)["Item"]["b"] == {"B": blob}


def test_table_arn_of_an_unknown_table(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=arn.replace(hash_table, unique_table_name()), Key={"pk": S("x")})
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_partiql_select_from_an_unknown_index(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.execute_statement(Statement=f'SELECT * FROM "{hash_table}"."nosuch"')
    assert_error(e, "ValidationException", "The table does not have the specified index")


# -- conditions and filters on key and other attributes -----------------------------------------------
def test_query_filter_on_the_sort_key_is_refused(ddb: Any, range_table: str) -> None:
    """Developer Guide, "Filter expressions for the Query operation": a filter expression cannot
    contain partition key or sort key attributes."""
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", FilterExpression="sk > :s",
                  ExpressionAttributeValues={":p": S("x"), ":s": {"N": "1"}})
    assert_error(e, "ValidationException", "Filter Expression can only contain non-primary key attributes: "
                 "Primary key attribute: sk")


def test_query_filter_on_the_partition_key_by_name_placeholder(ddb: Any, range_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", FilterExpression="#k <> :q",
                  ExpressionAttributeNames={"#k": "pk"}, ExpressionAttributeValues={":p": S("x"), ":q": S("y")})
    assert_error(e, "ValidationException", "Filter Expression can only contain non-primary key attributes: "
                 "Primary key attribute: pk")


def test_scan_filter_may_compare_key_and_other_attributes(ddb: Any, range_table: str) -> None:
    """A Scan has no key condition: its filter may name the keys, and compare two attributes."""
    pk = unique()
    for sk, a in ((1, 5), (2, 1), (3, 3)):
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": {"N": str(sk)}, "a": {"N": str(a)}})
    got = ddb.scan(TableName=range_table, ConsistentRead=True, FilterExpression="pk = :p AND sk < a",
                   ExpressionAttributeValues={":p": S(pk)})["Items"]
    assert sorted(int(i["sk"]["N"]) for i in got) == [1]


def test_query_filter_compares_two_attributes(ddb: Any, range_table: str) -> None:
    pk = unique()
    for sk, (a, b) in enumerate(((1, 2), (3, 3), (5, 4))):
        ddb.put_item(TableName=range_table, Item={"pk": S(pk), "sk": {"N": str(sk)}, "a": {"N": str(a)},
                                                  "b": {"N": str(b)}})
    got = ddb.query(TableName=range_table, KeyConditionExpression="pk = :p", FilterExpression="a >= b",
                    ExpressionAttributeValues={":p": S(pk)}, ConsistentRead=True)["Items"]
    assert [int(i["sk"]["N"]) for i in got] == [1, 2]


def test_attribute_type_with_an_unknown_type(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(unique())}, ConditionExpression="attribute_type(a, :t)",
                     ExpressionAttributeValues={":t": S("STRING")})
    assert_error(e, "ValidationException", "Invalid ConditionExpression: Invalid attribute type name found; type: "
                 "STRING, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }")


def test_attribute_exists_needs_a_path(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(unique())}, ConditionExpression="attribute_exists(:v)",
                     ExpressionAttributeValues={":v": S("a")})
    assert_error(e, "ValidationException", "Invalid ConditionExpression: Operator or function requires a document "
                 "path; operator or function: attribute_exists")


def test_between_with_bounds_reversed(ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(unique())}, ConditionExpression="a BETWEEN :hi AND :lo",
                     ExpressionAttributeValues={":hi": {"N": "5"}, ":lo": {"N": "1"}})
    assert_error(e, "ValidationException", "Invalid ConditionExpression: The BETWEEN operator requires upper bound "
                 "to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper "
                 "bound operand: AttributeValue: {N:1}")


def test_update_returns_all_new(ddb: Any, hash_table: str) -> None:
    k = unique()
    ddb.put_item(TableName=hash_table, Item={"pk": S(k), "a": {"N": "1"}, "b": S("keep")})
    got = ddb.update_item(TableName=hash_table, Key={"pk": S(k)}, UpdateExpression="SET a = a + :one REMOVE b",
                          ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    assert got["Attributes"] == {"pk": S(k), "a": {"N": "2"}}


def test_return_values_on_condition_check_failure_enum(raw_ddb: Any, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.put_item(TableName=hash_table, Item={"pk": S(unique())}, ReturnValuesOnConditionCheckFailure="ALL_NEW")
    assert_error(e, "ValidationException", "1 validation error detected: Value 'ALL_NEW' at "
                 "'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value "
                 "set: [ALL_OLD, NONE]")


def test_return_values_on_condition_check_failure_returns_the_item(ddb: Any, hash_table: str) -> None:
    k = unique()
    ddb.put_item(TableName=hash_table, Item={"pk": S(k), "v": S("old")})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": S(k), "v": S("new")}, ConditionExpression="v = :x",
                     ExpressionAttributeValues={":x": S("other")}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert_error(e, "ConditionalCheckFailedException", "The conditional request failed")
    assert e.value.response["Item"] == {"pk": S(k), "v": S("old")}


def test_tag_key_with_a_forbidden_character(ddb: Any, hash_table: str) -> None:
    """Developer Guide, "Tagging restrictions in DynamoDB": letters, white space, numbers and
    + - = . _ : / only.  Nothing is tagged."""
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "ok key", "Value": "v"}, {"Key": "cost#center", "Value": "v"}])
    assert_error(e, "ValidationException")
    keys = {t["Key"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert not keys & {"ok key", "cost#center"}


def test_tag_key_with_the_allowed_characters(ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    key = "Team name:+-=._/ 1é"
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": key, "Value": "v"}])
    assert {"Key": key, "Value": "v"} in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    ddb.untag_resource(ResourceArn=arn, TagKeys=[key])
