"""TransactWriteItems and TransactGetItems: the router coordinates (docs/transactions.md).

A write transaction prepares its items on every participant partition (the partition leader's
sequencer checks each condition and locks each item with a PREPARE record in its log), then
proposes COMMITTED in the decision log (``dyn.txn``) and acts on the decision the log holds
(the first one, possibly a recovering participant's ABORTED), then sends the decision to every
participant, which applies or drops the pending changes with TXN_COMMIT / TXN_ABORT records.
The client is answered after every participant applied, so a read after the answer sees it.

A coordinator that dies leaves locks with a deadline; the participant leaders resolve them
through the decision log.  Each step is a fault point (``dynamolog.faults``), so that tests can
crash a coordinator at every step.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from dynamolog import errors, expr, faults
from dynamolog.attrs import item_size
from dynamolog.catalog import PartitionInfo, TableDefinition, hash_key
from dynamolog.routing import PartitionSplit
from dynamolog.txnlog import TxnLog, request_digest

from . import capacity
from .items import Items, item_collection_metrics
from .requests import transact as parse

log = logging.getLogger(__name__)


_NONE_REASON = {"Code": "None"}
#: reads of a TransactGetItems across partitions before it is cancelled
READ_ATTEMPTS = 3


def transaction_in_progress() -> errors.ApiError:
    return errors.ApiError("TransactionInProgressException", "Transaction from previous request is still in progress")


def idempotent_mismatch() -> errors.ApiError:
    return errors.ApiError("IdempotentParameterMismatchException",
                           "The request uses the same client token as a previous, but non-identical request.")


@dataclass
class Action:
    """One validated item of a transaction."""

    index: int
    table: TableDefinition
    item_key: bytes
    #: the storage node's write request (kind put / delete / update / check)
    req: dict[str, Any]
    size: int = 0
    #: the item collection's size after the transaction (tables with local secondary indexes)
    coll: int | None = None


#: times a transaction is planned again when a partition it was planned on is split under it
SPLIT_RETRIES = 3


@dataclass
class _Participant:
    table: TableDefinition
    part: PartitionInfo
    actions: list[Action] = field(default_factory=list)


def _wire_reason(r: dict[str, Any] | None) -> dict[str, Any]:
    return dict(_NONE_REASON) if r is None else r


class Transactions:
    """The transaction operations of a router."""

    def __init__(self, items: Items, txnlog: TxnLog) -> None:
        self.items = items
        self.tables = items.tables
        self.routing = items.routing
        self.txnlog = txnlog
        self._inflight: set[str] = set()
        self._bg: set[asyncio.Task[Any]] = set()
        #: counters for status and benchmarks
        self.committed = 0
        self.canceled = 0

    def _participants(self, actions: list[Action]) -> list[_Participant]:
        by_pid: dict[str, _Participant] = {}
        for a in actions:
            part = self.routing.partition_for_item_key(a.table, a.item_key)
            pp = by_pid.setdefault(part.partition_id, _Participant(a.table, part))
            pp.actions.append(a)
        return list(by_pid.values())

    # -- TransactWriteItems --------------------------------------------------------------
    async def transact_write_items(self, p: dict[str, Any]) -> dict[str, Any]:
        header = parse.parse_write_header(p)
        items: list[parse.TransactWriteItem] = []
        for i, entry in enumerate(header.entries):  # each item checked before the next one's table is looked up
            kind, params, table_name = parse.write_entry(i, entry)
            items.append(parse.parse_write_item(i, kind, params, await self.tables.get_active(table_name)))
        parse.check_distinct(items)
        return await self.write(header, items)

    async def write(self, header: parse.TransactWriteHeader, items: list[parse.TransactWriteItem]) -> dict[str, Any]:
        """Run a checked write transaction (idempotent by its ClientRequestToken)."""
        token = header.token
        entries = header.entries
        actions = [Action(a.index, a.table, a.item_key, a.req, a.size_bytes) for a in items]
        participants = self._participants(actions)
        digest = request_digest(entries)
        if token is not None:
            done = self.txnlog.committed_for_token(token)
            if done is not None:
                if done.request_digest != digest:
                    raise idempotent_mismatch()
                return self._capacity(header.capacity, actions)
            if token in self._inflight:
                raise transaction_in_progress()
            self._inflight.add(token)
        try:
            for attempt in range(1, SPLIT_RETRIES + 1):
                try:
                    await self.run(actions, participants, token=token, digest=digest)
                    break
                except PartitionSplit:
                    # a partition was split under it (nothing was applied: the prepared ones were
                    # released): run it again on the partitions that hold its items now
                    if attempt == SPLIT_RETRIES:
                        raise
                    participants = self._participants(actions)
        finally:
            if token is not None:
                self._inflight.discard(token)
        out = self._capacity(header.capacity, actions)
        if header.collection_metrics:
            metrics: dict[str, list[Any]] = {}
            for a in actions:
                if a.coll is not None:
                    hk = hash_key(a.table)
                    metrics.setdefault(a.table.table_name, []).append(
                        item_collection_metrics(hk, a.req["keyattrs"][hk], a.coll))
            if metrics:
                out["ItemCollectionMetrics"] = metrics
        return out

    async def run(self, actions: list[Action], participants: list[_Participant], *, token: str | None = None,
                  digest: str | None = None) -> None:
        """Prepare, decide, finish; raises TransactionCanceledException if any item refused.

        A transaction whose items all live in one partition is sent to its leader as one step
        (``one_phase``): the leader checks and applies it in one group commit, and its
        ClientRequestToken goes into the partition's log with it (not into the decision log)."""
        txn = uuid.uuid4().hex
        deadline = int(time.time() * 1000) + self.txnlog.settings.txn_timeout_ms
        one_phase = len(participants) == 1 and self.txnlog.settings.txn_one_phase == 1

        async def prepare(i: int, pp: _Participant) -> dict[str, Any]:
            faults.point("txn.before_prepare", i)
            # one phase: a request sent twice could apply twice, so a lost answer is not retried
            # (the client retries with its token, which the partition knows then)
            res: dict[str, Any] = await self.routing.call(
                pp.table, pp.part, "txn_prepare", leader=True, idempotent=not one_phase, txn=txn,
                deadline=deadline, one_phase=one_phase, token=token, digest=digest,
                items=[{"key": base64.b64encode(a.item_key).decode(), "req": a.req} for a in pp.actions])
            return res

        outcomes = await asyncio.gather(*(prepare(i, pp) for i, pp in enumerate(participants)),
                                        return_exceptions=True)
        if one_phase and isinstance(outcomes[0], dict) and outcomes[0].get("committed"):
            await self._one_phase_done(participants[0], outcomes[0])
            return
        faults.point("txn.after_prepare")
        prepared = [pp for pp, o in zip(participants, outcomes, strict=True) if isinstance(o, dict) and o["ok"]]
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is None:  # the token already went with another transaction (one-phase ones)
            if any(isinstance(o, dict) and o.get("mismatch") for o in outcomes):
                failure = idempotent_mismatch()
            elif any(isinstance(o, dict) and o.get("repeat") for o in outcomes):
                failure = transaction_in_progress()
        if failure is not None or len(prepared) < len(participants):
            # nothing was decided: release the prepared participants (if this process dies now,
            # their locks expire and recovery aborts, since no COMMITTED was ever written)
            await self._finish(txn, prepared, commit=False)
            self.canceled += 1
            if failure is not None:
                if isinstance(failure, errors.ApiError):
                    raise failure
                raise errors.internal("The transaction could not be prepared; it was not applied, retry it")
            reasons: list[dict[str, Any]] = [dict(_NONE_REASON) for _ in actions]
            for pp, o in zip(participants, outcomes, strict=True):
                assert isinstance(o, dict)
                if not o["ok"]:
                    for a, r in zip(pp.actions, o["reasons"], strict=True):
                        reasons[a.index] = _wire_reason(r)
            raise errors.transaction_canceled(reasons)
        self._note_sizes(participants, outcomes)
        try:
            decision = await self.txnlog.decide(txn, "COMMITTED", client_token=token, request_digest=digest,
                                                participants=[pp.part.partition_id for pp in participants])
        except Exception:
            # the COMMITTED proposal may or may not be in the log: the participants' recovery
            # reads the decision there; the client's outcome is unknown
            log.exception("transaction %s: writing the decision failed", txn)
            raise errors.internal("The transaction's outcome is unknown; retry it with the same "
                                  "ClientRequestToken") from None
        faults.point("txn.after_decision")
        commit = decision == "COMMITTED"
        await self._finish(txn, participants, commit=commit)
        if not commit:
            self.canceled += 1
            raise errors.transaction_canceled([_conflict() for _ in actions])
        self.committed += 1
        t = asyncio.ensure_future(self.txnlog.complete(txn))
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def _one_phase_done(self, pp: _Participant, outcome: dict[str, Any]) -> None:
        """The participant applied the transaction in one step, or (``repeat``) had applied the
        one that carried this ClientRequestToken: its replicas keep the token, nothing else to
        record."""
        self._note_sizes([pp], [outcome])
        faults.point("txn.after_one_phase")
        self.committed += 1

    @staticmethod
    def _note_sizes(participants: list[_Participant], outcomes: list[Any]) -> None:
        for pp, o in zip(participants, outcomes, strict=True):
            assert isinstance(o, dict)
            for a, size in zip(pp.actions, o.get("sizes", []), strict=False):
                a.size = max(a.size, int(size))
            for a, coll in zip(pp.actions, o.get("colls", []), strict=False):
                a.coll = coll

    async def _finish(self, txn: str, participants: list[_Participant], *, commit: bool) -> None:
        """Send the decision to every participant; a participant that cannot be reached resolves
        its locks itself at their deadline, so a failure here is logged, not raised."""
        async def one(pp: _Participant, i: int) -> None:
            await self.routing.call(pp.table, pp.part, "txn_decide", leader=True, txn=txn, commit=commit)
            faults.point("txn.after_finish", i)

        results = await asyncio.gather(*(one(pp, i) for i, pp in enumerate(participants)), return_exceptions=True)
        for pp, r in zip(participants, results, strict=True):
            if isinstance(r, BaseException):
                log.warning("transaction %s: partition %s did not take the decision (%r); it will resolve it "
                            "at the deadline", txn, pp.part.partition_id, r)

    def _capacity(self, mode: str, actions: list[Action]) -> dict[str, Any]:
        """Transactional writes cost two write units per KB of each item (DynamoDB)."""
        units: dict[str, float] = {}
        for a in actions:
            name = a.table.table_name
            units[name] = units.get(name, 0.0) + capacity.write_units(a.size, transactional=True)
        return capacity.per_table(mode, units, "Write")

    # -- TransactGetItems ----------------------------------------------------------------
    async def transact_get_items(self, p: dict[str, Any]) -> dict[str, Any]:
        entries, mode = parse.parse_get_header(p)
        items: list[parse.TransactGetItem] = []
        for i, entry in enumerate(entries):  # each item checked before the next one's table is looked up
            g, table_name = parse.get_entry(i, entry)
            items.append(parse.parse_get_item(i, g, await self.tables.get_active(table_name)))
        parse.check_distinct(items)
        return await self.get(items, mode)

    async def get(self, items: list[parse.TransactGetItem], mode: str) -> dict[str, Any]:
        """Run a checked read transaction: a consistent image of every item."""
        gets = [(Action(g.index, g.table, g.item_key, {}), g.projection) for g in items]
        for attempt in range(1, SPLIT_RETRIES + 1):
            participants = self._participants([a for a, _ in gets])
            try:
                if len(participants) == 1:
                    images = await self._read_one(participants[0], len(gets))
                else:
                    images = await self._read_across(participants, len(gets))
                break
            except PartitionSplit:  # a partition was split under it: read again where the items are now
                if attempt == SPLIT_RETRIES:
                    raise
        responses: list[dict[str, Any]] = []
        units: dict[str, float] = {}
        for (a, projection), image in zip(gets, images, strict=True):
            name = a.table.table_name
            size = item_size(image) if image is not None else 0
            units[name] = units.get(name, 0.0) + capacity.read_units(size, consistent=True, transactional=True)
            if image is None:
                responses.append({})
            else:
                responses.append({"Item": expr.project(image, projection) if projection is not None else image})
        out: dict[str, Any] = {"Responses": responses}
        out.update(capacity.per_table(mode, units, "Read"))
        return out

    async def _read(self, pp: _Participant, *, hold: bool) -> dict[str, Any]:
        """One partition's items, read through its sequencer: each held by a prepared
        transaction is waited for (``txn_read_wait_ms`` at most), then ``conflicts`` lists those
        still held; ``hold``: the items stay as read until :meth:`_check` (or that time again)."""
        res: dict[str, Any] = await self.routing.call(
            pp.table, pp.part, "txn_read", leader=True, hold=hold, wait_ms=self.txnlog.settings.txn_read_wait_ms,
            keys=[base64.b64encode(a.item_key).decode() for a in pp.actions])
        return res

    async def _read_one(self, pp: _Participant, n: int) -> list[dict[str, Any] | None]:
        """One partition: its sequencer orders the read with every write, so one read is a
        consistent image."""
        res = await self._read(pp, hold=False)
        if res["conflicts"]:
            raise _canceled(n, {pp.actions[j].index for j in res["conflicts"]})
        images: list[dict[str, Any] | None] = [None] * n
        for j, a in enumerate(pp.actions):
            images[a.index] = res["items"][j]
        return images

    async def _read_across(self, participants: list[_Participant], n: int) -> list[dict[str, Any] | None]:
        """Several partitions: read each (waiting for pending decisions, holding the items), then
        check each read: an item that changed since, or that a transaction holds now, means a
        transaction may have committed between the partitions' reads; read again (up to
        ``READ_ATTEMPTS`` times), then cancel naming those items."""
        changed: set[int] = set()
        for _ in range(READ_ATTEMPTS):
            answers = await asyncio.gather(*(self._read(pp, hold=True) for pp in participants),
                                           return_exceptions=True)
            holds = [(pp, a["hold"]) for pp, a in zip(participants, answers, strict=True)
                     if isinstance(a, dict) and a.get("hold")]
            failure = next((a for a in answers if isinstance(a, BaseException)), None)
            conflicts = {pp.actions[j].index for pp, a in zip(participants, answers, strict=True)
                         if isinstance(a, dict) for j in a["conflicts"]}
            if failure is not None or conflicts:
                await self._check(holds)  # ends the holds at once rather than when they expire
                if failure is not None:
                    raise failure
                raise _canceled(n, conflicts)
            images: list[dict[str, Any] | None] = [None] * n
            for pp, a in zip(participants, answers, strict=True):
                assert isinstance(a, dict)
                for j, act in enumerate(pp.actions):
                    images[act.index] = a["items"][j]
            unheld = [pp for pp, a in zip(participants, answers, strict=True)
                      if isinstance(a, dict) and not a.get("hold")]
            changed = await self._check(holds)
            for pp in unheld:
                changed.update(a.index for a in pp.actions)
            if not changed:
                return images
        raise _canceled(n, changed)

    async def _check(self, holds: list[tuple[_Participant, str]]) -> set[int]:
        """Check and end held reads: the items that changed since they were read (all of a
        partition's items when its answer is unknown)."""
        async def one(pp: _Participant, hold: str) -> dict[str, Any]:
            res: dict[str, Any] = await self.routing.call(pp.table, pp.part, "txn_read", leader=True, release=hold)
            return res

        answers = await asyncio.gather(*(one(pp, h) for pp, h in holds), return_exceptions=True)
        changed: set[int] = set()
        for (pp, _), a in zip(holds, answers, strict=True):
            if isinstance(a, BaseException) or a.get("changed") is None:
                changed.update(act.index for act in pp.actions)
            else:
                changed.update(pp.actions[j].index for j in a["changed"])
        return changed


def _conflict() -> dict[str, Any]:
    return {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}


def _canceled(n: int, conflicts: set[int]) -> errors.ApiError:
    """TransactionCanceledException naming the items in conflict (DynamoDB: their reason is
    TransactionConflict, every other item's Code is "None")."""
    assert conflicts, "a cancellation names the items it is about"
    return errors.transaction_canceled([_conflict() if i in conflicts else dict(_NONE_REASON) for i in range(n)])
