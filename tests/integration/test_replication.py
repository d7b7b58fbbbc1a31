"""Replication, leader failover and repair under load: real processes, kill -9, real Kafka.

Four storage nodes, three replicas per partition (one spare node for repair), an auto-admin
with short timeouts.  Each test runs concurrent conditional and unconditional writes and
consistent reads from several clients (``dynamolog.testing.workload``), records every request and its
outcome, injects one fault, and then checks what a user relies on:

- every key's history is linearizable (``dynamolog.testing.checker``), which covers "an acknowledged
  write is never lost" and "a refused conditional write never took effect";
- the final value of every key is one the history allows (last acknowledged write or a later
  write whose outcome was unknown);
- all replicas of the partition converge to the same contents (digest per replica).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dynamolog.keys import encode_item_key
from dynamolog.rpc import RpcClient
from dynamolog.testing import checker, workload
from tests.api.conftest import credentials_for, make_client, start_system, wait_active

pytestmark = pytest.mark.integration

DEAD_AFTER_S = 2.0
REPAIR_AFTER_S = 10.0
KEYS = [f"key{i}" for i in range(6)]


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(
        kafka_bootstrap, Path(tmp_path_factory.mktemp("replication")), storage_nodes=4, initial_partitions=1,
        extra_env={"DYNAMOLOG_DEAD_AFTER_S": str(DEAD_AFTER_S), "DYNAMOLOG_REPAIR_AFTER_S": str(REPAIR_AFTER_S),
                   "DYNAMOLOG_ADMIN_CHECK_S": "0.2"})
    try:
        yield sysm, url
    finally:
        sysm.down()


# -- helpers -------------------------------------------------------------------------------------
async def _call(port: int, op: str, timeout_s: float = 3.0, **args: Any) -> Any:
    client = RpcClient("127.0.0.1", port)
    try:
        return await client.call(op, timeout_s=timeout_s, **args)
    finally:
        await client.close()


def rpc(sysm: Any, node: str, op: str, **args: Any) -> Any:
    return asyncio.run(_call(sysm.state()["storage_ports"][node], op, **args))


def replicas(sysm: Any, table: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """(partition id, {node: that node's status of the partition}) for a one-partition table."""
    found: dict[str, dict[str, Any]] = {}
    pid = ""
    for node in sysm.state()["storage_ports"]:
        try:
            st = rpc(sysm, node, "status")
        except (OSError, TimeoutError, ConnectionError):
            continue
        for p in st["partitions"]:
            if p["table"] == table:
                pid = p["partition_id"]
                found[node] = p
    return pid, found


def leader(sysm: Any, table: str) -> tuple[str, int]:
    _, reps = replicas(sysm, table)
    leaders = [(n, p["epoch"]) for n, p in reps.items() if p["role"] == "leader" and not p["fenced"]]
    assert len(leaders) == 1, reps
    return leaders[0]


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = check()
            if got:
                return got
        except (AssertionError, OSError, TimeoutError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.3)


def converged(sysm: Any, table: str, nodes: int = 3) -> dict[str, tuple[str, int]]:
    """Wait until ``nodes`` replicas of the table's partition hold identical contents."""
    def same() -> dict[str, tuple[str, int]] | None:
        pid, reps = replicas(sysm, table)
        if len(reps) != nodes:
            return None
        ds = {n: rpc(sysm, n, "digest", pid=pid) for n in reps}
        got = {n: (d["digest"], d["items"]) for n, d in ds.items()}
        return got if len(set(got.values())) == 1 else None

    result: dict[str, tuple[str, int]] = eventually(same, 45, f"{nodes} identical replicas of {table}")
    return result


def log_leader_broker(bootstrap: str, topic: str) -> int:
    """The Kafka broker that leads a partition log."""
    from dynamolog.kafka.admin import KafkaAdmin

    async def ask() -> int:
        async with KafkaAdmin(bootstrap) as admin:
            (t,) = await admin.client.describe_topics([topic])
            return int(t["partitions"][0]["leader"])

    return asyncio.run(ask())


def new_table(url: str, name: str) -> Any:
    ddb = make_client(url)
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, name)
    return ddb


def under_load(url: str, table: str, script: Callable[[], Any], *, before_s: float = 2.0,
               after_s: float = 3.0) -> tuple[workload.WorkloadResult, dict[str, Any]]:
    """Run the workload, run ``script`` (blocking fault steps) in a thread meanwhile, keep the
    load ``after_s`` more seconds; returns the workload's result and the final values."""
    async def main() -> tuple[workload.WorkloadResult, dict[str, Any]]:
        stop = asyncio.Event()
        key = credentials_for(url)
        load = asyncio.ensure_future(workload.run_workload(url, table, KEYS, clients=4, stop=stop, timeout=20.0,
                                                           seed=hash(table) & 0xFFFF, credentials=key))
        await asyncio.sleep(before_s)
        await asyncio.to_thread(script)
        await asyncio.sleep(after_s)
        stop.set()
        res = await load
        final = await workload.read_all(url, table, KEYS, timeout=20.0, deadline=60.0, credentials=key)
        return res, final

    return asyncio.run(main())


def assert_history_ok(res: workload.WorkloadResult, final: dict[str, Any], where: Path) -> None:
    stats = res.stats.as_dict()
    print(f"workload: {stats}")
    assert res.stats.outcomes.get("ok", 0) > 50, stats
    assert not res.stats.unexpected, stats
    results = res.history.check()
    bad = checker.problems(results) + workload.acknowledged_final_check(res.history, final)
    if bad:
        res.history.save(where)
    assert not bad, f"{bad} (history saved to {where}; stats {stats})"


# -- the faults --------------------------------------------------------------------------------------
def test_leader_killed_and_restarted(system: Any, tmp_path: Path) -> None:
    sysm, url = system
    table = "kill_leader"
    new_table(url, table)
    old, epoch = leader(sysm, table)

    def fault() -> None:
        sysm.kill_service(f"storage-{old}")
        eventually(lambda: leader(sysm, table)[0] != old, 30, "a new leader")
        time.sleep(2)
        sysm.start_service(f"storage-{old}")

    res, final = under_load(url, table, fault)
    assert_history_ok(res, final, tmp_path / "history.json")
    new, new_epoch = leader(sysm, table)
    assert new != old and new_epoch > epoch
    # the old leader came back as a follower and caught up
    converged(sysm, table)
    assert replicas(sysm, table)[1][old]["role"] == "follower"


def test_one_kafka_broker_killed_and_restarted(system: Any, kafka_cluster: Any, tmp_path: Path) -> None:
    if kafka_cluster is None or kafka_cluster.brokers < 3:
        pytest.fail("this test kills a Kafka broker: it needs the session's own 3-broker cluster "
                    "(unset KAFKA_BOOTSTRAP_SERVERS and DYNAMOLOG_TEST_BROKERS)")
    sysm, url = system
    table = "kill_broker"
    new_table(url, table)
    pid, _ = replicas(sysm, table)
    broker = log_leader_broker(kafka_cluster.bootstrap_servers, f"{sysm.state()['namespace']}.t.{table}.{pid}")

    def fault() -> None:
        kafka_cluster.kill_node(broker)  # the broker that leads the partition's log
        time.sleep(6)
        kafka_cluster.start(timeout_s=120)

    res, final = under_load(url, table, fault, after_s=4.0)
    assert_history_ok(res, final, tmp_path / "history.json")
    converged(sysm, table)


def test_follower_wiped_and_repaired_on_a_spare_node(system: Any, tmp_path: Path) -> None:
    sysm, url = system
    table = "repair"
    new_table(url, table)
    pid, reps = replicas(sysm, table)
    boss, _ = leader(sysm, table)
    lost = next(n for n in sorted(reps) if n != boss)
    spare = next(n for n in sorted(sysm.state()["storage_ports"]) if n not in reps)
    data = Path(sysm.state()["data_dir"]) / "storage" / lost

    def fault() -> None:
        sysm.kill_service(f"storage-{lost}")
        shutil.rmtree(data)
        eventually(lambda: spare in replicas(sysm, table)[1], 60, f"a replica rebuilt on {spare}")

    res, final = under_load(url, table, fault)
    assert_history_ok(res, final, tmp_path / "history.json")
    digests = converged(sysm, table)
    assert set(digests) == set(reps) - {lost} | {spare}
    log = (Path(sysm.state()["data_dir"]) / "logs" / f"storage-{spare}.log").read_text()
    assert f"partition {pid}: copied a snapshot" in log
    # the wiped node comes back empty and is no longer a replica of the partition
    sysm.start_service(f"storage-{lost}")
    eventually(lambda: rpc(sysm, lost, "ping")["ready"], 60, f"{lost} back")
    assert pid not in {p["partition_id"] for p in rpc(sysm, lost, "status")["partitions"]}


def test_admin_killed_during_a_leader_change(system: Any, tmp_path: Path) -> None:
    sysm, url = system
    table = "kill_admin"
    new_table(url, table)
    old, epoch = leader(sysm, table)

    def fault() -> None:
        sysm.kill_service(f"storage-{old}")
        time.sleep(DEAD_AFTER_S * 0.9)  # the admin is about to decide, or deciding
        sysm.kill_service("admin")
        time.sleep(1.0)
        sysm.start_service("admin")
        eventually(lambda: leader(sysm, table)[0] != old, 30, "a new leader after the admin restarted")
        sysm.start_service(f"storage-{old}")

    res, final = under_load(url, table, fault)
    assert_history_ok(res, final, tmp_path / "history.json")
    new, new_epoch = leader(sysm, table)
    assert new != old and new_epoch > epoch
    converged(sysm, table)


def test_a_deposed_leader_never_serves_a_stale_consistent_read(system: Any) -> None:
    """The old leader is frozen (SIGSTOP), a new one is elected and takes a write; when the old
    one wakes up, a consistent read sent straight to it must not return the old value."""
    sysm, url = system
    table = "lease"
    ddb = new_table(url, table)
    ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "v": {"S": "before"}})
    pid, _ = replicas(sysm, table)
    old, _ = leader(sysm, table)
    os_pid = sysm.state()["pids"][f"storage-{old}"]
    os.kill(os_pid, signal.SIGSTOP)
    try:
        def moved() -> bool:
            _, reps = replicas(sysm, table)  # the frozen node does not answer
            return any(p["role"] == "leader" and not p["fenced"] for n, p in reps.items() if n != old)

        eventually(moved, 30, "a new leader while the old one is frozen")
        ddb.put_item(TableName=table, Item={"pk": {"S": "k"}, "v": {"S": "after"}})
    finally:
        os.kill(os_pid, signal.SIGCONT)
    key = base64.b64encode(encode_item_key({"S": "k"}, None)).decode()
    try:
        got = rpc(sysm, old, "get", pid=pid, key=key, consistent=True)
    except Exception as e:
        assert "NotLeader" in repr(e), e
    else:
        assert got["Item"]["v"] == {"S": "after"}, got
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"]["v"] == {"S": "after"}
    converged(sysm, table)
