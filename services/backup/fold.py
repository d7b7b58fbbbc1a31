"""The fold of a partition's log into its items: what a restore loads.

A partition's items at a log position are its snapshot's items (a replica's state at the
snapshot's offset, with the leader term it had seen) changed by every record after it that
counts.  A record counts when the term rule admits it (dynamolog/fencing.py: a deposed
leader's records after a newer leader's FENCE never count) and, for a point-in-time restore,
when its ``timestamp_ms`` is at or before the restore time.  Its effect on the item is what a
replica applies (services/storage/follower.py, ``record_mutations``), for items only:

- PUT: the item becomes the record's new image; DELETE: the item is gone;
- TXN_COMMIT of a PUT / DELETE action: the same (the record carries the image);
- PREPARE, TXN_ABORT, a ConditionCheck's TXN_COMMIT, FENCE, BARRIER: no item changes (a prepared
  transaction whose commit is not in the stretch folded is not part of the state).

An incremental export (``window``: from, to) also keeps, for every item changed by a record
stamped in ``[from, to)``, its image before the window (``before``) and the stamp of its last
change in the window (both kept on disk as well): the fold then holds the images at ``to - 1`` ms, and the
export writes, per changed item, its image before and after (services/backup/export.py).

The items live in a temporary RocksDB (services/backup/spill.py), not in memory; no other
I/O, so tests fold recorded logs and compare.  :meth:`PartitionFold.close` deletes the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from dynamolog.fencing import CONTROL_OPS, ORIGIN, Term, TermGate

from .spill import SpillItems


def item_effect(rec: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """(whether the record changes its item, the item after it or None when deleted)."""
    op = rec["op"]
    if op == "PUT":
        return True, rec.get("new_image")
    if op == "DELETE":
        return True, None
    if op == "TXN_COMMIT" and rec.get("txn_action") in ("PUT", "DELETE"):
        return True, rec.get("new_image") if rec["txn_action"] == "PUT" else None
    return False, None


class PartitionFold:
    """Items of one partition: load a snapshot, then :meth:`apply` the log after it in order."""

    def __init__(self, term: Term = ORIGIN, until_ms: int | None = None, *, work_dir: str = "",
                 window: tuple[int, int] | None = None) -> None:
        """``term``: the greatest term the snapshot had seen; ``until_ms``: only records stamped
        at or before it change items (None: every record); ``window``: (from ms, to ms) of an
        incremental export (``until_ms`` is then ``to - 1``); ``work_dir``: where the items'
        temporary RocksDB goes (empty: the system's temporary directory)."""
        self.gate = TermGate(term)
        self.window = window
        self.until_ms = window[1] - 1 if window is not None else until_ms
        #: item key -> item JSON bytes (on disk)
        self.items = SpillItems(work_dir)
        #: an incremental export's changed items: key -> the stamp of its last change in the
        #: window (8 bytes, big-endian ms), then its JSON before the window (nothing: none)
        self.before = SpillItems(work_dir) if window is not None else None
        #: records applied, and skipped by the term rule or the time
        self.applied = 0
        self.skipped_late = 0
        #: greatest timestamp among the records seen (-1: none)
        self.max_ts = -1

    def load(self, key: bytes, item_json: bytes) -> None:
        self.items[key] = item_json

    def apply(self, rec: dict[str, Any], offset: int) -> None:
        ts = int(rec["timestamp_ms"])
        self.max_ts = max(self.max_ts, ts)
        if not self.gate.admit(rec, offset) or rec["op"] in CONTROL_OPS:
            return
        changes, new = item_effect(rec)
        if not changes:
            return
        if self.until_ms is not None and ts > self.until_ms:
            self.skipped_late += 1
            return
        self.applied += 1
        key: bytes = rec["key"]
        raw = None if new is None else orjson.dumps(new)
        if self.window is not None and self.before is not None:
            seen = self.before.get(key)
            if ts >= self.window[0]:
                if seen is None:
                    self.before[key] = ts.to_bytes(8, "big") + (self.items.get(key) or b"")
                elif ts > int.from_bytes(seen[:8], "big"):
                    self.before[key] = ts.to_bytes(8, "big") + seen[8:]
            elif seen is not None:
                # an earlier stamp later in the log (a new leader's clock behind): it changes
                # the item before the window as well as after it
                self.before[key] = seen[:8] + (raw or b"")
        if raw is None:
            self.items.pop(key, None)
        else:
            self.items[key] = raw

    def changes(self) -> Iterator[tuple[bytes, int, bytes | None, bytes | None]]:
        """An incremental export's changed items, in key order: (key, stamp ms of the last
        change, image before the window or None, image at the window's end or None); an item
        that did not exist at either end is left out, as DynamoDB does."""
        assert self.before is not None
        for key, seen in self.before.items():
            old, new = seen[8:], self.items.get(key)
            if not old and new is None:
                continue
            yield key, int.from_bytes(seen[:8], "big"), old or None, new

    def close(self) -> None:
        """Delete the items' files."""
        self.items.close()
        if self.before is not None:
            self.before.close()
