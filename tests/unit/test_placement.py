"""Where replicas go (dynamolog.placement): distinct nodes always, distinct zones when possible.

A zone (availability zone) can be lost as a whole; a partition whose replicas share one would
lose several at once, so placement spreads them over zones first and falls back to distinct
nodes only when there are fewer zones than replicas.
"""

from __future__ import annotations

import pytest

from dynamolog.placement import choose_spare, place_new

SIX = {f"n{i}": "abc"[(i - 1) % 3] for i in range(1, 7)}  # n1 a, n2 b, n3 c, n4 a, n5 b, n6 c


def test_without_zones_replicas_are_three_distinct_nodes_and_leaders_spread() -> None:
    nodes = [f"n{i}" for i in range(1, 5)]
    placed = [place_new(nodes, "t1", i) for i in range(4)]
    assert all(len(set(p)) == 3 for p in placed)
    assert len({p[0] for p in placed}) == 4  # consecutive partitions: consecutive leaders


def test_replicas_go_to_three_distinct_zones() -> None:
    # sorted order n1..n6 puts two nodes of a zone three apart: a naive "next three nodes" would
    # still be fine here, so also check orders where it would not be (n1 a, n2 a, ...)
    for i in range(12):
        p = place_new(SIX, f"table{i}", i, zones=SIX)
        assert len(set(p)) == 3 and {SIX[n] for n in p} == {"a", "b", "c"}, p
    grouped = {"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "c", "n6": "c"}
    for i in range(12):
        p = place_new(grouped, "t", i, zones=grouped)
        assert {grouped[n] for n in p} == {"a", "b", "c"}, p


def test_the_leader_is_still_the_rotating_first_node() -> None:
    grouped = {"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "c", "n6": "c"}
    leaders = [place_new(grouped, "t", i, zones=grouped)[0] for i in range(6)]
    assert sorted(leaders) == sorted(grouped)


def test_fewer_zones_than_replicas_falls_back_to_distinct_nodes() -> None:
    two = {"n1": "a", "n2": "a", "n3": "b", "n4": "b"}
    for i in range(4):
        p = place_new(two, "t", i, zones=two)
        assert len(set(p)) == 3 and {two[n] for n in p} == {"a", "b"}, p
    assert sorted(place_new(["n1", "n2"], "t", 0, zones={"n1": "a", "n2": "a"})) == ["n1", "n2"]


def test_nodes_without_a_zone_count_as_zones_of_their_own() -> None:
    zones: dict[str, str | None] = {"n1": "a", "n2": "a", "n3": None, "n4": None}
    for i in range(4):
        p = place_new(zones, "t", i, zones=zones)
        assert len(set(p)) == 3 and not {"n1", "n2"} <= set(p), p


def test_no_node_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no storage node"):
        place_new([], "t", 0)


def test_spare_prefers_a_zone_without_a_live_replica_then_the_least_loaded() -> None:
    # replicas n1 (a, lost), n2 (b), n3 (c); live spares n4 (a, 5 replicas) and n5 (b, 0 replicas):
    # n4 keeps the partition in three zones even though it holds more
    live = {"n2": 1, "n3": 1, "n4": 5, "n5": 0}
    assert choose_spare(live, ["n1", "n2", "n3"], zones=SIX) == "n4"
    # without zones: the least loaded
    assert choose_spare(live, ["n1", "n2", "n3"]) == "n5"
    # no spare in a free zone: the least loaded elsewhere
    assert choose_spare({"n2": 1, "n3": 1, "n5": 3, "n6": 2}, ["n1", "n2", "n3"], zones=SIX) == "n6"
    assert choose_spare({"n2": 1, "n3": 1}, ["n1", "n2", "n3"], zones=SIX) is None
