"""One partition replica: a RocksDB view materialized from the partition's log.

Layout of the RocksDB database (raw byte keys and values):

- ``b"d" + item_key``: the item, as DynamoDB JSON (orjson bytes), ``item_key`` from
  :func:`dynamolog.keys.encode_item_key` so that RocksDB order is DynamoDB order;
- ``b"p" + txn_id + item_key``: a prepared, undecided transaction's pending change of the item
  (orjson ``{"a": PUT|DELETE|CHECK, "i": new item or null, "dl": deadline ms}``): the item's lock
  (docs/transactions.md).  Transaction ids are 32 hex characters;
- ``b"l" + index name + 00 + entry key``: an entry of a local secondary index (the projected
  item; :class:`dynamolog.indexes.LocalIndexes`), changed in the same WriteBatch as its item;
- ``b"c" + hash prefix``: the size of an item collection of a table with local secondary
  indexes (8 bytes big-endian: its items plus their index entries);
- ``b"k" + window + token``: the ClientRequestToken of a transaction committed in one phase
  (orjson ``{"d": request digest, "t": transaction id, "ms": commit time}``), ``window`` the
  ten-minute window of its commit time (8 bytes big-endian), so that a record of a new window
  deletes those before the previous one by range (:func:`token_key`);
- ``b"w" + item_key``: the item's last-writer-wins stamp (orjson ``{"t": ms, "r": region}``,
  ``"x": 1`` when the last write deleted it: a tombstone), from the record's ``timestamp_ms``
  and ``origin_region`` (:func:`stamp_mutation`; global tables, decision 0031); never shown
  to clients;
- ``b"m:offset"``: the next log offset to apply (8 bytes big-endian);
- ``b"m:applied"``: how many log records were ever applied (8 bytes), to prove in tests that a
  restart repeats nothing;
- ``b"s:items"``, ``b"s:bytes"``: the partition's item count and size (DynamoDB's item size,
  :func:`dynamolog.attrs.item_size`), 8-byte counters changed in each record's WriteBatch from
  its old and new images (:func:`stats_mutations`), so they are exact at every offset and a
  snapshot copies them; ``b"s:kept"`` says they have been kept since the replica was empty (a
  replica written before they existed is counted once when it is opened);
- ``b"f:term"``: the greatest leader term seen in the log up to ``m:offset``
  (:class:`dynamolog.fencing.Term`, ``epoch:fence_offset``), which decides whether the next
  record counts; a repair's snapshot copies it with the items;
- ``b"f:sealed"``: present once the partition's SEAL record is applied (it was split; nothing is
  read or written here after it, its children go on: docs/decisions/0039-partition-splits.md).

Invariant 3 (docs/architecture.md): the state is exactly the fold of the log up to ``m:offset``; data
and offset change in one WriteBatch.  RocksDB's WAL is not synced: after a machine crash the
view may lose a suffix, but data and offset lose it together and the log replays it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rocksdict import BlockBasedOptions, Checkpoint, Options, Rdict, WriteBatch

from dynamolog.attrs import item_size
from dynamolog.fencing import ORIGIN, Term
from dynamolog.keys import prefix_end

from .invariants import check

_DATA = b"d"
#: the key space of the items (for :meth:`Replica.range`)
DATA_SPACE = _DATA
_DATA_END = b"e"
_PENDING = b"p"
_PENDING_END = b"q"
TXN_ID_LEN = 32
_TOKEN = b"k"
#: how long a one-phase transaction's ClientRequestToken counts (DynamoDB's idempotency window)
TOKEN_WINDOW_MS = 10 * 60 * 1000
_STAMP = b"w"
_OFFSET = b"m:offset"
_APPLIED = b"m:applied"
_TERM = b"f:term"
_STATS_ITEMS = b"s:items"
_STATS_BYTES = b"s:bytes"
_STATS_KEPT = b"s:kept"
_SEALED = b"f:sealed"
#: the RocksDB mutation of a SEAL record (every replica of a split partition applies it)
SEAL_MUTATION: tuple[bytes, bytes] = (_SEALED, b"1")
_U64 = struct.Struct(">Q")


@dataclass(frozen=True)
class PartitionStats:
    """A replica's item count and size at its offset (DescribeTable's ItemCount and
    TableSizeBytes are the sums over a table's partitions)."""

    items: int
    size_bytes: int
    #: the log offset they hold at
    next_offset: int


def stats_mutations(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[tuple[bytes, Any]]:
    """The counter mutations of one item change (its old and new image; None: absent)."""
    muts: list[tuple[bytes, Any]] = []
    items = (new is not None) - (old is not None)
    if items:
        muts.append((_STATS_ITEMS, items))
    size = (item_size(new) if new is not None else 0) - (item_size(old) if old is not None else 0)
    if size:
        muts.append((_STATS_BYTES, size))
    return muts


def child_entry(key: bytes, lo: int, hi: int) -> bool:
    """Whether a snapshot entry of a split partition belongs to the child holding partition-key
    hashes ``lo``..``hi`` (inclusive): items, pending changes, local index entries,
    item-collection sizes and last-writer-wins stamps by their item's hash; ClientRequestTokens go to both children (a
    repeated one-phase transaction is still recognised); counters, terms and offsets to neither
    (the child counts its own and starts its own log)."""
    kind = key[:1]
    if kind in (_DATA, b"c", b"w"):  # items, item-collection sizes, last-writer-wins stamps
        h = key[1:9]
    elif kind == _PENDING:
        h = key[1 + TXN_ID_LEN:9 + TXN_ID_LEN]
    elif kind == b"l":
        sep = key.find(b"\x00", 1)
        if sep < 0:
            return False
        h = key[sep + 1:sep + 9]
    else:
        return kind == _TOKEN
    return len(h) == 8 and lo <= int.from_bytes(h, "big") <= hi


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


def stamp_key(item_key: bytes) -> bytes:
    """The RocksDB key of an item's last-writer-wins stamp."""
    return _STAMP + item_key


def stamp_mutation(item_key: bytes, ts: int, region: str, deleted: bool) -> tuple[bytes, bytes]:
    """The mutation that records an item's stamp (a tombstone when ``deleted``)."""
    value: dict[str, Any] = {"t": ts, "r": region}
    if deleted:
        value["x"] = 1
    return stamp_key(item_key), orjson.dumps(value)


def pending_key(txn_id: str, item_key: bytes) -> bytes:
    """The RocksDB key of a transaction's pending change of an item."""
    return _PENDING + txn_id.encode() + item_key


def token_key(ms: int, token: str) -> bytes:
    """The RocksDB key of a ClientRequestToken recorded at ``ms`` (epoch ms)."""
    return _TOKEN + _U64.pack(ms // TOKEN_WINDOW_MS) + token.encode()


def expired_tokens(ms: int) -> tuple[bytes, bytes]:
    """The key range [start, end) of the tokens that no longer count at ``ms``: those of every
    window before the previous one."""
    return _TOKEN, _TOKEN + _U64.pack(max(0, ms // TOKEN_WINDOW_MS - 1))


@dataclass(frozen=True)
class DeleteRange:
    """A mutation's value that deletes every key from the mutation's key up to ``end``."""

    end: bytes


#: a database mutation: (full RocksDB key, the new value; None deletes the key; an int is added to
#: the 8-byte counter under the key; a DeleteRange deletes from the key up to its end)
Mutation = tuple[bytes, "bytes | int | DeleteRange | None"]


class Digest:
    """The running digest of :meth:`Replica.digest`."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._n = 0

    def add(self, k: bytes, v: bytes) -> None:
        self._h.update(_U64.pack(len(k)) + k + _U64.pack(len(v)) + v)
        self._n += k[:1] == _DATA

    def result(self) -> tuple[str, int]:
        return self._h.hexdigest(), self._n


def _options() -> Options:
    """A replica's RocksDB options: whole-key Bloom filters in the table files and the memtable,
    because every write and GetItem looks its item (and a write its stamp) up by exact key, and a
    new key is absent from every level: without them each level is searched (4.4 against 0.55 µs
    per absent key, 1.8 µs either way per present one: bench/replica_lookups.py).  Range reads
    (Query, Scan) do not consult them."""
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)  # ten bits a key: about 1 % false positives
    opts.set_block_based_table_factory(table)
    opts.set_memtable_prefix_bloom_ratio(0.02)
    opts.set_memtable_whole_key_filtering(True)
    return opts


class Replica:
    """A partition's RocksDB view.  Not thread-safe; used from one event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), options=_options())
        raw = self._db.get(_OFFSET)
        #: the next log offset to apply
        self.next_offset: int = _U64.unpack(raw)[0] if raw else 0
        raw = self._db.get(_APPLIED)
        #: log records applied over the replica's whole life
        self.applied_records: int = _U64.unpack(raw)[0] if raw else 0
        #: the greatest leader term seen in the log up to next_offset (dynamolog/fencing.py)
        self.term: Term = self._stored_term()
        #: the partition was split: its SEAL record is applied (docs/decisions/0039-partition-splits.md)
        self.sealed = self._db.get(_SEALED) is not None
        self._snapshots = 0
        #: a snapshot is being loaded (load_snapshot ... finish_snapshot)
        self._loading = False
        self._keep_stats()

    def _keep_stats(self) -> None:
        """Count the items once if the counters have not been kept since the replica was empty
        (a replica written by an earlier version, or a snapshot copied from one)."""
        if self._db.get(_STATS_KEPT) is not None:
            return
        items = size = 0
        for _, raw in self.range(b"", None):
            items += 1
            size += item_size(orjson.loads(raw))
        wb = WriteBatch(raw_mode=True)
        for key, n in ((_STATS_ITEMS, items), (_STATS_BYTES, size)):
            if n:
                wb.put(key, _U64.pack(n))
            else:
                wb.delete(key)
        wb.put(_STATS_KEPT, b"1")
        self._db.write(wb)

    def stats(self) -> PartitionStats:
        """The item count and size at :attr:`next_offset`."""
        return PartitionStats(self.counter(_STATS_ITEMS), self.counter(_STATS_BYTES), self.next_offset)

    def _stored_term(self) -> Term:
        raw = self._db.get(_TERM)
        return (Term.decode(raw.decode()) if raw else None) or ORIGIN

    # -- writes --------------------------------------------------------------------------
    def apply(self, changes: Iterable[tuple[bytes, bytes | None]], next_offset: int, records: int) -> None:
        """Apply item changes (key, new JSON or None for delete) and move the offset, atomically."""
        self.apply_raw(((_DATA + key, value) for key, value in changes), next_offset, records)

    def apply_raw(self, mutations: Iterable[Mutation], next_offset: int, records: int, *,
                  offsets: Sequence[int] | None = None, read_from: int | None = None,
                  term: Term | None = None) -> None:
        """Apply database mutations (full RocksDB key, value or None to delete; see
        :func:`data_key`, :func:`pending_key`) and move the offset, atomically.  An ``int`` value
        is added to the 8-byte counter under its key (item-collection sizes); a
        :class:`DeleteRange` deletes a range of keys.

        Invariants (:class:`~services.storage.invariants.InvariantViolation` when broken):
        the offset never moves back; ``offsets`` (the log offsets of the ``records`` applied,
        when the caller knows them) are increasing, none below the stored next offset (no record
        applied twice) and all below ``next_offset``; ``read_from`` (the log position the records
        were read from, for a reader of the log) is the stored next offset (no record skipped);
        ``term`` (the greatest leader term seen up to ``next_offset``) never moves back;
        and the offset read back from RocksDB after the write is ``next_offset``."""
        check(records >= 0 and next_offset >= self.next_offset,
              f"{self.path.name}: offset moves back from {self.next_offset} to {next_offset} ({records} records)")
        if read_from is not None:
            check(read_from == self.next_offset,
                  f"{self.path.name}: records read from offset {read_from}, but the view stands at "
                  f"{self.next_offset} ({'a gap' if read_from > self.next_offset else 'a repeat'})")
        if offsets is not None:
            check(len(offsets) == records, f"{self.path.name}: {records} records but {len(offsets)} offsets")
            if offsets:
                check(offsets[0] >= self.next_offset,
                      f"{self.path.name}: record at offset {offsets[0]} applied again (view at {self.next_offset})")
                check(all(a < b for a, b in itertools.pairwise(offsets)),
                      f"{self.path.name}: record offsets not increasing: {list(offsets)[:10]}")
                check(offsets[-1] < next_offset,
                      f"{self.path.name}: record at offset {offsets[-1]} but next offset {next_offset}")
        wb = WriteBatch(raw_mode=True)
        counters: dict[bytes, int] = {}
        sealed = self.sealed
        for key, value in mutations:
            if key == _SEALED:
                sealed = True
            if value is None:
                wb.delete(key)
            elif isinstance(value, DeleteRange):
                wb.delete_range(key, value.end)
            elif isinstance(value, int):
                if key not in counters:
                    counters[key] = self.counter(key)
                counters[key] += value
            else:
                wb.put(key, value)
        for key, n in counters.items():
            if n > 0:
                wb.put(key, _U64.pack(n))
            else:
                wb.delete(key)
        applied = self.applied_records + records
        wb.put(_OFFSET, _U64.pack(next_offset))
        wb.put(_APPLIED, _U64.pack(applied))
        if term is not None and term != self.term:
            check(term > self.term, f"{self.path.name}: leader term moves back from {self.term} to {term}")
            wb.put(_TERM, term.encode().encode())
        self._db.write(wb)
        self.next_offset = next_offset
        self.applied_records = applied
        self.sealed = sealed
        if term is not None:
            self.term = term
        stored = self.stored_next_offset()
        check(stored == next_offset, f"{self.path.name}: wrote next offset {next_offset}, read back {stored}")

    def stored_next_offset(self) -> int:
        """The next log offset to apply as stored in RocksDB (what a restart starts from)."""
        raw = self._db.get(_OFFSET)
        return int(_U64.unpack(raw)[0]) if raw else 0

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

    def token(self, token: str, now_ms: int) -> dict[str, Any] | None:
        """The one-phase transaction that carried ``token`` within the idempotency window."""
        for window in (now_ms, now_ms - TOKEN_WINDOW_MS):
            raw = self._db.get(token_key(window, token))
            if raw is not None:
                entry: dict[str, Any] = orjson.loads(raw)
                if now_ms - int(entry["ms"]) <= TOKEN_WINDOW_MS:
                    return entry
        return None

    def counter(self, key: bytes) -> int:
        """An 8-byte counter (0 when absent)."""
        raw = self._db.get(key)
        return _U64.unpack(raw)[0] if raw else 0

    def get_raw(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(_DATA + key)
        return value

    def stamp(self, key: bytes) -> tuple[int, str, bool] | None:
        """An item's stamp: (ms, region, deleted), or None when none is kept."""
        raw = self._db.get(stamp_key(key))
        if raw is None:
            return None
        v = orjson.loads(raw)
        return int(v["t"]), str(v["r"]), bool(v.get("x"))

    def tombstones_before(self, before_ms: int, after: bytes | None = None,
                          limit: int = 1000) -> tuple[list[bytes], bytes | None]:
        """Item keys of tombstones stamped before ``before_ms`` among up to ``limit`` stamps after
        item key ``after``; and the item key to go on from (None: done)."""
        found: list[bytes] = []
        it = self._db.iter()
        it.seek(_STAMP + after + b"\x00" if after is not None else _STAMP)
        seen = 0
        last: bytes | None = None
        while it.valid() and it.key()[:1] == _STAMP and seen < limit:
            v = orjson.loads(it.value())
            last = it.key()[1:]
            if v.get("x") and int(v["t"]) < before_ms:
                found.append(last)
            seen += 1
            it.next()
        return found, (last if it.valid() and it.key()[:1] == _STAMP else None)

    def purge_tombstones(self, keys: Iterable[bytes], before_ms: int) -> int:
        """Forget the tombstones of ``keys`` that are still tombstones stamped before
        ``before_ms`` (read again here: an item written since keeps its stamp).  Stamps are not
        part of the digest; a tombstone this old no longer refuses anything (writes.newer)."""
        wb = WriteBatch(raw_mode=True)
        n = 0
        for key in keys:
            st = self.stamp(key)
            if st is not None and st[2] and st[0] < before_ms:
                wb.delete(stamp_key(key))
                n += 1
        if n:
            self._db.write(wb)
        return n

    def get(self, key: bytes) -> dict[str, Any] | None:
        raw = self.get_raw(key)
        return None if raw is None else orjson.loads(raw)

    def range(
        self, start: bytes, end: bytes | None, *, forward: bool = True, after: bytes | None = None,
        space: bytes = _DATA,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Items with ``start <= key < end`` (``end`` None: no upper bound) in key order or its
        reverse, strictly after ``after`` in the direction of travel when given.
        Yields (item key, raw JSON).  ``space``: another key space with the same layout (a local
        secondary index's, :func:`dynamolog.indexes.local_space`)."""
        it = self._db.iter()
        sp = space
        lo = sp + start
        hi = sp + end if end is not None else (prefix_end(sp) or b"\xff" * 16)
        if forward:
            if after is not None:
                it.seek(sp + after)
                if it.valid() and it.key() == sp + after:
                    it.next()
            else:
                it.seek(lo)
            while it.valid():
                k = it.key()
                if k >= hi:
                    break
                if k >= lo:
                    yield k[len(sp):], it.value()
                it.next()
        else:
            it.seek_for_prev(sp + after if after is not None else hi)
            if it.valid() and (it.key() == hi or (after is not None and it.key() == sp + after)):
                it.prev()
            while it.valid():
                k = it.key()
                if k < lo:
                    break
                if k < hi:
                    yield k[len(sp):], it.value()
                it.prev()

    # -- snapshots (partition repair) -------------------------------------------------------
    def open_snapshot(self) -> tuple[Snapshot, int, int]:
        """A consistent copy of the replica (a RocksDB checkpoint: hard links, no data copied),
        with the log offset and applied count it holds.  Close it when done."""
        self._snapshots += 1
        path = self.path.with_name(f"{self.path.name}.snapshot-{os.getpid()}-{self._snapshots}")
        shutil.rmtree(path, ignore_errors=True)
        Checkpoint(self._db).create_checkpoint(str(path))
        db = Rdict(str(path), options=_options())
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
        if not self._loading:
            # the copy keeps the counters only if its source did (finish_snapshot counts otherwise)
            self._loading = True
            wb.delete(_STATS_KEPT)
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
        self.term = self._stored_term()  # copied with the snapshot's entries
        self.sealed = self._db.get(_SEALED) is not None
        self._loading = False
        self._keep_stats()  # copied too, unless the source did not keep them

    def digest(self) -> tuple[str, int]:
        """SHA-256 over every item, local index entry, item-collection size and partition counter (keys and values in
        key order), and the item count: replicas that folded the same log have the same digest."""
        d = Digest()
        for k, v in self.digest_entries():
            d.add(k, v)
        return d.result()

    def digest_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """The entries :meth:`digest` covers, in key order (for a caller that paces the work)."""
        it = self._db.iter()
        it.seek_to_first()
        while it.valid():
            k = it.key()
            if k[:1] in (_DATA, b"l", b"c", b"s"):
                yield k, it.value()
            it.next()

    # -- life cycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
