"""DescribeTable's ItemCount, TableSizeBytes and each global index's ItemCount / IndexSizeBytes
are exact (docs/decisions/0027-table-stats-and-metrics.md), on the real system: storage nodes
keep each partition's figures in the WriteBatch of every record, the auto-admin sums the leaders'
and publishes them.  What a user checks: after puts, overwrites, deletes, a transaction and
time-to-live deletions, the figures equal what the table holds; a replica rebuilt from a snapshot
of another carries them on; a Prometheus scrape of a service shows them."""

from __future__ import annotations

import base64
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from dynamolog.attrs import item_size
from tests.api.conftest import free_port_block, make_client, start_system, wait_active
from tests.integration.faults import eventually, partitions, rpc

pytestmark = pytest.mark.integration

Item = dict[str, Any]


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(
        kafka_bootstrap, Path(tmp_path_factory.mktemp("table-stats")), storage_nodes=2, initial_partitions=2,
        metrics_base_port=free_port_block(12),
        extra_env={"DYNAMOLOG_TABLE_STATS_S": "0.5", "DYNAMOLOG_TTL_SWEEP_S": "1", "DYNAMOLOG_DEAD_AFTER_S": "2"})
    try:
        yield sysm, url
    finally:
        sysm.down()


@pytest.fixture(scope="module")
def table(system: Any) -> tuple[str, dict[str, Item]]:
    """A two-partition table with a global index on ``g`` (sparse, ALL projected) and time to
    live on ``exp``, written by every kind of write; returns (name, what it holds by key)."""
    _, url = system
    ddb = make_client(url)
    name = "figures"
    ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, name)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    held: dict[str, Item] = {}

    def put(item: Item) -> None:
        ddb.put_item(TableName=name, Item=item)
        held[item["pk"]["S"]] = item

    for i in range(40):  # puts, half of them in the index
        item: Item = {"pk": {"S": f"k{i}"}, "pad": {"S": "x" * (10 * i)}, "n": {"N": str(i * 7)}}
        if i % 2 == 0:
            item["g"] = {"S": f"g{i % 5}"}
        put(item)
    for i in range(0, 10):  # overwrites: bigger, smaller, into and out of the index
        put({"pk": {"S": f"k{i}"}, "pad": {"S": "y" * (500 - 40 * i)}, **({"g": {"S": "h"}} if i % 3 else {})})
    ddb.update_item(TableName=name, Key={"pk": {"S": "k11"}}, UpdateExpression="SET g = :g, extra = :e",
                    ExpressionAttributeValues={":g": {"S": "u"}, ":e": {"L": [{"N": "1"}, {"S": "two"}]}})
    held["k11"] = {**held["k11"], "g": {"S": "u"}, "extra": {"L": [{"N": "1"}, {"S": "two"}]}}
    for i in range(30, 36):  # deletes
        ddb.delete_item(TableName=name, Key={"pk": {"S": f"k{i}"}})
        del held[f"k{i}"]
    # a transaction over both partitions: two puts, a delete, a condition check
    t_new = [{"pk": {"S": f"t{i}"}, "g": {"S": "t"}, "blob": {"B": bytes(range(100))}} for i in range(2)]
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": t_new[0]}}, {"Put": {"TableName": name, "Item": t_new[1]}},
        {"Delete": {"TableName": name, "Key": {"pk": {"S": "k20"}}}},
        {"ConditionCheck": {"TableName": name, "Key": {"pk": {"S": "k21"}},
                            "ConditionExpression": "attribute_exists(pk)"}}])
    for it in t_new:  # as the wire carries it (item_size reads wire-form values)
        held[it["pk"]["S"]] = {**it, "blob": {"B": base64.b64encode(bytes(range(100))).decode()}}
    del held["k20"]
    # expired items: the leaders' time-to-live sweep deletes them
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"old{i}"}, "exp": {"N": str(int(time.time()) - 100)}})
    eventually(lambda: all("Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": f"old{i}"}},
                                                      ConsistentRead=True) for i in range(3)), 30, "TTL deletions")
    return name, held


def expected(held: dict[str, Item]) -> tuple[int, int, int, int]:
    """(items, bytes) of the table and (entries, bytes) of the index by_g, from what it holds."""
    indexed = [it for it in held.values() if "g" in it]
    return (len(held), sum(item_size(it) for it in held.values()),
            len(indexed), sum(item_size(it) for it in indexed))


def figures(ddb: Any, name: str) -> tuple[int, int, int, int]:
    t = ddb.describe_table(TableName=name)["Table"]
    (g,) = t["GlobalSecondaryIndexes"]
    return t["ItemCount"], t["TableSizeBytes"], g["ItemCount"], g["IndexSizeBytes"]


def test_describe_table_figures_are_exact(system: Any, table: tuple[str, dict[str, Item]]) -> None:
    # puts, overwrites, an update, deletes, a transaction and TTL deletions: exact, table and index
    _, url = system
    name, held = table
    ddb = make_client(url)
    want = expected(held)
    assert want[0] == 40 - 6 - 1 + 2 and want[2] > 0
    eventually(lambda: figures(ddb, name) == want, 30, f"DescribeTable shows {want}")
    # each replica holds the same figures for its partition (leader and follower)
    for pid, reps in partitions(system[0], name).items():
        got = {(r["items"], r["size_bytes"]) for r in reps.values()}
        assert len(got) == 1, (pid, reps)


def test_figures_survive_a_snapshot_copy(system: Any, table: tuple[str, dict[str, Item]]) -> None:
    # n2's disk is wiped: it copies snapshots of n1's replicas; then n1 is killed, so n2's copies
    # lead, and the figures they report (copied, then counted on) are still exact
    sysm, url = system
    name, held = table
    ddb = make_client(url)
    eventually(lambda: figures(ddb, name) == expected(held), 30, "figures before")
    sysm.kill_service("storage-n2")
    shutil.rmtree(Path(sysm.state()["data_dir"]) / "storage" / "n2")
    sysm.start_service("storage-n2")
    eventually(lambda: rpc(sysm, "n2", "ping")["ready"], 60, "n2 back")
    log = Path(sysm.state()["data_dir"]) / "logs" / "storage-n2.log"
    eventually(lambda: "copied a snapshot" in log.read_text(), 60, "n2 copies snapshots")

    def copies_equal() -> bool:
        parts = partitions(sysm, name)
        return bool(parts) and all(len(r) == 2 and r["n1"]["items"] == r["n2"]["items"]
                                   and r["n1"]["size_bytes"] == r["n2"]["size_bytes"] for r in parts.values())

    eventually(copies_equal, 60, "n2's copies hold n1's figures")
    sysm.kill_service("storage-n1")
    eventually(lambda: all(set(r) == {"n2"} and r["n2"]["role"] == "leader"
                           for r in partitions(sysm, name).values()), 60, "n2 leads every partition")
    item = {"pk": {"S": "after-copy"}, "g": {"S": "z"}, "v": {"S": "v" * 33}}
    deadline = time.monotonic() + 30
    while True:
        try:
            ddb.put_item(TableName=name, Item=item)
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    held["after-copy"] = item
    eventually(lambda: figures(ddb, name) == expected(held), 30, "figures from the copies, one more put")


def test_prometheus_endpoints_show_the_figures(system: Any, table: tuple[str, dict[str, Item]]) -> None:
    # a scrape over HTTP, parsed with prometheus_client's parser: the router's per-table figures
    # and a storage node's per-partition ones; every service answers
    sysm, url = system
    name, held = table
    ddb = make_client(url)
    eventually(lambda: figures(ddb, name) == expected(held), 30, "figures")
    ports = sysm.state()["metrics_ports"]
    assert set(ports) == {"router", "storage-n1", "storage-n2", "admin", "admin-2", "indexer", "indexer-2",
                          "backup", "backup-2"}

    def scrape(service: str) -> dict[str, list[Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[service]}/metrics", timeout=10) as r:
            assert r.status == 200
            text = r.read().decode()
        return {f.name: f.samples for f in text_string_to_metric_families(text)}

    items, size, index_items, index_size = expected(held)
    router = scrape("router")
    assert [s.value for s in router["dynamolog_table_items"] if s.labels["table"] == name] == [items]
    assert [s.value for s in router["dynamolog_table_size_bytes"] if s.labels["table"] == name] == [size]
    assert [s.value for s in router["dynamolog_index_items"]
            if s.labels == {"table": name, "index": "by_g"}] == [index_items]
    assert [s.value for s in router["dynamolog_index_size_bytes"]
            if s.labels == {"table": name, "index": "by_g"}] == [index_size]
    assert router["dynamolog_router_requests"][0].value > 0
    # the storage nodes alive: per partition (table and index) as leader or follower
    alive = [n for n in ("n1", "n2") if sysm.state()["pids"].get(f"storage-{n}") and _answers(sysm, n)]
    leader_items = leader_index_items = 0
    for n in alive:
        fams = scrape(f"storage-{n}")
        for s in fams["dynamolog_partition_items"]:
            if s.labels["table"] == name and s.labels["role"] == "leader":
                if s.labels["index"] == "":
                    leader_items += int(s.value)
                elif s.labels["index"] == "by_g":
                    leader_index_items += int(s.value)
    assert (leader_items, leader_index_items) == (items, index_items)
    actives = 0
    for service in ("admin", "admin-2", "indexer", "indexer-2", "backup", "backup-2"):
        fams = scrape(service)
        actives += sum(int(s.value) for s in fams["dynamolog_singleton_active"])
    assert actives == 3  # one auto-admin, one indexer, one backup service
    admin = next(scrape(s) for s in ("admin", "admin-2")
                 if any(x.value == 1 for x in scrape(s)["dynamolog_singleton_active"]))
    assert [s.value for s in admin["dynamolog_table_items"] if s.labels["table"] == name] == [items]


def _answers(sysm: Any, node: str) -> bool:
    try:
        rpc(sysm, node, "ping", timeout_s=2)
        return True
    except (OSError, TimeoutError, ConnectionError):
        return False
