"""A replica's item count and size (services/storage/replica.py): kept in each record's WriteBatch
from the record's images, so they equal a recount of the items at every offset, and copied with
a snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from dynamolog.attrs import item_size
from services.storage.follower import record_mutations
from services.storage.replica import PartitionStats, Replica

Item = dict[str, Any]


def key(n: int) -> bytes:
    return n.to_bytes(8, "big") + b"k"


def rec(op: str, k: bytes, new: Item | None, old: Item | None, txn: str | None = None,
        action: str | None = None) -> dict[str, Any]:
    return {"op": op, "key": k, "new_image": new, "old_image": old, "timestamp_ms": 1, "origin_region": "r",
            "transaction_id": txn, "leader_epoch": 1, "request_id": None, "txn_action": action,
            "txn_deadline_ms": 5 if op == "PREPARE" else None}


def apply(r: Replica, *records: dict[str, Any]) -> None:
    muts = [m for x in records for m in record_mutations(x)]
    r.apply_raw(muts, r.next_offset + len(records), len(records))


def recount(r: Replica) -> tuple[int, int]:
    items = list(r.range(b"", None))
    return len(items), sum(item_size(orjson.loads(v)) for _, v in items)


def item(n: int, pad: str = "") -> Item:
    return {"pk": {"S": f"k{n}"}, "pad": {"S": pad}, "n": {"N": str(n)}}


def test_item_size_is_dynamodbs() -> None:
    # names count their UTF-8 bytes; a number ceil(significant digits / 2) + 1; a string its bytes
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"é": {"BOOL": True}}) == 2 + 1


def test_puts_overwrites_deletes_and_a_transaction_keep_exact_counts(tmp_path: Path) -> None:
    r = Replica(tmp_path / "r")
    assert r.stats() == PartitionStats(0, 0, 0)
    current: dict[bytes, Item] = {}

    def write(n: int, new: Item | None, op: str | None = None) -> dict[str, Any]:
        k = key(n)
        old = current.get(k)
        if new is None:
            current.pop(k, None)
        else:
            current[k] = new
        return rec(op or ("PUT" if new is not None else "DELETE"), k, new, old)

    apply(r, *(write(i, item(i, "x" * i)) for i in range(20)))  # one batch of puts
    apply(r, write(3, item(3, "y" * 300)))                          # an overwrite grows it
    apply(r, write(4, item(4)))                                     # an overwrite shrinks it
    apply(r, write(5, None), write(6, None))                        # deletes (a TTL delete is one too)
    assert r.stats().items == 18
    assert (r.stats().items, r.stats().size_bytes) == recount(r)

    # a transaction: PREPARE changes nothing yet, TXN_COMMIT applies a put and a delete, an
    # aborted one and a ConditionCheck change nothing
    t, u = "a" * 32, "b" * 32
    k7, k30 = key(7), key(30)
    old7 = current[k7]
    apply(r, rec("PREPARE", k30, item(30, "z" * 50), None, t, "PUT"), rec("PREPARE", k7, None, old7, t, "DELETE"),
          rec("PREPARE", key(8), None, current[key(8)], u, "CHECK"), rec("PREPARE", key(9), None, current[key(9)], u,
                                                                           "DELETE"))
    assert (r.stats().items, r.stats().size_bytes) == recount(r)
    apply(r, rec("TXN_COMMIT", k30, item(30, "z" * 50), None, t, "PUT"), rec("TXN_COMMIT", k7, None, old7, t, "DELETE"),
          rec("TXN_COMMIT", key(8), None, None, u, "CHECK"), rec("TXN_ABORT", key(9), None, None, u, "DELETE"))
    del current[k7]
    current[k30] = item(30, "z" * 50)
    assert r.stats().items == 18
    assert (r.stats().items, r.stats().size_bytes) == recount(r)
    assert r.stats().next_offset == r.next_offset

    # every item gone: both counters back to zero
    for k in list(current):
        apply(r, rec("DELETE", k, None, current.pop(k)))
    assert r.stats() == PartitionStats(0, 0, r.next_offset)
    r.close()


def test_a_snapshot_copies_the_counts_and_a_reopen_keeps_them(tmp_path: Path) -> None:
    src = Replica(tmp_path / "src")
    apply(src, *(rec("PUT", key(i), item(i, "p" * 100), None) for i in range(50)))
    snap, offset, applied = src.open_snapshot()
    apply(src, rec("DELETE", key(1), None, item(1, "p" * 100)))  # after the snapshot: not in it
    dst = Replica(tmp_path / "dst")
    after = None
    while True:
        rows, done = Replica.snapshot_page(snap, after, 1000)
        dst.load_snapshot(rows)
        if done or not rows:
            break
        after = rows[-1][0]
    dst.finish_snapshot(offset, applied)
    snap.close()
    assert dst.stats() == PartitionStats(50, sum(item_size(item(i, "p" * 100)) for i in range(50)), 50)
    assert (dst.stats().items, dst.stats().size_bytes) == recount(dst)
    assert dst.digest() != src.digest()
    apply(dst, rec("DELETE", key(1), None, item(1, "p" * 100)))
    assert dst.digest() == src.digest()  # the counters are in the digest: the copies converge
    dst.close()
    again = Replica(tmp_path / "dst")
    assert again.stats() == src.stats()
    again.close()
    src.close()


def test_a_replica_written_before_the_counters_is_counted_when_opened(tmp_path: Path) -> None:
    r = Replica(tmp_path / "r")
    # items written without counters, as an earlier version did, and the marker gone
    r.apply_raw([(b"d" + key(i), orjson.dumps(item(i))) for i in range(7)], 7, 7)
    r.apply_raw([(b"s:kept", None), (b"s:items", None), (b"s:bytes", None)], 7, 0)
    r.close()
    again = Replica(tmp_path / "r")
    assert again.stats() == PartitionStats(7, sum(item_size(item(i)) for i in range(7)), 7)
    again.close()


def test_a_snapshot_of_a_replica_without_counters_is_counted_when_copied(tmp_path: Path) -> None:
    src = Replica(tmp_path / "src")
    src.apply_raw([(b"d" + key(i), orjson.dumps(item(i))) for i in range(5)], 5, 5)
    src.apply_raw([(b"s:kept", None)], 5, 0)  # as a replica of an earlier version
    snap, offset, applied = src.open_snapshot()
    dst = Replica(tmp_path / "dst")
    rows, done = Replica.snapshot_page(snap, None, 1 << 20)
    assert done
    dst.load_snapshot(rows)
    dst.finish_snapshot(offset, applied)
    snap.close()
    assert dst.stats() == PartitionStats(5, sum(item_size(item(i)) for i in range(5)), 5)
    dst.close()
    src.close()
