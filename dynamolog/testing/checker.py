"""Linearizability checker for single-key register histories.

The fault tests drive Dynamolog with concurrent clients (see :mod:`dynamolog.testing.workload`), record
every request as an :class:`Op` and then ask this module whether each key's history could have
come from one atomic register.  Linearizability is compositional (local): a history is
linearizable iff every key's sub-history is, so the check runs per key.

Model
-----
Each key is a register whose state is a value or ``None`` (item absent).  ``initial`` gives the
state before the history (``None`` unless told).  Three kinds of operation:

``write(v)``
    Unconditional PutItem of ``v`` (``v = None`` models DeleteItem).  Always succeeds.
``cas(expected, new)``
    Conditional write: takes effect (state becomes ``new``) only if the state equals ``expected``;
    ``expected = None`` means ``attribute_not_exists``.
``read() -> v``
    Consistent GetItem; ``observed`` is the value seen (``None``: no item).

Values are JSON scalars (``str``, ``int``, ``float``, ``bool`` or ``None``) compared with ``==``.

Each operation has an invoke time (taken before the request was sent) and a completion time (after
the answer arrived), from one clock shared by all clients, and one of four outcomes:

``ok``
    Completed and took effect exactly once, at some point between invoke and completion; a
    read's ``observed`` value was the state at that point.
``fail``
    Definitely did **not** take effect.  For a ``cas`` this is a ConditionalCheckFailed answer:
    the condition *was evaluated* and was false, so the failed cas still constrains the history:
    it must be placed at a point between invoke and completion where ``state != expected``.  A
    failed ``write`` or ``read`` carries no information and is ignored.
``rejected``
    Definitely did not take effect and says nothing about the state (throttled, transaction
    conflict, validation error: the condition, if any, was never evaluated).  Ignored.
``unknown``
    Timeout, lost connection, 5xx: the request may or may not have taken effect, and if it did,
    it may have done so at any time after its invoke, even after operations that started later
    (a request can sit in a queue or a log after the client gave up).  A write or cas with this
    outcome is therefore *optional* and its completion time is taken as +infinity, whatever the
    recorder wrote; an unknown read is ignored (nothing was observed).

A history is linearizable iff there is a total order of all ``ok`` operations, all failed ``cas``
and any subset of the ``unknown`` writes/cas, such that (1) whenever A completed before B was
invoked, A comes before B (real-time order), and (2) replaying the order on the register from
``initial`` satisfies every operation (reads see the current state, cas conditions hold or,
for failed cas, do not).

Algorithm
---------
The search is the WGL algorithm with its memoization of configurations.
The operations' call and return events are put in one time-ordered doubly linked list (calls
before returns at equal times, so touching operations count as concurrent; an optional
operation's return is at +infinity).  Walking from the head, a call entry is a candidate to be
linearized next: if the model accepts it and the configuration (set of linearized operations as
a bitset, model state) was not seen before, the operation is linearized, both its entries are
lifted out of the list and the walk restarts from the head.  Meeting a return entry means the
operation it belongs to must have been linearized by now but was not, so the search backtracks:
the last linearized operation is undone and the walk continues after its call entry.  The
history is linearizable once every required (non-optional) operation is linearized; it is not
when backtracking finds nothing to undo.  The memo set makes the search visit each
(bitset, state) configuration at most once.  Three sound reductions keep fault-test histories
cheap (each is argued where it is implemented, in ``_moves`` and ``_search``):

* values that no ok read observes and no cas expects are indistinguishable to every operation,
  so they are all one model state, which merges configurations in the memo;
* optional operations with the same kind, expected value and (canonical) written value differ
  only in their invoke time, and an earlier one can stand in for a later one, so at each
  configuration only the first available of them is tried (this turns N unknown writes of
  never-read values from 2**N subsets into N choices);
* a move that leaves state ``s`` for good (no unplaced op can write ``s`` again) is refused while
  an unplaced op still needs to see ``s``.

The worst case stays exponential in the number of concurrent operations, so every search has a
step budget; running out of it gives ``linearizable=None`` ("unknown / too hard"), never a
false verdict.

When a key is not linearizable, :class:`Result` explains it twice over: the operation that could
not be placed at the deepest point the search reached, and the smallest failing prefix, found by
a binary search over completion times (a prefix cut at time ``t`` keeps the operations invoked by
``t``; those still running at ``t`` become optional writes or are dropped), which names the
operation whose completion makes the history impossible.  A read or successful cas that saw a
value never written (and not initial) is reported directly without a search.

Recording
---------
:class:`History` records operations from many threads or asyncio tasks (``invoke`` before the
request is sent, ``complete`` after the answer) and saves/loads them as JSON, so a failing
history can be kept next to the test logs and re-checked offline with :func:`check_history`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

Value = str | int | float | bool | None

WRITE: Final = "write"
CAS: Final = "cas"
READ: Final = "read"
KINDS: Final = frozenset({WRITE, CAS, READ})

OK: Final = "ok"
FAIL: Final = "fail"
REJECTED: Final = "rejected"
UNKNOWN: Final = "unknown"
OUTCOMES: Final = frozenset({OK, FAIL, REJECTED, UNKNOWN})

#: default step budget of one search (one key); about a second of CPU
DEFAULT_MAX_STEPS: Final = 1_000_000

_JSON_FORMAT: Final = "dynamolog-history"
_JSON_VERSION: Final = 1


@dataclass(frozen=True, kw_only=True)
class Op:
    """One recorded operation on one key.

    ``kind`` is ``"write"``, ``"cas"`` or ``"read"``; ``value`` is the value written (write, cas);
    ``expected`` the value a cas requires (``None``: the item must not exist); ``observed`` the
    value an ``ok`` read saw.  ``invoke``/``complete`` are seconds on one clock; ``complete`` is
    ``None`` when the operation never completed (then ``outcome`` must be ``"unknown"``).
    ``outcome`` is ``"ok"``, ``"fail"``, ``"rejected"`` or ``"unknown"`` (see the module doc).
    ``id`` numbers operations in a history; ``error`` is the error type seen, for humans only.
    """

    client: str
    key: str
    kind: str
    invoke: float
    complete: float | None
    outcome: str
    value: Value = None
    expected: Value = None
    observed: Value = None
    id: int = -1
    error: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if self.complete is None:
            if self.outcome != UNKNOWN:
                raise ValueError(f"op with outcome {self.outcome!r} needs a completion time")
        elif self.complete < self.invoke:
            raise ValueError(f"op completes ({self.complete}) before it is invoked ({self.invoke})")

    @property
    def required(self) -> bool:
        """Whether every linearization must contain this op (ok ops and failed cas)."""
        return self.outcome == OK or (self.outcome == FAIL and self.kind == CAS)

    @property
    def optional(self) -> bool:
        """Whether a linearization may contain this op or not (unknown writes and cas)."""
        return self.outcome == UNKNOWN and self.kind != READ

    @property
    def effective_complete(self) -> float:
        """The completion time the checker uses: +infinity for optional ops."""
        if self.optional or self.complete is None:
            return math.inf
        return self.complete

    def describe(self) -> str:
        """A one-line description such as ``#12 c3 cas('a' -> 'b') fail [1.002000, 1.010000]``."""
        if self.kind == WRITE:
            what = f"write({self.value!r})"
        elif self.kind == CAS:
            what = f"cas({self.expected!r} -> {self.value!r})"
        else:
            what = f"read() -> {self.observed!r}" if self.outcome == OK else "read()"
        end = "…" if self.complete is None else f"{self.complete:.6f}"
        err = f" ({self.error})" if self.error else ""
        return f"#{self.id} {self.client} {what} {self.outcome}{err} [{self.invoke:.6f}, {end}]"


@dataclass(frozen=True)
class Result:
    """The verdict for one key.

    ``linearizable`` is ``True``, ``False``, or ``None`` when the step budget ran out ("unknown /
    too hard", which is not a failure of the system under test but is not a pass either).
    ``explanation`` is empty for ``True``.  For ``False``, ``failing_op`` is the op whose
    completion makes the smallest failing prefix impossible (or the op that could not be placed),
    ``prefix_end`` the time that prefix ends, and ``ops_in_prefix`` how many ops it holds.
    """

    key: str
    linearizable: bool | None
    explanation: str = ""
    steps: int = 0
    ops: int = 0
    failing_op: Op | None = None
    prefix_end: float | None = None
    ops_in_prefix: int | None = None

    @property
    def status(self) -> str:
        """``"linearizable"``, ``"not linearizable"`` or ``"unknown (too hard)"``."""
        if self.linearizable is None:
            return "unknown (too hard)"
        return "linearizable" if self.linearizable else "not linearizable"

    def __str__(self) -> str:
        s = f"key {self.key!r}: {self.status} ({self.ops} ops, {self.steps} steps)"
        return f"{s}: {self.explanation}" if self.explanation else s


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


class _Entry:
    """A call or return event in the search's doubly linked list."""

    __slots__ = ("call", "index", "match", "next", "prev", "time")

    def __init__(self, index: int, time: float, call: bool) -> None:
        self.index = index
        self.time = time
        self.call = call
        self.match: _Entry | None = None  # call -> its return entry
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


class _Unread:
    """The model state "some value that no operation of this key ever reads or expects"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<a value no op reads or expects>"


_UNREAD: Final = _Unread()


@dataclass(frozen=True)
class _Move:
    """An op as the search sees it, values canonicalized (see :func:`_moves`)."""

    kind: str
    fail: bool  # a failed cas
    value: Hashable  # written value, canonical
    expected: Hashable
    observed: Hashable
    required: bool
    needs: bool  # a required op that needs ``state == need`` (ok read, ok cas)
    need: Hashable
    produces: bool  # may set the state to ``value`` (write or cas, not failed)
    #: for optional ops: ops with equal signatures are interchangeable (only their invoke differs)
    signature: Hashable


def _moves(ops: Sequence[Op], initial: Value) -> tuple[list[_Move], Hashable]:
    """Canonicalizes values: every value that no ok read observes and no cas expects is replaced
    by one ``_UNREAD`` state, since no op can tell such values apart (reads and cas conditions
    fail on all of them alike).  That lets the memo merge states, and makes unknown writes of
    never-read values (the usual unknown op of a fault test) interchangeable."""
    seen: set[Value] = {op.observed for op in ops if op.kind == READ and op.outcome == OK}
    seen.update(op.expected for op in ops if op.kind == CAS)

    def canon(v: Value) -> Hashable:
        return v if v in seen else _UNREAD

    moves = []
    for op in ops:
        value = canon(op.value)
        sig = (op.kind, op.expected if op.kind == CAS else None, value) if op.optional else None
        fail = op.kind == CAS and op.outcome == FAIL
        needs = op.outcome == OK and op.kind != WRITE
        need = op.observed if op.kind == READ else op.expected
        moves.append(_Move(op.kind, fail, value, op.expected, op.observed, op.required, needs, need,
                           op.kind != READ and not fail, sig))
    return moves, canon(initial)


def _step(m: _Move, state: Hashable) -> tuple[bool, Hashable]:
    """Applies a move to the register: (whether the model accepts it here, the next state)."""
    if m.kind == READ:
        return state == m.observed, state
    if m.kind == WRITE:
        return True, m.value
    if m.fail:  # failed cas: the condition was false here
        return state != m.expected, state
    if state == m.expected:
        return True, m.value
    return False, state


@dataclass
class _Search:
    outcome: bool | None
    steps: int
    stuck_op: Op | None = None  # the op that could not be placed at the deepest point
    stuck_state: Hashable = None
    depth: int = 0  # ops linearized at that point


def _relevant(ops: Iterable[Op]) -> list[Op]:
    """The ops that matter to the search: required and optional ones, by invoke time."""
    return sorted((o for o in ops if o.required or o.optional), key=lambda o: (o.invoke, o.id))


def _search(ops: Sequence[Op], initial: Value, max_steps: int) -> _Search:
    """The WGL search over ``ops`` (all relevant, any order).

    Besides the memo of (linearized bitset, state), one symmetry is cut: optional ops with the
    same signature (same kind, expected value and canonical written value) differ only in their
    invoke time, and an earlier-invoked one can stand in for a later one anywhere, so at each
    configuration only the first available op of each signature is tried.  And a move that
    leaves state ``s`` is refused when some op still to be placed needs ``s`` (an ok read of it, an
    ok cas expecting it) but no op left can write ``s`` again: that branch is dead already.
    """
    moves, start = _moves(ops, initial)
    entries: list[_Entry] = []
    for i, op in enumerate(ops):
        call = _Entry(i, op.invoke, True)
        ret = _Entry(i, op.effective_complete, False)
        call.match = ret
        entries += (call, ret)
    # calls before returns at equal times: ops that touch are concurrent
    entries.sort(key=lambda e: (e.time, not e.call))
    head = _Entry(-1, -math.inf, True)
    prev = head
    for e in entries:
        prev.next = e
        e.prev = prev
        prev = e

    remaining = sum(1 for m in moves if m.required)
    # unplaced ops that need each value / that may write each value
    needers: Counter[Hashable] = Counter(m.need for m in moves if m.needs)
    producers: Counter[Hashable] = Counter(m.value for m in moves if m.produces)
    memo: set[tuple[int, Hashable]] = set()
    # linearized so far: (call entry, state before it, signatures tried at that configuration)
    calls: list[tuple[_Entry, Hashable, set[Hashable]]] = []
    tried: set[Hashable] = set()
    bits = 0
    state = start
    steps = 0
    res = _Search(outcome=None, steps=0)
    entry = head.next
    while remaining:
        if steps >= max_steps:
            res.steps = steps
            return res
        steps += 1
        assert entry is not None  # a required op's return entry is always ahead
        if entry.call:
            m = moves[entry.index]
            if m.signature is not None:
                if m.signature in tried:
                    entry = entry.next
                    continue
                tried.add(m.signature)
            accepted, new_state = _step(m, state)
            if accepted and new_state != state and producers[state] == 0:
                # leaving ``state`` for good: dead if someone else still needs to see it
                accepted = needers[state] - (m.needs and m.need == state) == 0
            new_bits = bits | (1 << entry.index)
            if accepted and (new_bits, new_state) not in memo:
                memo.add((new_bits, new_state))
                calls.append((entry, state, tried))
                bits, state, tried = new_bits, new_state, set()
                if m.required:
                    remaining -= 1
                if m.needs:
                    needers[m.need] -= 1
                if m.produces:
                    producers[m.value] -= 1
                _lift(entry)
                entry = head.next
            else:
                entry = entry.next
        else:
            if len(calls) >= res.depth:
                res.depth = len(calls)
                res.stuck_op = ops[entry.index]
                res.stuck_state = state
            if not calls:
                res.outcome = False
                res.steps = steps
                return res
            entry, state, tried = calls.pop()
            bits &= ~(1 << entry.index)
            m = moves[entry.index]
            if m.required:
                remaining += 1
            if m.needs:
                needers[m.need] += 1
            if m.produces:
                producers[m.value] += 1
            _unlift(entry)
            entry = entry.next
    res.outcome = True
    res.steps = steps
    return res


def _lift(call: _Entry) -> None:
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def _prefix(ops: Sequence[Op], cut: float) -> list[Op]:
    """The history as it stood at time ``cut``: ops still running then become optional or go."""
    out: list[Op] = []
    for op in ops:
        if op.invoke > cut:
            continue
        if op.required and op.effective_complete > cut:
            if op.outcome == OK and op.kind != READ:
                out.append(replace(op, outcome=UNKNOWN, complete=None))
            continue  # a running read or failed cas says nothing yet
        out.append(op)
    return out


def _never_written(ops: Sequence[Op], initial: Value) -> Op | None:
    """An ok read or ok cas that saw a value no op could have written, if any."""
    possible: set[Value] = {None, initial}
    possible.update(op.value for op in ops if op.kind != READ and (op.outcome == OK or op.optional))
    for op in sorted(ops, key=lambda o: (o.effective_complete, o.id)):
        if op.outcome != OK:
            continue
        if op.kind == READ and op.observed not in possible:
            return op
        if op.kind == CAS and op.expected not in possible:
            return op
    return None


def check_key(ops: Iterable[Op], initial: Value = None, *, max_steps: int = DEFAULT_MAX_STEPS,
              explain: bool = True) -> Result:
    """Checks the history of one key (all ``ops`` must be on the same key).

    ``initial`` is the register's state before the history.  ``max_steps`` bounds each search;
    ``explain=False`` skips the smallest-failing-prefix search that a ``False`` verdict runs.
    """
    all_ops = list(ops)
    keys = {op.key for op in all_ops}
    if len(keys) > 1:
        raise ValueError(f"check_key needs the ops of one key, got {sorted(keys)!r}")
    key = next(iter(keys)) if keys else ""
    rel = _relevant(all_ops)

    bad = _never_written(rel, initial)
    if bad is not None:
        seen = bad.observed if bad.kind == READ else bad.expected
        return Result(key, False, f"{bad.describe()} saw {seen!r}, a value no operation wrote "
                      f"(initial {initial!r})", 0, len(rel), bad, None, None)

    s = _search(rel, initial, max_steps)
    if s.outcome is True:
        return Result(key, True, "", s.steps, len(rel))
    if s.outcome is None:
        return Result(key, None, f"gave up after {s.steps} steps (max_steps={max_steps}); "
                      f"{sum(o.optional for o in rel)} of the {len(rel)} ops are unknown", s.steps, len(rel))

    assert s.stuck_op is not None
    stuck = (f"could not place {s.stuck_op.describe()} after linearizing {s.depth} ops "
             f"(state there {s.stuck_state!r})")
    steps = s.steps
    if not explain:
        return Result(key, False, stuck, steps, len(rel), s.stuck_op)

    # the smallest failing prefix: binary search over the required ops' completion times
    cuts = sorted({op.effective_complete for op in rel if op.required})
    lo, hi = 0, len(cuts) - 1  # prefix(cuts[hi]) is the whole history: known to fail
    while lo < hi:
        mid = (lo + hi) // 2
        p = _search(_prefix(rel, cuts[mid]), initial, max_steps)
        steps += p.steps
        if p.outcome is None:  # too hard to say: keep what we know
            return Result(key, False, stuck, steps, len(rel), s.stuck_op)
        if p.outcome:
            lo = mid + 1
        else:
            hi = mid
    cut = cuts[lo]
    prefix = _prefix(rel, cut)
    culprit = next(op for op in sorted(rel, key=lambda o: o.id)
                   if op.required and op.effective_complete == cut)
    text = (f"the history up to t={cut:.6f} ({len(prefix)} ops) has no linearization; it breaks when "
            f"{culprit.describe()} completes; {stuck}")
    return Result(key, False, text, steps, len(rel), culprit, cut, len(prefix))


def check_history(ops: Iterable[Op], initial: Mapping[str, Value] | None = None, *,
                  max_steps: int = DEFAULT_MAX_STEPS, explain: bool = True) -> dict[str, Result]:
    """Checks every key's history; ``initial`` maps keys to their state before (default ``None``)."""
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    init = initial or {}
    return {k: check_key(v, init.get(k), max_steps=max_steps, explain=explain) for k, v in sorted(by_key.items())}


def problems(results: Mapping[str, Result]) -> list[str]:
    """One line per key that is not (provably) linearizable; empty when all are."""
    return [str(r) for r in results.values() if r.linearizable is not True]


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    client: str
    key: str
    kind: str
    invoke: float
    value: Value
    expected: Value


@dataclass
class History:
    """A thread-safe and asyncio-safe recorder of operations.

    Call :meth:`invoke` just before sending a request and :meth:`complete` with the handle it
    returned once the outcome is known.  Operations never completed count as ``unknown``.  The
    default clock is :func:`time.monotonic`, which all threads of one process share.
    """

    initial: dict[str, Value] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _ops: list[Op] = field(default_factory=list, init=False, repr=False)
    _pending: dict[int, _Pending] = field(default_factory=dict, init=False, repr=False)
    _next_id: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def invoke(self, client: str, key: str, kind: str, *, value: Value = None, expected: Value = None) -> int:
        """Records the start of an operation; returns its handle (its id)."""
        if kind not in KINDS:
            raise ValueError(f"unknown op kind {kind!r}")
        with self._lock:
            handle = self._next_id
            self._next_id += 1
            self._pending[handle] = _Pending(client, key, kind, self.clock(), value, expected)
        return handle

    def complete(self, handle: int, outcome: str, observed: Value = None, *, error: str | None = None) -> Op:
        """Records the outcome of the operation ``handle``; ``observed`` is what an ok read saw."""
        with self._lock:
            now = self.clock()
            p = self._pending.pop(handle)
            op = Op(client=p.client, key=p.key, kind=p.kind, invoke=p.invoke, complete=now, outcome=outcome,
                    value=p.value, expected=p.expected, observed=observed if p.kind == READ else None,
                    id=handle, error=error)
            self._ops.append(op)
        return op

    def add(self, op: Op) -> Op:
        """Adds an already complete op (its id is reassigned); for tests and imports."""
        with self._lock:
            op = replace(op, id=self._next_id)
            self._next_id += 1
            self._ops.append(op)
        return op

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def ops(self) -> list[Op]:
        """All ops by id; those still pending appear as ``unknown`` with no completion time."""
        with self._lock:
            out = list(self._ops)
            out += [Op(client=p.client, key=p.key, kind=p.kind, invoke=p.invoke, complete=None, outcome=UNKNOWN,
                       value=p.value, expected=p.expected, id=h) for h, p in self._pending.items()]
        out.sort(key=lambda o: o.id)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops) + len(self._pending)

    def check(self, *, max_steps: int = DEFAULT_MAX_STEPS, explain: bool = True) -> dict[str, Result]:
        """:func:`check_history` of the ops recorded so far against :attr:`initial`."""
        return check_history(self.ops(), self.initial, max_steps=max_steps, explain=explain)

    def to_json(self) -> str:
        """The history as JSON (pending ops saved as unknown)."""
        doc: dict[str, Any] = {
            "format": _JSON_FORMAT,
            "version": _JSON_VERSION,
            "initial": self.initial,
            "ops": [asdict(op) for op in self.ops()],
        }
        return json.dumps(doc, indent=None, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> History:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != _JSON_FORMAT:
            raise ValueError("not a dynamolog history")
        if doc.get("version") != _JSON_VERSION:
            raise ValueError(f"unsupported history version {doc.get('version')!r}")
        h = cls(initial=dict(doc.get("initial") or {}))
        ops = [Op(**d) for d in doc["ops"]]
        h._ops = ops
        h._next_id = max((op.id for op in ops), default=-1) + 1
        return h

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> History:
        return cls.from_json(Path(path).read_text())
