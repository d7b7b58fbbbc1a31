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

Pure: no I/O, so tests fold recorded logs and compare.
"""

from __future__ import annotations

from typing import Any

import orjson

from dynamolog.fencing import CONTROL_OPS, ORIGIN, Term, TermGate


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

    def __init__(self, term: Term = ORIGIN, until_ms: int | None = None) -> None:
        """``term``: the greatest term the snapshot had seen; ``until_ms``: only records stamped
        at or before it change items (None: every record)."""
        self.gate = TermGate(term)
        self.until_ms = until_ms
        #: item key -> item JSON bytes
        self.items: dict[bytes, bytes] = {}
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
        if new is None:
            self.items.pop(key, None)
        else:
            self.items[key] = orjson.dumps(new)
