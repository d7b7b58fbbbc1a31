"""Network partitions under load: a storage node cut off from the routers and the auto-admin, or
from Kafka, by TCP proxies (``dynamolog.testing.proxy``) that the test cuts and heals.

Four storage nodes, three replicas per partition, a four-partition table (each node leads one
partition), an auto-admin with short timeouts, eight clients over 50 keys.  Every storage node
advertises a proxy in front of its internal RPC port (``--advertise``), so the routers, the
auto-admin's pings and the other nodes all reach it through that proxy; the test itself talks
to each node on its own port, from "the node's side" of a partition.  Node n1 also reaches Kafka
only through proxies in front of the brokers' PROXIED listeners (``dynamolog.kafka.local``).

Each test checks what test_replication.py checks (``tests/integration/faults.py``): linearizable
histories, final values, availability floors, converged replicas; and that the node on the far
side of the partition never answers a consistent read with a stale value.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamolog.errors import ApiError
from dynamolog.keys import encode_item_key
from dynamolog.rpc import RequestTimeout
from dynamolog.testing.proxy import REFUSE, ProxyThread, TcpProxy
from tests.api.conftest import make_client, start_system
from tests.integration.faults import (
    FOUR_PARTITIONS,
    Floors,
    assert_history_ok,
    converged,
    eventually,
    leaders,
    new_table,
    partitions,
    restart_with,
    rpc,
    under_load,
)

pytestmark = pytest.mark.integration

DEAD_AFTER_S = 2.0
REPAIR_AFTER_S = 60.0  # longer than any cut here: a partition heals, it is not repaired away
#: the node that reaches Kafka only through the broker proxies
KAFKA_CUT_NODE = "n1"


class Net:
    """The module's system and the proxies in front of its nodes and brokers."""

    def __init__(self, sysm: Any, url: str, proxies: ProxyThread, rpc_proxies: dict[str, TcpProxy],
                 kafka_proxies: list[TcpProxy]) -> None:
        self.sysm = sysm
        self.url = url
        self.proxies = proxies
        #: node -> the proxy every other component reaches its RPC through
        self.rpc_proxies = rpc_proxies
        #: one proxy per broker, in front of its PROXIED listener; only KAFKA_CUT_NODE uses them
        self.kafka_proxies = kafka_proxies


@pytest.fixture(scope="module")
def net(kafka_bootstrap: str, kafka_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    if kafka_cluster is None or not kafka_cluster.proxied:
        pytest.fail("these tests put proxies in front of the brokers: they need the session's own Kafka "
                    "cluster with its PROXIED listeners (unset KAFKA_BOOTSTRAP_SERVERS)")
    sysm, url = start_system(
        kafka_bootstrap, Path(tmp_path_factory.mktemp("partitions")), storage_nodes=4, initial_partitions=1,
        extra_env={"DYNAMOLOG_DEAD_AFTER_S": str(DEAD_AFTER_S), "DYNAMOLOG_REPAIR_AFTER_S": str(REPAIR_AFTER_S),
                   "DYNAMOLOG_ADMIN_CHECK_S": "0.2"})
    proxies = ProxyThread()
    proxies.start()
    try:
        kafka_proxies = [proxies.add("127.0.0.1", listener, listen_port=port)
                         for port, listener in kafka_cluster.proxied_routes]
        rpc_proxies: dict[str, TcpProxy] = {}
        for node, port in sorted(sysm.state()["storage_ports"].items()):
            rpc_proxies[node] = proxies.add("127.0.0.1", port)
            env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_cluster.proxied_bootstrap_servers} \
                if node == KAFKA_CUT_NODE else None
            restart_with(sysm, f"storage-{node}", args=["--advertise", f"127.0.0.1:{rpc_proxies[node].port}"],
                         env=env)
        for node in rpc_proxies:
            eventually(lambda node=node: rpc(sysm, node, "ping")["ready"], 90, f"{node} ready behind its proxy")
        yield Net(sysm, url, proxies, rpc_proxies, kafka_proxies)
    finally:
        proxies.close()
        sysm.down()


def _consistent_read_on(net: Net, node: str, pid: str, key: str) -> str | None:
    """A consistent GetItem sent straight to ``node`` (its own port, not its proxy): the value of
    ``v``, or None when the node gives no value — it refuses (not the leader, unavailable) or does
    not answer within 10 s.  Neither of those is stale; a value is checked by the caller."""
    k = base64.b64encode(encode_item_key({"S": key}, None)).decode()
    try:
        got = rpc(net.sysm, node, "get", pid=pid, key=k, consistent=True, timeout_s=10.0)
    except (ApiError, RequestTimeout) as e:
        print(f"consistent read on {node}: {e!r}")
        return None
    v = (got.get("Item") or {}).get("v", {}).get("S")
    return str(v) if v is not None else None


def _key_in(net: Net, table: str, pid: str) -> str:
    """Write probe keys until one lands in partition ``pid`` (its leader then holds it); return it."""
    ddb = make_client(net.url)
    boss = leaders(net.sysm, table)[pid][0]
    for i in range(64):
        key = f"probe{i}"
        ddb.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": "before the cut"}})
        k = base64.b64encode(encode_item_key({"S": key}, None)).decode()
        try:
            if rpc(net.sysm, boss, "get", pid=pid, key=k, consistent=True, timeout_s=20.0).get("Item"):
                return key
        except ApiError as e:  # a key of another partition: the node refuses it (NotLeader)
            if e.type_name != "NotLeader":
                raise
    raise AssertionError(f"no probe key landed in partition {pid}")


def test_leader_cut_off_from_routers_and_admin(net: Net, tmp_path: Path) -> None:
    """The leader of one partition keeps its Kafka connection but no router, peer or auto-admin
    reaches it: it looks dead, a new leader is elected, and after the heal the old leader is a
    follower again.  While cut, a consistent read sent to it directly (from its side of the
    partition) must not return a value older than one the new leader acknowledged."""
    sysm = net.sysm
    table = "cut_rpc"
    ddb = new_table(net.url, table, FOUR_PARTITIONS)
    assert len(partitions(sysm, table)) == 4
    pid, (old, epoch) = min(leaders(sysm, table).items())
    probe = _key_in(net, table, pid)
    seen: list[str | None] = []

    def fault() -> None:
        net.proxies.cut(net.rpc_proxies[old], mode=REFUSE)
        eventually(lambda: leaders(sysm, table)[pid][0] != old, 30, "a new leader while the old one is cut off")
        ddb.put_item(TableName=table, Item={"pk": {"S": probe}, "v": {"S": "after the cut"}})
        seen.append(_consistent_read_on(net, old, pid, probe))
        time.sleep(2)
        net.proxies.heal(net.rpc_proxies[old])

    run = under_load(net.url, table, fault)
    assert seen[0] in (None, "after the cut"), seen
    assert_history_ok(run, tmp_path / "history.json")
    new, new_epoch = leaders(sysm, table)[pid]
    assert new != old and new_epoch > epoch
    assert _consistent_read_on(net, old, pid, probe) in (None, "after the cut")
    converged(sysm, table)
    assert partitions(sysm, table)[pid][old]["role"] == "follower"


def test_leader_cut_off_from_kafka(net: Net, tmp_path: Path) -> None:
    """The leader of one partition (n1) loses every connection to Kafka while the routers and the
    auto-admin still reach it: it must stop acknowledging writes, another replica must take over
    the partition (n1 refuses the admin's pings once Kafka is silent), and once healed n1 catches
    up as a follower."""
    sysm = net.sysm
    table = "cut_kafka"
    ddb = new_table(net.url, table, FOUR_PARTITIONS)
    led = {pid: epoch for pid, (n, epoch) in leaders(sysm, table).items() if n == KAFKA_CUT_NODE}
    assert led, leaders(sysm, table)
    pid = min(led)
    probe = _key_in(net, table, pid)
    seen: list[str | None] = []

    def taken_over() -> bool:  # n1 itself cannot know yet: ask the other replicas
        reps = partitions(sysm, table)[pid]
        return any(p["role"] == "leader" and not p["fenced"] for n, p in reps.items() if n != KAFKA_CUT_NODE)

    def fault() -> None:
        net.proxies.cut(*net.kafka_proxies, mode=REFUSE)
        eventually(taken_over, 60, f"a new leader while {KAFKA_CUT_NODE} is cut off from Kafka")
        ddb.put_item(TableName=table, Item={"pk": {"S": probe}, "v": {"S": "after the cut"}})
        seen.append(_consistent_read_on(net, KAFKA_CUT_NODE, pid, probe))
        net.proxies.heal(*net.kafka_proxies)
        eventually(lambda: leaders(sysm, table)[pid][0] != KAFKA_CUT_NODE, 60, f"{KAFKA_CUT_NODE} stepped down")

    # a write sent to n1 before the new leader is known waits for the client's timeout: keep it
    # short, and allow the unknown outcomes it gives (one per client per timeout in the window)
    run = under_load(net.url, table, fault, timeout_s=5.0)
    assert seen[0] in (None, "after the cut"), seen
    assert_history_ok(run, tmp_path / "history.json", Floors(unknown_per_client_max=4.0))
    new, new_epoch = leaders(sysm, table)[pid]
    assert new != KAFKA_CUT_NODE and new_epoch > led[pid]
    converged(sysm, table)
    assert partitions(sysm, table)[pid][KAFKA_CUT_NODE]["role"] == "follower"
