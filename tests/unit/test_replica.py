"""The replica's RocksDB layout on a real RocksDB: folding transaction records, snapshots for repair."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.storage.follower import record_mutations
from services.storage.invariants import InvariantViolation
from services.storage.replica import Replica, token_key


def _rec(op: str, key: bytes, new: dict | None = None, txn: str | None = None, action: str | None = None) -> dict:
    return {"op": op, "key": key, "new_image": new, "old_image": None, "timestamp_ms": 1, "origin_region": "r",
            "transaction_id": txn, "leader_epoch": 1, "request_id": None, "txn_action": action,
            "txn_deadline_ms": 5 if op == "PREPARE" else None}


def fold(replica: Replica, records: list[dict]) -> None:
    for i, r in enumerate(records):
        replica.apply_raw(record_mutations(r), replica.next_offset + 1, 1)
        assert replica.next_offset == i + 1


def test_prepare_locks_commit_applies_abort_drops(tmp_path: Path) -> None:
    r = Replica(tmp_path / "r")
    a, b, c = b"\x00" * 8 + b"a", b"\x00" * 8 + b"b", b"\x00" * 8 + b"c"
    t1, t2 = "1" * 32, "2" * 32
    fold(r, [
        _rec("PUT", a, {"pk": {"S": "a"}, "v": {"N": "0"}}),
        _rec("PREPARE", a, {"pk": {"S": "a"}, "v": {"N": "1"}}, t1, "PUT"),
        _rec("PREPARE", b, None, t1, "CHECK"),
        _rec("PREPARE", c, None, t2, "DELETE"),
    ])
    # prepared changes are locks, not data
    assert r.get(a) == {"pk": {"S": "a"}, "v": {"N": "0"}}
    assert sorted((t, k) for t, k, _ in r.pending()) == [(t1, a), (t1, b), (t2, c)]
    fold_more = [_rec("TXN_COMMIT", a, {"pk": {"S": "a"}, "v": {"N": "1"}}, t1, "PUT"),
                 _rec("TXN_COMMIT", b, None, t1, "CHECK"), _rec("TXN_ABORT", c, None, t2, "DELETE")]
    for rec in fold_more:
        r.apply_raw(record_mutations(rec), r.next_offset + 1, 1)
    assert r.get(a) == {"pk": {"S": "a"}, "v": {"N": "1"}}
    assert r.get(b) is None and r.get(c) is None
    assert list(r.pending()) == []
    r.close()


def test_snapshot_pages_copy_items_and_locks_with_their_offset(tmp_path: Path) -> None:
    src = Replica(tmp_path / "src")
    records = [_rec("PUT", i.to_bytes(8, "big") + b"k", {"pk": {"S": str(i)}, "pad": {"S": "x" * 500}})
               for i in range(300)]
    records.append(_rec("PREPARE", (5).to_bytes(8, "big") + b"k", None, "f" * 32, "DELETE"))
    fold(src, records)
    snap, offset, applied = src.open_snapshot()
    # writes after the snapshot do not show in it
    src.apply_raw(record_mutations(_rec("DELETE", (7).to_bytes(8, "big") + b"k")), src.next_offset + 1, 1)
    dst = Replica(tmp_path / "dst")
    after = None
    pages = 0
    while True:
        rows, done = Replica.snapshot_page(snap, after, 20_000)
        dst.load_snapshot(rows)
        pages += 1
        if done or not rows:
            break
        after = rows[-1][0]
    dst.finish_snapshot(offset, applied)
    snap.close()
    assert not snap.path.exists()
    assert pages > 1
    assert (offset, applied) == (301, 301)
    assert dst.next_offset == 301 and dst.applied_records == 301
    assert dst.get((7).to_bytes(8, "big") + b"k") is not None  # as of the snapshot
    assert [(t, k) for t, k, _ in dst.pending()] == [("f" * 32, (5).to_bytes(8, "big") + b"k")]
    src.close()
    dst.close()


def _put(i: int) -> list:
    return record_mutations(_rec("PUT", i.to_bytes(8, "big") + b"k", {"pk": {"S": str(i)}}))


@pytest.mark.parametrize(("read_from", "offsets", "next_offset", "what"), [
    (7, [7], 8, "a gap: the batch was read from beyond the view's offset"),
    (3, [3], 4, "a repeat: the batch was read from before the view's offset"),
    (None, [4], 5, "a repeat: a record below the view's offset"),
    (None, [6, 6], 7, "offsets not increasing"),
    (None, [6], 6, "the next offset not past the last record"),
    (None, None, 4, "the offset moving back"),
])
def test_a_gap_or_a_repeat_is_caught_and_changes_nothing(tmp_path: Path, read_from: int | None,
                                                          offsets: list[int] | None, next_offset: int,
                                                          what: str) -> None:
    # Why: the view must be exactly the fold of the log up to its offset; a record applied twice or
    # skipped (a bug in a reader or the sequencer) must stop the replica, not corrupt it quietly.
    r = Replica(tmp_path / "r")
    r.apply_raw(_put(1), 5, 1, offsets=[4], read_from=0)
    assert (r.next_offset, r.applied_records) == (5, 1)
    records = len(offsets) if offsets is not None else 1
    with pytest.raises(InvariantViolation):
        r.apply_raw([m for i in range(records) for m in _put(10 + i)], next_offset, records,
                    offsets=offsets, read_from=read_from)
    # nothing was written: same offset, no new item, in memory and on disk
    assert (r.next_offset, r.applied_records, r.stored_next_offset()) == (5, 1, 5), what
    assert r.get((10).to_bytes(8, "big") + b"k") is None, what
    r.close()


def test_records_read_from_the_views_offset_apply(tmp_path: Path) -> None:
    # Why: the checks must not refuse the normal case, where a read continues at the view's
    # offset and skips offsets taken by Kafka's transaction markers.
    r = Replica(tmp_path / "r")
    r.apply_raw(_put(1) + _put(2), 3, 2, offsets=[0, 2], read_from=0)
    r.apply_raw([], 4, 0, offsets=[], read_from=3)  # a commit marker only
    r.apply_raw(_put(3), 6, 1, offsets=[5], read_from=4)
    assert (r.next_offset, r.stored_next_offset(), r.applied_records) == (6, 6, 3)
    r.close()


def test_a_scan_page_gives_the_event_loop_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Why: the node's one event loop also sequences writes and answers heartbeats; a 1 MB Scan
    # page with a filter must not hold it for the whole page (services/storage/pacing.py).
    import asyncio

    from services.storage import pacing
    from services.storage.reads import range_read

    # a slice far shorter than a page on any machine (2 ms in production)
    monkeypatch.setattr(pacing, "SLICE_S", 0.0001)
    r = Replica(tmp_path / "r")
    pad = "x" * 4000
    for start in range(0, 2000, 500):
        r.apply_raw([m for i in range(start, start + 500)
                     for m in record_mutations(_rec("PUT", i.to_bytes(8, "big") + b"k",
                                                    {"pk": {"S": str(i)}, "pad": {"S": pad}}))],
                    r.next_offset + 1, 500)

    async def main() -> tuple[dict, int]:
        ticks = 0
        done = asyncio.Event()

        async def other_task() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(other_task())
        await asyncio.sleep(0)
        ticks = 0
        page = await range_read(r, {"filter": "size(#p) > :z", "names": {"#p": "pad"}, "values": {":z": {"N": "0"}}})
        done.set()
        await t
        return page, ticks

    page, ticks = asyncio.run(main())
    assert page["ScannedCount"] > 200 and page["cut"]  # a whole 1 MB page was read and filtered
    assert ticks > 0, "the other task never ran while the page was read"
    r.close()


def test_a_one_phase_token_is_kept_for_its_window_and_purged_after(tmp_path: Path) -> None:
    from services.storage.follower import one_phase_request_id
    from services.storage.replica import TOKEN_WINDOW_MS

    r = Replica(tmp_path / "r")
    a = b"\x00" * 8 + b"a"
    t0 = 1000 * TOKEN_WINDOW_MS + 5  # the start of a window

    def commit(ms: int, token: str, purge: bool) -> None:
        rec = dict(_rec("TXN_COMMIT", a, {"pk": {"S": "a"}}, "1" * 32, "PUT"), timestamp_ms=ms,
                   request_id=one_phase_request_id(token, "d-" + token, purge=purge))
        r.apply_raw(record_mutations(rec), r.next_offset + 1, 1)

    commit(t0, "first", purge=True)
    commit(t0 + TOKEN_WINDOW_MS // 2, "second", purge=False)
    assert r.token("first", t0 + 1)["d"] == "d-first"
    assert r.token("first", t0 + TOKEN_WINDOW_MS)["t"] == "1" * 32  # still within ten minutes
    assert r.token("first", t0 + TOKEN_WINDOW_MS + 1) is None  # ten minutes are over
    assert r.token("nobody", t0) is None
    # the first token of a later window deletes the windows before the previous one
    commit(t0 + TOKEN_WINDOW_MS, "third", purge=True)
    assert r._db.get(token_key(t0, "first")) is not None  # the previous window stays
    commit(t0 + 2 * TOKEN_WINDOW_MS, "fourth", purge=True)
    assert r._db.get(token_key(t0, "first")) is None and r._db.get(token_key(t0, "second")) is None
    assert r.token("third", t0 + 2 * TOKEN_WINDOW_MS)["d"] == "d-third"
    assert r.get(a) == {"pk": {"S": "a"}}
    # tokens are not data: replicas compare items, index entries and sizes only
    assert all(not k.startswith(b"k") for k, _ in r.digest_entries())
    r.close()
