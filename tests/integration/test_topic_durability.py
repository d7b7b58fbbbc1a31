"""Topics are never created weaker than the cluster's size calls for (issue 11, item 11).

With one broker of three stopped, Kafka's Metadata lists two brokers. Sizing replication from that
count created a table's log with replication factor 2 and ``min.insync.replicas`` 1, and it stayed
so after the broker came back: one more failure then lost acknowledged writes. The replication is
now sized from the brokers the controller has registered (a stopped broker stays registered, fenced),
and creation waits when the cluster has fewer brokers than the replication factor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidReplicationFactorError

from dynamolog.kafka.admin import KafkaAdmin, cluster_size
from dynamolog.kafka.brokers import registered_brokers

pytestmark = pytest.mark.integration

STOPPED = 3


async def _topic_exists(admin: KafkaAdmin, name: str) -> bool:
    (t,) = await admin.client.describe_topics([name])
    return bool(t["error_code"] == 0)


async def _partition0(admin: KafkaAdmin, name: str) -> dict[str, Any]:
    """The topic's partition 0 as the metadata describes it (a broker's metadata may not list a
    new topic's partition for a moment after creation: asked again, for up to 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        (t,) = await admin.client.describe_topics([name])
        if t["partitions"]:
            return dict(t["partitions"][0])
        assert time.monotonic() < deadline, f"no partition of {name} in the metadata after 30 s"
        await asyncio.sleep(0.5)


async def _replication(admin: KafkaAdmin, name: str) -> tuple[int, str]:
    """(replicas of partition 0, the topic's min.insync.replicas)."""
    part = await _partition0(admin, name)
    deadline = time.monotonic() + 30
    while True:
        # the broker asked may not know the new topic yet either (it answers an error, no entries)
        (resp,) = await admin.client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        (err, msg, _type, _name, entries) = resp.resources[0]
        configs = {e[0]: e[1] for e in entries}
        if "min.insync.replicas" in configs:
            return len(part["replicas"]), configs["min.insync.replicas"]
        assert time.monotonic() < deadline, f"no configs of {name} after 30 s (error {err}: {msg})"
        await asyncio.sleep(0.5)


async def _wait_fenced(admin: KafkaAdmin, node_id: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        brokers = await registered_brokers(admin.client)
        if any(b.node_id == node_id and b.fenced for b in brokers):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"broker {node_id} not fenced after {timeout_s} s")


async def _isr(admin: KafkaAdmin, name: str) -> list[int]:
    return sorted(int(r) for r in (await _partition0(admin, name))["isr"])


def test_a_topic_created_while_a_broker_is_down_keeps_three_replicas(kafka_cluster: Any) -> None:
    """The stopped broker stays registered (fenced): Kafka places a replica on it, the topic gets
    replication factor 3 and min.insync.replicas 2, and the broker joins its ISR when it is back."""
    if kafka_cluster is None or kafka_cluster.brokers < 3:
        pytest.fail("this test stops a Kafka broker: it needs the session's own 3-broker cluster "
                    "(unset KAFKA_BOOTSTRAP_SERVERS and DYNAMOLOG_TEST_BROKERS)")
    name = f"test.durability.{uuid.uuid4().hex[:8]}"

    async def while_down(admin: KafkaAdmin) -> None:
        await _wait_fenced(admin, STOPPED, 60)
        await admin.client._client.force_metadata_update()  # forget the stopped broker
        live = await admin.client.describe_cluster()
        assert len(live["brokers"]) == 2  # what the old sizing counted
        assert await cluster_size(admin.client) == 3
        await admin.create_topic(name)
        await admin.wait_for_topics([name])
        assert await _replication(admin, name) == (3, "2")
        assert STOPPED not in await _isr(admin, name)

    async def when_back(admin: KafkaAdmin) -> None:
        deadline = time.monotonic() + 60
        while await _isr(admin, name) != [1, 2, 3]:
            assert time.monotonic() < deadline, "the restarted broker never joined the topic's ISR"
            await asyncio.sleep(0.5)
        await admin.delete_topics([name])

    async def run(step: Any) -> None:
        async with KafkaAdmin(kafka_cluster.bootstrap_servers) as admin:
            await step(admin)

    kafka_cluster.kill_node(STOPPED)
    try:
        asyncio.run(run(while_down))
    finally:
        kafka_cluster.start(timeout_s=120)
    asyncio.run(run(when_back))


def test_a_topic_that_needs_more_brokers_than_are_registered_is_refused(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Asking for more replicas than there are brokers waits (saying why), then raises; nothing
    weaker is created in the meantime."""
    name = f"test.durability.refused.{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        async with KafkaAdmin(kafka_bootstrap) as admin:
            too_many = admin.brokers + 1
            t0 = time.monotonic()
            with pytest.raises(InvalidReplicationFactorError, match=f"fewer than {too_many} brokers"):
                await admin.create_topic(name, replication=too_many, wait_s=3)
            assert time.monotonic() - t0 >= 1.5  # it waited, retrying
            assert not await _topic_exists(admin, name)

    with caplog.at_level("WARNING", logger="dynamolog.kafka.admin"):
        asyncio.run(scenario())
    assert any("never created with fewer replicas" in r.getMessage() for r in caplog.records)
