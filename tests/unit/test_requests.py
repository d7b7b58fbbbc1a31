"""services/router/requests/: each data-plane operation's parse, on valid input (the typed
request) and invalid input (DynamoDB's exact error, in DynamoDB's order) (no broker).

The API tests (tests/api/) check the same messages end to end; these pin where each rule lives
and that a parser gives the executor everything it needs, legacy parameters already translated.
"""

from __future__ import annotations

from typing import Any

import pytest

from dynamolog.catalog import TableDefinition
from dynamolog.errors import ApiError
from dynamolog.keys import encode_item_key, partition_hash
from services.router.requests import batch, get, query, scan, transact, writes


def _typed(record: dict[str, Any]) -> TableDefinition:
    """A catalog record of a test table: the given fields, the rest as a new table has them."""
    return TableDefinition.from_record({
        "table_name": "t", "table_id": "id", "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0,
        "write_capacity_units": 0, "status": "ACTIVE", "created_at_ms": 0, "partition_ids": ["p-0"], **record})

HASH = _typed({"table_name": "t_hash", "table_id": "id-hash", "status": "ACTIVE",
        "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}]})
RANGE = _typed({"table_name": "t_range", "table_id": "id-range", "status": "ACTIVE",
         "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}, {"attribute_name": "sk", "key_type": "RANGE"}],
         "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"},
                                   {"attribute_name": "sk", "attribute_type": "N"}]})


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def refused(fn: Any, *args: Any, type_name: str = "ValidationException") -> str:
    with pytest.raises(ApiError) as e:
        fn(*args)
    assert e.value.type_name == type_name, e.value
    return e.value.message


# -- PutItem, UpdateItem, DeleteItem ------------------------------------------------------------
def test_put_parses_into_a_write_request() -> None:
    req = writes.parse_put({"TableName": "t_hash", "Item": {"pk": S("a"), "v": N("1")},
                            "ConditionExpression": "attribute_not_exists(pk)", "ReturnValues": "ALL_OLD",
                            "ReturnConsumedCapacity": "INDEXES"}, HASH)
    assert (req.kind, req.key, req.hash_key, req.hash_value, req.range_value) == ("put", {"pk": S("a")}, "pk",
                                                                                   S("a"), None)
    assert req.item == {"pk": S("a"), "v": N("1")} and req.size_bytes == 6
    assert (req.return_values, req.capacity, req.collection_metrics) == ("ALL_OLD", "INDEXES", False)
    assert req.expressions.condition is not None
    assert req.expressions.wire()["cond"] == "attribute_not_exists(pk)"


def test_put_translates_expected_into_a_condition() -> None:
    req = writes.parse_put({"Item": {"pk": S("a")}, "Expected": {"v": {"Exists": False}}}, HASH)
    assert req.expressions.texts == {"condition": "attribute_not_exists(#legacy0)"}
    assert req.expressions.names == {"#legacy0": "v"}


@pytest.mark.parametrize("params,message", [
    ({}, "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null"),
    ({"Item": {"v": N("1")}}, "One or more parameter values were invalid: Missing the key pk in the item"),
    ({"Item": {"pk": N("1")}}, "One or more parameter values were invalid: Type mismatch for key pk expected: S "
                               "actual: N"),
    ({"Item": {"pk": S("a")}, "ReturnValues": "ALL_NEW"}, "Return values set to invalid value"),
    ({"Item": {"pk": S("a")}, "ReturnConsumedCapacity": "SOME"},
     "1 validation error detected: Value 'SOME' at 'returnConsumedCapacity' failed to satisfy constraint: Member "
     "must satisfy enum value set: [INDEXES, TOTAL, NONE]"),
    # the key is checked before ReturnValues, ReturnValues before the expressions
    ({"Item": {"v": N("1")}, "ReturnValues": "ALL_NEW"},
     "One or more parameter values were invalid: Missing the key pk in the item"),
    ({"Item": {"pk": S("a")}, "ReturnValues": "ALL_NEW", "ConditionExpression": "x = :unknown"},
     "Return values set to invalid value"),
    ({"Item": {"pk": S("a")}, "Expected": {"v": {"Exists": False}}, "ConditionExpression": "attribute_exists(v)"},
     "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: "
     "{Expected} Expression parameters: {ConditionExpression}"),
])
def test_put_refusals(params: dict[str, Any], message: str) -> None:
    assert refused(writes.parse_put, params, HASH) == message


def test_put_of_an_item_over_400_kb_is_refused() -> None:
    big = {"pk": S("a"), "v": S("x" * (400 * 1024))}
    assert refused(writes.parse_put, {"Item": big}, HASH) == "Item size has exceeded the maximum allowed size"


def test_update_parses_and_translates_attribute_updates() -> None:
    req = writes.parse_update({"Key": {"pk": S("a"), "sk": N("1")},
                               "AttributeUpdates": {"v": {"Action": "ADD", "Value": N("2")}, "w": {"Action": "DELETE"}},
                               "ReturnValues": "UPDATED_NEW"}, RANGE)
    assert (req.kind, req.item, req.size_bytes, req.range_value) == ("update", None, 0, N("1"))
    assert req.expressions.texts == {"update": "REMOVE #legacy1 ADD #legacy0 :legacy0"}
    assert req.return_values == "UPDATED_NEW"


@pytest.mark.parametrize("params,message", [
    ({"Key": {"pk": S("a")}}, "The provided key element does not match the schema"),
    ({"Key": {"pk": S("a"), "sk": S("1")}}, "The provided key element does not match the schema"),
    ({"Key": {"pk": S("a"), "sk": N("1")}, "UpdateExpression": "SET sk = :v", "ExpressionAttributeValues": {
        ":v": N("2")}}, "One or more parameter values were invalid: Cannot update attribute sk. This attribute is "
                        "part of the key"),
    ({"Key": {"pk": S("a"), "sk": N("1")}, "UpdateExpression": "SET v = :v"},
     "Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
     "attribute value: :v"),
    ({"Key": {"pk": S("a"), "sk": N("1")}, "ReturnValues": "EVERYTHING"},
     "1 validation error detected: Value 'EVERYTHING' at 'returnValues' failed to satisfy constraint: Member must "
     "satisfy enum value set: [NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW]"),
])
def test_update_refusals(params: dict[str, Any], message: str) -> None:
    assert refused(writes.parse_update, params, RANGE) == message


def test_delete_parses_and_refuses() -> None:
    req = writes.parse_delete({"Key": {"pk": S("a")}, "ReturnItemCollectionMetrics": "SIZE"}, HASH)
    assert (req.kind, req.key, req.collection_metrics) == ("delete", {"pk": S("a")}, False)  # no local index
    assert refused(writes.parse_delete, {"Key": {"pk": S("a")}, "ReturnValues": "ALL_NEW"}, HASH) == (
        "Return values set to invalid value")
    assert refused(writes.parse_delete, {"Key": {"pk": S("")}}, HASH) == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
        "empty string value. Key: pk")
    assert refused(writes.parse_delete, {"Key": {"pk": S("a")}, "ReturnItemCollectionMetrics": "ALL"}, HASH) == (
        "1 validation error detected: Value 'ALL' at 'returnItemCollectionMetrics' failed to satisfy constraint: "
        "Member must satisfy enum value set: [SIZE, NONE]")
    assert refused(writes.parse_delete, {"Key": "a"}, HASH, type_name="SerializationException") == (
        "Unexpected value type in payload")


# -- GetItem ------------------------------------------------------------------------------------
def test_get_parses_and_translates_attributes_to_get() -> None:
    req = get.parse({"Key": {"pk": S("a"), "sk": N("1")}, "AttributesToGet": ["v"], "ConsistentRead": True,
                     "ReturnConsumedCapacity": "TOTAL"}, RANGE)
    assert req.item_key == encode_item_key(S("a"), N("1"))
    assert (req.consistent, req.capacity) == (True, "TOTAL")
    assert req.expressions.texts == {"projection": "#legacy0"} and req.expressions.names == {"#legacy0": "v"}
    assert refused(get.parse, {"Key": {"pk": S("a"), "sk": N("1")}, "ProjectionExpression": "#x"}, RANGE) == (
        "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; "
        "attribute name: #x")


# -- Query, Scan --------------------------------------------------------------------------------
def test_query_parses_key_conditions_legacy_and_expression_alike() -> None:
    legacy = query.parse({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("a")]},
                                            "sk": {"ComparisonOperator": "GT", "AttributeValueList": [N("1")]}},
                          "Limit": 5, "ScanIndexForward": False}, RANGE)
    expression = query.parse({"KeyConditionExpression": "pk = :h AND sk > :r",
                              "ExpressionAttributeValues": {":h": S("a"), ":r": N("1")}, "Limit": 5,
                              "ScanIndexForward": False}, RANGE)
    for req in (legacy, expression):
        assert (req.hash_value, req.range_condition, req.forward, req.limit) == (S("a"), ["GT", N("1")], False, 5)
        assert (req.select, req.key_names, req.unit, req.global_index) == ("ALL_ATTRIBUTES", ["pk", "sk"], RANGE,
                                                                            False)


def test_query_exclusive_start_key() -> None:
    p = {"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": S("a")}}
    req = query.parse(p | {"ExclusiveStartKey": {"pk": S("a"), "sk": N("3")}}, RANGE)
    assert req.after is not None
    assert refused(query.parse, p | {"ExclusiveStartKey": {"pk": S("b"), "sk": N("3")}}, RANGE) == (
        "The provided starting key is invalid: The provided starting key does not match the range key predicate")
    assert refused(query.parse, p | {"ExclusiveStartKey": {"pk": S("a")}}, RANGE) == (
        "The provided starting key is invalid: The provided key element does not match the schema")


@pytest.mark.parametrize("params,message", [
    ({}, "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."),
    ({"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": N("1")}},
     "One or more parameter values were invalid: Condition parameter type does not match schema type"),
    ({"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": S("a")}, "Limit": 0},
     "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value "
     "greater than or equal to 1"),
    ({"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": S("a")},
      "Select": "ALL_PROJECTED_ATTRIBUTES"},
     "1 validation error detected: ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"),
    ({"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": S("a")}, "Select": "COUNT",
      "ProjectionExpression": "v"},
     "1 validation error detected: Cannot specify the ProjectionExpression when choosing to get only the Count"),
    # Select is checked before Limit
    ({"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": S("a")}, "Limit": 0,
      "Select": "SPECIFIC_ATTRIBUTES"},
     "1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when choosing to get "
     "SPECIFIC_ATTRIBUTES"),
])
def test_query_refusals(params: dict[str, Any], message: str) -> None:
    assert refused(query.parse, params, RANGE) == message


def test_scan_parses_segments_and_filters() -> None:
    req = scan.parse({"Segment": 1, "TotalSegments": 4, "ScanFilter": {
        "v": {"ComparisonOperator": "NOT_NULL"}}, "Select": "COUNT"}, HASH)
    assert (req.segment_lo, req.segment_hi) == (scan.HASH_SPACE // 4, scan.HASH_SPACE // 2)
    assert req.expressions.texts == {"filter": "attribute_exists(#legacy0)"}
    assert (req.select, req.start_hash, req.after, req.limit) == ("COUNT", None, None, None)
    whole = scan.parse({"ExclusiveStartKey": {"pk": S("a")}}, HASH)
    assert (whole.segment_lo, whole.segment_hi, whole.start_hash) == (0, scan.HASH_SPACE, partition_hash(S("a")))


@pytest.mark.parametrize("params,message", [
    ({"Segment": 1}, "The TotalSegments parameter is required but was not present in the request when parameter "
                     "Segment is present"),
    ({"Segment": 4, "TotalSegments": 4}, "The Segment parameter is zero-based and must be less than parameter "
                                         "TotalSegments: Segment: 4 is not less than TotalSegments: 4"),
    ({"Segment": -1, "TotalSegments": 0},
     "2 validation errors detected: Value '0' at 'totalSegments' failed to satisfy constraint: Member must have "
     "value greater than or equal to 1; Value '-1' at 'segment' failed to satisfy constraint: Member must have "
     "value greater than or equal to 0"),
    ({"Select": "SOME"}, "1 validation error detected: Value 'SOME' at 'select' failed to satisfy constraint: "
                         "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
                         "ALL_PROJECTED_ATTRIBUTES]"),
    ({"ScanFilter": {"v": {"ComparisonOperator": "EQ"}}},
     "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
])
def test_scan_refusals(params: dict[str, Any], message: str) -> None:
    assert refused(scan.parse, params, HASH) == message


def test_scan_start_key_outside_its_segment_is_refused() -> None:
    # one of two segments holds the key; the other refuses it
    outcomes = []
    for seg in (0, 1):
        try:
            scan.parse({"Segment": seg, "TotalSegments": 2, "ExclusiveStartKey": {"pk": S("a")}}, HASH)
            outcomes.append("ok")
        except ApiError as e:
            outcomes.append(e.message)
    assert sorted(outcomes) == ["The provided starting key is invalid: Exclusive start key is not in the segment "
                                "range", "ok"]


# -- BatchWriteItem, BatchGetItem ---------------------------------------------------------------
def _put(item: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": item}}


def test_batch_write_parses_then_binds() -> None:
    reqs = [_put({"pk": S("a"), "v": S("x" * 2000)}), {"DeleteRequest": {"Key": {"pk": S("b")}}}]
    draft = batch.parse_writes({"RequestItems": {"t_hash": reqs}, "ReturnConsumedCapacity": "TOTAL"})
    assert draft.table_names == ("t_hash",) and draft.capacity == "TOTAL"
    assert [(w.kind, w.units) for w in draft.writes] == [("put", 2.0), ("delete", 1.0)]
    req = batch.bind_writes(draft, {"t_hash": HASH})
    assert [(w.key, w.hash_key, w.draft.original) for w in req.writes] == [
        ({"pk": S("a")}, "pk", reqs[0]), ({"pk": S("b")}, "pk", reqs[1])]


def test_batch_write_refusals() -> None:
    assert refused(batch.parse_writes, {}) == ("1 validation error detected: Value null at 'requestItems' failed "
                                               "to satisfy constraint: Member must not be null")
    both = {"PutRequest": {"Item": {"pk": S("a")}}, "DeleteRequest": {"Key": {"pk": S("a")}}}
    assert refused(batch.parse_writes, {"RequestItems": {"t_hash": [both]}}) == (
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported "
        "datatypes")
    many = {"RequestItems": {"t_hash": [_put({"pk": S(str(i))}) for i in range(20)],
                             "t_range": [_put({"pk": S(str(i))}) for i in range(6)]}}
    assert refused(batch.parse_writes, many) == "Too many items requested for the BatchWriteItem call"
    twice = batch.parse_writes({"RequestItems": {"t_hash": [_put({"pk": S("a")}),
                                                            {"DeleteRequest": {"Key": {"pk": S("a")}}}]}})
    assert refused(batch.bind_writes, twice, {"t_hash": HASH}) == "Provided list of item keys contains duplicates"
    no_key = batch.parse_writes({"RequestItems": {"t_hash": [_put({"v": S("a")})]}})
    assert refused(batch.bind_writes, no_key, {"t_hash": HASH}) == (
        "The provided key element does not match the schema")


def test_batch_get_parses_then_binds() -> None:
    spec = {"Keys": [{"pk": S("a"), "sk": N("1")}, {"pk": S("a"), "sk": N("2")}], "ConsistentRead": True,
            "AttributesToGet": ["v"]}
    draft = batch.parse_gets({"RequestItems": {"t_range": spec}})
    t = draft.tables["t_range"]
    assert t.consistent and t.expressions.texts == {"projection": "#legacy0"} and draft.capacity == "NONE"
    bound = batch.bind_gets(t, RANGE)
    assert [k for _, k in bound.keys] == [encode_item_key(S("a"), N("1")), encode_item_key(S("a"), N("2"))]
    dup = batch.parse_gets({"RequestItems": {"t_range": {"Keys": [{"pk": S("a"), "sk": N("1")}] * 2}}})
    assert refused(batch.bind_gets, dup.tables["t_range"], RANGE) == "Provided list of item keys contains duplicates"
    assert refused(batch.parse_gets, {"RequestItems": {"t_range": {"Keys": []}}}) == (
        "1 validation error detected: Value '[]' at 'requestItems.t_range.member.keys' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1")


# -- TransactWriteItems, TransactGetItems -------------------------------------------------------
def test_transact_write_parses_each_item() -> None:
    header = transact.parse_write_header({"TransactItems": [{}], "ClientRequestToken": "t1",
                                          "ReturnConsumedCapacity": "TOTAL"})
    assert (header.token, header.capacity, header.collection_metrics) == ("t1", "TOTAL", False)
    kind, p, name = transact.write_entry(0, {"Update": {"TableName": "t_hash", "Key": {"pk": S("a")},
                                                        "UpdateExpression": "SET v = :v",
                                                        "ExpressionAttributeValues": {":v": N("1")}}})
    assert (kind, name) == ("Update", "t_hash")
    item = transact.parse_write_item(0, kind, p, HASH)
    assert item.req["kind"] == "update" and item.req["update"] == "SET v = :v" and item.req["keyattrs"] == {
        "pk": S("a")}
    assert item.item_key == encode_item_key(S("a"), None)


def test_transact_write_refusals() -> None:
    assert refused(transact.parse_write_header, {"TransactItems": []}) == (
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have "
        "length greater than or equal to 1")
    assert refused(transact.parse_write_header, {"TransactItems": [{}], "ClientRequestToken": "x" * 37}) == (
        f"1 validation error detected: Value '{'x' * 37}' at 'clientRequestToken' failed to satisfy constraint: "
        "Member must have length less than or equal to 36")
    assert refused(transact.write_entry, 0, {"Put": {}, "Delete": {}}) == (
        "TransactItems can only contain one of Check, Put, Update or Delete")
    assert refused(transact.write_entry, 1, {"Update": {"TableName": "t_hash", "Key": {}}}) == (
        "1 validation error detected: Value null at 'transactItems.2.member.update.updateExpression' failed to satisfy "
        "constraint: Member must not be null")
    a = transact.parse_write_item(0, "Put", {"Item": {"pk": S("a")}}, HASH)
    b = transact.parse_write_item(1, "ConditionCheck", {"Key": {"pk": S("a")},
                                                        "ConditionExpression": "attribute_exists(pk)"}, HASH)
    assert a.size_bytes == 3 and b.req["kind"] == "check"
    assert refused(transact.check_distinct, [a, b]) == (
        "Transaction request cannot include multiple operations on one item")


def test_transact_get_parses_each_item() -> None:
    entries, mode = transact.parse_get_header({"TransactItems": [{"Get": {}}]})
    assert mode == "NONE" and len(entries) == 1
    g, name = transact.get_entry(0, {"Get": {"TableName": "t_hash", "Key": {"pk": S("a")},
                                             "ProjectionExpression": "v"}})
    item = transact.parse_get_item(0, g, HASH)
    assert name == "t_hash" and item.projection is not None and item.item_key == encode_item_key(S("a"), None)
    assert refused(transact.get_entry, 2, {"Put": {}}) == (
        "1 validation error detected: Value null at 'transactItems.3.member.get' failed to satisfy constraint: "
        "Member must not be null")
