"""Transactions under contention at a partition leader (docs/transactions.md, decision 0022).

A TransactGetItems read of this partition's items that meets items held by prepared, undecided
transactions waits for their decisions (a bounded time) instead of being cancelled at once;
while it waits, and, for a read across partitions, until the coordinator checks it (or a bounded
time), transaction prepares on its items wait behind it, so that new locks do not starve it.  A
prepare waits behind reads for a bounded time too; then it goes ahead, and a read it overtakes
meets its lock.

This module holds the bookkeeping only; the leader's sequencer (``LeaderSequencer._eval_read``
and friends in leader.py) decides, in the order of its writes, when a read is served and when
a prepare is evaluated.  Nothing here is durable: a new leader starts with none of it, and the
coordinator of a read across partitions then finds its hold unknown and reads again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: checked reads whose hold ended (expired) kept for their coordinator's check, at most
EXPIRED_KEPT_MAX = 10_000
#: and at most this long (seconds)
EXPIRED_KEPT_S = 30.0


@dataclass(eq=False)
class Read:
    """A TransactGetItems read of some of this partition's items."""

    #: the leader's pending request (answered when the read is served)
    pending: Any
    keys: list[bytes]
    #: a read across partitions: after it is served, its items stay covered until the
    #: coordinator checks it (``Gate.check``) or the hold expires
    hold: bool = False
    #: the images the read returned (for the check), once served
    images: list[dict[str, Any] | None] | None = None
    hold_id: str | None = None
    timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(eq=False)
class Parked:
    """A transaction's prepare waiting behind reads of its items."""

    pending: Any
    keys: list[bytes]
    timer: asyncio.TimerHandle | None = None


@dataclass
class Gate:
    """Reads waiting for locks or holding their items, and prepares parked behind them."""

    #: reads waiting for their items' locks to go, in arrival order
    waiting: dict[int, Read] = field(default_factory=dict)
    #: served reads across partitions, by hold id, until checked or expired
    holds: dict[str, Read] = field(default_factory=dict)
    #: holds that expired before their check, kept a while for it (oldest first)
    expired: OrderedDict[str, tuple[float, Read]] = field(default_factory=OrderedDict)
    #: prepares parked behind reads, in arrival order
    parked: dict[int, Parked] = field(default_factory=dict)
    #: how many waiting reads and holds cover each item
    cover: Counter[bytes] = field(default_factory=Counter)
    #: a hold id is this prefix (random per leader instance) and a serial number, so that a
    #: check meant for an earlier leader never finds another read's hold
    prefix: str = field(default_factory=lambda: os.urandom(4).hex())
    _serial: int = 0

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def covered(self, keys: Iterable[bytes]) -> bool:
        return any(self.cover[k] > 0 for k in keys)

    def _cover(self, keys: list[bytes], n: int) -> None:
        for k in keys:
            self.cover[k] += n
            if self.cover[k] <= 0:
                del self.cover[k]

    # -- reads -------------------------------------------------------------------------------
    def wait(self, read: Read) -> None:
        """``read`` waits for locks; its items are covered meanwhile."""
        self.waiting[self._next()] = read
        self._cover(read.keys, 1)

    def stop_waiting(self, read: Read) -> bool:
        """Take ``read`` out of the waiting reads (False if it was not there)."""
        for n, r in self.waiting.items():
            if r is read:
                del self.waiting[n]
                self._cover(read.keys, -1)
                return True
        return False

    def ready(self, locked: Callable[[bytes], bool]) -> list[Read]:
        """The waiting reads none of whose items is locked any more, in arrival order; they
        stop waiting (the caller serves them)."""
        out = [r for r in self.waiting.values() if not any(locked(k) for k in r.keys)]
        for r in out:
            self.stop_waiting(r)
        return out

    def hold(self, read: Read, images: list[dict[str, Any] | None]) -> str:
        """``read`` was served with ``images``: its items stay covered until it is checked."""
        read.images = images
        read.hold_id = f"{self.prefix}-{self._next()}"
        self.holds[read.hold_id] = read
        self._cover(read.keys, 1)
        return read.hold_id

    def expire(self, hold_id: str) -> None:
        """The hold ran out before its check: its items are no longer covered, but the check
        can still be made (against its images and the locks)."""
        read = self.holds.pop(hold_id, None)
        if read is None:
            return
        read.cancel_timer()
        self._cover(read.keys, -1)
        now = time.monotonic()
        self.expired[hold_id] = (now, read)
        while self.expired and (len(self.expired) > EXPIRED_KEPT_MAX
                                or next(iter(self.expired.values()))[0] < now - EXPIRED_KEPT_S):
            self.expired.popitem(last=False)

    def release(self, hold_id: str) -> Read | None:
        """End a hold (checked by its coordinator); the read, or None if unknown here."""
        read = self.holds.pop(hold_id, None)
        if read is not None:
            read.cancel_timer()
            self._cover(read.keys, -1)
            return read
        kept = self.expired.pop(hold_id, None)
        return kept[1] if kept is not None else None

    # -- prepares ----------------------------------------------------------------------------
    def park(self, parked: Parked) -> None:
        self.parked[self._next()] = parked

    def unpark(self, parked: Parked) -> bool:
        for n, p in self.parked.items():
            if p is parked:
                del self.parked[n]
                if parked.timer is not None:
                    parked.timer.cancel()
                    parked.timer = None
                return True
        return False

    def free(self) -> list[Parked]:
        """The parked prepares none of whose items is covered any more, in arrival order; they
        leave the gate (the caller evaluates them)."""
        out = [p for p in self.parked.values() if not self.covered(p.keys)]
        for p in out:
            self.unpark(p)
        return out
