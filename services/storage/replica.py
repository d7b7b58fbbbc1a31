"""One partition replica: a RocksDB view materialized from the partition's log.

Layout of the RocksDB database (raw byte keys and values):

- ``b"d" + item_key``: the item, as DynamoDB JSON (orjson bytes), ``item_key`` from
  :func:`dynamolog.keys.encode_item_key` so that RocksDB order is DynamoDB order;
- ``b"p" + txn_id + item_key``: a prepared, undecided transaction's pending change of the item
  (orjson ``{"a": PUT|DELETE|CHECK, "i": new item or null, "dl": deadline ms}``): the item's lock
  (docs/transactions.md).  Transaction ids are 32 hex characters;
- ``b"m:offset"``: the next log offset to apply (8 bytes big-endian);
- ``b"m:applied"``: how many log records were ever applied (8 bytes), to prove in tests that a
  restart repeats nothing.

Invariant (DESIGN.md 4.3): the state is exactly the fold of the log up to ``m:offset``; data
and offset change in one WriteBatch.  RocksDB's WAL is not synced: after a machine crash the
view may lose a suffix, but data and offset lose it together and the log replays it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Checkpoint, Options, Rdict, WriteBatch

_DATA = b"d"
_DATA_END = b"e"
_PENDING = b"p"
_PENDING_END = b"q"
TXN_ID_LEN = 32
_OFFSET = b"m:offset"
_APPLIED = b"m:applied"
_U64 = struct.Struct(">Q")


class Snapshot:
    """A checkpoint of a replica opened for reading; :meth:`close` deletes it."""

    def __init__(self, db: Rdict, path: Path) -> None:
        self.db = db
        self.path = path

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)


def data_key(item_key: bytes) -> bytes:
    """The RocksDB key of an item."""
    return _DATA + item_key


def pending_key(txn_id: str, item_key: bytes) -> bytes:
    """The RocksDB key of a transaction's pending change of an item."""
    return _PENDING + txn_id.encode() + item_key


class Replica:
    """A partition's RocksDB view.  Not thread-safe; used from one event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self._db = Rdict(str(path), options=opts)
        raw = self._db.get(_OFFSET)
        #: the next log offset to apply
        self.next_offset: int = _U64.unpack(raw)[0] if raw else 0
        raw = self._db.get(_APPLIED)
        #: log records applied over the replica's whole life
        self.applied_records: int = _U64.unpack(raw)[0] if raw else 0
        self._snapshots = 0

    # -- writes --------------------------------------------------------------------------
    def apply(self, changes: Iterable[tuple[bytes, bytes | None]], next_offset: int, records: int) -> None:
        """Apply item changes (key, new JSON or None for delete) and move the offset, atomically."""
        self.apply_raw(((_DATA + key, value) for key, value in changes), next_offset, records)

    def apply_raw(self, mutations: Iterable[tuple[bytes, bytes | None]], next_offset: int, records: int) -> None:
        """Apply database mutations (full RocksDB key, value or None to delete; see
        :func:`data_key`, :func:`pending_key`) and move the offset, atomically."""
        wb = WriteBatch(raw_mode=True)
        for key, value in mutations:
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        applied = self.applied_records + records
        wb.put(_OFFSET, _U64.pack(next_offset))
        wb.put(_APPLIED, _U64.pack(applied))
        self._db.write(wb)
        self.next_offset = next_offset
        self.applied_records = applied

    # -- reads ---------------------------------------------------------------------------
    def pending(self) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
        """Every prepared, undecided change: (transaction id, item key, pending entry)."""
        it = self._db.iter()
        it.seek(_PENDING)
        while it.valid():
            k = it.key()
            if k >= _PENDING_END:
                break
            yield k[1:1 + TXN_ID_LEN].decode(), k[1 + TXN_ID_LEN:], orjson.loads(it.value())
            it.next()

    def get_raw(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(_DATA + key)
        return value

    def get(self, key: bytes) -> dict[str, Any] | None:
        raw = self.get_raw(key)
        return None if raw is None else orjson.loads(raw)

    def range(
        self, start: bytes, end: bytes | None, *, forward: bool = True, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Items with ``start <= key < end`` (``end`` None: no upper bound) in key order or its
        reverse, strictly after ``after`` in the direction of travel when given.
        Yields (item key, raw JSON)."""
        it = self._db.iter()
        lo, hi = _DATA + start, (_DATA + end if end is not None else _DATA_END)
        if forward:
            if after is not None:
                it.seek(_DATA + after)
                if it.valid() and it.key() == _DATA + after:
                    it.next()
            else:
                it.seek(lo)
            while it.valid():
                k = it.key()
                if k >= hi:
                    break
                if k >= lo:
                    yield k[1:], it.value()
                it.next()
        else:
            it.seek_for_prev(_DATA + after if after is not None else hi)
            if it.valid() and (it.key() == hi or (after is not None and it.key() == _DATA + after)):
                it.prev()
            while it.valid():
                k = it.key()
                if k < lo:
                    break
                if k < hi:
                    yield k[1:], it.value()
                it.prev()

    # -- snapshots (partition repair) -------------------------------------------------------
    def open_snapshot(self) -> tuple[Snapshot, int, int]:
        """A consistent copy of the replica (a RocksDB checkpoint: hard links, no data copied),
        with the log offset and applied count it holds.  Close it when done."""
        self._snapshots += 1
        path = self.path.with_name(f"{self.path.name}.snapshot-{os.getpid()}-{self._snapshots}")
        shutil.rmtree(path, ignore_errors=True)
        Checkpoint(self._db).create_checkpoint(str(path))
        opts = Options(raw_mode=True)
        db = Rdict(str(path), options=opts)
        raw = db.get(_OFFSET)
        offset = _U64.unpack(raw)[0] if raw else 0
        raw = db.get(_APPLIED)
        applied = _U64.unpack(raw)[0] if raw else 0
        return Snapshot(db, path), offset, applied

    @staticmethod
    def snapshot_page(snap: Snapshot, after: bytes | None, max_bytes: int) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Items and pending entries of a snapshot after key ``after`` (all but the meta keys),
        up to about ``max_bytes``; returns (entries, done)."""
        out: list[tuple[bytes, bytes]] = []
        size = 0
        it = snap.db.iter()
        if after is None:
            it.seek_to_first()
        else:
            it.seek(after)
            if it.valid() and it.key() == after:
                it.next()
        while it.valid():
            k = it.key()
            if not k.startswith(b"m:"):
                v = it.value()
                out.append((k, v))
                size += len(k) + len(v)
                if size >= max_bytes:
                    it.next()
                    return out, not it.valid()
            it.next()
        return out, True

    def load_snapshot(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Write snapshot entries (a repair's copy of a healthy replica), without the offset."""
        wb = WriteBatch(raw_mode=True)
        for k, v in entries:
            wb.put(k, v)
        self._db.write(wb)

    def finish_snapshot(self, next_offset: int, applied: int) -> None:
        """Set the offset the copied snapshot holds: the log is followed from there."""
        wb = WriteBatch(raw_mode=True)
        wb.put(_OFFSET, _U64.pack(next_offset))
        wb.put(_APPLIED, _U64.pack(applied))
        self._db.write(wb)
        self.next_offset = next_offset
        self.applied_records = applied

    def digest(self) -> tuple[str, int]:
        """SHA-256 over every item key and value in key order, and the item count."""
        h = hashlib.sha256()
        n = 0
        for k, v in self.range(b"", None):
            h.update(_U64.pack(len(k)) + k + _U64.pack(len(v)) + v)
            n += 1
        return h.hexdigest(), n

    # -- life cycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
