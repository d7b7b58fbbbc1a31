"""Property tests for the order-preserving key encoding (dynamolog.keys)."""

from __future__ import annotations

import base64
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.attrs import normalize_number
from dynamolog.keys import (
    decode_item_key,
    decode_value,
    encode_item_key,
    encode_value,
    hash_prefix,
    partition_hash,
)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Valid DynamoDB numbers as normalized strings, including 38-digit values and extremes."""
    ndigits = draw(st.integers(1, 38))
    digits = draw(st.integers(0, 10**ndigits - 1))
    if digits == 0:
        return "0"
    d = Decimal(digits).scaleb(draw(st.integers(-130 - 38, 126)))
    if draw(st.booleans()):
        d = -d
    mag = abs(d)
    if mag < Decimal("1E-130") or mag > Decimal("9.9999999999999999999999999999999999999E+125"):
        edges = ["0", "1", "-1", "1E-130", "-1E-130", "9.9999999999999999999999999999999999999E+125"]
        return normalize_number(draw(st.sampled_from(edges)))
    return normalize_number(format(d, "f") if abs(d.adjusted()) < 200 else str(d))


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


@settings(max_examples=500)
@given(numbers(), numbers())
def test_number_order(a: str, b: str) -> None:
    ea, eb = encode_value({"N": a}), encode_value({"N": b})
    assert _cmp(ea, eb) == _cmp(Decimal(a), Decimal(b))


@settings(max_examples=300)
@given(numbers())
def test_number_round_trip(a: str) -> None:
    assert decode_value(encode_value({"N": a}), "N") == {"N": normalize_number(a)}


def test_number_edges() -> None:
    vals = [
        "-9.9999999999999999999999999999999999999E+125",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.1",
        "0.11",
        "1",
        "1.05",
        "1.1",
        "10",
        "12345678901234567890123456789012345678",
        "9.9999999999999999999999999999999999999E+125",
    ]
    encs = [encode_value({"N": normalize_number(v)}) for v in vals]
    assert encs == sorted(encs)
    for v, e in zip(vals, encs):
        assert decode_value(e, "N") == {"N": normalize_number(v)}


@given(st.text(), st.text())
def test_string_order(a: str, b: str) -> None:
    ea, eb = encode_value({"S": a}), encode_value({"S": b})
    assert _cmp(ea, eb) == _cmp(a.encode(), b.encode())
    assert decode_value(ea, "S") == {"S": a}


@given(st.binary(), st.binary())
def test_binary_order(a: bytes, b: bytes) -> None:
    ea, eb = encode_value({"B": _b64(a)}), encode_value({"B": _b64(b)})
    assert _cmp(ea, eb) == _cmp(a, b)
    assert decode_value(ea, "B") == {"B": _b64(a)}


def test_partition_hash_stable() -> None:
    h = partition_hash({"S": "abc"})
    assert 0 <= h < 2**64
    assert h == partition_hash({"S": "abc"})
    assert partition_hash({"N": "1.0"}) == partition_hash({"N": "1"})
    assert partition_hash({"S": "1"}) != partition_hash({"N": "1"})


@settings(max_examples=300)
@given(st.text(), st.lists(numbers(), min_size=2, max_size=8, unique_by=Decimal), st.text())
def test_item_keys_sorted_by_range(h: str, ranges: list[str], other: str) -> None:
    hav = {"S": h}
    keys = [encode_item_key(hav, {"N": r}) for r in ranges]
    by_key = [r for _, r in sorted(zip(keys, ranges))]
    assert by_key == sorted(ranges, key=Decimal)
    prefix = hash_prefix(hav)
    assert all(k.startswith(prefix) for k in keys)
    if other != h:
        assert not encode_item_key({"S": other}, {"N": ranges[0]}).startswith(prefix)
    for k, r in zip(keys, ranges):
        assert decode_item_key(k, "S", "N") == (hav, {"N": r})


@given(st.binary(), st.one_of(st.none(), st.binary()))
def test_item_key_round_trip_binary(h: bytes, r: bytes | None) -> None:
    hav = {"B": _b64(h)}
    rav = None if r is None else {"B": _b64(r)}
    key = encode_item_key(hav, rav)
    assert decode_item_key(key, "B", None if r is None else "B") == (hav, rav)


@given(st.lists(st.text(), min_size=2, max_size=6, unique=True))
def test_hash_prefixes_not_prefixes(values: list[str]) -> None:
    prefixes = [hash_prefix({"S": v}) for v in values]
    for i, a in enumerate(prefixes):
        for j, b in enumerate(prefixes):
            assert i == j or not b.startswith(a)
