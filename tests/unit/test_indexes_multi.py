"""Entry keys of global indexes with multi-attribute keys: order per attribute and type, bounds of
a Query's conditions, the single-attribute bytes unchanged, sparse entries, key conditions."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog import errors, expr
from dynamolog.catalog import GlobalIndex
from dynamolog.indexes import (
    composite_hash,
    composite_prefix,
    entry_key,
    index_key_range,
    index_keys,
    index_ops,
    project,
    sort_prefix,
)
from dynamolog.keys import encode_item_key, hash_prefix, partition_hash

GSI = GlobalIndex(index_name="m", index_id="t#m", hash_key="a", range_key="s1", projection_type="KEYS_ONLY",
                  non_key_attributes=(), status="ACTIVE", partition_ids=("p",), more_hash_keys=("b",),
                  more_range_keys=("s2", "s3"))
TYPES = {"pk": "S", "a": "S", "b": "N", "s1": "S", "s2": "N", "s3": "B"}


def base(pk: str) -> bytes:
    return encode_item_key({"S": pk})


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# values of three types whose DynamoDB order is known: S by UTF-8 bytes, N numerically, B bytewise
_S = st.text(max_size=4)
_N = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
_B = st.binary(max_size=4)


@settings(max_examples=300)
@given(st.lists(st.tuples(_S, _N, _B, st.text(min_size=1, max_size=3)), min_size=2, max_size=25))
def test_entries_sort_by_each_sort_key_attribute_in_turn_each_by_its_type(rows: list[Any]) -> None:
    # The composite sort key orders by s1 (S), then s2 (N), then s3 (B), then the base item's key.
    keyed = []
    for s, n, b, pk in rows:
        k = entry_key([{"S": "x"}, {"N": "1"}], [{"S": s}, {"N": str(n)}, {"B": b64(b)}], base(pk))
        keyed.append((k, (s.encode(), Decimal(n), b, base(pk))))
    assert [t for _, t in sorted(keyed, key=lambda e: e[0])] == sorted(t for _, t in keyed)


@given(_S, st.integers(-10**6, 10**6))
def test_one_attribute_keeps_the_existing_bytes(h: str, r: int) -> None:
    # Data written before multi-attribute keys must stay readable: one attribute, same bytes.
    old_layout = hash_prefix({"S": h}) + sort_prefix([{"N": str(r)}]) + base("p")
    assert entry_key({"S": h}, {"N": str(r)}, base("p")) == old_layout
    assert entry_key([{"S": h}], [{"N": str(r)}], base("p")) == old_layout
    assert entry_key({"S": h}, None, base("p")) == hash_prefix({"S": h}) + base("p")
    assert composite_hash([{"S": h}]) == partition_hash({"S": h})


def test_partition_key_combinations_hash_apart_and_share_a_prefix() -> None:
    # ("ab", "c") and ("a", "bc") must not collide: each value is delimited before hashing.
    one = composite_prefix([{"S": "ab"}, {"S": "c"}])
    two = composite_prefix([{"S": "a"}, {"S": "bc"}])
    assert one != two and one[:8] != two[:8]
    assert one[:8] == composite_hash([{"S": "ab"}, {"S": "c"}]).to_bytes(8, "big")
    assert entry_key([{"S": "ab"}, {"S": "c"}], [{"S": "z"}], base("p")).startswith(one)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5)), min_size=1, max_size=30),
       st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.integers(0, 5))
def test_equality_on_leading_attributes_then_a_range_on_the_next(rows: list[tuple[str, int]], s1: str,
                                                                 lo: int, hi: int) -> None:
    # s1 = :s1 AND s2 BETWEEN :lo AND :hi reads exactly the matching entries (and GT, LE likewise).
    lo, hi = min(lo, hi), max(lo, hi)
    h = [{"S": "x"}, {"N": "1"}]
    entries = [(entry_key(h, [{"S": v}, {"N": str(n)}, {"B": "AA=="}], base(f"p{i}")), (v, n))
               for i, (v, n) in enumerate(rows)]
    prefix = composite_prefix(h) + sort_prefix([{"S": s1}])
    conds: list[tuple[list[Any] | None, Callable[[str, int], bool]]] = [
        (["BETWEEN", {"N": str(lo)}, {"N": str(hi)}], lambda v, n: v == s1 and lo <= n <= hi),
                       (["GT", {"N": str(lo)}], lambda v, n: v == s1 and n > lo),
                       (["LE", {"N": str(hi)}], lambda v, n: v == s1 and n <= hi),
                       (None, lambda v, n: v == s1)]
    for cond, want in conds:
        start, end = index_key_range(prefix, cond)
        got = sorted(t for k, t in entries if k >= start and (end is None or k < end))
        assert got == sorted(t for _, t in entries if want(*t)), cond


def test_begins_with_on_the_last_attribute_given() -> None:
    h = [{"S": "x"}, {"N": "1"}]
    words = ["ab", "abc", "b", "a", ""]
    entries = [(entry_key(h, [{"S": "k"}, {"N": "2"}, {"B": b64(w.encode())}], base(w or "e")), w) for w in words]
    prefix = composite_prefix(h) + sort_prefix([{"S": "k"}, {"N": "2"}])
    start, end = index_key_range(prefix, ["BEGINS_WITH", {"B": b64(b"ab")}])
    assert sorted(w for k, w in entries if start <= k and (end is None or k < end)) == ["ab", "abc"]


def test_an_item_missing_any_key_attribute_has_no_entry_and_keys_only_keeps_them_all() -> None:
    item = {"pk": {"S": "p"}, "a": {"S": "x"}, "b": {"N": "1"}, "s1": {"S": "k"}, "s2": {"N": "2"},
            "s3": {"B": "AA=="}, "other": {"S": "o"}}
    assert index_keys(GSI, item, TYPES) == ([{"S": "x"}, {"N": "1"}], [{"S": "k"}, {"N": "2"}, {"B": "AA=="}])
    for missing in ("a", "b", "s1", "s2", "s3"):
        assert index_keys(GSI, {k: v for k, v in item.items() if k != missing}, TYPES) is None
    assert index_keys(GSI, item | {"s2": {"S": "2"}}, TYPES) is None  # wrong type: not indexed
    assert set(project(GSI, item, ["pk"])) == {"pk", "a", "b", "s1", "s2", "s3"}
    # changing the third sort key attribute moves the entry: the old one deleted, the new one put
    ops = index_ops(GSI, base("p"), item, item | {"s3": {"B": "AQ=="}}, TYPES, ["pk"])
    assert [v is None for _, v in ops] == [True, False] and ops[0][0] != ops[1][0]
    # losing one attribute deletes the entry
    assert [v for _, v in index_ops(GSI, base("p"), item, {k: v for k, v in item.items() if k != "b"},
                                    TYPES, ["pk"])] == [None]


def _cond(text: str, values: dict[str, Any]) -> Any:
    resolver = expr.Resolver(None, values)
    return resolver.condition(expr.parse_condition(text, "KeyConditionExpression"), "KeyConditionExpression")


V = {":a": {"S": "x"}, ":b": {"N": "1"}, ":s1": {"S": "k"}, ":s2": {"N": "2"}, ":s3": {"B": "AA=="}}


def test_key_condition_rules() -> None:
    parts = expr.multi_key_condition_parts
    hk, rk = GSI.hash_keys, GSI.range_keys
    assert parts(_cond("a = :a AND b = :b", V), hk, rk) == ([V[":a"], V[":b"]], [], None)
    assert parts(_cond("s1 = :s1 AND b = :b AND a = :a AND s2 > :s2", V), hk, rk) == (
        [V[":a"], V[":b"]], [V[":s1"]], ("s2", ("GT", V[":s2"])))
    bad = [("a = :a", "Query condition missed key schema element: b"),
           ("a = :a AND b > :b", "Query key condition not supported"),
           ("a = :a AND b = :b AND s2 = :s2", "Query condition missed key schema element: s1"),
           ("a = :a AND b = :b AND s1 > :s1 AND s2 = :s2", "Query key condition not supported"),
           ("a = :a AND b = :b AND s1 = :s1 AND s3 = :s3", "Query condition missed key schema element: s2"),
           ("a = :a AND b = :b AND pk = :s1", "Query condition missed key schema element: s1")]
    for text, message in bad:
        with pytest.raises(errors.ApiError) as e:
            parts(_cond(text, V), hk, rk)
        assert message in str(e.value), text


def test_partiql_select_plans_a_query_from_every_partition_key_equality() -> None:
    from services.router.partiql_parser import check_parameters, parse, translate

    def plan(statement: str, *params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        st = parse(statement)
        r = translate(st, check_parameters(st, list(params)), "a", "s1", multi=(GSI.hash_keys, GSI.range_keys))
        return r.operation, r.params

    op, p = plan('SELECT * FROM "T"."m" WHERE a = ? AND b = ? AND s1 = ? AND s2 > ? AND s3 = ? AND x = ?',
                 V[":a"], V[":b"], V[":s1"], V[":s2"], V[":s3"], {"S": "x"})
    assert op == "Query"
    names = p["ExpressionAttributeNames"]
    cond = p["KeyConditionExpression"]
    for n in ("a", "b", "s1", "s2"):  # the key: every partition key attribute, s1 =, then s2 >
        assert any(names[k] == n for k in names if k in cond)
    assert ">" in cond and not any(names[k] in ("s3", "x") for k in names if k in cond)
    assert {names[k] for k in names if k in p["FilterExpression"]} == {"s3", "x"}
    op, p = plan('SELECT * FROM "T"."m" WHERE a = ? AND s1 = ?', V[":a"], V[":s1"])
    assert op == "Scan" and "KeyConditionExpression" not in p and len(p["ExpressionAttributeValues"]) == 2
