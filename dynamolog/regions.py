"""Regions and replicated tables: the compacted ``<ns>.regions`` topic (decision 0031).

A Dynamolog system is one region (``dynamolog up --region NAME``).  The regions it replicates
with are records ``region/<NAME>`` of the topic: the other region's endpoint (its router's URL)
and the replication key both regions share, its secret encrypted with the system key.  The
replication key is an access key whose policy permits only replication
(:data:`REPLICATION_ACTIONS`): with it, a region's RepOut asks the other region's router where
its Kafka cluster is (``DescribeReplicationEndpoint``) and signs every batch of changes it
ships (:func:`sign_batch`), which RepIn checks before applying anything; a router adding or
removing a replica calls the other region's ``CreateTableReplica`` / ``DeleteTableReplica``, and
one changing a replica's capacity or auto scaling its ``UpdateTableReplica``.

The tables a region replicates are records ``table/<TABLE>``: the regions that hold a replica
(this one included) and each replica's status.  Records are JSON; a tombstone removes one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dynamolog.auth import policy, systemkey
from dynamolog.config import Settings

#: what a replication key may do, and nothing else
REPLICATION_ACTIONS = ["dynamodb:DescribeReplicationEndpoint", "dynamodb:CreateTableReplica",
                       "dynamodb:DeleteTableReplica", "dynamodb:UpdateTableReplica"]
#: the user name of replication keys (shown in AccessDeniedException if one is used for more)
REPLICATION_USER = "replication"
REGION_PREFIX = "region/"
TABLE_PREFIX = "table/"
STATUS_PREFIX = "status/"


def topic(settings: Settings) -> str:
    return f"{settings.namespace}.regions"


def replication_policy() -> dict[str, Any]:
    return policy.document([policy.statement(list(REPLICATION_ACTIONS), ["*"])])


def repin_topic(namespace: str, source_region: str) -> str:
    """The topic of a region's cluster into which ``source_region``'s RepOut mirrors its changes."""
    return f"{namespace}.repin.{source_region}"


def positions_topic(namespace: str, source_region: str) -> str:
    """Compacted, in the target's cluster: ``source_region``'s RepOut positions (per source log),
    written in the same Kafka transaction as the changes they follow."""
    return f"{namespace}.repout.{source_region}"


@dataclass(frozen=True)
class Region:
    """Another region this one replicates with."""

    name: str
    #: its router's URL (http://host:port)
    endpoint: str
    #: the replication key both regions hold
    key_id: str
    secret: str
    added_ms: int


@dataclass(frozen=True)
class Replicas:
    """A replicated table: the regions with a replica and each one's status (CREATING, ACTIVE,
    DELETING), as this region knows them."""

    table: str
    status: dict[str, str] = field(default_factory=dict)
    #: GlobalTableVersion: 2019.11.21 (UpdateTable ReplicaUpdates) or 2017.11.29 (CreateGlobalTable)
    version: str = "2019.11.21"
    created_ms: int = 0
    #: region -> that replica's own settings (UpdateTable ReplicaUpdates ``Update``: its
    #: ProvisionedThroughputOverride, OnDemandThroughputOverride, GlobalSecondaryIndexes, ...)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def regions(self) -> list[str]:
        return sorted(self.status)


@dataclass(frozen=True)
class Figures:
    """What a RepOut (key ``status/repout/<target>``) or RepIn (``status/repin/<source>``)
    publishes every few seconds for ``dynamolog status``: positions, counts, lag."""

    figures: dict[str, Any]


def encode_figures(f: dict[str, Any]) -> bytes:
    return json.dumps({"figures": f}).encode()


def encode_region(r: Region, master: bytes) -> bytes:
    blob = systemkey.encrypt(master, r.secret.encode(), r.key_id.encode())
    return json.dumps({"name": r.name, "endpoint": r.endpoint, "key_id": r.key_id,
                       "secret": base64.b64encode(blob).decode(), "added_ms": r.added_ms}).encode()


def encode_replicas(r: Replicas) -> bytes:
    return json.dumps({"table": r.table, "status": r.status, "version": r.version,
                       "created_ms": r.created_ms, "overrides": r.overrides}).encode()


def decoder(master: bytes | None) -> Any:
    """A TopicView decode function: Region or Replicas records (a region whose secret does not
    decrypt, or without the system key, keeps an empty secret)."""
    def dec(data: bytes) -> Region | Replicas | Figures | None:
        try:
            d = json.loads(data)
        except ValueError:
            return None
        if "figures" in d:  # a RepOut's or RepIn's published figures
            return Figures(dict(d["figures"]))
        if "table" in d:
            return Replicas(d["table"], dict(d["status"]), d.get("version", "2019.11.21"), int(d.get("created_ms", 0)),
                            dict(d.get("overrides") or {}))
        secret = ""
        if master is not None:
            try:
                secret = systemkey.decrypt(master, base64.b64decode(d["secret"]), d["key_id"].encode()).decode()
            except (systemkey.SystemKeyError, ValueError):
                secret = ""
        return Region(d["name"], d["endpoint"], d["key_id"], secret, int(d["added_ms"]))
    return dec


class RegionsView:
    """The regions topic, followed (routers, RepOut, RepIn, the CLI)."""

    def __init__(self, settings: Settings, master: bytes | None) -> None:
        from dynamolog.metadata import TopicView

        self.settings = settings
        self.view: Any = TopicView(settings, topic(settings), decoder(master))

    async def start(self) -> None:
        await ensure_topic(self.settings)
        await self.view.start()

    async def close(self) -> None:
        await self.view.close()

    def regions(self) -> dict[str, Region]:
        return {k[len(REGION_PREFIX):]: v for k, v in self.view.items.items()
                if k.startswith(REGION_PREFIX) and isinstance(v, Region)}

    def tables(self) -> dict[str, Replicas]:
        return {k[len(TABLE_PREFIX):]: v for k, v in self.view.items.items()
                if k.startswith(TABLE_PREFIX) and isinstance(v, Replicas)}

    def figures(self) -> dict[str, dict[str, Any]]:
        """``repout/<region>`` / ``repin/<region>`` -> the figures last published."""
        return {k[len(STATUS_PREFIX):]: v.figures for k, v in self.view.items.items()
                if k.startswith(STATUS_PREFIX) and isinstance(v, Figures)}

    def replicas(self, table: str) -> Replicas | None:
        v = self.view.items.get(TABLE_PREFIX + table)
        return v if isinstance(v, Replicas) else None


async def ensure_topic(settings: Settings) -> None:
    from dynamolog.kafka.admin import KafkaAdmin

    async with KafkaAdmin(settings.bootstrap) as admin:
        await admin.ensure_compacted_topic(topic(settings))
        await admin.wait_for_topics([topic(settings)])


async def publish(settings: Settings, key: str, value: bytes | None) -> None:
    from aiokafka import AIOKafkaProducer

    await ensure_topic(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic(settings), key=key.encode(), value=value)
    finally:
        await producer.stop()


async def put_region(settings: Settings, master: bytes, r: Region) -> None:
    await publish(settings, REGION_PREFIX + r.name, encode_region(r, master))


async def remove_region(settings: Settings, name: str) -> None:
    await publish(settings, REGION_PREFIX + name, None)


async def put_replicas(settings: Settings, r: Replicas) -> None:
    await publish(settings, TABLE_PREFIX + r.table, encode_replicas(r))


async def remove_replicas(settings: Settings, table: str) -> None:
    await publish(settings, TABLE_PREFIX + table, None)


async def put_figures(settings: Settings, name: str, figures: dict[str, Any]) -> None:
    await publish(settings, STATUS_PREFIX + name, encode_figures(figures))


async def read_all(settings: Settings, master: bytes | None) -> tuple[dict[str, Region], dict[str, Replicas]]:
    view = RegionsView(settings, master)
    await view.start()
    await view.close()
    return view.regions(), view.tables()


def now_ms() -> int:
    return int(time.time() * 1000)


# -- signed batches ------------------------------------------------------------------------
def sign_batch(secret: str, source: str, payload: bytes) -> str:
    """The HMAC-SHA256 (hex) of a batch of changes from ``source``, under the replication key."""
    return hmac.new(secret.encode(), source.encode() + b"\n" + payload, hashlib.sha256).hexdigest()


def batch_signed(secret: str, source: str, payload: bytes, signature: str) -> bool:
    return bool(secret) and hmac.compare_digest(sign_batch(secret, source, payload), signature)


#: how often RepOut and RepIn publish their figures (``dynamolog status``)
FIGURES_S = 2.0


class HasFigures(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


async def follow_regions(settings: Settings, view: RegionsView, role: str, tasks: dict[str, asyncio.Task[None]],
                         figures: dict[str, Any], new_figures: Callable[[str], HasFigures],
                         run: Callable[[str], Awaitable[None]], producer: Any) -> None:
    """RepOut's and RepIn's main loop: one task per linked region (``run(region)``, started again
    when it ended, cancelled when the region is removed), and every ``FIGURES_S`` each region's
    figures published under ``status/<role>/<region>`` (best effort)."""
    log = logging.getLogger(f"services.{role}")
    last_figures = 0.0
    while True:
        known = view.regions()
        for name in known:
            task = tasks.get(name)
            if task is None or task.done():
                figures.setdefault(name, new_figures(name))
                tasks[name] = asyncio.ensure_future(run(name))
        for name in list(tasks):
            if name not in known:
                tasks.pop(name).cancel()
                figures.pop(name, None)
        if time.monotonic() - last_figures >= FIGURES_S:
            last_figures = time.monotonic()
            for name, f in list(figures.items()):
                try:
                    await producer.send_and_wait(topic(settings), key=f"{STATUS_PREFIX}{role}/{name}".encode(),
                                                 value=encode_figures(f.as_dict()))
                except Exception as e:  # noqa: BLE001 - figures are best effort
                    log.debug("%s: figures not published: %r", role, e)
        await asyncio.sleep(0.5)
