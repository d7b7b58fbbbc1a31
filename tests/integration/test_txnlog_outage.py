"""A transaction committed before a long outage is completed, not aborted, on recovery (issue 11,
item 12).

A participant's reader of the decision log starts one hour back. A lock left by a transaction
whose COMMITTED was written two hours before the participant came back used to be resolved by
proposing ABORTED: the reader had not seen the COMMITTED, so the new ABORTED looked first and the
participant aborted what the others had committed. The outage is simulated by the timestamps:
the COMMITTED record is produced with a Kafka timestamp (and ``written_ms``) from the past, then
a fresh reader starts, as a participant's storage node does after the outage.
"""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from dynamolog import codec
from dynamolog.config import Settings
from dynamolog.kafka.admin import KafkaAdmin
from dynamolog.txnlog import HORIZON_MS, TxnLog

pytestmark = pytest.mark.integration

TIMEOUT_MS = 10_000


async def _write_decision(settings: Settings, txn_id: str, state: str, at_ms: int) -> int:
    """A decision record as a coordinator wrote it at ``at_ms`` (Kafka timestamp included)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        value = codec.encode_txn_state({
            "txn_id": txn_id, "state": state, "client_token": None, "request_digest": None,
            "participants": ["p1", "p2"], "written_ms": at_ms, "writer": "coordinator:test",
        })
        meta = await producer.send_and_wait(settings.txn_topic, key=txn_id.encode(), value=value, timestamp_ms=at_ms)
        return int(meta.offset)
    finally:
        await producer.stop()


@pytest.mark.parametrize("outage_h", [2, 72])
async def test_a_commit_from_before_a_long_outage_is_kept(kafka_bootstrap: str, outage_h: int) -> None:
    settings = Settings(bootstrap=kafka_bootstrap, namespace=f"outage{uuid.uuid4().hex[:8]}")
    # the topic as the system creates it (before the outage, a router started)
    first = TxnLog(settings, "coordinator:router-test")
    await first.start()
    await first.close()
    now_ms = int(time.time() * 1000)
    prepared_ms = now_ms - outage_h * 3_600_000
    committed = uuid.uuid4().hex
    aborted = uuid.uuid4().hex
    commit_offset = await _write_decision(settings, committed, "COMMITTED", prepared_ms + 50)
    await _write_decision(settings, aborted, "ABORTED", prepared_ms + 60)
    assert prepared_ms + TIMEOUT_MS < now_ms - HORIZON_MS  # older than a starting reader's window

    # the participant's node starts after the outage and finds both transactions' locks
    participant = TxnLog(settings, "recovery:storage-test")
    await participant.start()
    try:
        assert committed not in participant.entries  # outside the window it read at start
        decision = await participant.decide(committed, "ABORTED", deadline_ms=prepared_ms + TIMEOUT_MS)
        assert decision == "COMMITTED"
        assert participant.entries[committed].decision_offset == commit_offset
        assert await participant.decide(aborted, "ABORTED", deadline_ms=prepared_ms + TIMEOUT_MS) == "ABORTED"
        # a lock nobody decided is aborted by the participant's proposal
        undecided = uuid.uuid4().hex
        assert await participant.decide(undecided, "ABORTED", deadline_ms=prepared_ms + TIMEOUT_MS) == "ABORTED"
    finally:
        await participant.close()

    # a reader that starts later still finds the old commit first, after the new ABORTED proposals
    later = TxnLog(settings, "recovery:storage-other")
    await later.start()
    try:
        assert await later.decide(committed, "ABORTED", deadline_ms=prepared_ms + TIMEOUT_MS) == "COMMITTED"
    finally:
        await later.close()

    async with KafkaAdmin(kafka_bootstrap) as admin:
        (resp,) = await admin.client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.txn_topic)])
        configs = {e[0]: e[1] for e in resp.resources[0][4]}
        assert configs["retention.ms"] == "-1"  # nothing is deleted by age, whatever the outage
        await admin.delete_topics([settings.txn_topic])


async def test_a_decision_log_with_a_time_limit_is_kept_forever_from_its_next_start(kafka_bootstrap: str) -> None:
    # An earlier version created dyn.txn with a 24 h retention: records older than that would be
    # deleted under a lock that still needs them. The next start lifts the limit and keeps the
    # topic's other settings.
    settings = Settings(bootstrap=kafka_bootstrap, namespace=f"upgrade{uuid.uuid4().hex[:8]}")
    async with KafkaAdmin(kafka_bootstrap) as admin:
        await admin.create_topic(settings.txn_topic, min_isr=1, configs={
            "cleanup.policy": "delete", "retention.ms": str(24 * 3_600_000), "max.message.bytes": "500000"})
    reader = TxnLog(settings, "recovery:storage-test")
    await reader.start()
    await reader.close()
    async with KafkaAdmin(kafka_bootstrap) as admin:
        (resp,) = await admin.client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.txn_topic)])
        configs = {e[0]: e[1] for e in resp.resources[0][4]}
        assert (configs["retention.ms"], configs["retention.bytes"]) == ("-1", "-1")
        assert (configs["cleanup.policy"], configs["max.message.bytes"], configs["min.insync.replicas"]) == \
            ("delete", "500000", "1")
        assert not await admin.ensure_topic_configs(settings.txn_topic, {"retention.ms": "-1"})  # nothing left to do
        await admin.delete_topics([settings.txn_topic])
