"""Last writer wins (services/storage/writes.py, decision 0031): which change an item keeps when
regions write it concurrently, whatever order the changes arrive in."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

from services.storage.follower import record_mutations
from services.storage.replica import Replica
from services.storage.writes import Stamp, compute, local_stamp, newer, replicated

DAY_MS = 86_400_000


def change(item: dict[str, Any] | None, ts: int, region: str) -> dict[str, Any]:
    return {"kind": "replicate", "item": item, "ts": ts, "region": region}


def fold(changes: list[dict[str, Any]], tombstone_ms: int = DAY_MS) -> tuple[dict[str, Any] | None, Stamp | None]:
    """Apply ``changes`` in this order to one item, as a region's leader does."""
    item: dict[str, Any] | None = None
    stamp: Stamp | None = None
    deleted = False
    for c in changes:
        eff = replicated(c, item, stamp, deleted=deleted, now_ms=c["ts"], tombstone_ms=tombstone_ms)
        if eff.changed:
            item, stamp, deleted = eff.new, Stamp(c["ts"], c["region"]), eff.new is None
    return item, stamp


def test_a_newer_change_wins_and_an_older_one_changes_nothing() -> None:
    old = {"k": {"S": "a"}, "v": {"N": "1"}}
    new = {"k": {"S": "a"}, "v": {"N": "2"}}
    eff = replicated(change(new, 200, "us-west-2"), old, Stamp(100, "us-east-1"), deleted=False, now_ms=300,
                     tombstone_ms=DAY_MS)
    assert eff.changed and eff.new == new and eff.result == {"applied": True}
    late = replicated(change(new, 50, "us-west-2"), old, Stamp(100, "us-east-1"), deleted=False, now_ms=300,
                      tombstone_ms=DAY_MS)
    assert not late.changed and late.new == old and late.result == {"applied": False}


def test_ties_are_broken_by_region_name_the_same_way_everywhere() -> None:
    assert newer(Stamp(100, "us-west-2"), Stamp(100, "us-east-1"))
    assert not newer(Stamp(100, "us-east-1"), Stamp(100, "us-west-2"))
    # the same change again (a repeated batch) is not newer: applying it twice changes nothing
    assert not newer(Stamp(100, "us-east-1"), Stamp(100, "us-east-1"))


def test_every_arrival_order_converges_to_the_latest_write() -> None:
    rnd = random.Random(7)
    regions = ["eu-west-1", "us-east-1", "us-west-2"]
    for _ in range(200):
        # distinct stamps (a region stamps the writes of one item increasing), often equal times
        stamps = rnd.sample([(ts, r) for ts in range(1000, 1004) for r in regions], 5)
        changes = [change(None if rnd.random() < 0.3 else {"k": {"S": "x"}, "v": {"N": str(i)}}, ts, region)
                   for i, (ts, region) in enumerate(stamps)]
        winner = max(changes, key=lambda c: (c["ts"], c["region"]))
        outcomes = {repr(fold(list(order))) for order in itertools.islice(itertools.permutations(changes), 30)}
        assert outcomes == {repr((winner["item"], Stamp(winner["ts"], winner["region"])))}


def test_a_tombstone_refuses_an_older_put_until_it_expires() -> None:
    put = {"k": {"S": "x"}}
    tomb = Stamp(1000, "us-east-1")
    kept = replicated(change(put, 900, "us-west-2"), None, tomb, deleted=True, now_ms=2000, tombstone_ms=DAY_MS)
    assert not kept.changed and kept.new is None
    expired = replicated(change(put, 900, "us-west-2"), None, tomb, deleted=True, now_ms=1000 + DAY_MS + 1,
                         tombstone_ms=DAY_MS)
    assert expired.changed and expired.new == put


def test_a_newer_change_with_the_same_image_still_takes_the_newer_stamp() -> None:
    item = {"k": {"S": "x"}}
    eff = replicated(change(item, 200, "us-west-2"), item, Stamp(100, "us-east-1"), deleted=False, now_ms=300,
                     tombstone_ms=DAY_MS)
    assert eff.changed  # recorded, so the item's stamp moves as in the region that wrote it
    gone = replicated(change(None, 200, "us-west-2"), None, None, deleted=False, now_ms=300, tombstone_ms=DAY_MS)
    assert gone.changed and gone.new is None  # a delete of an absent item leaves its tombstone


def test_a_local_write_is_stamped_after_what_it_overwrites() -> None:
    assert local_stamp(500, "us-east-1", None) == Stamp(500, "us-east-1")
    assert local_stamp(500, "us-east-1", Stamp(400, "us-west-2")) == Stamp(500, "us-east-1")
    # a clock behind the other region's: the write still orders after the item's last one
    assert local_stamp(500, "us-east-1", Stamp(700, "us-west-2")) == Stamp(701, "us-east-1")


def test_a_delete_of_an_absent_item_of_a_replicated_table_is_a_change() -> None:
    key = {"k": {"S": "a"}}
    # a plain table: nothing to delete, nothing recorded
    assert not compute({"kind": "delete", "keyattrs": key}, None).changed
    # a table with replicas (the router marks it): the delete is recorded, so it leaves its
    # tombstone and ships, and an older put of the item still on its way loses everywhere
    eff = compute({"kind": "delete", "keyattrs": key, "tomb": True, "rv": "ALL_OLD"}, None)
    assert eff.changed and eff.new is None and eff.result == {}
    put_west = change({**key, "v": {"S": "west"}}, 100, "us-west-2")
    delete_east = change(None, 200, "us-east-1")
    for order in ([put_west, delete_east], [delete_east, put_west]):
        assert fold(order) == (None, Stamp(200, "us-east-1"))


def test_the_replica_keeps_stamps_and_tombstones_out_of_the_items(tmp_path: Path) -> None:
    replica = Replica(tmp_path / "r")
    key = b"\x00" * 8 + b"x"
    item = {"k": {"S": "x"}, "v": {"N": "1"}}
    put = {"op": "PUT", "key": key, "new_image": item, "old_image": None, "timestamp_ms": 123,
           "origin_region": "us-west-2", "transaction_id": None, "txn_action": None}
    replica.apply_raw(record_mutations(put), 1, 1)
    assert replica.get(key) == item  # the item as clients see it: no stamp in it
    assert replica.stamp(key) == (123, "us-west-2", False)
    delete = put | {"op": "DELETE", "new_image": None, "old_image": item, "timestamp_ms": 456,
                    "origin_region": "us-east-1"}
    replica.apply_raw(record_mutations(delete), 2, 1)
    assert replica.get(key) is None
    assert replica.stamp(key) == (456, "us-east-1", True)
    replica.close()


def test_old_tombstones_are_purged_and_live_stamps_kept(tmp_path: Path) -> None:
    replica = Replica(tmp_path / "r")
    base = {"op": "DELETE", "new_image": None, "old_image": None, "origin_region": "us-east-1",
            "transaction_id": None, "txn_action": None}
    recs = [base | {"key": b"\x00" * 8 + b"old", "timestamp_ms": 100},
            base | {"key": b"\x00" * 8 + b"new", "timestamp_ms": 900},
            base | {"op": "PUT", "key": b"\x00" * 8 + b"live", "new_image": {"k": {"S": "l"}}, "timestamp_ms": 50}]
    for i, r in enumerate(recs):
        replica.apply_raw(record_mutations(r), i + 1, 1)
    keys, after = replica.tombstones_before(500, limit=2)
    more, done = replica.tombstones_before(500, after)
    assert done is None and keys + more == [b"\x00" * 8 + b"old"]
    assert replica.purge_tombstones(keys + more, 500) == 1
    assert replica.stamp(b"\x00" * 8 + b"old") is None
    assert replica.stamp(b"\x00" * 8 + b"new") == (900, "us-east-1", True)
    assert replica.stamp(b"\x00" * 8 + b"live") == (50, "us-east-1", False)
    replica.close()
