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
    # a missing top-level attribute and a missing key of an existing map are no-ops
    out = upd("REMOVE a, m.x, absent, m.q", {"a": N("1"), "b": N("2"), "m": {"M": {"x": N("1")}}})
    assert out == {"b": N("2"), "m": {"M": {}}}


BAD_PATH = "The document path provided in the update expression is invalid for update"
NESTED = {
    "s": S("text"),
    "n": N("1"),
    "m": {"M": {"x": N("1"), "deep": {"M": {"y": N("2")}}, "ls": {"L": [N("0"), N("1")]}}},
    "l": {"L": [N("0"), {"L": [N("1"), N("2")]}, {"M": {"k": N("3")}}]},
}


@pytest.mark.parametrize("text", [
    "REMOVE a.b.c",        # top-level parent missing
    "REMOVE a.b",
    "REMOVE a[1]",
    "REMOVE m.q.r",        # intermediate map key missing
    "REMOVE m.q[1]",
    "REMOVE s.x",          # parent of the wrong type: a string, a number
    "REMOVE s[0]",
    "REMOVE n.x.y",
    "REMOVE m[0]",         # a map indexed as a list
    "REMOVE l.x",          # a list used as a map
    "REMOVE m.deep[0]",
    "REMOVE m.ls.x",
    "REMOVE l[1].k",
    "REMOVE l[2][0]",
    "REMOVE l[7].k",       # list element past the end, used as a parent
    "REMOVE l[7][0]",
    "REMOVE m.x.y",        # the parent is a number inside a map
    "REMOVE m.x[0]",
])
def test_remove_invalid_parent(text):
    assert upd_err(text, NESTED) == BAD_PATH


def test_remove_invalid_parent_changes_nothing():
    # one bad path refuses the whole update, valid parts included; the input is not mutated
    item = {"a": N("1"), "m": {"M": {"x": N("1")}}, "s": S("t")}
    before = {"a": N("1"), "m": {"M": {"x": N("1")}}, "s": S("t")}
    assert upd_err("SET b = :v REMOVE a, m.x, s.z ADD c :v", item, {":v": N("1")}) == BAD_PATH
    assert item == before


def test_remove_invalid_parent_with_names():
    assert upd_err("REMOVE #a.#b", {"s": S("t")}, names={"#a": "s", "#b": "b"}) == BAD_PATH


def test_remove_nested_valid_paths():
    # the parents exist with the right type: missing leaves and indexes past the end are no-ops
    out = upd("REMOVE m.deep.y, m.deep.nope, m.ls[1], m.ls[5], l[1][0], l[1][9], l[2].k, l[2].nope, top",
              NESTED)
    assert out == {
        "s": S("text"),
        "n": N("1"),
        "m": {"M": {"x": N("1"), "deep": {"M": {}}, "ls": {"L": [N("0")]}}},
        "l": {"L": [N("0"), {"L": [N("2")]}, {"M": {}}]},
    }


def test_remove_invalid_parent_on_new_item_is_ignored():
    # DynamoDB ignores REMOVE of a nested path when the item does not exist (SET still fails)
    assert upd("REMOVE a.b.c, x[1]", None) == {}
    r = Resolver(None, None)
    u = r.update(parse_update("REMOVE a.b, x[0]"))
    r.finish()
    key = {"pk": S("k")}
    assert apply_update(u, key, exists=False) == key
    with pytest.raises(ApiError):
        apply_update(u, key)  # the same key-only item, stored: refused
    assert upd_err("SET a.b = :v", None, {":v": N("1")}) == BAD_PATH


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


def test_overlap_after_name_substitution_shows_names_as_written():
    assert "path one: [#x], path two: [a]" in upd_err("SET #x = :v ADD a :v", {}, {":v": N("1")}, {"#x": "a"})


def test_conflicting_paths():
    assert upd_err("SET a.b = :v, a[0] = :v", {}, {":v": N("1")}) == (
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one "
        "of these paths; path one: [a, b], path two: [a, [0]]")


def test_sibling_paths_allowed():
    out = upd("SET m.a = :v, m.b = :v", {"m": {"M": {}}}, {":v": N("1")})
    assert out == {"m": {"M": {"a": N("1"), "b": N("1")}}}


def test_unused_value_in_update():
    assert upd_err("SET a = :v", {}, {":v": N("1"), ":w": N("2")}) == (
        "1 validation error detected: Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}")


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
