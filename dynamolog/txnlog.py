"""The transaction decision log: ``<ns>.txn``, read by every router and storage node.

A multi-item transaction (docs/transactions.md) is decided by a record in this topic: the FIRST
COMMITTED or ABORTED record of a transaction id in the log is its decision, whoever wrote it.
The coordinator (a router) writes COMMITTED once every participant has prepared; a participant
whose lock outlived its deadline writes ABORTED.  Both then read the log back to their own
record and act on whichever decision came first, so a transaction has exactly one decision even
when a slow coordinator and a recovering participant race.  Kafka's total order within the
partition is the arbiter; nothing depends on clocks.

The topic has one partition (every decision is small and a transaction writes two records), uses
``cleanup.policy=delete`` with 24 h retention (compaction would drop the first decision of a key
in favour of a later one), and is read from one hour back at start: no lock outlives its
deadline by that much, and the idempotency window of ClientRequestToken is 10 minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from . import codec
from .config import Settings
from .kafka.admin import KafkaAdmin

log = logging.getLogger(__name__)

#: ClientRequestToken idempotency window (DynamoDB: 10 minutes)
TOKEN_WINDOW_MS = 10 * 60 * 1000
#: how far back a starting reader looks (and how long entries are kept in memory)
HORIZON_MS = 60 * 60 * 1000
RETENTION_MS = 24 * 60 * 60 * 1000


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

    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.create_topic(self.topic, configs={"cleanup.policy": "delete",
                                                          "retention.ms": str(RETENTION_MS)})
            await admin.wait_for_topics([self.topic])
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                          enable_idempotence=True, linger_ms=0)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                          fetch_max_wait_ms=200, auto_offset_reset="earliest")
        await self._consumer.start()
        self._consumer.assign([self._tp])
        since = int(time.time() * 1000) - HORIZON_MS
        found = await self._consumer.offsets_for_times({self._tp: since})
        start = found.get(self._tp)
        if start is not None:
            self._consumer.seek(self._tp, start.offset)
        else:
            await self._consumer.seek_to_end(self._tp)
        self.position = await self._consumer.position(self._tp)
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
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
        state = rec["state"]
        if state == "COMPLETE":
            entry.complete = True
        elif entry.decision is None:
            entry.decision = state
            entry.decision_offset = offset
            entry.client_token = rec.get("client_token")
            entry.request_digest = rec.get("request_digest")
            entry.participants = list(rec.get("participants") or [])
            entry.written_ms = rec["written_ms"]
            if state == "COMMITTED" and entry.client_token:
                self.tokens[entry.client_token] = rec["txn_id"]
        if len(self.entries) > 100_000 and offset % 1000 == 0:
            self._forget()

    def _forget(self) -> None:
        horizon = int(time.time() * 1000) - HORIZON_MS
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

    async def decide(self, txn_id: str, state: str, **fields: Any) -> str:
        """Propose ``state`` (COMMITTED or ABORTED) and return the transaction's decision: the
        first decision record in the log, which may be another writer's."""
        entry = self.entries.get(txn_id)
        if entry is not None and entry.decision is not None:
            return entry.decision
        offset = await self._publish(txn_id, state, **fields)
        await self.read_past(offset)
        decided = self.entries[txn_id].decision
        assert decided is not None
        return decided

    async def complete(self, txn_id: str) -> None:
        """Note that every participant applied the decision (for operators; nothing waits on it)."""
        await self._publish(txn_id, "COMPLETE")
