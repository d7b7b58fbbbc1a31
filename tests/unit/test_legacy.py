"""Translation of DynamoDB's legacy parameters into expressions (no broker).

The generated texts are parsed, resolved and evaluated with the expression package, so these
tests check both the translation and its meaning against items.
"""

from __future__ import annotations

from typing import Any

import pytest

from dynamolog import expr
from dynamolog.errors import ApiError
from services.router.legacy import translate
from services.router.requests.expressions import Expressions

WRITE = {"condition": "ConditionExpression"}
UPDATE = {"condition": "ConditionExpression", "update": "UpdateExpression"}
GET = {"projection": "ProjectionExpression"}
QUERY = {"key_condition": "KeyConditionExpression", "filter": "FilterExpression", "projection": "ProjectionExpression"}
SCAN = {"filter": "FilterExpression", "projection": "ProjectionExpression"}


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def run(p: dict[str, Any], kinds: dict[str, str]) -> tuple[dict[str, str], dict[str, str] | None, dict[str, Any] | None]:
    return translate(p, kinds, {}, None, None)


def refused(p: dict[str, Any], kinds: dict[str, str] = WRITE) -> str:
    with pytest.raises(ApiError) as e:
        Expressions(p, **kinds)
    assert e.value.type_name == "ValidationException", e.value
    return e.value.message


def expected(cond: dict[str, Any], op: str | None = None) -> Expressions:
    p: dict[str, Any] = {"Expected": cond}
    if op:
        p["ConditionalOperator"] = op
    return Expressions(p, **WRITE)


def holds(ex: Expressions, item: dict[str, Any] | None, which: str = "condition") -> bool:
    cond = getattr(ex, which)
    assert cond is not None
    return expr.evaluate(cond, item)


ITEM = {"pk": S("p"), "a": N("5"), "s": S("hello"), "ss": {"SS": ["x", "y"]}, "l": {"L": [S("x"), N("1")]}}


# -- no legacy parameters --------------------------------------------------------------------
def test_nothing_to_translate_returns_inputs() -> None:
    texts = {"condition": "a = :v"}
    values = {":v": N("1")}
    assert translate({"ConditionExpression": "a = :v"}, WRITE, texts, None, values) == (texts, None, values)


def test_legacy_parameter_of_another_operation_is_ignored() -> None:
    assert run({"AttributesToGet": ["a"]}, WRITE) == ({}, None, None)


# -- Expected ---------------------------------------------------------------------------------
def test_expected_value_is_equality() -> None:
    texts, names, values = run({"Expected": {"a": {"Value": N("5")}}}, WRITE)
    assert texts == {"condition": "#legacy0 = :legacy0"}
    assert names == {"#legacy0": "a"}
    assert values == {":legacy0": N("5")}
    ex = expected({"a": {"Value": N("5"), "Exists": True}})
    assert holds(ex, ITEM)
    assert not holds(ex, ITEM | {"a": N("6")})
    assert not holds(ex, None)


def test_expected_exists_false_is_attribute_not_exists() -> None:
    ex = expected({"a": {"Exists": False}})
    assert run({"Expected": {"a": {"Exists": False}}}, WRITE)[0] == {"condition": "attribute_not_exists(#legacy0)"}
    assert not holds(ex, ITEM)
    assert holds(ex, {"pk": S("p")})
    assert holds(ex, None)


def test_expected_and_or() -> None:
    cond = {"a": {"Value": N("5")}, "s": {"Value": S("nope")}}
    assert not holds(expected(cond), ITEM)
    assert not holds(expected(cond, "AND"), ITEM)
    assert holds(expected(cond, "OR"), ITEM)
    texts = run({"Expected": cond, "ConditionalOperator": "OR"}, WRITE)[0]
    assert texts["condition"] == "(#legacy0 = :legacy0) OR (#legacy1 = :legacy1)"


@pytest.mark.parametrize(("op", "args", "item_value", "result"), [
    ("EQ", [N("5")], N("5"), True),
    ("EQ", [N("5")], S("5"), False),
    ("EQ", [{"SS": ["b", "a"]}], {"SS": ["a", "b"]}, True),
    ("NE", [N("5")], N("4"), True),
    ("NE", [N("5")], None, True),
    ("LT", [N("5")], N("4"), True),
    ("LT", [N("5")], N("5"), False),
    ("LE", [N("5")], N("5"), True),
    ("GT", [S("b")], S("c"), True),
    ("GE", [S("b")], S("a"), False),
    ("GT", [N("1")], None, False),
    ("NOT_NULL", [], N("1"), True),
    ("NOT_NULL", [], None, False),
    ("NULL", [], None, True),
    ("NULL", [], N("1"), False),
    ("CONTAINS", [S("ell")], S("hello"), True),
    ("CONTAINS", [S("x")], {"SS": ["x", "y"]}, True),
    ("CONTAINS", [N("1")], {"L": [N("1")]}, True),
    ("CONTAINS", [S("z")], S("hello"), False),
    ("NOT_CONTAINS", [S("z")], S("hello"), True),
    ("NOT_CONTAINS", [S("ell")], S("hello"), False),
    ("NOT_CONTAINS", [S("z")], None, False),
    ("BEGINS_WITH", [S("he")], S("hello"), True),
    ("BEGINS_WITH", [S("lo")], S("hello"), False),
    ("IN", [N("1"), N("2"), N("3")], N("2"), True),
    ("IN", [N("1"), N("3")], N("2"), False),
    ("BETWEEN", [N("1"), N("3")], N("3"), True),
    ("BETWEEN", [N("1"), N("3")], N("4"), False),
])
def test_comparison_operators(op: str, args: list[Any], item_value: Any, result: bool) -> None:
    item: dict[str, Any] = {"pk": S("p")} | ({"x": item_value} if item_value is not None else {})
    ex = expected({"x": {"ComparisonOperator": op, "AttributeValueList": args}})
    assert holds(ex, item) is result
    filt = Expressions({"ScanFilter": {"x": {"ComparisonOperator": op, "AttributeValueList": args}}}, **SCAN)
    assert holds(filt, item, "filter") is result


def test_expected_comparison_with_value_instead_of_list() -> None:
    ex = expected({"a": {"ComparisonOperator": "GT", "Value": N("4")}})
    assert holds(ex, ITEM)


@pytest.mark.parametrize(("cond", "phrase"), [
    ({"a": {"Exists": True}}, "One or more parameter values were invalid: Value must be provided when Exists is true "
                              "for Attribute: a"),
    ({"a": {}}, "One or more parameter values were invalid: Value must be provided when Exists is null for "
                "Attribute: a"),
    ({"a": {"Exists": False, "Value": N("1")}}, "One or more parameter values were invalid: Value cannot be used when "
                                                "Exists is false for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": []}},
     "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [N("1"), N("2")]}},
     "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
    ({"a": {"ComparisonOperator": "NULL", "AttributeValueList": [N("1")]}},
     "Invalid number of argument(s) for the NULL ComparisonOperator"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N("1")]}},
     "Invalid number of argument(s) for the BETWEEN ComparisonOperator"),
    ({"a": {"ComparisonOperator": "IN", "AttributeValueList": []}},
     "Invalid number of argument(s) for the IN ComparisonOperator"),
    ({"a": {"ComparisonOperator": "EQ"}}, "Value or AttributeValueList must be used with ComparisonOperator: EQ for "
                                          "Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "Exists": True, "Value": N("1")}},
     "Exists and ComparisonOperator cannot be used together for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "Value": N("1"), "AttributeValueList": [N("1")]}},
     "Value and AttributeValueList cannot be used together for Attribute: a"),
    ({"a": {"AttributeValueList": [N("1")]}}, "AttributeValueList can only be used with a ComparisonOperator for "
                                              "Attribute: a"),
    ({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"SS": ["x"]}]}},
     "ComparisonOperator LT is not valid for SS AttributeValue type"),
    ({"a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [N("1")]}},
     "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type"),
    ({"a": {"ComparisonOperator": "IN", "AttributeValueList": [N("1"), S("x")]}},
     "AttributeValues inside AttributeValueList must be of same type"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [N("3"), N("1")]}},
     "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
    ({"a": {"Value": {"N": "x"}}}, "cannot be converted into a number"),
    ({"a": {"ComparisonOperator": "WHAT", "AttributeValueList": []}},
     "Value 'WHAT' at 'expected.a.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum "
     "value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"),
])
def test_expected_errors(cond: dict[str, Any], phrase: str) -> None:
    assert phrase in refused({"Expected": cond})


def test_conditional_operator_errors() -> None:
    assert refused({"ConditionalOperator": "OR"}) == "ConditionalOperator cannot be used without Filter or Expected"
    assert refused({"Expected": {"a": {"Exists": False}}, "ConditionalOperator": "OR"}) == (
        "ConditionalOperator can only be used when Filter or Expected has two or more elements")
    assert refused({"Expected": {"a": {"Exists": False}, "b": {"Exists": False}}, "ConditionalOperator": "XOR"}) == (
        "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: "
        "Member must satisfy enum value set: [AND, OR]")
    assert "without Filter or Expected" in refused(
        {"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}},
         "ConditionalOperator": "AND"}, QUERY)


# -- mixing and expression attribute maps -----------------------------------------------------
def test_mixing_legacy_and_expression_parameters() -> None:
    assert refused({"AttributesToGet": ["a"], "ProjectionExpression": "a"}, GET) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}")
    assert refused({"Expected": {"a": {"Exists": False}}, "ConditionExpression": "attribute_exists(a)"}) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}")
    msg = refused({"AttributeUpdates": {"a": {"Action": "DELETE"}}, "Expected": {"a": {"Exists": False}},
                   "UpdateExpression": "REMOVE a"}, UPDATE)
    assert msg.endswith("Non-expression parameters: {AttributeUpdates, Expected} "
                        "Expression parameters: {UpdateExpression}")
    msg = refused({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": S("p")},
                   "QueryFilter": {"a": {"ComparisonOperator": "NOT_NULL"}}}, QUERY)
    assert msg.endswith("Non-expression parameters: {QueryFilter} Expression parameters: {KeyConditionExpression}")
    msg = refused({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": S("p")},
                   "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}}}, QUERY)
    assert msg.endswith("Non-expression parameters: {KeyConditions} Expression parameters: {KeyConditionExpression}")
    msg = refused({"ScanFilter": {"a": {"ComparisonOperator": "NOT_NULL"}}, "ProjectionExpression": "a"}, SCAN)
    assert "{ScanFilter}" in msg


def test_key_conditions_combine_with_filter_expression() -> None:
    # DynamoDB accepts KeyConditions with a FilterExpression; generated placeholders avoid the user's.
    p = {"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}},
         "FilterExpression": "#legacy0 = :legacy0",
         "ExpressionAttributeNames": {"#legacy0": "a"}, "ExpressionAttributeValues": {":legacy0": N("5")}}
    ex = Expressions(p, **QUERY)
    assert ex.texts["key_condition"] == "#legacyx0 = :legacyx0"
    assert ex.names == {"#legacy0": "a", "#legacyx0": "pk"}
    assert holds(ex, ITEM, "filter")
    assert holds(ex, ITEM, "key_condition")


def test_expression_attribute_maps_need_an_expression() -> None:
    assert refused({"Expected": {"a": {"Exists": False}}, "ExpressionAttributeNames": {"#a": "a"}}) == (
        "ExpressionAttributeNames can only be specified when using expressions")
    assert refused({"Expected": {"a": {"Exists": False}}, "ExpressionAttributeValues": {":a": N("1")}}) == (
        "ExpressionAttributeValues can only be specified when using expressions")


# -- AttributeUpdates -------------------------------------------------------------------------
def update(updates: dict[str, Any], item: dict[str, Any] | None = None) -> dict[str, Any]:
    ex = Expressions({"AttributeUpdates": updates}, **UPDATE)
    assert ex.update is not None
    return expr.apply_update(ex.update, item)


def test_attribute_updates_text() -> None:
    texts, names, _ = run({"AttributeUpdates": {
        "a": {"Value": N("1")}, "b": {"Action": "DELETE"}, "c": {"Action": "ADD", "Value": N("2")},
        "d": {"Action": "DELETE", "Value": {"SS": ["x"]}}, "e": {"Action": "PUT", "Value": S("v")},
    }}, UPDATE)
    assert texts == {"update": "SET #legacy0 = :legacy0, #legacy4 = :legacy3 REMOVE #legacy1 "
                               "ADD #legacy2 :legacy1 DELETE #legacy3 :legacy2"}
    assert names == {"#legacy0": "a", "#legacy1": "b", "#legacy2": "c", "#legacy3": "d", "#legacy4": "e"}


def test_attribute_updates_semantics() -> None:
    item = {"pk": S("p"), "n": N("5"), "gone": S("x"), "ss": {"SS": ["a", "b"]}, "l": {"L": [N("1")]}}
    new = update({
        "put": {"Value": S("v")},
        "gone": {"Action": "DELETE"},
        "n": {"Action": "ADD", "Value": N("-2")},
        "fresh": {"Action": "ADD", "Value": N("3")},
        "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
        "l": {"Action": "ADD", "Value": {"L": [N("2")]}},
        "newlist": {"Action": "ADD", "Value": {"L": [S("x")]}},
        "newset": {"Action": "ADD", "Value": {"NS": ["1"]}},
    }, item)
    assert new == {"pk": S("p"), "n": N("3"), "ss": {"SS": ["b"]}, "l": {"L": [N("1"), N("2")]}, "put": S("v"),
                   "fresh": N("3"), "newlist": {"L": [S("x")]}, "newset": {"NS": ["1"]}}


def test_empty_attribute_updates_is_no_update() -> None:
    ex = Expressions({"AttributeUpdates": {}}, **UPDATE)
    assert ex.update is None and ex.texts == {}


@pytest.mark.parametrize(("updates", "phrase"), [
    ({"a": {"Action": "PUT"}}, "One or more parameter values were invalid: Only DELETE action is allowed when no "
                               "attribute value is specified"),
    ({"a": {}}, "Only DELETE action is allowed when no attribute value is specified"),
    ({"a": {"Action": "ADD"}}, "Only DELETE action is allowed when no attribute value is specified"),
    ({"a": {"Action": "DELETE", "Value": S("x")}}, "One or more parameter values were invalid: DELETE action with "
                                                   "value is not supported for the type S"),
    ({"a": {"Action": "ADD", "Value": S("x")}}, "One or more parameter values were invalid: ADD action is not "
                                                "supported for the type S"),
    ({"a": {"Action": "ADD", "Value": {"M": {}}}}, "ADD action is not supported for the type M"),
    ({"a": {"Action": "MERGE", "Value": S("x")}}, "Value 'MERGE' at 'attributeUpdates.a.member.action' failed to "
                                                  "satisfy constraint: Member must satisfy enum value set: "
                                                  "[ADD, PUT, DELETE]"),
])
def test_attribute_updates_errors(updates: dict[str, Any], phrase: str) -> None:
    assert phrase in refused({"AttributeUpdates": updates}, UPDATE)


def test_attribute_updates_with_expected() -> None:
    ex = Expressions({"AttributeUpdates": {"a": {"Value": N("1")}}, "Expected": {"a": {"Exists": False}}}, **UPDATE)
    # one placeholder per attribute name, shared by both expressions
    assert ex.texts == {"update": "SET #legacy0 = :legacy0", "condition": "attribute_not_exists(#legacy0)"}
    assert ex.names == {"#legacy0": "a"}


# -- AttributesToGet --------------------------------------------------------------------------
def test_attributes_to_get() -> None:
    texts, names, _ = run({"AttributesToGet": ["a", "select", "x.y"]}, GET)
    assert texts == {"projection": "#legacy0, #legacy1, #legacy2"}
    assert names == {"#legacy0": "a", "#legacy1": "select", "#legacy2": "x.y"}
    ex = Expressions({"AttributesToGet": ["a", "x.y", "missing"]}, **GET)
    assert ex.projection is not None
    assert expr.project({"a": N("1"), "b": N("2"), "x.y": S("dotted"), "x": {"M": {"y": S("nested")}}},
                        ex.projection) == {"a": N("1"), "x.y": S("dotted")}


@pytest.mark.parametrize(("p", "phrase"), [
    ({"AttributesToGet": []}, "Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length "
                              "greater than or equal to 1"),
    ({"AttributesToGet": ["a", "a"]}, "One or more parameter values were invalid: Duplicate value in attribute name: a"),
    ({"AttributesToGet": ["a"], "Select": "ALL_ATTRIBUTES"}, "Cannot specify the AttributesToGet when choosing to get "
                                                             "ALL_ATTRIBUTES"),
    ({"AttributesToGet": ["a"], "Select": "COUNT"}, "Cannot specify the AttributesToGet when choosing to get only the "
                                                    "Count"),
])
def test_attributes_to_get_errors(p: dict[str, Any], phrase: str) -> None:
    assert phrase in refused(p, SCAN)


# -- KeyConditions and filters ----------------------------------------------------------------
@pytest.mark.parametrize(("op", "args", "want"), [
    ("EQ", [N("1")], ("EQ", N("1"))),
    ("LT", [N("1")], ("LT", N("1"))),
    ("LE", [N("1")], ("LE", N("1"))),
    ("GT", [N("1")], ("GT", N("1"))),
    ("GE", [N("1")], ("GE", N("1"))),
    ("BETWEEN", [N("1"), N("9")], ("BETWEEN", N("1"), N("9"))),
    ("BEGINS_WITH", [S("a")], ("BEGINS_WITH", S("a"))),
])
def test_key_conditions(op: str, args: list[Any], want: tuple[Any, ...]) -> None:
    ex = Expressions({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]},
                                        "sk": {"ComparisonOperator": op, "AttributeValueList": args}}}, **QUERY)
    assert ex.key_condition is not None
    assert expr.key_condition_parts(ex.key_condition, "pk", "sk") == (S("p"), want)


@pytest.mark.parametrize(("conds", "phrase"), [
    ({}, "Conditions can be of length 1 or 2 only"),
    ({"pk": {"ComparisonOperator": "NE", "AttributeValueList": [S("p")]}},
     "Attempted conditional constraint is not an indexable operation"),
    ({"pk": {"ComparisonOperator": "NOT_NULL"}}, "Attempted conditional constraint is not an indexable operation"),
    ({"pk": {"AttributeValueList": [S("p")]}}, "Value null at 'keyConditions.pk.member.comparisonOperator' failed to "
                                               "satisfy constraint: Member must not be null"),
    ({"pk": {"ComparisonOperator": "EQ", "AttributeValueList": []}},
     "Invalid number of argument(s) for the EQ ComparisonOperator"),
])
def test_key_conditions_errors(conds: dict[str, Any], phrase: str) -> None:
    assert phrase in refused({"KeyConditions": conds}, QUERY)


def test_query_filter() -> None:
    ex = Expressions({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}},
                      "QueryFilter": {"a": {"ComparisonOperator": "GT", "AttributeValueList": [N("9")]},
                                      "s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [S("he")]}},
                      "ConditionalOperator": "OR", "AttributesToGet": ["a"]}, **QUERY)
    assert holds(ex, ITEM, "filter")
    assert not holds(ex, ITEM | {"s": S("x")}, "filter")
    assert ex.texts["filter"] == "(#legacy1 > :legacy1) OR (begins_with(#legacy2, :legacy2))"
    assert ex.texts["projection"] == "#legacy1"


def test_filter_needs_comparison_operator() -> None:
    assert "Value null at 'scanFilter.a.member.comparisonOperator'" in refused(
        {"ScanFilter": {"a": {"AttributeValueList": [N("1")]}}}, SCAN)
