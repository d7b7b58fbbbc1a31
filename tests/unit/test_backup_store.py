"""The backup service's object stores and its fold of a partition log (no Kafka).

One contract, two stores: the directory store and the S3 store against a real S3 API server
(moto's, started by the session).  And the fold a restore loads: the term rule and the restore
time decide which records count, exactly as a replica applies them.  And the pace of a copy.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynamolog.config import Settings
from dynamolog.fencing import ORIGIN, Term
from services.backup import layout
from services.backup.capture import Duty
from services.backup.fold import PartitionFold
from services.backup.store import DirectoryStore, ObjectStore, StoreError, open_store
from tests.conftest import make_bucket


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "directory":
        return open_store(str(tmp_path / "store"), Settings())
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    make_bucket(endpoint, bucket)
    return open_store(f"s3://{bucket}/some/prefix", Settings(s3_endpoint_url=endpoint))


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # the SDK's usual chain finds these (moto accepts any)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_store_contract(store: ObjectStore) -> None:
    # put / get / keys / delete behave the same on both stores: whole objects, listed by prefix
    # in order, a missing object is a KeyError, deleting a missing one is no error.
    async def run() -> None:
        await store.check()
        await store.put("backups/b1/manifest.json", b"{}")
        await store.put("backups/b1/p0/snapshot-00000.gz", b"x" * 1000)
        await store.put("backups/b2/manifest.json", b"{2}")
        await store.put("pitr/t/p0/1/manifest.json", b"")
        assert await store.get("backups/b1/p0/snapshot-00000.gz") == b"x" * 1000
        assert await store.keys("backups/b1/") == ["backups/b1/manifest.json", "backups/b1/p0/snapshot-00000.gz"]
        assert await store.keys("backups/") == ["backups/b1/manifest.json", "backups/b1/p0/snapshot-00000.gz",
                                                "backups/b2/manifest.json"]
        await store.put("backups/b2/manifest.json", b"{3}")
        assert await store.get("backups/b2/manifest.json") == b"{3}"
        with pytest.raises(KeyError):
            await store.get("backups/none")
        await store.delete(["backups/b1/manifest.json", "backups/b1/p0/snapshot-00000.gz", "backups/missing"])
        assert await store.keys("backups/") == ["backups/b2/manifest.json"]
        assert await store.get("pitr/t/p0/1/manifest.json") == b""

    asyncio.run(run())


def test_malformed_or_unreachable_stores_say_what_is_wrong(tmp_path: Path) -> None:
    # A malformed URL is refused when the store is opened; an endpoint nobody listens on fails
    # the store's check with the URL in the message.
    for url in ("s3://", "s3://a/x", "s3://Bad_Bucket!/x", "ftp://host/x"):
        with pytest.raises(StoreError):
            open_store(url, Settings())
    s3 = open_store("s3://bucket-x/p", Settings(s3_endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StoreError, match="s3://bucket-x/p"):
        asyncio.run(s3.check())
    assert isinstance(open_store("", Settings(data_dir=str(tmp_path))), DirectoryStore)
    assert open_store("", Settings(data_dir=str(tmp_path))).url == str(tmp_path / "backups")


def rec(op: str, key: bytes, v: int | None, ts: int, epoch: int = 1, fence: int = 0, **kw: Any) -> dict[str, Any]:
    return {"op": op, "key": key, "new_image": None if v is None else {"v": {"N": str(v)}}, "old_image": None,
            "timestamp_ms": ts, "leader_epoch": epoch, "fence_offset": fence, "transaction_id": kw.get("txn"),
            "txn_action": kw.get("action"), "request_id": None}


def items(fold: PartitionFold) -> dict[bytes, int]:
    return {k: int(orjson.loads(v)["v"]["N"]) for k, v in fold.items.items()}


def test_fold_counts_records_by_term_and_time() -> None:
    # The records a restore folds: a deposed leader's record after a newer FENCE never counts;
    # a prepared transaction changes nothing until its commit; with a restore time, only records
    # stamped at or before it count -- to the millisecond.
    log = [
        (0, rec("FENCE", b"", None, 100, epoch=1, fence=-1)),
        (1, rec("PUT", b"a", 1, 101)),
        (2, rec("PUT", b"b", 1, 102)),
        (3, rec("PREPARE", b"c", 7, 103, txn="t1", action="PUT")),
        (4, rec("FENCE", b"", None, 104, epoch=2, fence=-1)),
        (5, rec("PUT", b"a", 99, 105, epoch=1, fence=0)),  # the old leader's, after the new FENCE
        (6, rec("PUT", b"a", 2, 106, epoch=2, fence=4)),
        (7, rec("TXN_COMMIT", b"c", 7, 107, epoch=2, fence=4, txn="t1", action="PUT")),
        (8, rec("DELETE", b"b", None, 108, epoch=2, fence=4)),
    ]
    expected = {100: {}, 101: {b"a": 1}, 102: {b"a": 1, b"b": 1}, 105: {b"a": 1, b"b": 1},
                106: {b"a": 2, b"b": 1}, 107: {b"a": 2, b"b": 1, b"c": 7}, 108: {b"a": 2, b"c": 7}}
    for until, want in expected.items():
        fold = PartitionFold(ORIGIN, until)
        for offset, r in log:
            fold.apply(r, offset)
        assert items(fold) == want, until
    # from a snapshot: its items and the term it had seen, then the log after it
    fold = PartitionFold(Term(2, 4), None)
    fold.load(b"a", orjson.dumps({"v": {"N": "2"}}))
    for offset, r in log[5:]:
        fold.apply(r, offset)
    assert items(fold) == {b"a": 2, b"c": 7}
    assert fold.max_ts == 108


def test_layout_lines_and_arns_round_trip() -> None:
    w = layout.ChunkWriter()
    assert w.add(layout.item_line(b"\x00k\t", b'{"a":{"S":"x"}}')) is False  # not a full chunk yet
    chunk = asyncio.run(w.flush())
    assert chunk is not None
    (line,) = list(layout.chunk_lines(chunk))
    assert layout.parse_item_line(line) == (b"\x00k\t", b'{"a":{"S":"x"}}')
    assert layout.parse_log_line(layout.log_line(42, b"\x01\x02")) == (42, b"\x01\x02")
    arn = layout.backup_arn("arn:aws:dynamodb:us-east-1:000000000000:table/T1", "01700000000000-abcdef01")
    assert layout.backup_id_of(arn) == "01700000000000-abcdef01"
    assert layout.backup_id_of("arn:aws:dynamodb:us-east-1:000000000000:table/T1") is None


def test_import_lines_parse_and_bad_lines_are_counted() -> None:
    # ImportTable's parsing: DynamoDB JSON lines and CSV rows become items with their encoded
    # keys; a line that does not parse, lacks a key or has a key of another type is an error.
    from services.backup.imports import decompress, parse_object

    keys = [("pk", "S"), ("sk", "N")]
    text = b'{"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"BOOL": true}}}\n\nnope\n' \
           b'{"Item": {"pk": {"S": "a"}}}\n{"Item": {"pk": {"N": "1"}, "sk": {"N": "1"}}}\n'
    rows = list(parse_object(text, "DYNAMODB_JSON", keys))
    assert [r is None for r in rows] == [False, True, True, True]
    assert rows[0] is not None and rows[0][1]["x"] == {"BOOL": True}
    csv_rows = list(parse_object(b"pk,sk,note\nb,2,hi\nc,,x\nd,3\n", "CSV", keys))
    assert csv_rows[0] == (csv_rows[0][0], {"pk": {"S": "b"}, "sk": {"N": "2"}, "note": {"S": "hi"}})  # type: ignore[index]
    assert csv_rows[1:] == [None, None]  # no sort key; a short row
    import gzip

    assert decompress(gzip.compress(b"abc"), "GZIP") == b"abc" and decompress(b"abc", "NONE") == b"abc"


def test_incremental_fold_holds_exactly_the_changes_of_its_window() -> None:
    # An incremental export over [from, to): each item changed by a record stamped in it, with
    # its image before the window and at its end, and the stamp of its last change -- checked
    # against a brute-force reading of a random log whose stamps are not always increasing (a
    # new leader's clock behind); an item created and deleted inside the window is left out.
    rnd = random.Random(11)
    log = []
    ts = 1000
    for offset in range(400):
        ts += rnd.randrange(-3, 10)
        key = f"k{rnd.randrange(12)}".encode()
        value = None if rnd.random() < 0.25 else offset
        log.append((offset, rec("DELETE" if value is None else "PUT", key, value, ts)))

    def state(until: int) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for _, r in log:
            if r["timestamp_ms"] <= until:
                if r["new_image"] is None:
                    out.pop(r["key"], None)
                else:
                    out[r["key"]] = int(r["new_image"]["v"]["N"])
        return out

    for lo, hi in ((1200, 1800), (1000, 4000), (2500, 2520), (5000, 9000)):
        fold = PartitionFold(ORIGIN, window=(lo, hi))
        for offset, r in log:
            fold.apply(r, offset)
        got = {k: (ts_, None if old is None else int(orjson.loads(old)["v"]["N"]),
                   None if new is None else int(orjson.loads(new)["v"]["N"]))
               for k, ts_, old, new in fold.changes()}
        before, after = state(lo - 1), state(hi - 1)
        want = {}
        for k in {r["key"] for _, r in log if lo <= r["timestamp_ms"] < hi}:
            if k in before or k in after:
                last = max(r["timestamp_ms"] for _, r in log if r["key"] == k and lo <= r["timestamp_ms"] < hi)
                want[k] = (last, before.get(k), after.get(k))
        assert got == want, (lo, hi)
        assert items(fold) == after
        fold.close()


def test_a_paced_copy_works_its_share_of_the_time_and_rests_the_rest() -> None:
    # DYNAMOLOG_BACKUP_DUTY: a copy given a third of the time rests twice as long as each page
    # took; given all of it, it never rests
    async def copy(share: float) -> tuple[float, float, float]:
        pace, worked, t0 = Duty(share), 0.0, time.perf_counter()
        for _ in range(5):
            w0 = time.perf_counter()
            while time.perf_counter() - w0 < 0.02:  # a page: 20 ms of work
                pass
            worked += time.perf_counter() - w0
            await pace.rest()
        return worked, pace.rested_s, time.perf_counter() - t0

    worked, rested, took = asyncio.run(copy(1 / 3))
    assert rested == pytest.approx(2 * worked, rel=0.2)
    assert worked / took == pytest.approx(1 / 3, abs=0.08)
    worked, rested, took = asyncio.run(copy(1.0))
    assert rested == 0.0 and took < worked + 0.05
