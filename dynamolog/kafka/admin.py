"""Async topic administration over aiokafka's ``AIOKafkaAdminClient``.

Notes on aiokafka 0.14 against Kafka 4.4 (checked on a local 4.4.0 broker):

* ``api_version`` is a deprecated no-op in aiokafka 0.14: the client negotiates every request's
  version from the broker's ApiVersions answer, so nothing needs setting. The versions it ends up
  with (at most CreateTopics v3, DeleteTopics v3, Metadata v5) are all still served by Kafka 4.x.
* ``create_topics`` / ``delete_topics`` do not raise on per-topic errors: they return the raw
  response and the error codes sit in ``topic_errors`` / ``topic_error_codes``. The helpers
  below turn those into exceptions (``aiokafka.errors.for_code``), ignoring "already exists"
  on create and "unknown topic" on delete, so both are idempotent.
* "controller" in a KRaft cluster's Metadata answer is just some broker; brokers forward admin
  requests to the active controller, so ``_send_to_controller`` works unchanged.
* Topic creation is acknowledged when the controller has committed it; a broker may still lack
  the new partition's leadership for a few milliseconds. Producers and consumers retry through
  that window; ``wait_for_topics`` is there for callers that need the leaders present.

Replication is sized from the brokers the cluster has registered (``dynamolog.kafka.brokers``),
stopped ones included, never from the brokers that happen to be up. When fewer brokers are up than
the replication factor needs, Kafka refuses the topic (INVALID_REPLICATION_FACTOR) and
``create_topic`` waits, retrying and saying why in the log, for at most ``wait_s``; then it raises
and the caller (a table's provisioning) retries later. A topic is never created weaker than the
cluster's size calls for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidReplicationFactorError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from .brokers import registered_brokers

log = logging.getLogger(__name__)

#: how long ``create_topic`` waits for enough brokers to be up before raising (callers retry)
BROKERS_WAIT_S = 120.0
#: pause between two attempts at creating a topic while brokers are missing (doubles up to the max)
RETRY_S_MIN = 0.5
RETRY_S_MAX = 5.0


def default_replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``brokers`` brokers."""
    rf = min(3, max(1, brokers))
    return rf, (2 if rf >= 3 else 1)


def _raise_errors(entries: Iterable[Any], ignore: tuple[type[BaseException], ...]) -> None:
    failures: list[str] = []
    last: type[BaseException] = KafkaError
    for entry in entries:
        topic, code = entry[0], entry[1]
        if code == 0:
            continue
        err = for_code(code)
        if issubclass(err, ignore):
            continue
        message = entry[2] if len(entry) > 2 and entry[2] else err.description
        failures.append(f"{topic}: {err.__name__}: {message}")
        last = err
    if failures:
        raise last("; ".join(failures))


async def cluster_size(bootstrap: str | AIOKafkaAdminClient) -> int:
    """Number of brokers the cluster has registered, up or not (``dynamolog.kafka.brokers``),
    from a bootstrap string or a started admin client."""
    if isinstance(bootstrap, AIOKafkaAdminClient):
        return len(await registered_brokers(bootstrap))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return len(await registered_brokers(admin))
    finally:
        await admin.close()


async def create_topic(
    admin: AIOKafkaAdminClient | KafkaAdmin,
    name: str,
    *,
    partitions: int = 1,
    replication: int | None = None,
    min_isr: int | None = None,
    configs: Mapping[str, str] | None = None,
    wait_s: float = BROKERS_WAIT_S,
) -> None:
    """Create ``name`` if missing. Replication defaults to min(3, registered brokers) and
    ``min.insync.replicas`` to 2 when the replication factor is 3, else 1. While too few brokers
    are up for that replication factor, wait and retry for at most ``wait_s``, then raise
    ``InvalidReplicationFactorError``: never create the topic with fewer replicas."""
    client = admin.client if isinstance(admin, KafkaAdmin) else admin
    if replication is None:
        size = admin.brokers if isinstance(admin, KafkaAdmin) else await cluster_size(client)
        rf, default_isr = default_replication(size)
    else:
        rf, default_isr = replication, (2 if replication >= 3 else 1)
    topic_configs = {"min.insync.replicas": str(min_isr if min_isr is not None else default_isr)}
    topic_configs.update({k: str(v) for k, v in (configs or {}).items()})
    new = NewTopic(name=name, num_partitions=partitions, replication_factor=rf, topic_configs=topic_configs)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    pause_s = RETRY_S_MIN
    while True:
        try:
            resp = await client.create_topics([new])
            _raise_errors(resp.topic_errors, ignore=(TopicAlreadyExistsError,))
            return
        except InvalidReplicationFactorError as e:
            if loop.time() + pause_s > deadline:
                raise InvalidReplicationFactorError(
                    f"topic {name} not created: fewer than {rf} brokers up for {wait_s:.0f} s ({e})"
                ) from e
            log.warning("topic %s waits for %d brokers to be up (replication factor %d, min.insync.replicas %s); "
                        "it is never created with fewer replicas. Kafka says: %s",
                        name, rf, rf, topic_configs["min.insync.replicas"], e)
        except (KafkaError, TimeoutError) as e:
            # the broker the request went to may have just stopped: refresh the metadata, retry
            if (isinstance(e, KafkaError) and not e.retriable) or loop.time() + pause_s > deadline:
                raise
            log.warning("topic %s: creating it failed (%r); retrying", name, e)
            await client._client.force_metadata_update()
        await asyncio.sleep(pause_s)
        pause_s = min(RETRY_S_MAX, pause_s * 2)


#: DescribeConfigs (v1+) ``config_source`` of a setting made on the topic itself
_TOPIC_CONFIG_SOURCE = 1
#: how long ``ensure_topic_configs`` waits for a new topic to be known to the broker it asks
TOPIC_KNOWN_WAIT_S = 10.0


async def ensure_topic_configs(admin: AIOKafkaAdminClient | KafkaAdmin, name: str, wanted: Mapping[str, str]) -> bool:
    """Give an existing topic the settings ``wanted``, keeping its other own settings (Kafka's
    AlterConfigs replaces them all); True when something changed."""
    client = admin.client if isinstance(admin, KafkaAdmin) else admin
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOPIC_KNOWN_WAIT_S
    while True:  # a topic just created may not have reached the broker that answers yet
        (resp,) = await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        if resp.API_VERSION < 1:
            raise KafkaError("DescribeConfigs v1 or later is needed to keep a topic's own settings")
        err, message, _type, _name, entries = resp.resources[0]
        if err == UnknownTopicOrPartitionError.errno and loop.time() < deadline:
            await asyncio.sleep(0.1)
            continue
        if err:
            raise for_code(err)(f"{name}: {message}")
        break
    own = {str(e[0]): str(e[1]) for e in entries if e[3] == _TOPIC_CONFIG_SOURCE}
    merged = dict(own, **{k: str(v) for k, v in wanted.items()})
    if merged == own:
        return False
    (altered,) = await client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=merged)])
    for err, message, _type, _name in altered.resources:
        if err:
            raise for_code(err)(f"{name}: {message}")
    return True


async def delete_topics(admin: AIOKafkaAdminClient | KafkaAdmin, names: Iterable[str]) -> None:
    """Delete topics; names that do not exist are ignored."""
    client = admin.client if isinstance(admin, KafkaAdmin) else admin
    names = list(names)
    if not names:
        return
    resp = await client.delete_topics(names)
    _raise_errors(resp.topic_error_codes, ignore=(UnknownTopicOrPartitionError,))


async def ensure_compacted_topic(
    admin: AIOKafkaAdminClient | KafkaAdmin, name: str, *, configs: Mapping[str, str] | None = None
) -> None:
    """Create a 1-partition ``cleanup.policy=compact`` topic if missing."""
    merged = {"cleanup.policy": "compact"}
    merged.update(configs or {})
    await create_topic(admin, name, configs=merged)


async def wait_for_topics(
    admin: AIOKafkaAdminClient | KafkaAdmin, names: Iterable[str], timeout_s: float = 30
) -> None:
    """Wait until every topic's partitions all have a leader in the metadata."""
    client = admin.client if isinstance(admin, KafkaAdmin) else admin
    wanted = set(names)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        topics = await client.describe_topics(list(wanted))
        ready = {
            t["topic"]
            for t in topics
            if t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
        }
        if wanted <= ready:
            return
        if loop.time() > deadline:
            raise KafkaError(f"topics without leaders after {timeout_s}s: {sorted(wanted - ready)}")
        await asyncio.sleep(0.02)


class KafkaAdmin:
    """One started admin client plus the cluster size (registered brokers, up or not), for
    services that create topics."""

    def __init__(self, bootstrap_servers: str, **kwargs: Any):
        self.bootstrap_servers = bootstrap_servers
        self.client = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **kwargs)
        self.brokers = 0

    async def start(self) -> Self:
        await self.client.start()
        self.brokers = await cluster_size(self.client)
        return self

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def create_topic(self, name: str, **kwargs: Any) -> None:
        await create_topic(self, name, **kwargs)

    async def delete_topics(self, names: Iterable[str]) -> None:
        await delete_topics(self, names)

    async def ensure_topic_configs(self, name: str, wanted: Mapping[str, str]) -> bool:
        return await ensure_topic_configs(self, name, wanted)

    async def ensure_compacted_topic(self, name: str, **kwargs: Any) -> None:
        await ensure_compacted_topic(self, name, **kwargs)

    async def wait_for_topics(self, names: Iterable[str], timeout_s: float = 30) -> None:
        await wait_for_topics(self, names, timeout_s)
