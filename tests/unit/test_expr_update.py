"""Update expressions: resolution checks and application to items."""

from __future__ import annotations

import pytest

from dynamolog.errors import ApiError
from dynamolog.expr import Resolver, apply_update, parse_update, updated_paths


def N(x: str) -> dict:
    return {"N": x}


def S(x: str) -> dict:
    return {"S": x}


def upd(text: str, item: dict | None, values: dict | None = None, names: dict | None = None) -> dict:
    r = Resolver(names, values)
    u = r.update(parse_update(text))
    r.finish()
    return apply_update(u, item)


def upd_err(*args, **kwargs) -> str:
    with pytest.raises(ApiError) as e:
        upd(*args, **kwargs)
    assert e.value.type_name == "ValidationException"
    return e.value.message


# ---------------------------------------------------------------- SET


def test_set_creates_item_and_does_not_mutate_input():
    item = {"a": N("1")}
    out = upd("SET b = :v", item, {":v": S("x")})
    assert out == {"a": N("1"), "b": S("x")}
    assert item == {"a": N("1")}


def test_set_on_absent_item():
    assert upd("SET a = :v", None, {":v": N("1")}) == {"a": N("1")}


def test_set_nested_map_and_list():
    item = {"m": {"M": {}}, "l": {"L": [N("1"), N("2")]}}
    out = upd("SET m.x = :v, l[1] = :v", item, {":v": S("y")})
    assert out == {"m": {"M": {"x": S("y")}}, "l": {"L": [N("1"), S("y")]}}


def test_set_list_index_past_end_appends():
    out = upd("SET l[10] = :v", {"l": {"L": [N("1")]}}, {":v": N("2")})
    assert out == {"l": {"L": [N("1"), N("2")]}}


def test_set_invalid_parent():
    assert upd_err("SET m.x = :v", {}, {":v": N("1")}) == (
        "The document path provided in the update expression is invalid for update")
    assert upd_err("SET s[0] = :v", {"s": S("a")}, {":v": N("1")}) == (
        "The document path provided in the update expression is invalid for update")


def test_set_arithmetic():
    out = upd("SET a = a + :one, b = :ten - a", {"a": N("2.5")}, {":one": N("0.5"), ":ten": N("10")})
    assert out == {"a": N("3"), "b": N("7.5")}


def test_set_arithmetic_normalizes():
    assert upd("SET a = :x + :y", None, {":x": N("1.50"), ":y": N("1E2")}) == {"a": N("101.5")}
    assert upd("SET a = :x - :x", None, {":x": N("7.25")}) == {"a": N("0")}


def test_set_arithmetic_literal_type_error():
    assert upd_err("SET a = a + :v", {"a": N("1")}, {":v": S("x")}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; "
        "operator or function: +, operand type: S")


def test_set_arithmetic_runtime_type_error():
    assert upd_err("SET a = a + :v", {"a": S("x")}, {":v": N("1")}) == (
        "An operand in the update expression has an incorrect data type")


def test_set_absent_operand_attribute():
    assert upd_err("SET a = b", {}, None) == (
        "The provided expression refers to an attribute that does not exist in the item")


def test_set_values_read_from_original_item():
    out = upd("SET a = b, b = a", {"a": N("1"), "b": N("2")})
    assert out == {"a": N("2"), "b": N("1")}


def test_if_not_exists():
    v = {":d": N("0")}
    assert upd("SET a = if_not_exists(a, :d)", {}, v) == {"a": N("0")}
    assert upd("SET a = if_not_exists(a, :d)", {"a": N("5")}, v) == {"a": N("5")}


def test_if_not_exists_counter():
    v = {":z": N("0"), ":one": N("1")}
    assert upd("SET c = if_not_exists(c, :z) + :one", None, v) == {"c": N("1")}


def test_list_append():
    item = {"l": {"L": [N("1")]}}
    out = upd("SET l = list_append(l, :v), k = list_append(:v, l)", item, {":v": {"L": [N("2")]}})
    assert out["l"] == {"L": [N("1"), N("2")]}
    assert out["k"] == {"L": [N("2"), N("1")]}


def test_list_append_type_errors():
    assert "operator or function: list_append, operand type: S" in upd_err(
        "SET l = list_append(l, :v)", {"l": {"L": []}}, {":v": S("x")})
    assert upd_err("SET l = list_append(l, :v)", {"l": S("x")}, {":v": {"L": []}}) == (
        "An operand in the update expression has an incorrect data type")


def test_number_overflow():
    assert "Number overflow" in upd_err("SET a = :x + :x", None, {":x": N("9.9E125")})


# ---------------------------------------------------------------- REMOVE


def test_remove_attributes():
    out = upd("REMOVE a, m.x, absent, m.q.r", {"a": N("1"), "b": N("2"), "m": {"M": {"x": N("1")}}})
    assert out == {"b": N("2"), "m": {"M": {}}}


def test_remove_list_indexes_shift():
    item = {"l": {"L": [N("0"), N("1"), N("2"), N("3")]}}
    assert upd("REMOVE l[1], l[2]", item) == {"l": {"L": [N("0"), N("3")]}}
    assert upd("REMOVE l[9]", item) == item


# ---------------------------------------------------------------- ADD


def test_add_number_and_create():
    v = {":n": N("5")}
    assert upd("ADD a :n", {"a": N("1")}, v) == {"a": N("6")}
    assert upd("ADD a :n", None, v) == {"a": N("5")}


def test_add_set_union():
    out = upd("ADD s :v", {"s": {"SS": ["a", "b"]}}, {":v": {"SS": ["b", "c"]}})
    assert sorted(out["s"]["SS"]) == ["a", "b", "c"]
    out = upd("ADD s :v", {"s": {"NS": ["1"]}}, {":v": {"NS": ["1.0", "2"]}})
    assert sorted(out["s"]["NS"]) == ["1", "2"]


def test_add_literal_type():
    assert upd_err("ADD a :v", {}, {":v": S("x")}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; "
        "operator: ADD, operand type: STRING")


def test_add_runtime_type_mismatch():
    assert upd_err("ADD a :v", {"a": {"SS": ["x"]}}, {":v": {"NS": ["1"]}}) == (
        "An operand in the update expression has an incorrect data type")
    assert upd_err("ADD a :v", {"a": S("x")}, {":v": N("1")}) == (
        "An operand in the update expression has an incorrect data type")


# ---------------------------------------------------------------- DELETE


def test_delete_from_set():
    out = upd("DELETE s :v", {"s": {"SS": ["a", "b", "c"]}}, {":v": {"SS": ["b", "z"]}})
    assert out == {"s": {"SS": ["a", "c"]}}


def test_delete_all_members_removes_attribute():
    assert upd("DELETE s :v", {"s": {"NS": ["1"]}, "k": N("1")}, {":v": {"NS": ["1.00"]}}) == {"k": N("1")}


def test_delete_absent_attribute_noop():
    assert upd("DELETE s :v", {}, {":v": {"SS": ["a"]}}) == {}


def test_delete_literal_must_be_set():
    assert upd_err("DELETE s :v", {}, {":v": N("1")}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; "
        "operator: DELETE, operand type: NUMBER")


def test_delete_type_mismatch():
    assert upd_err("DELETE s :v", {"s": {"SS": ["a"]}}, {":v": {"NS": ["1"]}}) == (
        "An operand in the update expression has an incorrect data type")


# ---------------------------------------------------------------- overlaps and resolution


def test_overlapping_paths():
    assert upd_err("SET a = :v REMOVE a.b", {}, {":v": N("1")}) == (
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one "
        "of these paths; path one: [a], path two: [a, b]")


def test_same_path_twice_overlaps():
    assert "overlap" in upd_err("SET a = :v, a = :v", {}, {":v": N("1")})


def test_overlap_after_name_substitution():
    assert "path one: [a], path two: [a]" in upd_err("SET #x = :v ADD a :v", {}, {":v": N("1")}, {"#x": "a"})


def test_conflicting_paths():
    assert upd_err("SET a.b = :v, a[0] = :v", {}, {":v": N("1")}) == (
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one "
        "of these paths; path one: [a, b], path two: [a, [0]]")


def test_sibling_paths_allowed():
    out = upd("SET m.a = :v, m.b = :v", {"m": {"M": {}}}, {":v": N("1")})
    assert out == {"m": {"M": {"a": N("1"), "b": N("1")}}}


def test_unused_value_in_update():
    assert upd_err("SET a = :v", {}, {":v": N("1"), ":w": N("2")}) == (
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}")


def test_undefined_value_in_update():
    assert upd_err("SET a = :v", {}, {":w": N("2")}) == (
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :v")


def test_updated_paths():
    r = Resolver({"#n": "name"}, {":v": N("1"), ":s": {"SS": ["a"]}})
    u = r.update(parse_update("SET #n = :v, m.x = :v REMOVE r ADD c :v DELETE m2.s :s"))
    assert updated_paths(u) == ["name", "m", "r", "c", "m2"]


def test_precision_limit():
    assert upd_err("SET a = :x + :y", None, {":x": N("1E20"), ":y": N("1E-20")}) == (
        "Attempting to store more than 38 significant digits in a Number")
