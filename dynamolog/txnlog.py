"""The transaction decision log: ``<ns>.txn``, read by every router and storage node.

A multi-item transaction (docs/transactions.md) is decided by a record in this topic: the FIRST
COMMITTED or ABORTED record of a transaction id in the log is its decision, whoever wrote it.
The coordinator (a router) writes COMMITTED once every participant has prepared; a participant
whose lock outlived its deadline writes ABORTED.  Both then read the log back to their own
record and act on whichever decision came first, so a transaction has exactly one decision even
when a slow coordinator and a recovering participant race.  Kafka's total order within the
partition is the arbiter; nothing depends on clocks.

The topic has one partition (every decision is small and a transaction writes two records) and
``cleanup.policy=delete`` (compaction would drop the first decision of a key in favour of a later
one) with no time limit: a lock may outlive its deadline by any length of outage, and its
decision must still be in the log when its participant comes back (docs/transactions.md,
"Outages of any length").

A reader starts one hour back (the idempotency window of ClientRequestToken is 10 minutes) and
keeps what it reads from there on. :meth:`TxnLog.decide` for a lock from before that window
first scans the log from one hour before the lock's deadline, so an old COMMITTED is found and
never overtaken by a new ABORTED proposal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from . import codec
from .config import Settings
from .kafka import IDLE_FETCH_WAIT_MS
from .kafka.admin import KafkaAdmin

log = logging.getLogger(__name__)

#: ClientRequestToken idempotency window (DynamoDB: 10 minutes)
TOKEN_WINDOW_MS = 10 * 60 * 1000
#: how far back a starting reader looks (and how long entries are kept in memory)
HORIZON_MS = 60 * 60 * 1000
#: decision records of a transaction are written after its coordinator set the lock deadline, so
#: no earlier than ``deadline - timeout``; this margin covers the timeout (DYNAMOLOG_TXN_TIMEOUT_MS,
#: 10 s by default) and the clock difference between the writer and the coordinator
LOOKBACK_MS = 60 * 60 * 1000
#: the decision log's retention: none (docs/transactions.md, "Outages of any length")
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
#: records per fetch while scanning back for an old transaction's decision
SCAN_RECORDS_MAX = 5000
#: seconds one scan back may take before it gives up (the reaper tries again later)
SCAN_S_MAX = 300.0


class TxnLogTruncated(Exception):
    """The log no longer holds every record from where a transaction's decision could be: its
    first decision may be lost, so nobody may propose one (an operator must look)."""


@dataclass
class TxnEntry:
    """What the log says about one transaction."""

    #: COMMITTED or ABORTED (the first decision record), or None while undecided
    decision: str | None = None
    decision_offset: int = -1
    complete: bool = False
    client_token: str | None = None
    request_digest: str | None = None
    participants: list[str] = field(default_factory=list)
    written_ms: int = 0


def request_digest(payload: Any) -> str:
    """A stable digest of a request's content (for IdempotentParameterMismatch)."""
    import orjson

    try:
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except TypeError:  # nested deeper than orjson writes (an unknown member may be: it is not checked)
        return hashlib.sha256(_canonical(payload)).hexdigest()


def _canonical(payload: Any) -> bytes:
    """``payload`` as canonical bytes (keys sorted, every value followed by a comma), written
    without recursion so that any depth the request parser accepted can be digested."""
    import orjson

    out: list[bytes] = []
    stack: list[Iterator[Any]] = [iter([payload])]
    closers = [b""]  # what ends each open container; b"}" marks one whose items are (key, value)
    while stack:
        try:
            v = next(stack[-1])
        except StopIteration:
            stack.pop()
            out.append(closers.pop() + b",")
            continue
        if closers[-1] == b"}":
            k, v = v
            out.append(orjson.dumps(k) + b":")
        if isinstance(v, dict):
            out.append(b"{")
            stack.append(iter(sorted(v.items())))
            closers.append(b"}")
        elif isinstance(v, list):
            out.append(b"[")
            stack.append(iter(v))
            closers.append(b"]")
        else:
            out.append(orjson.dumps(v) + b",")
    return b"".join(out)


class TxnLog:
    """A reader and writer of the decision log."""

    def __init__(self, settings: Settings, writer: str) -> None:
        self.settings = settings
        self.topic = settings.txn_topic
        self.writer = writer
        self._tp = TopicPartition(self.topic, 0)
        self.entries: dict[str, TxnEntry] = {}
        #: client token -> the latest committed transaction that carried it
        self.tokens: dict[str, str] = {}
        #: the next offset this reader will read
        self.position = 0
        #: every transaction whose decision records are all timestamped at or after this (epoch ms)
        #: has them in ``entries``; older ones are looked up with a scan (``_scan_back``)
        self.covered_from_ms = 0
        #: where the records this reader fully knows begin: where it started reading, or where it
        #: last forgot old entries; a scan back stops here
        self._read_from = 0
        self._scan_lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.create_topic(self.topic, configs={"cleanup.policy": "delete", **KEEP_FOREVER})
            await admin.wait_for_topics([self.topic])
            if await admin.ensure_topic_configs(self.topic, KEEP_FOREVER):
                log.warning("txn log: %s had a retention limit; it is kept forever from now on (records "
                            "already deleted are gone: a lock older than them is not resolved)", self.topic)
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                          enable_idempotence=True, linger_ms=0)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                          fetch_max_wait_ms=IDLE_FETCH_WAIT_MS, auto_offset_reset="earliest")
        await self._consumer.start()
        since = int(time.time() * 1000) - HORIZON_MS
        self.covered_from_ms = since
        # the offsets before the assignment: once assigned, the consumer keeps a fetch waiting at
        # the broker, and the broker answers this connection's offsets requests only after it
        found = await self._consumer.offsets_for_times({self._tp: since})
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        self._consumer.assign([self._tp])
        start = found.get(self._tp)
        # an explicit seek: a seek_to_end here raced the reset to the earliest offset that assign()
        # had already started, and the reader sometimes began at offset 0
        self._consumer.seek(self._tp, start.offset if start is not None else end)
        self.position = await self._consumer.position(self._tp)
        self._read_from = self.position
        while self.position < end:
            await self._round(200)
        self._task = asyncio.ensure_future(self._follow())
        self._started = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    # -- reading -----------------------------------------------------------------------------
    async def _round(self, timeout_ms: int) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(self._tp, timeout_ms=timeout_ms, max_records=5000)
        for rec in batches.get(self._tp, []):
            if rec.value is not None:
                self._apply(codec.decode_txn_state(rec.value), rec.offset)
        self.position = await self._consumer.position(self._tp)
        self._moved.set()

    def _apply(self, rec: dict[str, Any], offset: int) -> None:
        entry = self.entries.setdefault(rec["txn_id"], TxnEntry(written_ms=rec["written_ms"]))
        if rec["state"] == "COMPLETE":
            entry.complete = True
        else:
            self._set_decision(rec, offset)
        if len(self.entries) > 100_000 and offset % 1000 == 0:
            self._forget(offset + 1)

    def _forget(self, next_offset: int) -> None:
        horizon = int(time.time() * 1000) - HORIZON_MS
        self.covered_from_ms = max(self.covered_from_ms, horizon)
        self._read_from = next_offset
        for txn_id in [t for t, e in self.entries.items() if e.written_ms < horizon]:
            del self.entries[txn_id]
        for token in [t for t, txn in self.tokens.items() if txn not in self.entries]:
            del self.tokens[token]

    async def _follow(self) -> None:
        while True:
            try:
                await self._round(500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("txn log: reading %s failed; retrying in 1 s", self.topic)
                await asyncio.sleep(1)

    async def read_past(self, offset: int, timeout_s: float = 30.0) -> None:
        """Wait until this reader has read the record at ``offset``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.position <= offset:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.topic}: offset {offset} not read within {timeout_s} s")
            self._moved.clear()
            if self.position > offset:
                break
            try:
                await asyncio.wait_for(self._moved.wait(), remaining)
            except TimeoutError:
                continue

    def committed_for_token(self, token: str) -> TxnEntry | None:
        """The committed transaction that carried ``token`` within the idempotency window."""
        txn_id = self.tokens.get(token)
        entry = self.entries.get(txn_id) if txn_id else None
        if entry is None or entry.written_ms < int(time.time() * 1000) - TOKEN_WINDOW_MS:
            return None
        return entry

    # -- writing -----------------------------------------------------------------------------
    async def _publish(self, txn_id: str, state: str, **fields: Any) -> int:
        assert self._producer is not None, "TxnLog.start() first"
        value = codec.encode_txn_state({
            "txn_id": txn_id, "state": state, "client_token": fields.get("client_token"),
            "request_digest": fields.get("request_digest"), "participants": fields.get("participants") or [],
            "written_ms": int(time.time() * 1000), "writer": self.writer,
        })
        meta = await self._producer.send_and_wait(self.topic, key=txn_id.encode(), value=value)
        return int(meta.offset)

    async def decide(self, txn_id: str, state: str, *, deadline_ms: int | None = None, **fields: Any) -> str:
        """Propose ``state`` (COMMITTED or ABORTED) and return the transaction's decision: the
        first decision record in the log, which may be another writer's.

        ``deadline_ms``, the deadline of the caller's lock, says how far back the decision may
        be: a lock older than this reader's window is looked up in the log first, so an old
        decision counts whatever the length of the outage in between."""
        if deadline_ms is not None and deadline_ms - LOOKBACK_MS < self.covered_from_ms:
            await self._scan_back(txn_id, deadline_ms - LOOKBACK_MS)
        entry = self.entries.get(txn_id)
        if entry is not None and entry.decision is not None:
            return entry.decision
        offset = await self._publish(txn_id, state, **fields)
        await self.read_past(offset)
        decided = self.entries[txn_id].decision
        assert decided is not None
        return decided

    async def _scan_back(self, txn_id: str, since_ms: int) -> None:
        """Read ``txn_id``'s records from the first one timestamped at or after ``since_ms`` up to
        where this reader's full knowledge begins, and keep its first decision there (it precedes
        any the reader saw). After a restart that range is short: from the lock's deadline less
        ``LOOKBACK_MS`` to the start less ``HORIZON_MS``.

        Raises :class:`TxnLogTruncated` when records from there on may have been deleted."""
        assert self._producer is not None, "TxnLog.start() first"
        async with self._scan_lock:
            scanner = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                       auto_offset_reset="earliest")
            await scanner.start()
            try:
                scanner.assign([self._tp])
                stop = self._read_from
                first = (await scanner.beginning_offsets([self._tp]))[self._tp]
                found = (await scanner.offsets_for_times({self._tp: max(0, since_ms)})).get(self._tp)
                start = found.offset if found is not None else stop
                if first > 0 and start <= first:
                    raise TxnLogTruncated(
                        f"{self.topic} starts at offset {first}: records of transaction {txn_id} from "
                        f"{since_ms} ms on may have been deleted; not proposing a decision")
                decision: tuple[int, dict[str, Any]] | None = None
                scanner.seek(self._tp, start)
                position = start
                give_up = time.monotonic() + SCAN_S_MAX
                while position < stop and decision is None:
                    if time.monotonic() > give_up:
                        raise TimeoutError(f"{self.topic}: scan for transaction {txn_id} stopped at offset "
                                           f"{position} of {stop} after {SCAN_S_MAX:.0f} s")
                    batches = await scanner.getmany(self._tp, timeout_ms=1000, max_records=SCAN_RECORDS_MAX)
                    for rec in batches.get(self._tp, []):
                        if rec.offset >= stop:
                            break
                        if rec.key == txn_id.encode() and rec.value is not None:
                            value = codec.decode_txn_state(rec.value)
                            if value["state"] != "COMPLETE":
                                decision = (rec.offset, value)
                                break
                    position = await scanner.position(self._tp)
            finally:
                await scanner.stop()
        if decision is not None:
            offset, value = decision
            log.info("txn log: transaction %s from before this reader's window: first decision %s at offset %d",
                     txn_id, value["state"], offset)
            self._set_decision(value, offset)

    def _set_decision(self, rec: dict[str, Any], offset: int) -> None:
        """Make ``rec`` the transaction's decision if it comes before the one known."""
        entry = self.entries.setdefault(rec["txn_id"], TxnEntry(written_ms=rec["written_ms"]))
        if entry.decision is not None and entry.decision_offset <= offset:
            return
        entry.decision = rec["state"]
        entry.decision_offset = offset
        entry.client_token = rec.get("client_token")
        entry.request_digest = rec.get("request_digest")
        entry.participants = list(rec.get("participants") or [])
        entry.written_ms = rec["written_ms"]
        if rec["state"] == "COMMITTED" and entry.client_token:
            self.tokens[entry.client_token] = rec["txn_id"]

    async def complete(self, txn_id: str) -> None:
        """Note that every participant applied the decision (for operators; nothing waits on it)."""
        await self._publish(txn_id, "COMPLETE")
