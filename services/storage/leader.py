"""Leader role: sequence a partition's writes through its Kafka log, with group commit.

One task per partition takes the writes that arrived together (up to ``GROUP_RECORDS_MAX``),
evaluates each against the replica plus the overlay of writes not yet applied, and appends the
effect records with an idempotent ``acks=all`` producer.  Only once they are acknowledged by the
in-sync replicas, *at exactly the offsets the leader expected*, are the changes applied to
RocksDB (with the offset, in one WriteBatch) and the clients answered.  Two groups are in the
pipeline at once: while one is being appended, the next is evaluated and sent; applies and answers
happen in group order.  docs/architecture.md, invariants 1 and 2.

Leadership is fenced in the log (dynamolog/fencing.py, docs/decisions/0023-fenced-appends.md):
a leader opens its term with a FENCE record, stamps every record with its term, and readers skip
records of an older term that come after a newer FENCE.  A group that did not land right after
the leader's previous records (something else was appended in between: maybe a newer leader's
FENCE) is not acknowledged.  After that or any other failure the leader cannot know what counts,
so it answers with an error (the client's outcome is unknown, as with DynamoDB's 500s), opens a
new term and re-reads the log before it takes the next group; if the log shows a newer leader's
term, it steps down.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from dynamolog import codec, errors
from dynamolog.aio import cleanup_on_error, closing
from dynamolog.catalog import PartitionInfo
from dynamolog.config import Settings
from dynamolog.fencing import BARRIER, FENCE, SEAL, Term, record_term
from dynamolog.indexes import LocalIndexes, check_index_key_values

from .capacity import index_write_units
from .follower import ONE_STEP, ONE_STEP_FIRST, LogFollower, one_phase_request_id, record_mutations
from .invariants import InvariantViolation, check
from .pacing import Pacer
from .replica import SEAL_MUTATION, TOKEN_WINDOW_MS, Replica
from .txnwait import Gate, Parked, Read
from .writes import Stamp, compute, local_stamp, replicated

if TYPE_CHECKING:
    from dynamolog.txnlog import TxnLog

log = logging.getLogger(__name__)

#: writes taken into one group commit at most
GROUP_RECORDS_MAX = 256
#: writes waiting for the sequencer at most; beyond that the node answers "throttled"
QUEUE_MAX = 10_000
#: expired items deleted per sweep at most
TTL_BATCH = 1000
#: DynamoDB ignores expiry times more than five years in the past
TTL_MAX_AGE_S = 5 * 365 * 86400
#: the principal of time-to-live deletions (the stream record's userIdentity)
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
#: log record size allowed (an item of 400 KB with its old image, plus framing)
RECORD_BYTES_MAX = 2 * 1024 * 1024
#: longest wait for a new producer's id (s); an open or a recovery that waits longer fails and is retried
PRODUCER_START_S = 30.0


def not_leader(pid: str) -> errors.ApiError:
    """Internal answer that tells a router to refresh the partition map and retry."""
    return errors.ApiError("NotLeader", f"this node does not lead partition {pid}", status=503)


def partition_split(pid: str) -> errors.ApiError:
    """Internal answer of a partition that is being split or was split: a router waits for the
    partition map to show its children and sends the request to the one holding the key
    (dynamolog/routing.py)."""
    return errors.ApiError("NotLeader", f"partition {pid} is split; its children serve its keys", status=503)


#: what a partition being sealed still takes: decisions of transactions prepared before (the seal
#: waits for them), reads, and the seal itself
_WHILE_SEALING = frozenset(("txn_decide", "txn_read", "barrier", "seal"))


class _Displaced(Exception):
    """A group's records did not land where the leader expected: something else was appended."""


@dataclass
class _Group:
    """Writes appended together (one producer batch)."""

    seq: int
    #: (request, answer, error) per write, in arrival order
    answers: list[tuple[_Pending, dict[str, Any] | None, BaseException | None]]
    #: (item key, encoded log record, RocksDB mutations) per log record
    records: list[tuple[bytes, bytes, list[tuple[bytes, Any]]]]
    #: item-collection size changes of the records (local secondary indexes)
    deltas: dict[bytes, int] = field(default_factory=dict)
    #: the records' log offsets once their appends are acknowledged
    offsets: list[int] = field(default_factory=list)
    #: a consistent read asked for an append that proves leadership (see read_lease)
    barrier: bool = False
    #: records of older terms found among the group's (see _check_landing)
    skipped: int = 0
    #: when the group was sent (monotonic): the lease its success gives starts then
    sent_at: float = 0.0


@dataclass
class _Pending:
    req: dict[str, Any]
    key: bytes
    future: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class LeaderSequencer:
    """The leader of one partition."""

    def __init__(self, settings: Settings, replica: Replica, partition: PartitionInfo, node_id: str,
                 txnlog: TxnLog | None = None, ttl_attribute: Callable[[], str | None] | None = None,
                 lsi: LocalIndexes | None = None,
                 index_keys: Callable[[], list[tuple[str, str, str]]] | None = None,
                 is_current: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        #: whether the partition map still names this leader (checked before a recovery, whose
        #: new producers would fence a newer leader)
        self.is_current = is_current
        #: writes queued or being sequenced, not answered yet
        self._outstanding = 0
        #: when the sequencer last made progress (a group answered), or work arrived after none
        self._progress_at = time.monotonic()
        #: when commits started failing (None: the last one succeeded)
        self._failing_since: float | None = None
        #: the table's secondary index key attributes now: (index name, attribute, type)
        self.index_keys = index_keys
        #: the table's local secondary indexes (maintained with the items, in every replica)
        self.lsi = lsi if lsi else None
        #: item-collection size changes evaluated but not yet applied to the view
        self._coll_pending: dict[bytes, int] = {}
        #: the table's time-to-live attribute now (None: TTL off)
        self.ttl_attribute = ttl_attribute
        self._sweeper: asyncio.Task[None] | None = None
        #: when the sweep next forgets old tombstones (monotonic; the first sweep does)
        self._next_purge = 0.0
        self.ttl_deleted = 0
        self.txnlog = txnlog
        #: item key -> the transaction that holds it (prepared, undecided)
        self._locks: dict[bytes, str] = {}
        #: transaction -> {item key: (action, new item)} and its deadline (epoch ms)
        #: (the old image too, for the TXN_COMMIT record: stream consumers see it)
        self._held: dict[str, dict[bytes, tuple[str, dict[str, Any] | None, dict[str, Any] | None]]] = {}
        self._deadlines: dict[str, int] = {}
        self._resolving: set[str] = set()
        self._bg: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        #: strongly consistent reads are served until then (monotonic), renewed by every commit
        self.lease_until = 0.0
        #: and not before then: an earlier leader's lease must have run out
        self._reads_from = 0.0
        self.replica = replica
        self.partition = partition
        self.pid: str = partition.partition_id
        self.topic: str = partition.log_topic
        self.epoch: int = partition.leader_epoch
        self.node_id = node_id
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(QUEUE_MAX)
        self._producer: AIOKafkaProducer | None = None
        #: this leader's term (opened by its FENCE record; dynamolog/fencing.py)
        self.term = Term(self.epoch, -1)
        #: records of older terms found among this leader's own (a deposed leader's late appends)
        self.stale_skipped = 0
        #: terms opened (the first, and one after each failure)
        self.terms_opened = 0
        #: effects of evaluated groups not yet applied to the view: key -> (group seq, item)
        self._overlay: dict[bytes, tuple[int, dict[str, Any] | None]] = {}
        #: and their last-writer-wins stamps: key -> (group seq, stamp, deleted)
        self._stamps: dict[bytes, tuple[int, Stamp, bool]] = {}
        self._seq = 0
        self._committing: asyncio.Future[bool] | None = None
        #: when the last group was formed (monotonic), for the linger
        self._last_group = 0.0
        #: the linger's bound (s): settings.group_linger_ms, or group_linger_one_broker_ms when the
        #: cluster has one broker (see _open_term)
        self._linger_s = settings.group_linger_ms / 1000
        self._last_group_size = 0
        #: the linger waits for this many queued writes (0: not waiting), see _run
        self._want = 0
        self._enough = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fenced = False
        #: a split is sealing the partition: new writes and prepares are refused (see :meth:`seal`)
        self.sealing = False
        self.ready = asyncio.Event()
        #: counters for status and benchmarks
        self.groups_committed = 0
        self.records_committed = 0
        self.commit_ms_total = 0.0

    # -- life cycle ----------------------------------------------------------------------
    async def _new_producer(self) -> None:
        """(Re)create the partition's idempotent producer (a new producer id: nothing the old
        one still had in flight can be retried in its name)."""
        if self._producer is not None:
            old, self._producer = self._producer, None
            try:
                await old.stop()
            except KafkaError as e:  # its pending sends fail; closing must go on
                log.info("leader %s: producer stopped with %r", self.pid, e)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            retry_backoff_ms=10,
            max_request_size=RECORD_BYTES_MAX + 65536,
            max_batch_size=1024 * 1024,
            request_timeout_ms=30_000,
        )
        try:
            # aiokafka asks for a producer id until a broker gives one, without a bound: an open
            # must fail (and be retried by whoever asked for it) rather than hang.  (No await in
            # an except block of a compiled module: dynamolog/aio.py.)
            await cleanup_on_error(asyncio.wait_for(producer.start(), PRODUCER_START_S), producer.stop)
        except TimeoutError:
            raise KafkaError(f"leader {self.pid}: no producer id from Kafka within {PRODUCER_START_S:.0f} s") from None
        self._producer = producer

    async def _open_term(self) -> None:
        """Open a new term: append a FENCE record, then read the log up to and past it.

        From the FENCE on, every reader skips what an older term appends (dynamolog/fencing.py).
        Everything before it is applied here first, so the view is the fold of the log up to the
        term's start.  If the log shows a newer leader's term, this leader is fenced."""
        await self._new_producer()
        assert self._producer is not None
        fence = {"op": FENCE, "key": b"", "new_image": None, "old_image": None,
                 "timestamp_ms": int(time.time() * 1000), "origin_region": self.settings.region,
                 "transaction_id": None, "leader_epoch": self.epoch, "request_id": None, "txn_action": None,
                 "txn_deadline_ms": None, "system_principal": None, "fence_offset": -1}
        meta = await self._producer.send_and_wait(self.topic, value=codec.encode_log_record(fence), key=b"",
                                                  partition=0)
        if self.epoch > 1 or meta.offset > 0:
            # an earlier leader (another node, or this node's previous process or term) may still
            # hold a lease from an append just before this fence: let it run out before serving
            # consistent reads or acknowledging writes (see read_lease)
            self._reads_from = time.monotonic() + self.settings.lease_ms / 1000
        follower = LogFollower(self.settings, self.replica, self.topic, self.lsi)
        n = await closing(follower.catch_up(), follower.close)
        self.terms_opened += 1
        self.term = Term(self.epoch, meta.offset)
        # a one-broker cluster's appends are cheap to the broker: a busy partition gains nothing by
        # waiting for larger groups (docs/benchmarks.md, "The linger by cluster size")
        one_broker = len(self._producer.client.cluster.brokers()) == 1
        self._linger_s = (self.settings.group_linger_one_broker_ms if one_broker else self.settings.group_linger_ms) / 1000
        if self.replica.term != self.term:
            log.warning("leader %s: the log holds a newer leader's term %s (this one: %s); stepping down",
                        self.pid, self.replica.term, self.term)
            self.fenced = True
            return
        log.info("leader %s: term %s opened (%d records applied), next offset %d", self.pid, self.term.encode(),
                 n, self.replica.next_offset)

    async def start(self) -> None:
        """Become leader: open a term (fencing older leaders), read the log to its end, then serve."""
        await cleanup_on_error(self._open_term(), self.close)
        if self.fenced:
            await self.close()
            raise not_leader(self.pid)
        self._load_locks()
        self._task = asyncio.ensure_future(self._run())
        if self.txnlog is not None:
            self._reaper = asyncio.ensure_future(self._reap())
        if self.ttl_attribute is not None:
            self._sweeper = asyncio.ensure_future(self._sweep())
        self._task.add_done_callback(self._run_done)
        self.ready.set()

    def _run_done(self, task: asyncio.Task[None]) -> None:
        # If the sequencer task ends for any reason, nobody must wait forever.
        self._fail_queued(not_leader(self.pid))
        if not task.cancelled() and task.exception() is not None:
            log.error("leader %s: sequencer died", self.pid, exc_info=task.exception())

    def _fail_queued(self, err: Exception) -> None:
        while not self._queue.empty():
            p = self._queue.get_nowait()
            if not p.future.done():
                p.future.set_exception(err)

    async def close(self) -> None:
        for bg in (self._reaper, self._sweeper):
            if bg is not None:
                bg.cancel()
                await asyncio.gather(bg, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        self._fail_queued(not_leader(self.pid))
        if self._producer is not None:
            try:
                await self._producer.stop()
            except KafkaError as e:  # its pending sends fail; closing must go on
                log.info("leader %s: producer stopped with %r", self.pid, e)
            self._producer = None

    # -- the write path --------------------------------------------------------------------
    async def submit(self, req: dict[str, Any], key: bytes) -> dict[str, Any]:
        """Queue one write; returns its answer after the commit, or raises ApiError."""
        return await self.enqueue(req, key)

    def enqueue(self, req: dict[str, Any], key: bytes) -> asyncio.Future[dict[str, Any]]:
        """Queue one write now (writes queued one after another are sequenced in that order);
        the future holds its answer after the commit, or the ApiError."""
        if self.fenced or (self._task is not None and self._task.done()):
            raise not_leader(self.pid)
        if self.replica.sealed or (self.sealing and req.get("kind") not in _WHILE_SEALING):
            raise partition_split(self.pid)
        p = _Pending(req, key)
        try:
            self._queue.put_nowait(p)
        except asyncio.QueueFull:
            raise errors.ApiError(
                "ThrottlingException", "Too many requests are waiting on this partition; retry later"
            ) from None
        if self._outstanding == 0:
            self._progress_at = time.monotonic()
        self._outstanding += 1
        p.future.add_done_callback(self._answered)
        if self._want and self._queue.qsize() >= self._want:
            self._enough.set()
        return p.future

    def _answered(self, _f: asyncio.Future[dict[str, Any]]) -> None:
        self._outstanding -= 1

    def health(self) -> str | None:
        """Why this leader cannot do its job now (None: it can): its sequencer stopped, its
        commits have failed for ``Settings.stall_s`` (Kafka unreachable, say), or writes have waited that
        long without a commit."""
        if self.fenced:
            return None  # a newer leader exists; the partition map will say so
        if self._task is None:
            return None  # still starting
        if self._task.done():
            return "the sequencer stopped"
        now = time.monotonic()
        if self._failing_since is not None and now - self._failing_since > self.settings.stall_s:
            return f"commits failing for {now - self._failing_since:.1f} s"
        if self._outstanding > 0 and now - self._progress_at > self.settings.stall_s:
            return f"{self._outstanding} writes waiting, no commit for {now - self._progress_at:.1f} s"
        return None

    async def _run(self) -> None:
        """The pipeline: while group N is being appended, group N+1 is evaluated and sent.

        Group N+1 is evaluated against the view plus the overlay of groups not yet applied
        (so it sees N's effects), its records are sent after N's (the idempotent producer keeps
        their order: log order = group order), and it applies and answers only after N has.  If
        N fails, N+1 is failed too (it rests on N's effects), a new term is opened (its FENCE
        makes whatever N+1 still lands count for nothing) and the log is re-read.
        """
        committing: asyncio.Future[bool] | None = None
        while True:
            batch = [await self._queue.get()]
            # linger: while concurrent writes keep coming (the last group had several), a group
            # waits until as many writes as the last group had are queued, at most until
            # self._linger_s after the last group started, so that a busy partition makes
            # fewer, larger appends.  A write after a quiet spell, or a client writing alone,
            # starts its group at once; clients that wait for their answers (a closed loop) are
            # all queued soon and wait no longer.
            want = min(self._last_group_size, GROUP_RECORDS_MAX) - 1
            linger = self._last_group + self._linger_s - time.monotonic()
            if linger > 0 and want > 0 and self._queue.qsize() < want:
                self._want = want
                self._enough.clear()
                enough = asyncio.ensure_future(self._enough.wait())
                try:
                    await asyncio.wait([enough], timeout=linger)  # enough writes queued, or time up
                finally:
                    enough.cancel()
                    self._want = 0
            self._last_group = time.monotonic()
            if committing is not None and not committing.done() and self._queue.qsize() + 1 < self.settings.pipeline_writes_min:
                # too few writes waiting to fill a group: let the append in flight finish, so that
                # the writes arriving meanwhile join this group (fewer, larger appends)
                await asyncio.wait([committing])
            if committing is not None and committing.done():
                ok = committing.result()
                committing = self._committing = None
                if not ok and not await self._recovered():
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(not_leader(self.pid))
                    return
            while len(batch) < GROUP_RECORDS_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._last_group_size = len(batch)
            group = self._evaluate(batch)
            sends: list[tuple[asyncio.Future[Any], int]] = []
            failure: BaseException | None = None
            if group.records:
                group.sent_at = time.monotonic()
                try:
                    sends = await self._send_group(group)
                except Exception as e:  # noqa: BLE001 - any send failure leaves the outcome unknown
                    failure = e
            if committing is not None:
                previous_ok = await committing
                committing = self._committing = None
                if not previous_ok and failure is None:
                    failure = RuntimeError("the previous group failed")  # this one rests on its effects
            if failure is not None:
                if not await self._failed(group, failure):
                    return
                continue
            committing = self._committing = asyncio.ensure_future(self._finish(group, sends))

    async def _send_group(self, group: _Group) -> list[tuple[asyncio.Future[Any], int]]:
        """Hand a group's records to the producer as whole record batches (one more only when a
        batch is full): one future per batch, with its record count, rather than one per record.
        A batch lands as one unit at consecutive offsets, so its base offset gives every record's.
        The idempotent producer keeps batches in the order given, as it keeps single records."""
        producer = self._producer
        assert producer is not None
        sends: list[tuple[asyncio.Future[Any], int]] = []
        batch = producer.create_batch()
        count = 0
        for k, v, _ in group.records:
            if batch.append(key=k, value=v, timestamp=None) is None:  # full: send it, start the next
                # partition 0 named: a log topic has one partition
                sends.append((await producer.send_batch(batch, self.topic, partition=0), count))
                batch, count = producer.create_batch(), 0
                batch.append(key=k, value=v, timestamp=None)  # a batch's first record always fits
            count += 1
        sends.append((await producer.send_batch(batch, self.topic, partition=0), count))
        return sends

    async def _failed(self, group: _Group, cause: BaseException) -> bool:
        """A group failed (and every group after it): answer them, open a new term, re-read the
        log.  False if this leader must step down."""
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._fail(group, cause)
        log.warning("leader %s: append failed (%r)", self.pid, cause)
        return await self._recovered()

    async def _recovered(self) -> bool:
        """After failed appends: open a new term and re-read the log; False if this leader must
        step down (the log or the partition map names a newer one)."""
        if self.fenced:
            return False
        log.info("leader %s: opening a new term and re-reading the log", self.pid)
        self._overlay.clear()
        self._stamps.clear()
        self._coll_pending.clear()
        await self._recover()
        return not self.fenced

    def _evaluate(self, batch: list[_Pending]) -> _Group:
        """Evaluate a batch in order against the view plus the overlay; encode its records."""
        self._seq += 1
        group = _Group(self._seq, [], [])
        now_ms = int(time.time() * 1000)
        for p in batch:
            kind = p.req["kind"]
            if (self.sealing or self.replica.sealed) and kind not in _WHILE_SEALING:
                # queued before the seal began (or a parked prepare coming back): its keys belong
                # to a child now
                group.answers.append((p, None, partition_split(self.pid)))
                continue
            if kind == "seal":
                if not self.replica.sealed and self._locks:
                    group.answers.append((p, None, errors.internal("transactions still hold items")))
                    continue
                if not self.replica.sealed:
                    group.records.append((b"", codec.encode_log_record(self._log_record(SEAL, b"", None, None, now_ms)),
                                          [SEAL_MUTATION]))
                group.answers.append((p, {}, None))
                continue
            if kind == "barrier":
                if not group.barrier:  # one BARRIER record proves the term for every read waiting
                    group.barrier = True
                    group.records.append((b"", codec.encode_log_record(self._log_record(BARRIER, b"", None, None, now_ms)),
                                          []))
                group.answers.append((p, {}, None))
                continue
            try:
                if kind == "txn_prepare":
                    self._eval_prepare(p, group, now_ms)
                    continue
                if kind == "txn_decide":
                    self._eval_decide(p, group, now_ms)
                    continue
                if kind == "txn_read":
                    self._eval_read(p, group)
                    continue
            except Exception:  # a bug in evaluation must not stop the partition
                log.exception("leader %s: evaluating a transaction step failed", self.pid)
                group.answers.append((p, None, errors.internal()))
                continue
            if p.key in self._locks:
                group.answers.append((p, None, errors.transaction_conflict()))
                continue
            old = self._current(p.key)
            ts, region = now_ms, self.settings.region
            try:
                if kind == "replicate":  # a change from another region: last writer wins
                    stamp, deleted = self._stamp(p.key)
                    eff = replicated(p.req, old, stamp, deleted=deleted, now_ms=now_ms,
                                     tombstone_ms=int(self.settings.tombstone_s * 1000))
                    ts, region = int(p.req["ts"]), str(p.req["region"])
                else:
                    eff = compute(p.req, old)
                    if eff.changed:
                        st = local_stamp(now_ms, region, self._stamp(p.key)[0])
                        ts = st.ts
                if eff.changed and eff.new is not None:
                    self._check_index_keys(eff.new)
            except errors.ApiError as e:
                group.answers.append((p, None, e))
                continue
            except Exception:  # a bug in evaluation must not stop the partition
                log.exception("leader %s: evaluating a write failed", self.pid)
                group.answers.append((p, None, errors.internal()))
                continue
            result = eff.result
            ixw = p.req.get("ixw")  # price the global-index writes (decision 0024)
            if ixw and eff.changed:
                result = result | {"ix": index_write_units(ixw, old, eff.new)}
            if self.lsi is not None:
                coll = self._collection_check(p.req, old, eff.new if eff.changed else old)
                if isinstance(coll, errors.ApiError):
                    group.answers.append((p, None, coll))
                    continue
                if p.req.get("icm"):
                    result = result | {"coll": coll}
            group.answers.append((p, result, None))
            if not eff.changed:
                continue
            self._overlay[p.key] = (group.seq, eff.new)
            self._stamps[p.key] = (group.seq, Stamp(ts, region), eff.new is None)
            self._record(group, "PUT" if eff.new is not None else "DELETE", p.key, eff.new, old, ts,
                         request_id=p.req.get("rid"), system=p.req.get("system"), region=region)
        return group

    # -- splits (docs/decisions/0039-partition-splits.md) ----------------------------------------
    async def seal(self, wait_s: float) -> int:
        """End the partition for a split: refuse new writes and prepares, wait (up to ``wait_s``)
        until no prepared transaction holds an item, then append a SEAL record after every write
        queued before it.  Returns the log offset after the SEAL (the cut: the parent's data
        there is what its children start from).  Idempotent; on failure (a transaction still
        holding items, an append that failed) writes are taken again and the caller retries."""
        if self.replica.sealed:
            return self.replica.next_offset
        self.sealing = True
        try:
            deadline = time.monotonic() + wait_s
            while self._locks:
                if time.monotonic() > deadline:
                    raise errors.internal(f"partition {self.pid}: transactions still hold "
                                          f"{len(self._locks)} items; the split is retried later")
                await asyncio.sleep(0.02)
            await self.enqueue({"kind": "seal"}, b"")
        except BaseException:
            if not self.replica.sealed:
                self.sealing = False
            raise
        log.info("leader %s: sealed for a split at offset %d", self.pid, self.replica.next_offset)
        return self.replica.next_offset

    # -- time to live -------------------------------------------------------------------------
    async def _sweep(self) -> None:
        """Delete items whose time-to-live attribute (epoch seconds) has passed, through the log
        like any delete, marked as the service's own (``system_principal``).  The condition is
        evaluated again by the sequencer, so an item updated meanwhile is not deleted."""
        assert self.ttl_attribute is not None
        while True:
            await asyncio.sleep(self.settings.ttl_sweep_s)
            # tombstones: a scan of every stamp, so once per 1/24 of their window (1 h by default)
            if not self.fenced and time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + max(self.settings.ttl_sweep_s, self.settings.tombstone_s / 24)
                await self._purge_tombstones()
            attr = self.ttl_attribute()
            if not attr or self.fenced:
                continue
            try:
                await self._sweep_once(attr)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader %s: time-to-live sweep failed; next one in %.0f s", self.pid,
                              self.settings.ttl_sweep_s)

    async def _purge_tombstones(self) -> int:
        """Forget the tombstones older than ``DYNAMOLOG_TOMBSTONE_S`` (decision 0031), a page at
        a time between the writes: the leader's replica stays bounded; a follower's are forgotten
        when it leads."""
        before = int(time.time() * 1000) - int(self.settings.tombstone_s * 1000)
        after: bytes | None = None
        purged = 0
        try:
            while True:
                keys, after = self.replica.tombstones_before(before, after)
                purged += self.replica.purge_tombstones(keys, before)
                if after is None:
                    return purged
                await asyncio.sleep(0)
        except Exception:
            log.exception("leader %s: purging tombstones failed", self.pid)
            return purged

    async def _sweep_once(self, attr: str) -> int:
        if self.sealing or self.replica.sealed:
            return 0  # the children sweep their items
        now = time.time()
        expired: list[bytes] = []
        pacer = Pacer()
        for key, raw in self.replica.range(b"", None):
            await pacer.tick()  # a large partition must not hold up the writes
            item = orjson.loads(raw)
            v = item.get(attr)
            if not isinstance(v, dict) or "N" not in v:
                continue
            try:
                at = float(v["N"])
            except ValueError:
                continue
            if now - TTL_MAX_AGE_S < at <= now:
                expired.append(key)
                if len(expired) >= TTL_BATCH:
                    break
        if not expired:
            return 0
        req = {"kind": "delete", "cond": "#ttl <= :now", "names": {"#ttl": attr},
               "values": {":now": {"N": str(int(now))}}, "system": TTL_PRINCIPAL}
        results = await asyncio.gather(*(self.submit(dict(req), key) for key in expired), return_exceptions=True)
        done = sum(1 for r in results if not isinstance(r, BaseException))
        self.ttl_deleted += done
        log.info("leader %s: time to live: %d expired items deleted", self.pid, done)
        return done

    def lease_held(self) -> bool:
        """Whether :meth:`read_lease` would return at once (a consistent read may be served now)."""
        now = time.monotonic()
        return not self.fenced and self._reads_from <= now < self.lease_until

    async def read_lease(self) -> None:
        """Return once this leader may serve a strongly consistent read: no newer leader can
        have served a write it has not seen.  An append sent at time t that landed where expected proves no newer
        leader had fenced this one before t, and a newer leader serves nothing consistent and
        acknowledges no write until the lease (settings.lease_ms) after its fence; so until
        t + lease this replica is current.  Past that, a BARRIER record renews the lease (it landed
        right after this leader's previous records: no newer FENCE came between) or finds this
        leader fenced.
        """
        wait = self._reads_from - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.fenced:
            raise not_leader(self.pid)
        if time.monotonic() < self.lease_until:
            return
        if self.is_current is not None and not self.is_current():
            raise not_leader(self.pid)  # the partition map already names a newer leader
        # a leader woken from a pause may be stuck behind a commit that a newer leader fenced:
        # the read is refused after a bounded wait instead of waiting for that commit to end
        barrier = asyncio.shield(self.enqueue({"kind": "barrier"}, b""))
        try:
            await asyncio.wait_for(barrier, self.settings.stall_s)
        except TimeoutError:
            raise not_leader(self.pid) from None
        if self.fenced or time.monotonic() >= self.lease_until:
            raise not_leader(self.pid)

    def _check_index_keys(self, item: dict[str, Any]) -> None:
        """The item's secondary index key attributes (of the table's indexes now) must have the
        index's type and not be empty."""
        if self.index_keys is not None:
            check_index_key_values(item, self.index_keys())

    def collection_size(self, ckey: bytes) -> int:
        """The size of an item collection, with the changes evaluated but not yet applied."""
        return self.replica.counter(ckey) + self._coll_pending.get(ckey, 0)

    def _collection_check(self, req: dict[str, Any], old: dict[str, Any] | None,
                          new: dict[str, Any] | None) -> int | errors.ApiError:
        """The item collection's size after a write, or the error when the write would grow it
        past the limit (DynamoDB's 10 GB; ``DYNAMOLOG_ITEM_COLLECTION_MAX_BYTES``)."""
        assert self.lsi is not None
        some = (req.get("keyattrs") or new or old or {})
        if self.lsi.hash_key not in some:
            return 0
        ckey = self.lsi.collection_key(some)
        delta = self.lsi.footprint(new) - self.lsi.footprint(old)
        size = self.collection_size(ckey) + delta
        if delta > 0 and size > self.settings.item_collection_bytes_max:
            return errors.item_collection_size_limit()
        return size

    def _stamp(self, key: bytes) -> tuple[Stamp | None, bool]:
        """The item's last-writer-wins stamp (None: none kept) and whether it is a tombstone."""
        held = self._stamps.get(key)
        if held is not None:
            return held[1], held[2]
        kept = self.replica.stamp(key)
        return (None, False) if kept is None else (Stamp(kept[0], kept[1]), kept[2])

    def _current(self, key: bytes) -> dict[str, Any] | None:
        held = self._overlay.get(key)
        return held[1] if held is not None else self.replica.get(key)

    def _record(self, group: _Group, op: str, key: bytes, new: dict[str, Any] | None, old: dict[str, Any] | None,
                now_ms: int, *, request_id: str | None = None, txn: str | None = None, action: str | None = None,
                deadline: int | None = None, system: str | None = None, region: str | None = None) -> None:
        rec = self._log_record(op, key, new, old, now_ms, request_id=request_id, txn=txn, action=action,
                               deadline=deadline, system=system)
        if region is not None:  # a replicated change keeps the region that made it
            rec["origin_region"] = region
        muts = record_mutations(rec, self.lsi)
        if self.lsi is not None:
            for k, v in muts:
                if isinstance(v, int):
                    group.deltas[k] = group.deltas.get(k, 0) + v
                    self._coll_pending[k] = self._coll_pending.get(k, 0) + v
        group.records.append((key, codec.encode_log_record(rec), muts))

    def _log_record(self, op: str, key: bytes, new: dict[str, Any] | None, old: dict[str, Any] | None,
                    now_ms: int, *, request_id: str | None = None, txn: str | None = None,
                    action: str | None = None, deadline: int | None = None,
                    system: str | None = None) -> dict[str, Any]:
        """A LogRecord of this leader's term."""
        return {
            "op": op,
            "key": key,
            "new_image": new,
            "old_image": old,
            "timestamp_ms": now_ms,
            "origin_region": self.settings.region,
            "transaction_id": txn,
            "leader_epoch": self.term.epoch,
            "request_id": request_id,
            "txn_action": action,
            "txn_deadline_ms": deadline,
            "system_principal": system,
            "fence_offset": self.term.fence_offset,
        }

    # -- transactions (docs/transactions.md) --------------------------------------------------
    #: reads waiting for locks, holds of reads across partitions and prepares parked behind them
    #: (services/storage/txnwait.py); made on first use
    _txn_gate: Gate | None = None
    #: ClientRequestToken -> request digest of one-phase transactions evaluated, not yet applied
    #: (applied ones are in the replica: :meth:`Replica.token`)
    _tokens_unapplied: dict[str, str] | None = None
    #: the token window of the last token this leader wrote (the first of a new window purges)
    _token_window = -1

    def _gate(self) -> Gate:
        if self._txn_gate is None:
            self._txn_gate = Gate()
        return self._txn_gate

    def _eval_prepare(self, p: _Pending, group: _Group, now_ms: int) -> None:
        """Check a transaction's items of this partition; if all pass, lock them (PREPARE records),
        or, for a one-phase transaction (every item in this partition), apply them at once
        (PREPARE and TXN_COMMIT records in one group, no lock held).  A prepare of items that TransactGetItems reads wait for
        is parked behind them, for ``txn_read_wait_ms`` at most (services/storage/txnwait.py).

        With a ClientRequestToken (``token``, ``digest``) that committed a one-phase transaction
        here within ten minutes, nothing is evaluated: the answer says whether the request is the
        same (``repeat``; ``ok`` False while its group has not committed) or another
        (``mismatch``).

        Answers ``{"ok": True, "sizes": [...]}`` (with ``"committed": True`` when applied in one
        phase) or ``{"ok": False, "reasons": [...]}`` with one CancellationReason per item
        (``None`` for the items that passed)."""
        txn: str = p.req["txn"]
        items = p.req["items"]
        if txn in self._held:  # a retried prepare of a transaction already prepared here
            group.answers.append((p, {"ok": True, "sizes": [0] * len(items)}, None))
            return
        one_phase = bool(p.req.get("one_phase"))
        token: str | None = p.req.get("token")
        digest: str | None = p.req.get("digest")
        seen = self._token_seen(token, now_ms) if token is not None else None
        if seen is not None:
            # this token's transaction committed here in one phase (or is being committed)
            if seen not in ("unapplied", digest):
                group.answers.append((p, {"ok": False, "mismatch": True}, None))
                return
            if one_phase:
                done = seen != "unapplied"
                group.answers.append((p, {"ok": done, "committed": done, "repeat": True}, None))
                return
        keys = [base64.b64decode(it["key"]) for it in items]
        if not p.req.get("nopark") and self._txn_gate is not None and self._txn_gate.covered(keys):
            self._park(p, keys)
            return
        reasons: list[dict[str, Any] | None] = []
        effects: list[tuple[bytes, str, dict[str, Any] | None, dict[str, Any] | None, int, Any]] = []
        for key, it in zip(keys, items, strict=True):
            if key in self._locks:
                reasons.append({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                continue
            old = self._current(key)
            sub = it["req"]
            try:
                eff = compute(sub, old)
                if eff.changed and eff.new is not None:
                    self._check_index_keys(eff.new)
            except errors.ApiError as e:
                if e.type_name == "ConditionalCheckFailedException":
                    reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": e.message}
                    if sub.get("rvf") == "ALL_OLD" and old is not None:
                        reason["Item"] = old
                else:
                    reason = {"Code": "ValidationError", "Message": e.message}
                reasons.append(reason)
                continue
            coll: int | errors.ApiError | None = None
            if self.lsi is not None and sub["kind"] != "check":
                coll = self._collection_check(sub, old, eff.new)
                if isinstance(coll, errors.ApiError):
                    reasons.append({"Code": "ItemCollectionSizeLimitExceeded", "Message": coll.message})
                    continue
            reasons.append(None)
            action = "CHECK" if sub["kind"] == "check" else ("PUT" if eff.new is not None else "DELETE")
            effects.append((key, action, eff.new, old, int(eff.result.get("size", 0)), coll))
        if any(r is not None for r in reasons):
            group.answers.append((p, {"ok": False, "reasons": reasons}, None))
            return
        # colls: each item's collection size after the transaction (tables with local indexes)
        answer = {"ok": True, "sizes": [e[4] for e in effects], "colls": [e[5] for e in effects]}
        deadline = int(p.req["deadline"])
        if one_phase:
            # PREPARE records, then TXN_COMMIT records, in this group: should only a part of the
            # group reach the log, the part is a prefix (appends keep their order), and the
            # leader that finds the transaction pending finishes it alike everywhere
            # (_finish_one_step); the token goes with the first TXN_COMMIT
            for i, (key, action, new, old, _, _) in enumerate(effects):
                self._record(group, "PREPARE", key, new if action != "CHECK" else None, old, now_ms, txn=txn,
                             action=action, deadline=deadline, request_id=ONE_STEP_FIRST if i == 0 else ONE_STEP)
            rid = self._token_request_id(p, token, digest, now_ms)
            for key, action, new, old, _, _ in effects:
                self._record(group, "TXN_COMMIT", key, new, old, now_ms, txn=txn, action=action, request_id=rid)
                rid = None
                if action != "CHECK":
                    self._overlay[key] = (group.seq, new)
            answer["committed"] = True
            group.answers.append((p, answer, None))
            return
        hold: dict[bytes, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {}
        for key, action, new, old, _, _ in effects:
            self._record(group, "PREPARE", key, new if action != "CHECK" else None, old, now_ms, txn=txn,
                         action=action, deadline=deadline)
            self._locks[key] = txn
            hold[key] = (action, new, old)
        self._held[txn] = hold
        self._deadlines[txn] = deadline
        group.answers.append((p, answer, None))

    def _token_seen(self, token: str, now_ms: int) -> str | None:
        """The request digest of the one-phase transaction that carried ``token`` here within
        the idempotency window ("unapplied" while its group has not committed), else None."""
        if self._tokens_unapplied is not None and token in self._tokens_unapplied:
            return "unapplied"
        entry = self.replica.token(token, now_ms)
        return str(entry["d"]) if entry is not None else None

    def _token_request_id(self, p: _Pending, token: str | None, digest: str | None, now_ms: int) -> str | None:
        """The ``request_id`` that records a one-phase transaction's token in the log (its first
        TXN_COMMIT record carries it; every replica keeps it for the idempotency window)."""
        if token is None or digest is None:
            return None
        unapplied = self._tokens_unapplied
        if unapplied is None:
            unapplied = self._tokens_unapplied = {}
        unapplied[token] = digest
        p.future.add_done_callback(lambda _f: unapplied.pop(token, None))  # applied, or failed
        window = now_ms // TOKEN_WINDOW_MS
        purge = window != self._token_window
        self._token_window = window
        return one_phase_request_id(token, digest, purge=purge)

    def _eval_decide(self, p: _Pending, group: _Group, now_ms: int) -> None:
        """Apply (TXN_COMMIT) or drop (TXN_ABORT) a transaction's pending changes here; releases
        its locks, then serves the reads that waited for them and evaluates the prepares that
        waited behind those reads, in this group.  A decision for a transaction not held here
        is answered at once (idempotent)."""
        txn: str = p.req["txn"]
        commit = bool(p.req["commit"])
        hold = self._held.pop(txn, None)
        self._deadlines.pop(txn, None)
        if hold is None:
            group.answers.append((p, {"ok": True, "records": 0}, None))
            return
        for key, (action, new, old) in hold.items():
            self._locks.pop(key, None)
            if commit:
                self._record(group, "TXN_COMMIT", key, new, old, now_ms, txn=txn, action=action)
                if action != "CHECK":
                    self._overlay[key] = (group.seq, new)
            else:
                self._record(group, "TXN_ABORT", key, None, None, now_ms, txn=txn, action=action)
        group.answers.append((p, {"ok": True, "records": len(hold)}, None))
        if self._txn_gate is not None:
            self._wake(group, now_ms)

    def _eval_read(self, p: _Pending, group: _Group) -> None:
        """TransactGetItems' read of this partition's items, ordered with the writes.

        An item a prepared transaction holds makes the read wait for the decision, for
        ``wait_ms`` at most and never past the lock's deadline; then, if an item is still held,
        it answers the conflict (``conflicts``: the items held).  With ``hold`` (a read across
        partitions) the items stay covered once served, until the coordinator checks the read
        (:meth:`check_read`) or ``_behind_s`` after the answer."""
        keys = [base64.b64decode(k) for k in p.req["keys"]]
        read = Read(p, keys, hold=bool(p.req.get("hold")))
        held = [i for i, k in enumerate(keys) if k in self._locks]
        if not held:
            self._serve_read(read, group)
            return
        now_ms = time.time() * 1000
        wait_ms = min([float(p.req.get("wait_ms") or 0)]
                      + [self._deadlines.get(self._locks[keys[i]], 0) - now_ms for i in held])
        if wait_ms > 0:
            self._gate().wait(read)
            read.timer = asyncio.get_running_loop().call_later(wait_ms / 1000, self._read_timeout, read)
            return
        group.answers.append((p, {"items": [None] * len(keys), "conflicts": held, "hold": None}, None))

    def _serve_read(self, read: Read, group: _Group) -> None:
        images = [self._current(k) for k in read.keys]
        hold_id: str | None = None
        if read.hold:
            hold_id = self._gate().hold(read, images)
            # the hold lasts from the answer on (which waits for the group's commit), so that the
            # coordinator's check comes within it
            read.pending.future.add_done_callback(functools.partial(self._hold_answered, hold_id=hold_id))
        group.answers.append((read.pending, {"items": images, "conflicts": [], "hold": hold_id}, None))

    def _hold_answered(self, f: asyncio.Future[dict[str, Any]], *, hold_id: str) -> None:
        read = self._gate().holds.get(hold_id)
        if read is None:
            return
        if f.cancelled() or f.exception() is not None:
            self._hold_expired(hold_id)  # the coordinator got no images: nothing to keep
            return
        read.timer = asyncio.get_running_loop().call_later(self._behind_s(), self._hold_expired, hold_id)

    def check_read(self, hold_id: str) -> dict[str, Any]:
        """A coordinator checks a read across partitions after every partition answered: the
        items whose image changed since, or that a transaction holds now (``changed``; None:
        the read is unknown here, e.g. after a change of leader).  The hold ends and the
        prepares parked behind it go to the sequencer.

        Not sequenced: the state between two of the sequencer's steps (every write evaluated so
        far, with its locks) is the state at a point of its order, and the check carries no data
        to wait for a commit for."""
        if self.fenced or self._task is None or self._task.done():
            raise not_leader(self.pid)
        gate = self._gate()
        read = gate.release(hold_id)
        changed: list[int] | None = None
        if read is not None and read.images is not None and self._failing_since is None:
            # (while a failed group's recovery re-reads the log, the state is not one to check against)
            changed = [i for i, (k, image) in enumerate(zip(read.keys, read.images, strict=True))
                       if k in self._locks or self._current(k) != image]
        for parked in gate.free():
            self._requeue(parked.pending)
        return {"changed": changed}

    def _wake(self, group: _Group, now_ms: int) -> None:
        """After locks went: serve the waiting reads none of whose items is held any more, then
        evaluate the prepares no read covers any more."""
        gate = self._gate()
        for read in gate.ready(lambda k: k in self._locks):
            read.cancel_timer()
            self._serve_read(read, group)
        self._eval_free(group, now_ms)

    def _eval_free(self, group: _Group, now_ms: int) -> None:
        for parked in self._gate().free():
            try:
                self._eval_prepare(parked.pending, group, now_ms)
            except Exception:  # a bug in evaluation must not stop the partition
                log.exception("leader %s: evaluating a parked prepare failed", self.pid)
                group.answers.append((parked.pending, None, errors.internal()))

    def _park(self, p: _Pending, keys: list[bytes]) -> None:
        parked = Parked(p, keys)
        self._gate().park(parked)
        parked.timer = asyncio.get_running_loop().call_later(
            self.settings.txn_read_wait_ms / 1000, self._park_timeout, parked)

    def _behind_s(self) -> float:
        """How long a read across partitions holds its items after its answer: half of what a
        read waits for a decision, so that a prepare parked at one partition behind a read that
        waits for that very transaction at another (each waiting for the other) goes ahead
        before the read gives up; the read then reads again."""
        return self.settings.txn_read_wait_ms / 2000

    # timers: they only hand requests back to the sequencer's queue, which decides
    def _park_timeout(self, parked: Parked) -> None:
        """A prepare parked for ``txn_read_wait_ms`` goes ahead, reads or not."""
        if self._gate().unpark(parked):
            parked.pending.req["nopark"] = True
            self._requeue(parked.pending)

    def _read_timeout(self, read: Read) -> None:
        """A read waited long enough: evaluated again, it answers the conflict if an item is
        still held."""
        gate = self._gate()
        if gate.stop_waiting(read):
            read.timer = None
            read.pending.req["wait_ms"] = 0
            self._requeue(read.pending)
            for parked in gate.free():
                self._requeue(parked.pending)

    def _hold_expired(self, hold_id: str) -> None:
        gate = self._gate()
        gate.expire(hold_id)
        for parked in gate.free():
            self._requeue(parked.pending)

    def _requeue(self, p: _Pending) -> None:
        """Queue again a request the sequencer took earlier (it counts as outstanding already)."""
        if p.future.done():
            return
        if self.fenced or self._task is None or self._task.done():
            p.future.set_exception(not_leader(self.pid))
            return
        try:
            self._queue.put_nowait(p)
        except asyncio.QueueFull:
            p.future.set_exception(errors.ApiError(
                "ThrottlingException", "Too many requests are waiting on this partition; retry later"))

    def _load_locks(self) -> None:
        """Rebuild the locks from the replica's pending changes (after a catch-up).

        A transaction committed in one step is pending only if part of its group reached the
        log: it is finished at once, without the decision log, by what reached it (its first
        item still pending: none of its TXN_COMMIT records did, abort; else commit)."""
        self._locks.clear()
        self._held.clear()
        self._deadlines.clear()
        one_step: dict[str, bool] = {}  # transaction -> whether its first item is still pending
        for txn, key, entry in self.replica.pending():
            self._locks[key] = txn
            self._held.setdefault(txn, {})[key] = (entry["a"], entry["i"], entry.get("o"))
            self._deadlines[txn] = int(entry["dl"])
            if entry.get("r") in (ONE_STEP_FIRST, ONE_STEP):
                one_step[txn] = one_step.get(txn, False) or entry["r"] == ONE_STEP_FIRST
        for txn, first_pending in one_step.items():
            del self._deadlines[txn]  # not the reaper's: the decision log knows nothing of it
            t = asyncio.ensure_future(self._finish_one_step(txn, commit=not first_pending))
            self._bg.add(t)
            t.add_done_callback(self._bg.discard)
        if self._held:
            log.info("leader %s: %d transactions prepared and undecided (%d of them one-step, finished now)",
                     self.pid, len(self._held), len(one_step))

    async def _finish_one_step(self, txn: str, *, commit: bool) -> None:
        """Apply (or drop) what reached the log of a one-step transaction whose group reached it
        only in part, once this leader serves."""
        await self.ready.wait()
        attempt = 0
        while txn in self._held and not self.fenced:
            attempt += 1
            try:
                await self.submit({"kind": "txn_decide", "txn": txn, "commit": commit}, b"")
                log.info("leader %s: one-step transaction %s found in part in the log: %s", self.pid, txn,
                         "committed" if commit else "aborted")
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - retried: the items stay locked until it works
                log.warning("leader %s: finishing one-step transaction %s failed (%r); retrying", self.pid, txn, e)
            await asyncio.sleep(min(5.0, 0.2 * attempt))  # outside the except block: dynamolog/aio.py

    async def _reap(self) -> None:
        """Resolve transactions whose locks outlived their deadline: their coordinator is gone or
        slow.  The decision log decides (an ABORTED proposal loses to an earlier COMMITTED)."""
        assert self.txnlog is not None
        while True:
            await asyncio.sleep(0.5)
            now = int(time.time() * 1000)
            for txn, deadline in list(self._deadlines.items()):
                if deadline < now and txn not in self._resolving:
                    self._resolving.add(txn)
                    t = asyncio.ensure_future(self._resolve(txn))
                    self._bg.add(t)
                    t.add_done_callback(self._bg.discard)

    async def _resolve(self, txn: str) -> None:
        assert self.txnlog is not None
        try:
            await self._resolve_once(txn)
        finally:
            self._resolving.discard(txn)

    async def _resolve_once(self, txn: str) -> None:
        assert self.txnlog is not None
        try:
            decision = await self.txnlog.decide(txn, "ABORTED", deadline_ms=self._deadlines.get(txn))
            log.info("leader %s: transaction %s outlived its deadline; its decision is %s", self.pid, txn, decision)
            await self.submit({"kind": "txn_decide", "txn": txn, "commit": decision == "COMMITTED"}, b"")
        except Exception as e:  # noqa: BLE001 - retried by the next reaper round
            log.warning("leader %s: resolving transaction %s failed (%r); will retry", self.pid, txn, e)

    async def _finish(self, group: _Group, sends: list[tuple[asyncio.Future[Any], int]]) -> bool:
        """Wait for the group's records to be acknowledged, check they landed where expected,
        apply them to the view, answer; False if it failed (its writes answered with an error)."""
        if group.records:
            t0 = time.perf_counter()
            try:
                if len(sends) == 1:
                    bases = [(await sends[0][0]).offset]
                else:
                    bases = [m.offset for m in await asyncio.gather(*(f for f, _ in sends))]
                group.offsets = [base + i for base, (_, n) in zip(bases, sends) for i in range(n)]
                group.skipped = await self._check_landing(group.offsets)
            except Exception as e:  # noqa: BLE001 - any append failure leaves the outcome unknown
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                self._fail(group, e)
                return False
            self._failing_since = None
            self.commit_ms_total += (time.perf_counter() - t0) * 1000
            self.lease_until = max(self.lease_until, group.sent_at + self.settings.lease_ms / 1000)
            try:
                self._apply_group(group)
            except InvariantViolation as e:
                self._fail(group, e)
                raise
            for key, _, _ in group.records:
                held = self._overlay.get(key)
                if held is not None and held[0] == group.seq:
                    del self._overlay[key]
                stamped = self._stamps.get(key)
                if stamped is not None and stamped[0] == group.seq:
                    del self._stamps[key]
            for ck, d in group.deltas.items():
                left = self._coll_pending.get(ck, 0) - d
                if left:
                    self._coll_pending[ck] = left
                else:
                    self._coll_pending.pop(ck, None)
            self.groups_committed += 1
            self.records_committed += len(group.records)
            wait = self._reads_from - time.monotonic()
            if wait > 0:
                # a new term: an earlier leader's lease may still let it serve consistent reads;
                # a write acknowledged now could be missing from them (see read_lease)
                await asyncio.sleep(wait)
        self._progress_at = time.monotonic()
        for p, result, err in group.answers:
            if p.future.done():
                continue
            if err is not None:
                p.future.set_exception(err)
            else:
                p.future.set_result(result or {})
        return True

    async def _check_landing(self, offsets: list[int]) -> int:
        """Check a group landed right after the view's offset (the end of this leader's previous
        records), or with only records of older terms in between, which no reader counts (a
        deposed leader's late appends).  Returns how many such records lie in between; raises
        _Displaced if anything else does (a newer leader's FENCE, say)."""
        expected = self.replica.next_offset
        landed = set(offsets)
        gaps = [o for o in range(expected, offsets[-1] + 1) if o not in landed]
        if not gaps:
            return 0
        between = await self._read_log(gaps[0], gaps[-1] + 1)
        for offset, rec in between:
            if offset in gaps and record_term(rec, offset) >= self.term:
                raise _Displaced(f"a record of term {record_term(rec, offset)} at offset {offset}, among this "
                                 f"leader's (term {self.term})")
        self.stale_skipped += len(gaps)
        log.info("leader %s: %d records of an older term lie among this group's; they count for nothing",
                 self.pid, len(gaps))
        return len(gaps)

    async def _read_log(self, start: int, end: int) -> list[tuple[int, dict[str, Any]]]:
        """The records of the log at offsets [start, end), decoded."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                    isolation_level="read_committed")
        await consumer.start()
        return await closing(self._read_range(consumer, start, end), consumer.stop)

    async def _read_range(self, consumer: AIOKafkaConsumer, start: int, end: int) -> list[tuple[int, dict[str, Any]]]:
        tp = TopicPartition(self.topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + 10
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise _Displaced(f"could not read offsets {start}..{end - 1} of the log")
            got = await consumer.getmany(tp, timeout_ms=200)
            out += [(r.offset, codec.decode_log_record(r.value)) for r in got.get(tp, [])
                    if r.offset < end and r.value is not None]
        return out

    def _apply_group(self, group: _Group) -> None:
        """Apply an acknowledged group to the view.  Its records landed right after the view's
        offset (the leader applied every earlier record of the log: its term's catch-up, then its
        own groups in order), or after records that count for nothing (``group.skipped``), and after
        applying, the view's next offset is the one after the group's last record, in memory and
        in RocksDB."""
        offsets = group.offsets
        check(len(offsets) == len(group.records),
              f"leader {self.pid}: {len(group.records)} records sent, {len(offsets)} offsets known")
        check(offsets[-1] + 1 - self.replica.next_offset == len(offsets) + group.skipped,
              f"leader {self.pid}: group lands at offsets {offsets[0]}..{offsets[-1]} with {group.skipped} "
              f"records of older terms, the view stands at {self.replica.next_offset}")
        last = offsets[-1]
        self.replica.apply_raw((m for _, _, muts in group.records for m in muts), last + 1,
                               len(group.records) + group.skipped)
        stored = self.replica.stored_next_offset()
        check(self.replica.next_offset == last + 1 == stored,
              f"leader {self.pid}: after the group ending at offset {last} the view's next offset is "
              f"{self.replica.next_offset} (stored {stored})")

    def _fail(self, group: _Group, cause: BaseException) -> None:
        """Answer a failed group's writes: their outcome is unknown (or, fenced, the router is
        told to find the new leader); a consistent read's barrier is told this node may no longer
        lead."""
        if self.fenced:
            err = not_leader(self.pid)
        elif any(muts for _, _, muts in group.records):
            err = errors.internal("The write could not be confirmed; its outcome is unknown, retry it")
        else:
            err = errors.internal("The write was not done because an earlier write failed; retry it")
        for p, _, _ in group.answers:
            if not p.future.done():
                p.future.set_exception(not_leader(self.pid) if p.req.get("kind") == "barrier" else err)

    async def _recover(self) -> None:
        """After an unknown outcome: a new term (new producer, FENCE), the log re-read up to it."""
        # whatever lease the failed appends gave is void: a newer leader may be serving
        self.lease_until = 0.0
        self._reads_from = time.monotonic() + self.settings.lease_ms / 1000
        for attempt in range(1, 1_000_000):
            if self.is_current is not None and not self.is_current():
                # the partition map names another leader now: a new term would fence it
                log.warning("leader %s: no longer the leader in the partition map; stepping down", self.pid)
                self.fenced = True
                return
            try:
                # read the log first: if it shows a newer leader's term, step down without a FENCE
                # of this one (it would only get in the way of the newer leader's appends)
                follower = LogFollower(self.settings, self.replica, self.topic, self.lsi)
                await closing(follower.catch_up(), follower.close)
                if self.replica.term > self.term:
                    log.warning("leader %s: the log holds a newer leader's term %s; stepping down", self.pid,
                                self.replica.term.encode())
                    self.fenced = True
                    return
                await self._open_term()
                if not self.fenced:
                    self._load_locks()
                return
            except Exception:
                log.exception("leader %s: recovery attempt %d failed; retrying", self.pid, attempt)
            await asyncio.sleep(min(5.0, 0.2 * attempt))  # outside the except block: dynamolog/aio.py

    def status(self) -> dict[str, Any]:
        return {
            "role": "leader",
            "epoch": self.epoch,
            "fenced": self.fenced,
            "queued": self._queue.qsize(),
            "groups_committed": self.groups_committed,
            "records_committed": self.records_committed,
            "commit_ms_avg": round(self.commit_ms_total / max(1, self.groups_committed), 2),
            "linger_ms": self._linger_s * 1000,
            "term": self.term.encode(),
            "stale_skipped": self.stale_skipped,
            "terms_opened": self.terms_opened,
            "next_offset": self.replica.next_offset,
            "applied_records": self.replica.applied_records,
            "transactions_held": len(self._held),
            "sealed": self.replica.sealed,
            "unhealthy": self.health(),
        }
