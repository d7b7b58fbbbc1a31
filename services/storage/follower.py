"""Follower role: fold the partition log into the replica, lazily.

A follower consumes the partition's log topic with ``isolation_level=read_committed`` from the
replica's stored offset and applies each fetched batch in one RocksDB WriteBatch together with
the new offset (docs/architecture.md, invariant 3), so a restart neither skips nor repeats a record.  A record
counts only under the term rule (dynamolog/fencing.py): one a deposed leader appended after a newer
leader's FENCE is skipped; the greatest term seen is stored with the offset.  The leader uses the
same code to catch up to the end of the log before it serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dynamolog import codec
from dynamolog.config import Settings
from dynamolog.fencing import CONTROL_OPS, SEAL, TermGate
from dynamolog.indexes import LocalIndexes

from .invariants import InvariantViolation, check
from .pacing import Pacer
from .replica import (
    SEAL_MUTATION,
    DeleteRange,
    Replica,
    data_key,
    expired_tokens,
    pending_key,
    stamp_mutation,
    stats_mutations,
    token_key,
)

log = logging.getLogger(__name__)

#: records fetched (and applied in one WriteBatch) at most per round
APPLY_BATCH_RECORDS_MAX = 2000
#: ``request_id`` of the first TXN_COMMIT record of a transaction committed in one phase with a
#: ClientRequestToken: ``token:<request digest>:<token>``; the replica keeps the token for the
#: idempotency window (docs/transactions.md).  ``token+purge:`` (the first such record of a
#: ten-minute window) also deletes the tokens of the windows before the previous one.
TOKEN_TAG = "token:"
TOKEN_PURGE_TAG = "token+purge:"


#: ``request_id`` of the PREPARE records of a transaction committed in one step (its PREPARE
#: records, then its TXN_COMMIT records, in one group): the first item's, the others'.  The
#: pending entry keeps it, so that a leader that finds such a transaction pending (only part of
#: its group reached the log) knows how to finish it without a decision record: if the first
#: item is still pending, no TXN_COMMIT landed (abort), else some did (commit).
ONE_STEP_FIRST = "one-step:first"
ONE_STEP = "one-step"


def one_phase_request_id(token: str, digest: str, *, purge: bool) -> str:
    return f"{TOKEN_PURGE_TAG if purge else TOKEN_TAG}{digest}:{token}"


def token_mutations(rec: dict[str, Any]) -> list[tuple[bytes, Any]]:
    """The mutations that keep a one-step transaction's ClientRequestToken (from its first
    TXN_COMMIT record's ``request_id``; none for any other record)."""
    rid = rec.get("request_id") or ""
    purge = rid.startswith(TOKEN_PURGE_TAG)
    if not (purge or rid.startswith(TOKEN_TAG)):
        return []
    digest, token = rid[len(TOKEN_PURGE_TAG if purge else TOKEN_TAG):].split(":", 1)
    ms = int(rec["timestamp_ms"])
    muts: list[tuple[bytes, Any]] = []
    if purge:
        start, end = expired_tokens(ms)
        muts.append((start, DeleteRange(end)))
    muts.append((token_key(ms, token), orjson.dumps({"d": digest, "t": rec["transaction_id"], "ms": ms})))
    return muts


def record_mutations(rec: dict[str, Any], lsi: LocalIndexes | None = None) -> list[tuple[bytes, Any]]:
    """The RocksDB mutations a LogRecord makes (full database keys; None deletes).

    PUT / DELETE change the item.  A transaction's PREPARE stores its pending change (the lock),
    TXN_COMMIT applies that change (the record carries it) and drops the lock, TXN_ABORT drops the
    lock (docs/transactions.md); the first TXN_COMMIT of a transaction committed in one step
    may carry its ClientRequestToken (``request_id``, see ``TOKEN_TAG``), which the replica keeps,
    and its PREPARE records say so in the pending entry (``ONE_STEP_FIRST``).  Each record is self-contained, so every replica folds the log
    into the same state without looking anything up.

    A table with local secondary indexes (``lsi``) also changes the item's index entries and its
    item collection's size (an ``int`` mutation: added to the counter) in the same WriteBatch,
    from the record's old and new images.  So do the partition's item count and size
    (:func:`~services.storage.replica.stats_mutations`), for every table and index partition.
    """
    op, key = rec["op"], rec["key"]
    image = rec.get("new_image")
    if op in ("PUT", "DELETE") or (op == "TXN_COMMIT" and rec["txn_action"] in ("PUT", "DELETE")):
        new = image if (op == "PUT" or (op == "TXN_COMMIT" and rec["txn_action"] == "PUT")) else None
        old = rec.get("old_image")
        muts: list[tuple[bytes, Any]] = [(data_key(key), None if new is None else orjson.dumps(new)),
                                         *stats_mutations(old, new),
                                         # (every LogRecord has both; an effect built by hand may not)
                                         stamp_mutation(key, int(rec.get("timestamp_ms") or 0),
                                                        str(rec.get("origin_region") or ""), new is None)]
        if op == "TXN_COMMIT":
            muts.insert(0, (pending_key(rec["transaction_id"], key), None))
            muts += token_mutations(rec)
        if lsi:
            muts += lsi.mutations(key, old, new)
            delta = lsi.collection_delta(old, new)
            if delta is not None:
                muts.append(delta)
        return muts
    pkey = pending_key(rec["transaction_id"], key)
    if op == "PREPARE":
        entry = {"a": rec["txn_action"], "i": image, "o": rec.get("old_image"), "dl": rec["txn_deadline_ms"]}
        if rec.get("request_id") in (ONE_STEP_FIRST, ONE_STEP):
            entry["r"] = rec["request_id"]
        return [(pkey, orjson.dumps(entry))]
    if op == "TXN_ABORT":
        return [(pkey, None)]
    if op == "TXN_COMMIT":  # a ConditionCheck: only the lock goes
        return [(pkey, None), *token_mutations(rec)]
    raise ValueError(f"unknown log record op {op!r}")


class LogFollower:
    """Consumes one partition log into one replica."""

    def __init__(self, settings: Settings, replica: Replica, topic: str, lsi: LocalIndexes | None = None) -> None:
        self.settings = settings
        #: the table's local secondary indexes, maintained with the items
        self.lsi = lsi
        self.replica = replica
        self.topic = topic
        self.tp = TopicPartition(topic, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        #: the log's last stable offset when last fetched (for the lag in status)
        self.log_end = 0
        #: wall-clock ms of the latest fetch answer whose committed records are all applied here
        #: (None: not caught up since this follower started), see :meth:`staleness`
        self.fresh_ms: int | None = None
        #: wall-clock ms of the latest fetch answer from Kafka (at first: when this was made)
        self.polled_ms = int(time.time() * 1000)
        #: per applied record: ms from the record's timestamp (when the leader wrote it) to its
        #: application here, the most recent ones
        self.lag_ms: deque[int] = deque(maxlen=20_000)
        #: records skipped by the term rule (a deposed leader's, after a newer leader's FENCE)
        self.stale_records = 0

    async def _open(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.bootstrap,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_wait_ms=self.settings.follower_fetch_wait_ms,
                fetch_min_bytes=self.settings.follower_fetch_min_bytes,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=16 * 1024 * 1024,
            )
            await consumer.start()
            consumer.assign([self.tp])
            self._consumer = consumer
        self._consumer.seek(self.tp, self.replica.next_offset)
        return self._consumer

    async def _apply_round(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> int:
        read_from = await consumer.position(self.tp)
        batches = await consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=APPLY_BATCH_RECORDS_MAX)
        records = batches.get(self.tp, [])
        position = await consumer.position(self.tp)
        lso = consumer.last_stable_offset(self.tp)
        polled_ms = consumer.last_poll_timestamp(self.tp)
        if polled_ms is not None:
            self.polled_ms = polled_ms
        if lso is not None and lso >= 0:
            self.log_end = lso
        else:
            polled_ms = None
        if records or position != self.replica.next_offset:
            check(position >= self.replica.next_offset,
                  f"{self.topic}: consumer position {position} behind the view's offset {self.replica.next_offset}")
            changes: list[tuple[bytes, Any]] = []
            pacer = Pacer()  # decoding up to APPLY_BATCH_RECORDS_MAX records is long work
            gate = TermGate(self.replica.term)
            for rec in records:
                if pacer.due():
                    await pacer.pause()
                assert rec.value is not None, f"{self.topic}@{rec.offset}: a log record without a value"
                decoded = codec.decode_log_record(rec.value)
                if gate.admit(decoded, rec.offset):
                    if decoded["op"] == SEAL:
                        changes.append(SEAL_MUTATION)
                    elif decoded["op"] not in CONTROL_OPS:
                        changes.extend(record_mutations(decoded, self.lsi))
            if gate.stale:
                self.stale_records += gate.stale
                log.info("follower %s: %d records of a deposed leader's term skipped (term now %s)",
                         self.topic, gate.stale, gate.term)
            self.replica.apply_raw(changes, position, len(records), offsets=[rec.offset for rec in records],
                                   read_from=read_from, term=gate.term)
        if records:
            now_ms = int(time.time() * 1000)
            self.lag_ms.extend(now_ms - rec.timestamp for rec in records)
        if polled_ms is not None and self.replica.next_offset >= self.log_end:
            # everything committed when that fetch was answered is applied
            self.fresh_ms = max(self.fresh_ms or 0, polled_ms)
        return len(records)

    def health(self) -> str | None:
        """Why this follower cannot do its job now (None: it can): it stopped on an error, or
        Kafka has not answered its fetches for ``Settings.stall_s``."""
        if self._task is not None and self._task.done() and not self._task.cancelled() \
                and self._task.exception() is not None:
            return f"the follower stopped: {self._task.exception()!r}"
        silent_s = time.time() - self.polled_ms / 1000
        if self._task is not None and silent_s > self.settings.stall_s:
            return f"no answer from Kafka for {silent_s:.1f} s"
        return None

    def staleness(self) -> str | None:
        """Why this replica must not serve an eventually consistent read now, or None.

        It may serve while it has applied everything the log had committed at most
        ``Settings.max_stale_ms`` ago and trails the log's last known end by at most
        ``Settings.max_stale_records`` records (docs/guarantees.md).  A replica that has not caught up
        since it started (a restart, a rebuild) is stale however little it trails."""
        if self._task is None or self._task.done():
            return "not following the log"
        if self.fresh_ms is None:
            return "not caught up with the log since it started"
        behind_ms = int(time.time() * 1000) - self.fresh_ms
        if behind_ms > self.settings.max_stale_ms:
            return f"last caught up with the log {behind_ms} ms ago"
        behind = self.log_end - self.replica.next_offset
        if behind > self.settings.max_stale_records:
            return f"{behind} records behind the log"
        return None

    async def catch_up(self) -> int:
        """Apply every committed record up to the log's current end (its last stable offset)."""
        consumer = await self._open()
        end = (await consumer.end_offsets([self.tp]))[self.tp]
        applied = 0
        idle_rounds = 0
        while self.replica.next_offset < end:
            n = await self._apply_round(consumer, 200)
            applied += n
            if n == 0:
                idle_rounds += 1
                # the tail can be control records only; the position moves past them
                if idle_rounds > 50:
                    raise TimeoutError(
                        f"{self.topic}: stuck at offset {self.replica.next_offset} below end {end}"
                    )
            else:
                idle_rounds = 0
        return applied

    async def run(self) -> None:
        """Follow the log until cancelled."""
        consumer = await self._open()
        while True:
            try:
                await self._apply_round(consumer, 500)
                continue
            except (asyncio.CancelledError, InvariantViolation):
                raise
            except Exception:
                log.exception("follower %s: apply failed; retrying in 1 s", self.topic)
            # outside the except block (dynamolog/aio.py)
            await asyncio.sleep(1)
            consumer = await self._open()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def status(self) -> dict[str, Any]:
        lags = sorted(self.lag_ms)

        def pct(q: float) -> int | None:
            return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else None

        return {"next_offset": self.replica.next_offset, "applied_records": self.replica.applied_records,
                "lag_records": max(0, self.log_end - self.replica.next_offset),
                "stale": self.staleness(),
                "lag_ms_p50": pct(0.5), "lag_ms_p99": pct(0.99), "lag_samples": len(lags)}
