"""Fixtures of the black-box API tier: a running Dynamolog (or any endpoint) and boto3 clients.

By default the session starts a Dynamolog system (one storage node, one router) on the test
session's Kafka cluster, in its own topic namespace.  ``--endpoint-url URL`` runs the same tests
against another endpoint instead, e.g. DynamoDB itself (then credentials and region come from
the usual AWS environment).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from dynamolog import config


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--endpoint-url", default=None,
                     help="run the API tests against this endpoint instead of a Dynamolog the session starts")


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; a common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


#: ports this session handed out: a stopped system's ports are not given to the next one
_handed_out: set[int] = set()
#: free_port_block is called from several threads (two regions started at once)
_handed_out_lock = threading.Lock()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(n: int) -> int:
    """The first of ``n`` consecutive free ports (a system's storage nodes use consecutive ports).

    The ports are picked below the kernel's ephemeral range: a port from inside it can be taken
    by any outgoing connection (a service's connection to Kafka, say) between this check and the
    server's bind, and the server then stops at start with the address in use."""
    import random

    low, high = _ephemeral_range()
    top, bottom = (low, 20000) if low > 20000 + 1000 else (65535, high + 1)
    for _ in range(500):
        first = random.randrange(bottom, top - n)
        block = range(first, first + n)
        with _handed_out_lock:
            if not _handed_out.intersection(block) and all(_port_free(p) for p in block):
                _handed_out.update(block)
                return first
    raise RuntimeError(f"no {n} consecutive free ports found between {bottom} and {top}")


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (see :func:`free_port_block`)."""
    return free_port_block(1)


#: endpoint -> the System behind it, for every system this session started (its administrator
#: key is in the system's credentials.env; make_client signs with it)
SYSTEMS: dict[str, Any] = {}


def credentials_for(endpoint: str) -> tuple[str, str] | None:
    """(access key id, secret) of the administrator of a system this session started, else None."""
    system = SYSTEMS.get(endpoint.rstrip("/"))
    if system is None:
        return None
    creds = system.credentials()
    return creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]


_session_key: Path | None = None


def session_system_key() -> Path:
    """One system key for every system this session starts, named by $DYNAMOLOG_SYSTEM_KEY_FILE in
    the test process too, so that tests can speak the internal RPC to any of them (a test of
    refused connections uses another key on purpose)."""
    global _session_key
    if _session_key is None:
        import tempfile

        from dynamolog.auth import systemkey

        _session_key = systemkey.ensure(Path(tempfile.mkdtemp(prefix="dynamolog-test-key-")))
        os.environ[systemkey.ENV] = str(_session_key)
        config.use(dataclasses.replace(config.settings(), system_key_file=str(_session_key)))
    return _session_key


def start_system(kafka_bootstrap: str, data_dir: Path, **spec_args: Any) -> tuple[Any, str]:
    """Start a Dynamolog system in its own namespace; returns (System, endpoint)."""
    import shutil

    from dynamolog.launcher import System, SystemSpec

    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(session_system_key(), data_dir / "system.key")

    port = free_port()
    nodes = int(spec_args.get("storage_nodes", 1))
    # RepOut and RepIn only idle in a system that links no other region (tests/integration/
    # test_global_tables.py starts its two regions with them)
    spec_args.setdefault("replication", False)
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):  # the session's own brokers accept a 2 s
        # election session (dynamolog/kafka/local.py): a killed auto-admin's standby takes over sooner
        spec_args["extra_env"] = {"DYNAMOLOG_ELECTION_SESSION_MS": "2000", **spec_args.get("extra_env", {})}
    spec = SystemSpec(data_dir=data_dir, port=port, bootstrap=kafka_bootstrap,
                      namespace=f"t{uuid.uuid4().hex[:8]}", storage_base_port=free_port_block(nodes) - 1,
                      **spec_args)
    system = System(data_dir)
    try:
        system.up(spec, timeout_s=120)
    except BaseException:
        system.down()  # a half-started system must not outlive the test session
        raise
    url = f"http://127.0.0.1:{port}"
    SYSTEMS[url] = system
    return system, url


@pytest.fixture(scope="session")
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = request.config.getoption("--endpoint-url")
    if url:
        yield url
        return
    kafka = request.getfixturevalue("kafka_bootstrap")
    system, url = start_system(kafka, tmp_path_factory.mktemp("dynamolog"))
    try:
        yield url
    finally:
        system.down()


def make_client(endpoint: str, service: str = "dynamodb", *, key: tuple[str, str] | None = None,
                retries: int = 2, **kw: Any) -> Any:
    """A boto3 client of ``endpoint``, signing with ``key`` or else the administrator key of the
    system behind it (the usual AWS environment for an endpoint the session did not start)."""
    creds = key or credentials_for(endpoint)
    return boto3.client(
        service, endpoint_url=endpoint,
        region_name="us-east-1" if creds else os.environ.get("AWS_DEFAULT_REGION"),
        aws_access_key_id=creds[0] if creds else None,
        aws_secret_access_key=creds[1] if creds else None,
        config=Config(retries={"max_attempts": retries, "mode": "standard"}, **kw),
    )


@pytest.fixture(scope="session")
def ddb(endpoint: str) -> Any:
    """A low-level boto3 DynamoDB client."""
    return make_client(endpoint)


def system_log_excerpt(endpoint: str, *mentions: str, lines: int = 25) -> str:
    """What the logs of the system behind ``endpoint`` (one this session started) say: the last
    lines that mention any of ``mentions``, and the last warnings and errors of every service.
    A test that times out waiting for the system adds this to its failure, so that a run whose
    processes are gone still tells why."""
    system = SYSTEMS.get(endpoint.rstrip("/"))
    if system is None:
        return ""
    named: list[str] = []
    alarms: list[str] = []
    for path in sorted((Path(system.data_dir) / "logs").glob("*.log")):
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        # (aiokafka's "not found in cluster metadata" is a deleted table's topic: noise here)
        text = [ln for ln in text if "not found in cluster metadata" not in ln]
        named += [ln for ln in text if any(m in ln for m in mentions)]
        alarms += [ln for ln in text if " WARNING " in ln or " ERROR " in ln]
    # each line starts with its time: sorting puts the services' lines in one timeline
    out = [f"-- the system's log lines that name {', '.join(mentions)}:", *sorted(named)[-lines:],
           "-- its last warnings and errors:", *sorted(alarms)[-lines:]]
    return "\n".join(ln[:300] for ln in out)


def wait_active(ddb: Any, name: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise TimeoutError(f"table {name} not ACTIVE after {timeout_s} s\n"
                       + system_log_excerpt(ddb.meta.endpoint_url, name))


def wait_gone(ddb: Any, name: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ddb.describe_table(TableName=name)
        except ddb.exceptions.ResourceNotFoundException:
            return
        time.sleep(0.05)
    raise TimeoutError(f"table {name} still there after {timeout_s} s")


TableFactory = Callable[..., str]


@pytest.fixture(scope="session")
def create_table(ddb: Any) -> Iterator[TableFactory]:
    """``create_table(hash=("pk", "S"), range=("sk", "N"))`` -> name of a new ACTIVE table;
    every table made this way is deleted at the end of the session."""
    made: list[str] = []

    def make(hash: tuple[str, str] = ("pk", "S"), range: tuple[str, str] | None = None, **extra: Any) -> str:
        name = f"test_{uuid.uuid4().hex[:10]}"
        keys = [{"AttributeName": hash[0], "KeyType": "HASH"}]
        defs = [{"AttributeName": hash[0], "AttributeType": hash[1]}]
        if range:
            keys.append({"AttributeName": range[0], "KeyType": "RANGE"})
            defs.append({"AttributeName": range[0], "AttributeType": range[1]})
        args = {"BillingMode": "PAY_PER_REQUEST"} | extra
        ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=defs, **args)
        made.append(name)
        wait_active(ddb, name)
        return name

    yield make
    for name in made:
        try:
            ddb.delete_table(TableName=name)
        except Exception:
            pass


@pytest.fixture
def indexed(ddb: Any) -> Iterator[Any]:
    """``indexed(**CreateTable args)``: a new ACTIVE table with key ``pk`` and attribute ``g``
    defined (for an index on it), deleted after the test."""
    made: list[str] = []

    def make(**args: Any) -> str:
        name = f"test_{uuid.uuid4().hex[:10]}"
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "g", "AttributeType": "S"}], **args)
        made.append(name)
        wait_active(ddb, name)
        return name

    yield make
    for name in made:
        ddb.delete_table(TableName=name)


@pytest.fixture(scope="session")
def hash_table(create_table: TableFactory) -> str:
    """A shared table with a string hash key ``pk`` only."""
    return create_table()


@pytest.fixture(scope="session")
def range_table(create_table: TableFactory) -> str:
    """A shared table with hash key ``pk`` (S) and range key ``sk`` (N)."""
    return create_table(range=("sk", "N"))
