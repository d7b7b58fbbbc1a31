"""Partition splits without a broker: where a split cuts, which entries a child copies, and which
partitions serve a table's keys while a split goes through its steps (decision 0039)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dynamolog.catalog import PartitionInfo
from dynamolog.config import Settings
from dynamolog.metadata import Metadata
from dynamolog.routing import PartitionSplit, Routing
from services.admin.splits import child_ids
from services.storage.node import split_point_by_heat, split_point_by_size
from services.storage.replica import child_entry

TOP = (1 << 64) - 1


def _h(n: int) -> bytes:
    return n.to_bytes(8, "big")


def test_a_split_by_size_cuts_where_half_the_bytes_lie_below() -> None:
    hashes = [(10, 100), (20, 100), (30, 100), (40, 700)]
    assert split_point_by_size(hashes, 0, TOP) == {"hash": 40}
    even = [(h, 100) for h in range(10, 110, 10)]
    assert split_point_by_size(even, 0, TOP) == {"hash": 60}


def test_a_partition_whose_items_share_one_partition_key_cannot_split_by_size() -> None:
    got = split_point_by_size([(7, 100), (7, 200), (7, 300)], 0, TOP)
    assert got["hash"] is None and "one partition key" in got["why"]
    assert split_point_by_size([], 0, TOP)["hash"] is None


def test_a_split_for_heat_cuts_at_the_median_request_unless_one_key_is_hot() -> None:
    spread = [h * 1000 for h in range(1, 101)]
    assert split_point_by_heat(spread, 0, TOP) == {"hash": 51_000}
    hot = [5] * 95 + list(range(100, 105))
    got = split_point_by_heat(hot, 0, TOP)
    assert got["hash"] is None and "95 %" in got["why"]
    assert split_point_by_heat([], 0, TOP)["hash"] is None


def test_a_cut_is_never_at_the_first_hash_of_the_partition() -> None:
    # the lower child would be empty: the cut moves to the next hash seen
    samples = [100] * 60 + [200] * 40
    assert split_point_by_heat(samples, 100, 1000) == {"hash": 200}


def test_a_child_copies_the_entries_of_its_items_and_the_tokens() -> None:
    lo, hi = 100, 199
    inside, outside = _h(150) + b"key", _h(250) + b"key"
    assert child_entry(b"d" + inside, lo, hi) and not child_entry(b"d" + outside, lo, hi)
    txn = b"f" * 32
    assert child_entry(b"p" + txn + inside, lo, hi) and not child_entry(b"p" + txn + outside, lo, hi)
    assert child_entry(b"lbyname\x00" + inside, lo, hi) and not child_entry(b"lbyname\x00" + outside, lo, hi)
    assert child_entry(b"c" + _h(100), lo, hi) and not child_entry(b"c" + _h(200), lo, hi)
    assert child_entry(b"w" + inside, lo, hi) and not child_entry(b"w" + outside, lo, hi)  # stamps
    assert child_entry(b"k" + _h(1) + b"token", lo, hi)  # a one-phase transaction's token: both children
    for meta in (b"s:items", b"s:bytes", b"f:term", b"f:sealed", b"m:offset"):
        assert not child_entry(meta, lo, hi)  # counted again, a new log, not sealed


def _part(pid: str, start: int, end: int, **kw: object) -> PartitionInfo:
    base = PartitionInfo(partition_id=pid, table_name="t", table_id="tid", hash_start=start, hash_end=end,
                         log_topic=f"dyn.t.t.{pid}", replicas=("n1",), leader="n1", leader_epoch=1, state="ACTIVE")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_the_parent_serves_until_both_children_are_active_then_the_children_do() -> None:
    md = Metadata(Settings())
    view = md.partitions
    low, high = child_ids("tid-0")
    view.put_local("tid-0", _part("tid-0", 0, TOP))
    view.put_local(low, _part(low, 0, 999, state="OPENING", parent="tid-0"))
    view.put_local(high, _part(high, 1000, TOP, state="OPENING", parent="tid-0"))
    view.put_local("tid-0", _part("tid-0", 0, TOP, children=(low, high)))
    assert [p.partition_id for p in md.table_partitions("tid")] == ["tid-0"]
    view.put_local(low, _part(low, 0, 999, parent="tid-0"))
    assert [p.partition_id for p in md.table_partitions("tid")] == ["tid-0"]  # one child is not enough
    view.put_local(high, _part(high, 1000, TOP, parent="tid-0"))
    assert [p.partition_id for p in md.table_partitions("tid")] == [low, high]
    view.put_local("tid-0", _part("tid-0", 0, TOP, children=(low, high), state="SPLIT"))
    assert [p.partition_id for p in md.table_partitions("tid")] == [low, high]
    # the lineage (streams, the indexer, restores): the parent first
    assert [p.partition_id for p in md.table_lineage("tid")] == ["tid-0", low, high]

    routing = Routing(md)
    parent = md.partitions.items["tid-0"]
    assert routing._serving(parent, 5).partition_id == low
    assert routing._serving(parent, 5000).partition_id == high
    with pytest.raises(PartitionSplit):
        routing._serving(parent, None)  # a request without a key plans again
