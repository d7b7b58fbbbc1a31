"""TransactWriteItems and TransactGetItems: the router coordinates (docs/transactions.md).

A write transaction prepares its items on every participant partition (the partition leader's
sequencer checks each condition and locks each item with a PREPARE record in its log), then
proposes COMMITTED in the decision log (``dyn.txn``) and acts on the decision the log holds
(the first one, possibly a recovering participant's ABORTED), then sends the decision to every
participant, which applies or drops the pending changes with TXN_COMMIT / TXN_ABORT records.
The client is answered after every participant applied, so a read after the answer sees it.

A coordinator that dies leaves locks with a deadline; the participant leaders resolve them
through the decision log.  ``DYNAMOLOG_FAULT_TXN`` (tests only) makes this process kill itself
with SIGKILL at a named step, so that tests can crash a coordinator at every step.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import MAX_ITEM_BYTES, item_size
from dynamolog.catalog import attribute_types, hash_key, key_names
from dynamolog.keys import encode_item_key
from dynamolog.txnlog import TxnLog, request_digest

from .items import Expressions, Items, check_index_keys, item_collection_metrics
from .validate import check_enum, item_keys, parse_item, parse_key, raise_constraints, require_table_name

log = logging.getLogger(__name__)

ITEMS_MAX = 100
#: how long a participant keeps a lock before it asks the decision log (a live coordinator
#: decides far sooner; this bounds how long a dead one blocks its items)
TIMEOUT_MS = int(os.environ.get("DYNAMOLOG_TXN_TIMEOUT_MS", "10000"))
#: test hook: kill this process at a step (after_prepare_one, after_prepare, after_decision, after_finish_one)
FAULT = os.environ.get("DYNAMOLOG_FAULT_TXN", "")

_KINDS = ("ConditionCheck", "Put", "Delete", "Update")
_NONE_REASON = {"Code": "None"}


def _fault(step: str) -> None:
    if step == FAULT:
        log.warning("transaction fault hook: killing this process at %s", step)
        os.kill(os.getpid(), signal.SIGKILL)


def transaction_in_progress() -> errors.ApiError:
    return errors.ApiError("TransactionInProgressException", "Transaction from previous request is still in progress")


def idempotent_mismatch() -> errors.ApiError:
    return errors.ApiError("IdempotentParameterMismatchException",
                           "The request uses the same client token as a previous, but non-identical request.")


@dataclass
class Action:
    """One validated item of a transaction."""

    index: int
    table: dict[str, Any]
    item_key: bytes
    #: the storage node's write request (kind put / delete / update / check)
    req: dict[str, Any]
    size: int = 0
    #: the item collection's size after the transaction (tables with local secondary indexes)
    coll: int | None = None


@dataclass
class _Participant:
    table: dict[str, Any]
    part: dict[str, Any]
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

    # -- validation ----------------------------------------------------------------------
    def _transact_items(self, p: dict[str, Any], what: str) -> list[Any]:
        items = p.get("TransactItems")
        if items is None:
            raise_constraints(["Value null at 'transactItems' failed to satisfy constraint: Member must not be null"])
        if not isinstance(items, list):
            raise errors.serialization("Unexpected value type in payload")
        if not items:
            raise_constraints(["Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length "
                               "greater than or equal to 1"])
        if len(items) > ITEMS_MAX:
            raise_constraints([f"Value '[{', '.join(what for _ in items)}]' at 'transactItems' failed to satisfy "
                               f"constraint: Member must have length less than or equal to {ITEMS_MAX}"])
        return items

    async def _write_action(self, index: int, entry: Any) -> Action:
        if not isinstance(entry, dict):
            raise errors.serialization("Unexpected value type in payload")
        kinds = [k for k in _KINDS if entry.get(k) is not None]
        if len(kinds) != 1:
            raise errors.validation("TransactItems can only contain one of Check, Put, Update or Delete")
        kind = kinds[0]
        p = entry[kind]
        if not isinstance(p, dict):
            raise errors.serialization("Unexpected value type in payload")
        field_prefix = f"transactItems.{index + 1}.member.{kind[0].lower() + kind[1:]}"
        problems: list[str] = []
        check_enum(problems, p, "ReturnValuesOnConditionCheckFailure",
                   f"{field_prefix}.returnValuesOnConditionCheckFailure", ("ALL_OLD", "NONE"))
        if kind == "ConditionCheck" and p.get("ConditionExpression") is None:
            problems.append(f"Value null at '{field_prefix}.conditionExpression' failed to satisfy constraint: "
                            "Member must not be null")
        if kind == "Update" and p.get("UpdateExpression") is None:
            problems.append(f"Value null at '{field_prefix}.updateExpression' failed to satisfy constraint: "
                            "Member must not be null")
        raise_constraints(problems)
        name = require_table_name(p)
        table = await self.tables.get_active(name)
        hk, rk = key_names(table)
        types = attribute_types(table)
        rvf = p.get("ReturnValuesOnConditionCheckFailure")
        size = 0
        range_av: dict[str, Any] | None
        key_attrs: dict[str, Any]
        if kind == "Put":
            item = parse_item(p.get("Item"))
            hash_av, range_av = item_keys(item, hk, rk, types)
            check_index_keys(table, item)
            size = item_size(item)
            if size > MAX_ITEM_BYTES:
                raise errors.validation("Item size has exceeded the maximum allowed size")
            ex = Expressions(p, condition="ConditionExpression")
            key_attrs = {hk: hash_av} | ({rk: range_av} if rk else {})
            req: dict[str, Any] = {"kind": "put", "item": item}
        else:
            key_attrs = parse_key(p.get("Key"), hk, rk, types)
            hash_av = key_attrs[hk]
            range_av = key_attrs.get(rk) if rk else None
            if kind == "Update":
                ex = Expressions(p, condition="ConditionExpression", update="UpdateExpression")
                assert ex.update is not None
                for attr in expr.updated_paths(ex.update):
                    if attr in key_attrs:
                        raise errors.validation(
                            f"One or more parameter values were invalid: Cannot update attribute {attr}. "
                            "This attribute is part of the key")
                req = {"kind": "update"}
            elif kind == "Delete":
                ex = Expressions(p, condition="ConditionExpression")
                req = {"kind": "delete"}
            else:
                ex = Expressions(p, condition="ConditionExpression")
                req = {"kind": "check"}
        req.update(ex.wire())
        req.update({"keyattrs": key_attrs, "rvf": rvf, "cap": True})
        return Action(index, table, encode_item_key(hash_av, range_av), req, size)

    def _participants(self, actions: list[Action]) -> list[_Participant]:
        seen: set[tuple[str, bytes]] = set()
        by_pid: dict[str, _Participant] = {}
        for a in actions:
            ident = (a.table["table_id"], a.item_key)
            if ident in seen:
                raise errors.validation("Transaction request cannot include multiple operations on one item")
            seen.add(ident)
            part = self.routing.partition_for_item_key(a.table, a.item_key)
            pp = by_pid.setdefault(part["partition_id"], _Participant(a.table, part))
            pp.actions.append(a)
        return list(by_pid.values())

    # -- TransactWriteItems --------------------------------------------------------------
    async def transact_write_items(self, p: dict[str, Any]) -> dict[str, Any]:
        entries = self._transact_items(p, "{...}")
        token = p.get("ClientRequestToken")
        problems: list[str] = []
        if token is not None:
            if not isinstance(token, str):
                raise errors.serialization("Unexpected value type in payload")
            if not 1 <= len(token) <= 36:
                problems.append(f"Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must "
                                "have length " + ("less than or equal to 36" if token else "greater than or equal to 1"))
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
        check_enum(problems, p, "ReturnItemCollectionMetrics", "returnItemCollectionMetrics", ("SIZE", "NONE"))
        raise_constraints(problems)
        actions = [await self._write_action(i, e) for i, e in enumerate(entries)]
        participants = self._participants(actions)
        digest = request_digest(entries)
        if token is not None:
            done = self.txnlog.committed_for_token(token)
            if done is not None:
                if done.request_digest != digest:
                    raise idempotent_mismatch()
                return self._capacity(p, actions)
            if token in self._inflight:
                raise transaction_in_progress()
            self._inflight.add(token)
        try:
            await self.run(actions, participants, token=token, digest=digest)
        finally:
            if token is not None:
                self._inflight.discard(token)
        out = self._capacity(p, actions)
        if p.get("ReturnItemCollectionMetrics") == "SIZE":
            metrics: dict[str, list[Any]] = {}
            for a in actions:
                if a.coll is not None:
                    hk = hash_key(a.table)
                    metrics.setdefault(a.table["table_name"], []).append(
                        item_collection_metrics(hk, a.req["keyattrs"][hk], a.coll))
            if metrics:
                out["ItemCollectionMetrics"] = metrics
        return out

    async def run(self, actions: list[Action], participants: list[_Participant], *, token: str | None = None,
                  digest: str | None = None) -> None:
        """Prepare, decide, finish; raises TransactionCanceledException if any item refused."""
        txn = uuid.uuid4().hex
        deadline = int(time.time() * 1000) + TIMEOUT_MS

        async def prepare(pp: _Participant) -> dict[str, Any]:
            res: dict[str, Any] = await self.routing.call(
                pp.table, pp.part, "txn_prepare", leader=True, txn=txn, deadline=deadline,
                items=[{"key": base64.b64encode(a.item_key).decode(), "req": a.req} for a in pp.actions])
            return res

        if FAULT == "after_prepare_one":
            await prepare(participants[0])
            _fault("after_prepare_one")
        outcomes = await asyncio.gather(*(prepare(pp) for pp in participants), return_exceptions=True)
        _fault("after_prepare")
        prepared = [pp for pp, o in zip(participants, outcomes, strict=True) if isinstance(o, dict) and o["ok"]]
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
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
        for pp, o in zip(participants, outcomes, strict=True):
            assert isinstance(o, dict)
            for a, size in zip(pp.actions, o.get("sizes", []), strict=False):
                a.size = max(a.size, int(size))
            for a, coll in zip(pp.actions, o.get("colls", []), strict=False):
                a.coll = coll
        try:
            decision = await self.txnlog.decide(txn, "COMMITTED", client_token=token, request_digest=digest,
                                                participants=[pp.part["partition_id"] for pp in participants])
        except Exception:
            # the COMMITTED proposal may or may not be in the log: the participants' recovery
            # reads the decision there; the client's outcome is unknown
            log.exception("transaction %s: writing the decision failed", txn)
            raise errors.internal("The transaction's outcome is unknown; retry it with the same "
                                  "ClientRequestToken") from None
        _fault("after_decision")
        commit = decision == "COMMITTED"
        await self._finish(txn, participants, commit=commit)
        if not commit:
            self.canceled += 1
            raise errors.transaction_canceled(
                [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} for _ in actions])
        self.committed += 1
        t = asyncio.ensure_future(self.txnlog.complete(txn))
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def _finish(self, txn: str, participants: list[_Participant], *, commit: bool) -> None:
        """Send the decision to every participant; a participant that cannot be reached resolves
        its locks itself at their deadline, so a failure here is logged, not raised."""
        async def one(pp: _Participant, i: int) -> None:
            await self.routing.call(pp.table, pp.part, "txn_decide", leader=True, txn=txn, commit=commit)
            if i == 0:
                _fault("after_finish_one")

        results = await asyncio.gather(*(one(pp, i) for i, pp in enumerate(participants)), return_exceptions=True)
        for pp, r in zip(participants, results, strict=True):
            if isinstance(r, BaseException):
                log.warning("transaction %s: partition %s did not take the decision (%r); it will resolve it "
                            "at the deadline", txn, pp.part["partition_id"], r)

    def _capacity(self, p: dict[str, Any], actions: list[Action]) -> dict[str, Any]:
        """Transactional writes cost two write units per KB of each item (DynamoDB)."""
        mode = p.get("ReturnConsumedCapacity") or "NONE"
        if mode == "NONE":
            return {}
        units: dict[str, float] = {}
        for a in actions:
            name = a.table["table_name"]
            units[name] = units.get(name, 0.0) + 2.0 * max(1, math.ceil(a.size / 1024))
        out = []
        for name, u in units.items():
            cc: dict[str, Any] = {"TableName": name, "CapacityUnits": u, "WriteCapacityUnits": u}
            if mode == "INDEXES":
                cc["Table"] = {"CapacityUnits": u, "WriteCapacityUnits": u}
            out.append(cc)
        return {"ConsumedCapacity": out}

    # -- TransactGetItems ----------------------------------------------------------------
    async def transact_get_items(self, p: dict[str, Any]) -> dict[str, Any]:
        entries = self._transact_items(p, "{...}")
        problems: list[str] = []
        check_enum(problems, p, "ReturnConsumedCapacity", "returnConsumedCapacity", ("INDEXES", "TOTAL", "NONE"))
        raise_constraints(problems)
        gets: list[tuple[Action, list[Any] | None]] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("Get"), dict):
                raise_constraints([f"Value null at 'transactItems.{i + 1}.member.get' failed to satisfy constraint: "
                                   "Member must not be null"])
            g = entry["Get"]
            table = await self.tables.get_active(require_table_name(g))
            hk, rk = key_names(table)
            key = parse_key(g.get("Key"), hk, rk, attribute_types(table))
            ex = Expressions(g, projection="ProjectionExpression")
            gets.append((Action(i, table, encode_item_key(key[hk], key.get(rk) if rk else None), {}), ex.projection))
        participants = self._participants([a for a, _ in gets])
        images: list[dict[str, Any] | None] = []
        for attempt in range(3):
            images = await self._read_round(participants, len(gets))
            if len(participants) == 1:
                break
            # a second round proves no transaction committed between the partitions' reads
            again = await self._read_round(participants, len(gets))
            if again == images:
                break
            if attempt == 2:
                raise errors.transaction_canceled([
                    {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                    for _ in gets])
        responses: list[dict[str, Any]] = []
        units: dict[str, float] = {}
        for (a, projection), image in zip(gets, images, strict=True):
            name = a.table["table_name"]
            size = item_size(image) if image is not None else 0
            units[name] = units.get(name, 0.0) + 2.0 * max(1, math.ceil(size / 4096))
            if image is None:
                responses.append({})
            else:
                responses.append({"Item": expr.project(image, projection) if projection is not None else image})
        out: dict[str, Any] = {"Responses": responses}
        mode = p.get("ReturnConsumedCapacity") or "NONE"
        if mode != "NONE":
            ccs = []
            for name, u in units.items():
                cc: dict[str, Any] = {"TableName": name, "CapacityUnits": u, "ReadCapacityUnits": u}
                if mode == "INDEXES":
                    cc["Table"] = {"CapacityUnits": u, "ReadCapacityUnits": u}
                ccs.append(cc)
            out["ConsumedCapacity"] = ccs
        return out

    async def _read_round(self, participants: list[_Participant], n: int) -> list[dict[str, Any] | None]:
        async def one(pp: _Participant) -> dict[str, Any]:
            res: dict[str, Any] = await self.routing.call(
                pp.table, pp.part, "txn_read", leader=True,
                keys=[base64.b64encode(a.item_key).decode() for a in pp.actions])
            return res

        answers = await asyncio.gather(*(one(pp) for pp in participants))
        images: list[dict[str, Any] | None] = [None] * n
        conflicts: set[int] = set()
        for pp, res in zip(participants, answers, strict=True):
            for j, a in enumerate(pp.actions):
                images[a.index] = res["items"][j]
            conflicts.update(pp.actions[j].index for j in res["conflicts"])
        if conflicts:
            raise errors.transaction_canceled([
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                if i in conflicts else dict(_NONE_REASON) for i in range(n)])
        return images
