"""Index entry keys: order, uniqueness, key-condition bounds, projections, sparse entries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.indexes import LocalShape, entry_key, index_key_range, index_ops, project
from dynamolog.keys import encode_item_key, hash_prefix

TYPES = {"pk": "S", "g": "S", "r": "N", "s": "S"}
GSI = LocalShape(index_name="i", hash_key="g", range_key="r", projection_type="KEYS_ONLY", non_key_attributes=())
GSI_S = replace(GSI, range_key="s")


def base(pk: str) -> bytes:
    return encode_item_key({"S": pk})


@settings(max_examples=300)
@given(st.lists(st.tuples(st.text(max_size=6), st.integers(-1000, 1000)), min_size=2, max_size=20))
def test_entries_sort_by_index_range_then_base_key(rows: list[tuple[str, int]]) -> None:
    keyed = [(entry_key({"S": "h"}, {"N": str(n)}, base(pk)), n, base(pk)) for pk, n in rows]
    by_bytes = [(n, b) for _, n, b in sorted(keyed)]
    assert by_bytes == sorted((n, b) for _, n, b in keyed)


@settings(max_examples=300)
@given(st.lists(st.text(max_size=5), min_size=1, max_size=15), st.text(max_size=3), st.text(max_size=3))
def test_bounds_select_exactly_the_matching_entries(values: list[str], a: str, b: str) -> None:
    prefix = hash_prefix({"S": "h"})
    entries = [(entry_key({"S": "h"}, {"S": v}, base(f"p{i}")), v) for i, v in enumerate(values)]
    lo, hi = sorted((a, b), key=lambda s: s.encode())
    ob = lambda s: s.encode()  # noqa: E731 - DynamoDB orders S by UTF-8 bytes
    conds: list[tuple[list[Any], Any]] = [
        (["EQ", {"S": a}], lambda v: v == a),
        (["LT", {"S": a}], lambda v: ob(v) < ob(a)),
        (["LE", {"S": a}], lambda v: ob(v) <= ob(a)),
        (["GT", {"S": a}], lambda v: ob(v) > ob(a)),
        (["GE", {"S": a}], lambda v: ob(v) >= ob(a)),
        (["BETWEEN", {"S": lo}, {"S": hi}], lambda v: ob(lo) <= ob(v) <= ob(hi)),
        (["BEGINS_WITH", {"S": a}], lambda v: v.startswith(a)),
    ]
    for cond, want in conds:
        start, end = index_key_range(prefix, cond)
        got = sorted(v for k, v in entries if k >= start and (end is None or k < end))
        assert got == sorted(v for _, v in entries if want(v)), cond


def test_key_change_moves_the_entry_and_sparse_items_have_none() -> None:
    k = base("a")
    old = {"pk": {"S": "a"}, "g": {"S": "x"}, "r": {"N": "1"}, "v": {"S": "1"}}
    new = dict(old, g={"S": "y"})
    ops = index_ops(GSI, k, old, new, TYPES, ["pk"])
    assert ops == [(entry_key({"S": "x"}, {"N": "1"}, k), None),
                   (entry_key({"S": "y"}, {"N": "1"}, k), {"pk": {"S": "a"}, "g": {"S": "y"}, "r": {"N": "1"}})]
    # same key: one put; removal of the index attribute: one delete; no attribute: nothing
    assert [o[1] is None for o in index_ops(GSI, k, old, dict(old, v={"S": "2"}), TYPES, ["pk"])] == [False]
    no_r = {"pk": {"S": "a"}, "g": {"S": "x"}}
    assert index_ops(GSI, k, old, no_r, TYPES, ["pk"]) == [(entry_key({"S": "x"}, {"N": "1"}, k), None)]
    assert index_ops(GSI, k, None, no_r, TYPES, ["pk"]) == []
    wrong_type = {"pk": {"S": "a"}, "g": {"N": "5"}, "r": {"N": "1"}}
    assert index_ops(GSI, k, None, wrong_type, TYPES, ["pk"]) == []
    assert index_ops(GSI, k, old, None, TYPES, ["pk"]) == [(entry_key({"S": "x"}, {"N": "1"}, k), None)]


def test_projections() -> None:
    item = {"pk": {"S": "a"}, "g": {"S": "x"}, "r": {"N": "1"}, "v": {"S": "1"}, "w": {"S": "2"}}
    assert project(replace(GSI, projection_type="ALL"), item, ["pk"]) == item
    assert project(GSI, item, ["pk"]) == {"pk": {"S": "a"}, "g": {"S": "x"}, "r": {"N": "1"}}
    inc = replace(GSI, projection_type="INCLUDE", non_key_attributes=("w",))
    assert project(inc, item, ["pk"]) == {"pk": {"S": "a"}, "g": {"S": "x"}, "r": {"N": "1"}, "w": {"S": "2"}}


def test_an_index_created_again_under_its_name_gets_new_partitions() -> None:
    """Delete an index and create it again: the new one's partitions (and so its log topics and
    replicas) share nothing with the old one's, which may still be being dropped."""
    from services.router.gsi import parse_index

    spec = {"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"}}
    old, new = (parse_index(spec, "globalSecondaryIndexUpdate.create", {"pk": "S", "g": "S"}, "PAY_PER_REQUEST",
                            "0a1b2c3d-4e5f", ["p0", "p1"], status="CREATING") for _ in range(2))
    assert old.index_id == new.index_id and len(new.partition_ids) == 2
    assert not set(old.partition_ids) & set(new.partition_ids)
