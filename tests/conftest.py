"""Shared fixtures.

Tiers: ``tests/unit`` never touches Kafka (enforced below); ``tests/integration`` uses the
``kafka_bootstrap`` fixture; ``tests/api`` talks to a running Dynamolog.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_KAFKA_FIXTURES = {"kafka_bootstrap", "kafka_cluster"}

# A shell that sourced a system's credentials.env (the README's quick start) names that system's
# endpoint; boto3 would send every test's client there instead of where the test points it.
# The keys stay: a run against an external --endpoint-url signs with them.
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")]:
    del os.environ[_name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The unit tier must stay fast and offline: refuse unit tests that ask for Kafka."""
    unit_dir = Path(__file__).parent / "unit"
    offenders = [
        item.nodeid
        for item in items
        if unit_dir in Path(str(item.path)).parents
        and _KAFKA_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if offenders:
        raise pytest.UsageError(
            "unit tests must not use Kafka (move them to tests/integration): " + ", ".join(offenders)
        )


def ports_free(base: int) -> bool:
    from dynamolog.kafka.local import PROXIED_OFFSET

    for port in [*range(base, base + 6), *range(base + PROXIED_OFFSET, base + PROXIED_OFFSET + 6)]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's local Kafka cluster (a ``LocalKafka``), or None with an external one.

    ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster is used and this is None.
    ``DYNAMOLOG_TEST_KAFKA=testcontainers``: a broker in a container (see ``_testcontainers_kafka``),
    and this is None. Otherwise (the default, ``launcher``) one local
    cluster of ``DYNAMOLOG_TEST_BROKERS`` brokers (default 3: replication factor 3 and
    ``min.insync.replicas`` 2 everywhere, as in production) is started on first use and stopped
    at session end, on ``DYNAMOLOG_TEST_KAFKA_PORT`` or by default 19092 — moving up by 10 when
    another session already holds those ports.  Its brokers also serve the PROXIED listener
    (``dynamolog.kafka.local``) through which a fault test partitions one client from Kafka.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    if os.environ.get("DYNAMOLOG_TEST_KAFKA", "launcher") == "testcontainers":
        yield from _testcontainers_kafka()
        return

    from dynamolog.kafka.local import LocalKafka

    env_port = os.environ.get("DYNAMOLOG_TEST_KAFKA_PORT")
    if env_port:
        port = int(env_port)
    else:
        port = next((p for p in range(19092, 19292, 10) if ports_free(p)), 19092)
    brokers = int(os.environ.get("DYNAMOLOG_TEST_BROKERS", "3"))
    kafka = LocalKafka(tmp_path_factory.mktemp("kafka"), brokers=brokers, base_port=port, proxied=True)
    try:
        kafka.start(timeout_s=180)
        yield kafka
    finally:
        kafka.stop()


#: the broker image of ``DYNAMOLOG_TEST_KAFKA=testcontainers`` (KRaft, one broker)
TESTCONTAINERS_KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


def _testcontainers_kafka() -> Iterator[None]:
    """``DYNAMOLOG_TEST_KAFKA=testcontainers``: the session's Kafka is one KRaft broker in a
    container that testcontainers starts (and removes at session end), on a machine with a Docker
    engine.  Its address goes into ``KAFKA_BOOTSTRAP_SERVERS`` for the session, so every test
    takes it as an external cluster: one broker (replication factor 1), and the fault tests that
    need the launcher's own brokers (their PROXIED listener, stopping a broker) cannot run on it."""
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # older testcontainers
        from testcontainers.kafka import KafkaContainer
    try:  # the Docker client is made (and the engine asked) as soon as the container object is
        container = (KafkaContainer(TESTCONTAINERS_KAFKA_IMAGE).with_kraft()
                     .with_env("KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS", "1000"))
        container.start()
    except Exception as e:
        raise pytest.UsageError(
            f"DYNAMOLOG_TEST_KAFKA=testcontainers needs a running Docker engine ({type(e).__name__}: {e}); "
            "unset it to take the session's Kafka from the jar launcher, which needs no Docker") from None
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = container.get_bootstrap_server()
    os.environ["DYNAMOLOG_TEST_BROKERS"] = "1"
    try:
        yield None
    finally:
        os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        container.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: Any) -> str:
    """Bootstrap servers of the session's Kafka cluster (see ``kafka_cluster``)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external
    return str(kafka_cluster.bootstrap_servers)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server (moto's, on a free port) for the session: backups to ``s3://`` are
    tested against it over HTTP, never against a mock of the client."""
    from moto.server import ThreadedMotoServer

    from tests.api.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the S3 API server at ``endpoint`` (test credentials)."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
