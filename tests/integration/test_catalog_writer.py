"""The catalog has one writer: the auto-admin.  Two routers that accept control-plane requests
for one table at the same moment must not overwrite each other's change (docs/decisions/
0019-catalog-single-writer.md): CreateTable for one name succeeds exactly once, and every tag
and TTL change sent through different routers is present at the end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from botocore.exceptions import ClientError

from services.admin.provision import SLOW_S
from tests.api.conftest import SYSTEMS, free_port, make_client, start_system, wait_active

pytestmark = pytest.mark.integration

#: CreateTable races per test run (each one a new name)
RACES = 6


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A system with two routers (the second one started beside the launcher's)."""
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("catalog-writer")))
    try:
        state = sysm.state()
        port = free_port()
        state["commands"]["router2"] = ["services.router", "--port", str(port), "--initial-partitions", "1"]
        sysm.state_path.write_text(json.dumps(state))
        sysm.start_service("router2")
        url2 = f"http://127.0.0.1:{port}"
        SYSTEMS[url2] = sysm  # make_client signs with the system's administrator key
        c2 = make_client(url2)
        deadline = time.monotonic() + 60
        while True:
            try:
                c2.list_tables()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield sysm, url, url2
    finally:
        sysm.down()


def _race(fns: list[Any]) -> list[Any]:
    """Run the calls at the same moment; each result is its answer or the ClientError raised."""
    barrier = threading.Barrier(len(fns))
    out: list[Any] = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fns[i]()
        except ClientError as e:
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def _topics(bootstrap: str, prefix: str) -> set[str]:
    async def run() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return {t for t in await admin.list_topics() if t.startswith(prefix)}
        finally:
            await admin.close()

    return asyncio.run(run())


def test_two_routers_racing_create_table_make_exactly_one(system: Any) -> None:
    # Before the single writer, both routers published CREATING: one table stayed CREATING
    # forever and its topics were orphaned.
    sysm, url1, url2 = system
    state = sysm.state()
    a, b = make_client(url1, retries=0), make_client(url2, retries=0)
    for n in range(RACES):
        name = f"race_{n}"
        spec: dict[str, Any] = {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        }
        results = _race([lambda s=spec: a.create_table(**s), lambda s=spec: b.create_table(**s)])
        ok = [r for r in results if not isinstance(r, ClientError)]
        refused = [r for r in results if isinstance(r, ClientError)]
        assert len(ok) == 1, results
        assert len(refused) == 1
        assert refused[0].response["Error"]["Code"] == "ResourceInUseException"
        assert "Table already exists" in refused[0].response["Error"]["Message"]
        winner_id = ok[0]["TableDescription"]["TableId"]
        wait_active(a, name)
        for c in (a, b):
            desc = c.describe_table(TableName=name)["Table"]
            assert desc["TableId"] == winner_id and desc["TableStatus"] == "ACTIVE"
        a.put_item(TableName=name, Item={"pk": {"S": "x"}})
        assert b.get_item(TableName=name, Key={"pk": {"S": "x"}}, ConsistentRead=True)["Item"] == {"pk": {"S": "x"}}
    # no orphaned log topic: every table's topics are exactly its partitions'
    topics = _topics(state["bootstrap"], f"{state['namespace']}.t.race_")
    short = {a.describe_table(TableName=f"race_{n}")["Table"]["TableId"].replace("-", "")[:12]
             for n in range(RACES)}
    assert topics and all(t.split(".")[3].split("-")[0] in short for t in topics), topics


def test_concurrent_tags_and_ttl_through_two_routers_all_kept(system: Any) -> None:
    # Each router used to rewrite the whole definition from its own cached copy: a tag written
    # through one router could be overwritten by a stale copy on the other.
    _sysm, url1, url2 = system
    a, b = make_client(url1), make_client(url2)
    name = "tags_race"
    a.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                   KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(a, name)
    wait_active(b, name)
    arn = a.describe_table(TableName=name)["Table"]["TableArn"]
    rounds = 10

    def tagger(client: Any, side: str) -> Any:
        def run() -> None:
            for i in range(rounds):
                client.tag_resource(ResourceArn=arn, Tags=[{"Key": f"{side}{i}", "Value": str(i)}])
        return run

    def ttl() -> Any:
        return b.update_time_to_live(TableName=name,
                                     TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})

    results = _race([tagger(a, "a"), tagger(b, "b"), ttl])
    assert not [r for r in results if isinstance(r, ClientError)], results
    expected = {f"{s}{i}": str(i) for s in "ab" for i in range(rounds)}

    def tags_of(c: Any) -> dict[str, str]:
        tags: dict[str, str] = {}
        page = c.list_tags_of_resource(ResourceArn=arn)
        while True:
            tags.update({t["Key"]: t["Value"] for t in page["Tags"]})
            if "NextToken" not in page:
                return tags
            page = c.list_tags_of_resource(ResourceArn=arn, NextToken=page["NextToken"])

    # each router's catalog copy follows the topic, so it converges (a lost change never would)
    for c in (a, b):
        deadline = time.monotonic() + 15
        while tags_of(c) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tags_of(c) == expected
        assert c.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
            "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_control_plane_waits_for_a_restarted_admin(system: Any) -> None:
    # The admin's address is found anew: a change sent while no admin runs is carried out by
    # the next one (which listens on a new port), and data-plane requests never need it.
    sysm, url1, _url2 = system
    a = make_client(url1)
    a.create_table(TableName="before_restart", BillingMode="PAY_PER_REQUEST",
                   KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(a, "before_restart")
    admins = sorted(n for n in sysm.state()["pids"] if n.startswith("admin"))  # the active one and its standby
    for name in admins:
        sysm.kill_service(name)
    a.put_item(TableName="before_restart", Item={"pk": {"S": "k"}})
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(a.tag_resource(
        ResourceArn=a.describe_table(TableName="before_restart")["Table"]["TableArn"],
        Tags=[{"Key": "while", "Value": "down"}])))
    t.start()
    time.sleep(2.0)
    assert t.is_alive()  # waiting for an admin
    for name in admins:
        sysm.start_service(name)
    t.join(60)
    assert out and not t.is_alive()
    arn = a.describe_table(TableName="before_restart")["Table"]["TableArn"]
    assert a.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "while", "Value": "down"}]


def test_a_create_table_held_up_by_a_frozen_storage_node_says_where_it_waits(system: Any) -> None:
    """CreateTable while the storage node is frozen (SIGSTOP): the table stays CREATING, the
    auto-admin logs the step its provisioning waits at (the partitions and the node that should
    open them), and the table becomes ACTIVE and serves once the node runs again."""

    sysm, url, _url2 = system
    ddb = make_client(url)
    name = "held_by_a_frozen_node"
    nodes = {n: p for n, p in sysm.state()["pids"].items() if n.startswith("storage-")}
    assert nodes
    logs = sorted((sysm.data_dir / "logs").glob("admin*.log"))

    def said() -> list[str]:
        return [ln for f in logs for ln in f.read_text(errors="replace").splitlines()
                if name in ln and "at step 'opening the partitions on their leaders (" in ln]

    for p in nodes.values():
        os.kill(p, signal.SIGSTOP)
    try:
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        deadline = time.monotonic() + SLOW_S + 20
        while not said() and time.monotonic() < deadline:
            time.sleep(0.5)
        lines = said()
        assert lines, f"no line of the auto-admin says where the provisioning of {name} waits"
        assert any(f" on {n.removeprefix('storage-')}" in lines[0] for n in nodes), lines[0]
        assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "CREATING"
    finally:
        for p in nodes.values():
            os.kill(p, signal.SIGCONT)
    wait_active(ddb, name, 120)
    ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "v": {"S": "after"}})
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"]["v"] == {"S": "after"}
