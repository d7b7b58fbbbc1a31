"""Which records of a partition log count: the term rule every reader of a log applies.

A leader appends to its partition's log with an idempotent ``acks=all`` producer, without Kafka
transactions (docs/decisions/0023-fenced-appends.md).  Fencing is in the log itself:

- a leader opens its *term* by appending a ``FENCE`` record; the term is
  ``Term(leader_epoch, offset of that FENCE record)``.  A leader whose append failed with an
  unknown outcome opens a new term of the same epoch the same way before it writes again;
- every record the leader writes carries its term: ``leader_epoch`` and ``fence_offset``;
- a reader keeps the greatest term it has seen and applies a record only if the record's term is
  at least that one (taking it as the greatest).  Terms order by epoch, then fence offset.

So once a newer leader's FENCE is in the log, whatever an older leader (or an older term of the
same leader) appends after it is ignored by every reader alike: the storage replicas, the
indexer, the stream reader.  The writer of such a record never acknowledges it, because a leader
acknowledges a group only if its records landed at exactly the offsets it expected — right after
its own previous records — so no FENCE can lie between its term's start and them.

Records written before fenced appends existed (under Kafka transactions, which fenced through the
producer epoch) carry ``fence_offset = -1``: their term is ``(epoch, -1)``, below any fence of
that epoch.

A reader that starts in the middle of a log without knowing the term there (a stream iterator at
LATEST) starts with ``None`` and adopts the first term it sees; a reader that starts at the
beginning, or stores its term with its position (a replica, the indexer), is exact.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: the log record op that opens a term
FENCE = "FENCE"
#: the log record op a leader appends to prove it still holds its term (a consistent read's barrier)
BARRIER = "BARRIER"
#: the log record op that ends a partition that was split: its children's logs go on from there
#: (docs/decisions/0039-partition-splits.md)
SEAL = "SEAL"
#: ops that change no item: a reader skips them once the term rule has seen them
CONTROL_OPS = frozenset((FENCE, BARRIER, SEAL))


class Term(NamedTuple):
    """A leader's term: its epoch (from the partition map) and the offset of its FENCE record."""

    epoch: int
    fence_offset: int

    def encode(self) -> str:
        return f"{self.epoch}:{self.fence_offset}"

    @staticmethod
    def decode(s: str | None) -> Term | None:
        """The term of :meth:`encode`, or None for a missing or unreadable one."""
        if not s:
            return None
        try:
            epoch, offset = s.split(":")
            return Term(int(epoch), int(offset))
        except ValueError:
            return None


#: the term before any record: every record's term is at least this
ORIGIN = Term(0, -1)


def record_term(rec: dict[str, Any], offset: int) -> Term:
    """The term a decoded log record belongs to (a FENCE record opens its own, at its offset)."""
    if rec["op"] == FENCE:
        return Term(int(rec["leader_epoch"]), offset)
    return Term(int(rec["leader_epoch"]), int(rec.get("fence_offset", -1)))


class TermGate:
    """The term rule for one reader of one log: :meth:`admit` each record in log order."""

    def __init__(self, term: Term | None = ORIGIN) -> None:
        #: the greatest term seen (None: not known yet, the first record's term is adopted)
        self.term = term
        #: records ignored because an older term wrote them after a newer one began
        self.stale = 0

    def admit(self, rec: dict[str, Any], offset: int) -> bool:
        """Whether the record counts (its term is the greatest seen so far); moves the term.
        Control records (FENCE, BARRIER) count or not by the same rule; callers skip them after."""
        t = record_term(rec, offset)
        if self.term is None or t >= self.term:
            self.term = t
            return True
        self.stale += 1
        return False
