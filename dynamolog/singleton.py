"""Fenced singletons: run a service in exactly one of several processes, the others on standby.

The auto-admin and the indexer must each run once per system, yet a crash of the one process
that runs them must not stop provisioning, leader election or index propagation. So each runs as
two (or more) processes, and a Kafka consumer group elects which one is *active*:

- every process joins the group ``<ns>.election.<role>`` and subscribes to the one-partition
  topic of the same name (it never holds records); the member assigned partition 0 is active and
  runs the service's ``start()``; the others wait;
- the assignor keeps the partition with the member that holds it (its join metadata says since
  when; the newest holder wins a tie), so a standby that joins or rejoins never deposes a healthy
  active;
- when the active dies, the group coordinator drops it after the session timeout
  (``DYNAMOLOG_ELECTION_SESSION_MS``, 6 s by default: the broker's minimum unless configured
  lower; ``dynamolog up`` uses 2 s on the clusters it starts) and the next rebalance gives the
  partition to a standby, which then starts the service;
- a member that loses the partition stops the service; one that has not been re-assigned within
  a session timeout of a revocation (cut off from the coordinator) stops it too;
- writes that must not come from two actives go through a Kafka transactional id (the
  auto-admin's ``<ns>.admin``): the new active's first ``InitProducerId`` fences the old one, and
  a service that reports itself stopped (``stopped`` event set, e.g. fenced) ends the process so
  that its supervisor restarts it as a standby.

Decision record: docs/decisions/0017-singleton-election.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from .config import Settings
from .kafka import IDLE_FETCH_WAIT_MS
from .kafka.admin import KafkaAdmin

log = logging.getLogger(__name__)

S = TypeVar("S")

#: the group's session timeout: how long after an active's death a standby takes over (plus one
#: rebalance); must lie within the brokers' group.min/max.session.timeout.ms
#: how often the consumer polls (it holds no records; polling keeps it a live group member)
POLL_MS = 200


def election_topic(settings: Settings, role: str) -> str:
    """The one-partition topic (and group id) on which the processes of ``role`` elect."""
    return f"{settings.namespace}.election.{role}"


def pick_owner(claims: Mapping[str, bytes]) -> str:
    """The member that gets the partition: the newest claim of an active (``since`` in ms),
    else the lowest member id. ``claims``: member id -> its join metadata's user data."""
    held = {m: int(c) for m, c in claims.items() if c.isdigit()}
    if held:
        return max(held, key=lambda m: (held[m], m))
    return min(claims)


def _keep_owner_assignor(claim: Callable[[], bytes]) -> type[AbstractPartitionAssignor]:
    """An assignor class whose members state in their join metadata whether (since when) they
    are active, and which gives every partition of the topic to :func:`pick_owner`'s member."""

    class KeepOwner(AbstractPartitionAssignor):  # type: ignore[misc]
        name = "dynamolog-keep-owner"
        version = 0

        @classmethod
        def assign(cls, cluster: ClusterMetadata,
                   members: Mapping[str, ConsumerProtocolMemberMetadata]) -> dict[str, ConsumerProtocolMemberAssignment]:
            owner = pick_owner({m: bytes(md.user_data or b"") for m, md in members.items()})
            topics = sorted({t for md in members.values() for t in md.subscription})
            out: dict[str, ConsumerProtocolMemberAssignment] = {}
            for member in members:
                # the election topic has one partition, partition 0; the leader's metadata may
                # not list a topic created a moment ago, and an owner given nothing would leave
                # the group without an active member until something else made it rebalance
                given = [(t, sorted(cluster.partitions_for_topic(t) or {0})) for t in topics] if member == owner else []
                out[member] = ConsumerProtocolMemberAssignment(cls.version, given, b"")
            return out

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, list(topics), claim())

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            pass

    return KeepOwner


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: Singleton[Any]) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        if self.owner.owned:
            self.owner.revoked_at = time.monotonic()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.owner.set_owned(bool(list(assigned)))


class Singleton(Generic[S]):
    """One process's seat in the election of ``role``: runs the service while it is active.

    ``start()`` joins the election and returns; the service runs (``start_service()``) once this
    process is elected and is stopped (``stop_service(service)``) when it is deposed.
    ``finished`` is set when the process should end: its service reported itself stopped
    (fenced) or the election task failed.
    """

    def __init__(self, settings: Settings, role: str, start_service: Callable[[], Awaitable[S]],
                 stop_service: Callable[[S], Awaitable[None]], *, session_ms: int | None = None) -> None:
        self.settings = settings
        self.role = role
        self.topic = election_topic(settings, role)
        self._start_service = start_service
        self._stop_service = stop_service
        self.session_ms = settings.election_session_ms if session_ms is None else session_ms
        #: whether the group has given this process the partition (it should be active)
        self.owned = False
        #: wall-clock ms since which this process holds the partition (0: it does not)
        self.since_ms = 0
        #: monotonic time of a revocation not yet answered by an assignment (None: none pending)
        self.revoked_at: float | None = None
        #: the running service, while active
        self.service: S | None = None
        #: times this process became active
        self.activations = 0
        self.finished = asyncio.Event()
        #: whether the process ends because of a failure (not a stop asked for)
        self.failed = False
        self._changed = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def metrics(self, samples: Any) -> None:
        """Prometheus samples (dynamolog/metrics.py): whether this process is active, and the
        running service's own while it is."""
        samples.add("dynamolog_singleton_active", 1.0 if self.service is not None else 0.0, role=self.role)
        fn = getattr(self.service, "metrics", None)
        if callable(fn):
            fn(samples)

    def _claim(self) -> bytes:
        return str(self.since_ms).encode() if self.owned and self.since_ms else b""

    def set_owned(self, owned: bool) -> None:
        """The group's decision (from the rebalance listener)."""
        self.revoked_at = None
        if owned and not self.owned:
            self.since_ms = int(time.time() * 1000)
        if not owned:
            self.since_ms = 0
        self.owned = owned
        self._changed.set()

    async def start(self) -> None:
        async with KafkaAdmin(self.settings.bootstrap) as admin:
            await admin.create_topic(self.topic)
            await admin.wait_for_topics([self.topic])
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap, group_id=self.topic, enable_auto_commit=False,
            client_id=f"{self.role}-pid{os.getpid()}", fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
            session_timeout_ms=self.session_ms, heartbeat_interval_ms=max(100, self.session_ms // 6),
            rebalance_timeout_ms=self.session_ms,
            partition_assignment_strategy=(_keep_owner_assignor(self._claim),),
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._ended)
        log.info("%s: joined the election on %s (standby until elected)", self.role, self.topic)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            if task.exception() is not None:
                log.error("%s: the election task failed: %r", self.role, task.exception())
                self.failed = True
            self.finished.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._deactivate("stopping")
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: a standby takes over at once

    async def _activate(self) -> None:
        t0 = time.monotonic()
        log.warning("%s: elected active; starting", self.role)
        self.service = await self._start_service()
        self.activations += 1
        log.warning("%s: active (started in %.1f s)", self.role, time.monotonic() - t0)

    async def _deactivate(self, why: str) -> None:
        service, self.service = self.service, None
        if service is not None:
            log.warning("%s: %s; stopping the active service", self.role, why)
            await self._stop_service(service)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            await self._consumer.getmany(timeout_ms=POLL_MS)
            if self.revoked_at is not None and time.monotonic() - self.revoked_at > self.session_ms / 1000:
                self.owned = False
                self.since_ms = 0
                self.revoked_at = None
                await self._deactivate("not re-elected within the session timeout")
            if self._changed.is_set():
                self._changed.clear()
                if self.owned and self.service is None:
                    await self._activate()
                elif not self.owned and self.service is not None:
                    await self._deactivate("deposed")
            stopped = getattr(self.service, "stopped", None)
            if isinstance(stopped, asyncio.Event) and stopped.is_set():
                log.error("%s: the active service stopped by itself (fenced?); leaving", self.role)
                self.failed = True
                return


async def active_pids(settings: Settings, roles: Iterable[str]) -> dict[str, int | None]:
    """The process id of each role's active member, from its election group (None: no member
    holds the partition now, e.g. during a hand-over). For ``dynamolog status``."""
    from aiokafka.admin import AIOKafkaAdminClient

    roles = list(roles)
    out: dict[str, int | None] = {role: None for role in roles}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        for role in roles:
            for resp in await admin.describe_consumer_groups([election_topic(settings, role)]):
                client_at = 2 if resp.API_VERSION >= 4 else 1  # v4 added group_instance_id
                for group in resp.groups:
                    for member in group[5]:
                        held = member[-1] and ConsumerProtocolMemberAssignment.decode(member[-1]).assignment
                        client_id = str(member[client_at])
                        if held and "-pid" in client_id:
                            out[role] = int(client_id.rsplit("-pid", 1)[1])
    finally:
        await admin.close()
    return out


def run_singleton(name: str, args: Any, settings: Settings, start: Callable[[], Awaitable[S]],
                  stop: Callable[[S], Awaitable[None]]) -> None:
    """``dynamolog.service.run`` for a singleton service: join the election of ``name`` and run
    the service while elected, until SIGTERM / SIGINT, or until the service stops by itself
    (then exit with status 3 so that a supervisor restarts the process as a standby)."""
    from .service import run

    seats: list[Singleton[S]] = []

    async def start_seat() -> Singleton[S]:
        seat = Singleton(settings, name, start, stop)
        await seat.start()
        seats.append(seat)

        async def end_when_finished() -> None:
            await seat.finished.wait()
            os.kill(os.getpid(), signal.SIGTERM)  # the same clean stop as a signal from outside

        watcher = asyncio.ensure_future(end_when_finished())
        seat_tasks.add(watcher)
        return seat

    async def stop_seat(seat: Singleton[S]) -> None:
        await seat.close()

    seat_tasks: set[asyncio.Task[None]] = set()
    run(name, args, start_seat, stop_seat)
    if seats and seats[0].failed:
        raise SystemExit(3)
