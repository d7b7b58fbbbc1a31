"""Evaluation of conditions, projections and key conditions."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamolog.errors import ApiError
from dynamolog.expr import (
    Resolver,
    evaluate,
    expression_paths,
    key_condition_parts,
    parse_condition,
    parse_key_condition,
    parse_projection,
    project,
)
from dynamolog.expr.ast import Path


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


ITEM = {
    "pk": {"S": "p"},
    "n": {"N": "10"},
    "s": {"S": "hello"},
    "b": {"B": b64(b"\x01\x02\x03")},
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "m": {"M": {"x": {"N": "1"}, "y": {"L": [{"S": "a"}, {"S": "b"}]}}},
    "l": {"L": [{"N": "1"}, {"S": "two"}, {"M": {"k": {"S": "v"}}}]},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b64(b"x")]},
}


def check(text: str, values: dict | None = None, item: dict | None = ITEM, names: dict | None = None) -> bool:
    r = Resolver(names, values)
    cond = r.condition(parse_condition(text), "ConditionExpression")
    return evaluate(cond, item)


def N(x: str) -> dict:
    return {"N": x}


def S(x: str) -> dict:
    return {"S": x}


# ---------------------------------------------------------------- comparisons


def test_equal_numbers_by_value():
    assert check("n = :v", {":v": N("10.00")})
    assert check("n = :v", {":v": N("1E1")})


def test_not_equal_and_absent_attribute():
    assert check("n <> :v", {":v": N("3")})
    assert check("absent <> :v", {":v": N("3")})
    assert not check("absent = :v", {":v": N("3")})


def test_ordering_numbers_decimal():
    assert check("n > :v", {":v": N("9.99999999999999999999999999999999999")})
    assert check("n <= :v", {":v": N("10")})
    assert not check("n < :v", {":v": N("10")})


def test_string_order_by_utf8_bytes():
    # U+FF5E sorts before U+1F600 in UTF-16 but after... by bytes both are compared as UTF-8
    item = {"s": S("\uffff")}
    assert check("s < :v", {":v": S("\U0001F600")}, item)


def test_binary_order():
    assert check("b > :v", {":v": {"B": b64(b"\x01\x02")}})


def test_cross_type_comparison_is_false():
    assert not check("n < :v", {":v": S("z")})
    assert not check("s = :v", {":v": N("1")})


def test_nested_paths():
    assert check("m.y[1] = :v", {":v": S("b")})
    assert check("l[2].k = :v", {":v": S("v")})
    assert not check("l[9] = :v", {":v": S("v")})


def test_map_list_set_equality():
    assert check("m = :v", {":v": {"M": {"y": {"L": [S("a"), S("b")]}, "x": N("1.0")}}})
    assert check("ns = :v", {":v": {"NS": ["2.50", "1"]}})
    assert not check("l = :v", {":v": {"L": [N("1")]}})


def test_between():
    assert check("n BETWEEN :a AND :b", {":a": N("1"), ":b": N("10")})
    assert not check("n BETWEEN :a AND :b", {":a": N("11"), ":b": N("20")})
    assert not check("s BETWEEN :a AND :b", {":a": N("1"), ":b": N("20")})


def test_in():
    assert check("s IN (:a, :b)", {":a": S("x"), ":b": S("hello")})
    assert not check("s IN (:a)", {":a": S("x")})


def test_comparison_between_paths():
    item = {"a": N("1"), "b": N("2")}
    assert check("a < b", None, item)


# ---------------------------------------------------------------- logic


def test_and_or_not():
    v = {":a": N("10"), ":b": S("nope")}
    assert check("n = :a AND NOT s = :b", v)
    assert check("s = :b OR n = :a", v)
    assert not check("NOT (s = :b OR n = :a)", v)


def test_precedence_semantics():
    v = {":t": N("10"), ":f": S("no")}
    # true OR (false AND false) -> true ; (true OR false) AND false -> false
    assert check("n = :t OR s = :f AND s = :f", v)
    assert not check("(n = :t OR s = :f) AND s = :f", v)


def test_absent_item():
    assert check("attribute_not_exists(pk)", None, None)
    assert not check("attribute_exists(pk)", None, None)


# ---------------------------------------------------------------- functions


def test_attribute_exists():
    assert check("attribute_exists(m.x)")
    assert check("attribute_exists(z)")
    assert not check("attribute_exists(m.q)")


def test_attribute_not_exists():
    assert check("attribute_not_exists(q)")
    assert not check("attribute_not_exists(l[0])")


@pytest.mark.parametrize("attr,t", [("n", "N"), ("s", "S"), ("b", "B"), ("t", "BOOL"), ("z", "NULL"),
                                    ("m", "M"), ("l", "L"), ("ss", "SS"), ("ns", "NS"), ("bs", "BS")])
def test_attribute_type(attr, t):
    assert check(f"attribute_type({attr}, :t)", {":t": S(t)})
    assert not check(f"attribute_type({attr}, :t)", {":t": S("S" if t != "S" else "N")})


def test_begins_with():
    assert check("begins_with(s, :p)", {":p": S("he")})
    assert not check("begins_with(s, :p)", {":p": S("lo")})
    assert check("begins_with(b, :p)", {":p": {"B": b64(b"\x01")}})
    assert not check("begins_with(n, :p)", {":p": S("1")})


def test_contains_string_set_list():
    assert check("contains(s, :v)", {":v": S("ell")})
    assert check("contains(ss, :v)", {":v": S("a")})
    assert check("contains(ns, :v)", {":v": N("2.50")})
    assert check("contains(bs, :v)", {":v": {"B": b64(b"x")}})
    assert check("contains(l, :v)", {":v": S("two")})
    assert not check("contains(ss, :v)", {":v": N("1")})
    assert not check("contains(n, :v)", {":v": N("1")})


def test_size():
    assert check("size(s) = :v", {":v": N("5")})
    assert check("size(b) = :v", {":v": N("3")})
    assert check("size(l) = :v", {":v": N("3")})
    assert check("size(m) = :v", {":v": N("2")})
    assert check("size(ss) = :v", {":v": N("2")})
    assert not check("size(n) = :v", {":v": N("2")})
    assert not check("size(q) >= :v", {":v": N("0")})


def test_expression_paths():
    cond = parse_condition("a.b = :v AND size(c) > :n OR contains(d, e)")
    assert expression_paths(cond) == [Path(("a", "b")), Path(("c",)), Path(("d",)), Path(("e",))]


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_number_ordering_property(a, b):
    item = {"x": N(str(a))}
    assert check("x < :v", {":v": N(str(b))}, item) == (a < b)
    assert check("x = :v", {":v": N(f"{b}.000")}, item) == (a == b)


# ---------------------------------------------------------------- projection


def proj(text: str, item: dict = ITEM, names: dict | None = None) -> dict:
    r = Resolver(names, None)
    return project(item, r.projection(parse_projection(text)))


def test_project_top_level():
    assert proj("n, s, absent") == {"n": N("10"), "s": S("hello")}


def test_project_nested_keeps_structure():
    assert proj("m.y[1]") == {"m": {"M": {"y": {"L": [S("b")]}}}}


def test_project_list_indexes_compacted_in_order():
    assert proj("l[2].k, l[0]") == {"l": {"L": [N("1"), {"M": {"k": S("v")}}]}}


def test_project_absent_nested_omitted():
    assert proj("m.q, l[7], s.x") == {}


def test_project_with_names():
    assert proj("#a.x", names={"#a": "m"}) == {"m": {"M": {"x": N("1")}}}


# ---------------------------------------------------------------- key conditions


def kc(text: str, values: dict, hash_key: str = "pk", range_key: str | None = "sk"):
    r = Resolver(None, values)
    cond = r.condition(parse_key_condition(text), "KeyConditionExpression")
    return key_condition_parts(cond, hash_key, range_key)


def kc_err(*args, **kwargs) -> str:
    with pytest.raises(ApiError) as e:
        kc(*args, **kwargs)
    return e.value.message


def test_key_condition_hash_only():
    assert kc("pk = :v", {":v": S("a")}) == (S("a"), None)


@pytest.mark.parametrize("op,name", [("=", "EQ"), ("<", "LT"), ("<=", "LE"), (">", "GT"), (">=", "GE")])
def test_key_condition_range_ops(op, name):
    assert kc(f"pk = :v AND sk {op} :s", {":v": S("a"), ":s": N("1")}) == (S("a"), (name, N("1")))


def test_key_condition_reversed_operands():
    assert kc(":s < sk AND pk = :v", {":v": S("a"), ":s": N("1")}) == (S("a"), ("GT", N("1")))


def test_key_condition_between_and_begins_with():
    v = {":v": S("a"), ":lo": N("1"), ":hi": N("5")}
    assert kc("pk = :v AND sk BETWEEN :lo AND :hi", v)[1] == ("BETWEEN", N("1"), N("5"))
    assert kc("begins_with(sk, :p) AND pk = :v", {":v": S("a"), ":p": S("x")})[1] == ("BEGINS_WITH", S("x"))


def test_key_condition_absent_hash():
    assert kc_err("sk = :v", {":v": S("a")}) == "Query condition missed key schema element: pk"


def test_key_condition_hash_not_eq():
    assert kc_err("pk > :v", {":v": S("a")}) == "Query key condition not supported"


def test_key_condition_non_key_attribute():
    assert kc_err("pk = :v AND extra = :w", {":v": S("a"), ":w": S("b")}) == (
        "Query condition missed key schema element: sk")


def test_key_condition_range_without_range_key():
    assert kc_err("pk = :v AND sk = :w", {":v": S("a"), ":w": S("b")}, range_key=None) == (
        "Query key condition not supported")


def test_key_condition_two_conditions_same_key():
    assert "only contain one condition per key" in kc_err("pk = :v AND pk = :w", {":v": S("a"), ":w": S("b")})


def test_key_condition_too_many():
    v = {":v": S("a"), ":w": S("b"), ":x": S("c")}
    assert "too many conditions" in kc_err("pk = :v AND sk = :w AND x = :x", v)


def test_key_condition_between_bounds():
    assert kc_err("pk = :v AND sk BETWEEN :a AND :b", {":v": S("a"), ":a": N("5"), ":b": N("1")}) == (
        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal "
        "to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}")


def test_key_condition_begins_with_number():
    assert "operator or function: begins_with, operand type: N" in kc_err(
        "pk = :v AND begins_with(sk, :p)", {":v": S("a"), ":p": N("1")})


def test_key_condition_nested_attribute():
    assert "nested" in kc_err("pk.x = :v", {":v": S("a")})


def test_long_numbers_compare_exactly():
    item = {"x": N("1.0000000000000000000000000000000000000001")}
    assert check("x > :v", {":v": N("1")}, item)
    assert check("x = :v", {":v": N("1.00000000000000000000000000000000000000010")}, item)
