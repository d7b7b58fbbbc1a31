"""The test session's Kafka, whichever way it came: from the jar launcher (the default) or, with
``DYNAMOLOG_TEST_KAFKA=testcontainers``, from a container (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


async def test_the_session_kafka_takes_and_gives_back_a_record(kafka_bootstrap: str) -> None:
    topic = f"session-check-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == b"hello"


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def test_testcontainers_is_chosen_by_an_environment_variable(tmp_path: Path) -> None:
    """With a Docker engine the check above passes on a container's broker; without one the
    session stops with a message that says what to do."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["DYNAMOLOG_TEST_KAFKA"] = "testcontainers"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path}",
                          f"{Path(__file__).relative_to(root)}::test_the_session_kafka_takes_and_gives_back_a_record"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    if _docker_engine_answers():
        assert out.returncode == 0 and "1 passed" in text, text
    else:
        assert out.returncode != 0 and "needs a running Docker engine" in text and "jar launcher" in text, text
