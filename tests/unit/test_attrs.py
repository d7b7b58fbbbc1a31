"""Unit tests for dynamolog.attrs (validation, numbers, sizes)."""

from __future__ import annotations

import base64
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.attrs import (
    MAX_ITEM_BYTES,
    from_python,
    item_size,
    normalize_number,
    to_python,
    validate_item,
    validate_value,
)
from dynamolog.errors import ApiError


@pytest.mark.parametrize(
    "text,out",
    [
        ("1.50", "1.5"),
        ("01", "1"),
        ("-0", "0"),
        ("1E+2", "100"),
        ("1.23e-5", "0.0000123"),
        ("0.000", "0"),
        ("-1.2300e3", "-1230"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+7", "7"),
        ("1" * 38 + "000", "1" * 38 + "000"),
        ("1e-130", "0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "9" * 38 + "0" * 88),
    ],
)
def test_normalize_number(text: str, out: str) -> None:
    assert normalize_number(text) == out
    assert Decimal(out) == Decimal(text)


_OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"


@pytest.mark.parametrize(
    "text,msg",
    [
        ("", "A value provided cannot be converted into a number"),
        (" 1", "A value provided cannot be converted into a number"),
        ("1 ", "A value provided cannot be converted into a number"),
        ("NaN", "A value provided cannot be converted into a number"),
        ("Infinity", "A value provided cannot be converted into a number"),
        ("1_0", "A value provided cannot be converted into a number"),
        ("abc", "A value provided cannot be converted into a number"),
        ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
        ("1e126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("-1e999999999999999999999", _OVERFLOW),
        (
            "1e-131",
            "Number underflow. Attempting to store a number with magnitude smaller than supported range",
        ),
    ],
)
def test_normalize_number_errors(text: str, msg: str) -> None:
    with pytest.raises(ApiError) as e:
        normalize_number(text)
    assert e.value.type_name == "ValidationException"
    assert e.value.message == msg


def _err(av: object) -> ApiError:
    with pytest.raises(ApiError) as e:
        validate_value(av)
    return e.value


def test_validate_value_normalizes() -> None:
    assert validate_value({"N": "1.50"}) == {"N": "1.5"}
    assert validate_value({"NS": ["1", "2.0"]}) == {"NS": ["1", "2"]}
    assert validate_value({"M": {"a": {"L": [{"N": "01"}, {"NULL": True}]}}}) == {
        "M": {"a": {"L": [{"N": "1"}, {"NULL": True}]}}
    }
    assert validate_value({"B": "AAEC"}) == {"B": "AAEC"}
    assert validate_value({"S": ""}) == {"S": ""}


@pytest.mark.parametrize(
    "av,type_name,msg",
    [
        ({"S": 5}, "SerializationException", "NUMBER_VALUE cannot be converted to String"),
        ({"BOOL": "x"}, "SerializationException", "STRING_VALUE cannot be converted to Boolean"),
        ({"X": "a"}, "SerializationException", "Unexpected field type"),
        ("a", "SerializationException", "STRING_VALUE cannot be converted to AttributeValue"),
        (
            {},
            "ValidationException",
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        ),
        (
            {"S": "a", "N": "1"},
            "ValidationException",
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
        ),
        (
            {"NULL": False},
            "ValidationException",
            "One or more parameter values were invalid: Null attribute value types must have the value of true",
        ),
        (
            {"SS": []},
            "ValidationException",
            "1 validation error detected: One or more parameter values were invalid: An string set  may not be empty",
        ),
        (
            {"NS": []},
            "ValidationException",
            "1 validation error detected: One or more parameter values were invalid: An number set  may not be empty",
        ),
        (
            {"BS": []},
            "ValidationException",
            "1 validation error detected: One or more parameter values were invalid: An binary set  may not be empty",
        ),
        (
            {"SS": ["a", "a"]},
            "ValidationException",
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
        ),
        (
            {"NS": ["1", "1.0"]},
            "ValidationException",
            "One or more parameter values were invalid: Input collection [1, 1.0] contains duplicates.",
        ),
        (
            {"B": "abc"},
            "SerializationException",
            "Base64 encoded length is expected a multiple of 4 bytes but found: 3",
        ),
        ({"N": "x"}, "ValidationException", "A value provided cannot be converted into a number"),
    ],
)
def test_validate_value_errors(av: object, type_name: str, msg: str) -> None:
    e = _err(av)
    assert (e.type_name, e.message) == (type_name, msg)


def test_wrong_container_types() -> None:
    assert _err({"M": []}).type_name == "SerializationException"
    assert _err({"L": {}}).type_name == "SerializationException"
    assert _err({"S": {}}).type_name == "SerializationException"


def test_nesting_limit() -> None:
    av: dict = {"S": "x"}
    for _ in range(32):
        av = {"L": [av]}
    validate_value(av)
    e = _err({"M": {"a": av}})
    assert e.message == "Nesting Levels have exceeded supported limits"


def test_key_empty_string() -> None:
    with pytest.raises(ApiError) as e:
        validate_value({"S": ""}, key_name="pk")
    assert e.value.message.endswith("cannot contain an empty string value. Key: pk")


def test_validate_item() -> None:
    assert validate_item({"a": {"N": "1.0"}}) == {"a": {"N": "1"}}
    with pytest.raises(ApiError):
        validate_item({"a": {"NULL": False}})


def test_item_size() -> None:
    assert MAX_ITEM_BYTES == 409600
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"b": {"B": "AAEC"}}) == 1 + 3
    assert item_size({"t": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"S": "v"}, {"S": "w"}]}}) == 1 + 3 + 2 + 2
    assert item_size({"s": {"SS": ["a", "bc"]}}) == 1 + 3
    # names, map keys, strings and set members outside ASCII count their UTF-8 bytes
    assert item_size({"é": {"S": "😀"}}) == 2 + 4
    assert item_size({"m": {"M": {"ü": {"S": "é"}}}}) == 1 + 3 + 2 + 2 + 1
    assert item_size({"s": {"SS": ["ä", "b"]}}) == 1 + 3


def test_python_round_trip() -> None:
    value = {
        "s": "x",
        "n": Decimal("1.5"),
        "b": b"\x00",
        "t": True,
        "z": None,
        "l": [1, "a"],
        "ss": {"a", "b"},
        "ns": {Decimal(1), Decimal(2)},
        "bs": {b"a"},
    }
    av = from_python(value)
    assert validate_value(av) == av
    back = to_python(av)
    assert back["l"] == [Decimal(1), "a"]
    assert back == {**value, "l": [Decimal(1), "a"]}


_names = st.text(min_size=1, max_size=6)
_numbers = st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: str(d.normalize()))
_binaries = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
_scalars = st.one_of(
    st.text(max_size=12).map(lambda s: {"S": s}), _numbers.map(lambda n: {"N": n}),
    _binaries.map(lambda b: {"B": b}), st.booleans().map(lambda b: {"BOOL": b}), st.just({"NULL": True}),
    st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True).map(lambda v: {"SS": v}),
    st.lists(_numbers, min_size=1, max_size=4, unique=True).map(lambda v: {"NS": v}),
    st.lists(_binaries, min_size=1, max_size=4, unique=True).map(lambda v: {"BS": v}),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda v: {"L": v}),
    st.dictionaries(_names, inner, max_size=4).map(lambda v: {"M": v})), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_names, _values, min_size=1, max_size=6))
def test_stored_json_bounds_the_item_size(item: dict[str, dict[str, object]]) -> None:
    """A GetItem of an item stored in at most 4 KB of JSON is charged one read unit without its
    size being computed (services/storage/reads.py): that rests on this bound."""
    assert len(orjson.dumps(item)) >= item_size(item)
