"""Global tables between two regions, each a whole system with its own Kafka cluster.

Region us-east-1 and region us-west-2 are what ``dynamolog up --region`` starts (one broker and
one storage node each), linked with ``dynamolog regions add`` on both sides.  What a user checks:
a replica added with UpdateTable gets the items written before it and every change after it, in
both directions; writes of the same keys in both regions at once end with the same item in both,
the one of the latest write; nothing is shipped back (records replicated == local writes); RepOut
killed with ``kill -9`` under load loses nothing; a region stopped for a minute while the other
takes writes catches up, and both end with the same items (same digest); a link cut because its
target is unreachable loses no change and applies none out of order per item; bad ReplicaUpdates
change nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from dynamolog import codec, regions
from dynamolog.keys import encode_item_key
from dynamolog.launcher import System, SystemSpec, health
from tests.api.conftest import SYSTEMS, free_port, free_port_block, make_client, wait_active
from tests.api.helpers import all_items
from tests.integration.faults import assert_history_ok, eventually, new_table, under_load

pytestmark = pytest.mark.integration

EAST, WEST = "us-east-1", "us-west-2"
#: each region's spec, to start a region again after a test stopped it whole
SPECS: dict[str, SystemSpec] = {}
#: how long the outage test keeps a region stopped while the other takes writes (issue 14)
OUTAGE_S = 60.0


def _kafka_port(offset: int) -> int:
    """The second and third clusters of a test session sit above its own (conftest.py's port)."""
    base = int(os.environ.get("DYNAMOLOG_TEST_KAFKA_PORT", "0"))
    if base:
        return base + offset
    return free_port_block(2)


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dynamolog.cli", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    specs = {}
    # one free block for both regions' metrics endpoints (two blocks found one after the other
    # may overlap: nothing holds the first one's ports while the second is looked for)
    metrics = free_port_block(24)
    # a broker takes its port and the next; the session's own cluster has up to three brokers
    for region, offset in ((EAST, 10), (WEST, 12)):
        data_dir = Path(tmp_path_factory.mktemp(region))
        specs[region] = SystemSpec(data_dir=data_dir, port=free_port(), region=region,
                                   kafka_base_port=_kafka_port(offset), storage_base_port=free_port_block(1) - 1,
                                   initial_partitions=2, metrics_base_port=metrics + (0 if region == EAST else 12))
    systems = {r: System(s.data_dir) for r, s in specs.items()}
    SPECS.update(specs)
    failures: list[BaseException] = []

    def up(region: str) -> None:
        try:
            _start(systems[region], region)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=up, args=(r,)) for r in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not failures, failures
        urls = {r: f"http://127.0.0.1:{s.port}" for r, s in specs.items()}
        for r, url in urls.items():
            SYSTEMS[url] = systems[r]
        # link: east makes the replication key, west takes it
        first = _cli("regions", "add", WEST, urls[WEST], "--data-dir", str(specs[EAST].data_dir))
        key = re.search(r"--key (\S+)", first)
        assert key, first
        second = _cli("regions", "add", EAST, urls[EAST], "--data-dir", str(specs[WEST].data_dir), "--key", key[1])
        assert f"linked {WEST} -> {EAST}" in second, second
        listed = _cli("regions", "list", "--data-dir", str(specs[EAST].data_dir))
        assert re.search(rf"{WEST}\s+{re.escape(urls[WEST])}\s+key \S+\s+reachable", listed), listed
        yield systems, urls
    finally:
        for s in systems.values():
            s.down()


def _client(url: str, key: tuple[str, str] | None = None, service: str = "dynamodb") -> Any:
    """A boto3 client of a region's endpoint, signing for that region (a router refuses a
    signature scoped to another region)."""
    import boto3
    from botocore.config import Config

    system = SYSTEMS[url]
    creds = key or (system.credentials()["AWS_ACCESS_KEY_ID"], system.credentials()["AWS_SECRET_ACCESS_KEY"])
    return boto3.client(service, endpoint_url=url, region_name=system.settings().region,
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}))


def _add_replica(urls: dict[str, str], table: str) -> Any:
    east = _client(urls[EAST])
    out = east.update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": WEST}}])
    desc = out["TableDescription"]
    assert desc["GlobalTableVersion"] == "2019.11.21"
    assert [r["RegionName"] for r in desc["Replicas"]] == [WEST]
    # the stream the replica needs is turned on
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}

    def active() -> bool:
        reps = east.describe_table(TableName=table)["Table"].get("Replicas", [])
        return reps == [{"RegionName": WEST, "ReplicaStatus": "ACTIVE"}]
    eventually(active, 90, "the replica ACTIVE")
    return east


def _items(url: str, table: str) -> list[Any]:
    return sorted(all_items(_client(url).scan, TableName=table), key=lambda i: orjson.dumps(i, option=orjson.OPT_SORT_KEYS))


def _same_everywhere(urls: dict[str, str], table: str, timeout_s: float = 60) -> list[Any]:
    state: dict[str, list[Any]] = {}

    def same() -> bool:
        state[EAST], state[WEST] = _items(urls[EAST], table), _items(urls[WEST], table)
        return state[EAST] == state[WEST]
    try:
        eventually(same, timeout_s, "both regions hold the same items")
    except TimeoutError:
        raise AssertionError(f"east {len(state[EAST])} items, west {len(state[WEST])}") from None
    return state[EAST]


def _log_records(system: System, table: str) -> list[dict[str, Any]]:
    """Every item change in a table's partition logs in a region (committed, any term)."""
    settings = system.settings()

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, isolation_level="read_committed",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            topics = [t for t in await consumer.topics() if t.startswith(f"{settings.namespace}.t.{table}.")]
            tps = [TopicPartition(t, 0) for t in topics]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[dict[str, Any]] = []
            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in tps])
            while await behind():
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    out += [r for r in (codec.decode_log_record(m.value) for m in msgs) if r["op"] in ("PUT", "DELETE")]
            return out
        finally:
            await consumer.stop()
    return asyncio.run(read())


def _shipped(system: System, source: str) -> list[dict[str, Any]]:
    """Every change that ``source``'s RepOut committed into ``system``'s cluster."""
    settings = system.settings()

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, isolation_level="read_committed",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(regions.repin_topic(settings.namespace, source), 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            out: list[dict[str, Any]] = []
            while await consumer.position(tp) < end:
                for msgs in (await consumer.getmany(tp, timeout_ms=500)).values():
                    for m in msgs:
                        out += [c for c in orjson.loads(m.value) if "ctl" not in c]
            return out
        finally:
            await consumer.stop()
    return asyncio.run(read())


def test_a_replica_gets_the_existing_items_then_every_change_both_ways(two_regions: Any) -> None:
    systems, urls = two_regions
    table = "GlobalMusic"
    east = new_table(urls[EAST], table)
    for i in range(40):
        east.put_item(TableName=table, Item={"pk": {"S": f"old{i}"}, "n": {"N": str(i)}})
    _add_replica(urls, table)
    west = _client(urls[WEST])
    desc = west.describe_table(TableName=table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert desc["Replicas"] == [{"RegionName": EAST, "ReplicaStatus": "ACTIVE"}]
    # the items written before the replica existed were copied before it became ACTIVE
    assert len(all_items(west.scan, TableName=table)) == 40
    # puts, updates and deletes in both regions reach the other one
    for i in range(10):
        east.put_item(TableName=table, Item={"pk": {"S": f"e{i}"}, "v": {"S": "east"}})
        west.put_item(TableName=table, Item={"pk": {"S": f"w{i}"}, "v": {"S": "west"}})
    # east changes two of west's items once they are there: a change of an item that has not
    # arrived yet would be newer than west's put of it, and the put, arriving later, would lose
    # (last writer wins; the race itself is the next test's)
    for k in ("w1", "w2"):
        eventually(lambda k=k: "Item" in east.get_item(TableName=table, Key={"pk": {"S": k}}), 30,
                   f"{k} replicated to {EAST}")
    east.update_item(TableName=table, Key={"pk": {"S": "w1"}}, UpdateExpression="SET seen = :s",
                     ExpressionAttributeValues={":s": {"S": "by east"}})
    west.delete_item(TableName=table, Key={"pk": {"S": "old3"}})
    east.delete_item(TableName=table, Key={"pk": {"S": "w2"}})
    items = _same_everywhere(urls, table)
    keys = {i["pk"]["S"] for i in items}
    assert len(items) == 40 + 20 - 2 and "old3" not in keys and "w2" not in keys
    assert {"pk": {"S": "w1"}, "v": {"S": "west"}, "seen": {"S": "by east"}} in items
    # no loop: each region's local writes were shipped exactly once, and nothing came back
    time.sleep(3)  # let any (wrong) echo arrive
    for here, there in ((EAST, WEST), (WEST, EAST)):
        local = [r for r in _log_records(systems[here], table) if r["origin_region"] == here]
        shipped = [c for c in _shipped(systems[there], here) if c["t"] == table]
        assert len(shipped) == len(local), (here, len(shipped), len(local))
        assert {c["r"] for c in shipped} == {here}
        applied = [r for r in _log_records(systems[there], table) if r["origin_region"] == here]
        assert len(applied) == len(local), (here, len(applied), len(local))
    # what an operator sees: the replicas, RepOut's and RepIn's positions; the same on Prometheus
    status = _cli("status", "--data-dir", str(systems[EAST].data_dir))
    assert re.search(rf"{table}\s+2019.11.21\s+{EAST} ACTIVE, {WEST} ACTIVE", status), status
    assert re.search(rf"repout -> {WEST}\s+running\s+shipped \d+ lag 0 records", status), status
    assert re.search(rf"repin  <- {WEST}\s+running\s+applied \d+", status), status
    port = systems[EAST].state()["metrics_ports"]["repout"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        fams = {f.name: f.samples for f in text_string_to_metric_families(r.read().decode())}
    shipped_total = [s.value for s in fams["dynamolog_repout_shipped"] if s.labels == {"region": WEST}]
    assert len(shipped_total) == 1 and shipped_total[0] >= 30, shipped_total


def test_writes_of_the_same_keys_in_both_regions_end_with_the_latest_everywhere(two_regions: Any) -> None:
    systems, urls = two_regions
    table = "GlobalRace"
    new_table(urls[EAST], table)
    _add_replica(urls, table)
    keys = [f"k{i}" for i in range(12)]

    def writer(region: str) -> None:
        c = _client(urls[region])
        for n in range(15):
            for i, k in enumerate(keys):
                if (n + i) % 5 == 4:
                    c.delete_item(TableName=table, Key={"pk": {"S": k}})
                else:
                    c.put_item(TableName=table, Item={"pk": {"S": k}, "by": {"S": region}, "n": {"N": str(n)}})

    threads = [threading.Thread(target=writer, args=(r,)) for r in (EAST, WEST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = {i["pk"]["S"]: i for i in _same_everywhere(urls, table)}
    # the winner of every key: the local write with the greatest (timestamp, region) stamp
    latest: dict[bytes, dict[str, Any]] = {}
    for region in (EAST, WEST):
        for r in _log_records(systems[region], table):
            if r["origin_region"] == region:
                best = latest.get(r["key"])
                if best is None or (r["timestamp_ms"], region) > (best["timestamp_ms"], best["origin_region"]):
                    latest[r["key"]] = r
    expected = {r["new_image"]["pk"]["S"]: r["new_image"] for r in latest.values() if r["op"] == "PUT"}
    assert items == expected
    assert {i["by"]["S"] for i in items.values()} <= {EAST, WEST}


def test_a_delete_of_an_item_whose_put_is_still_on_its_way_wins_everywhere(two_regions: Any) -> None:
    """West puts an item while its link to east is down; east then deletes it, not having it
    yet.  The later write is the delete: the item ends absent in both regions, and east's
    stream shows nothing for an item it never had."""
    from tests.api.test_streams import read_all

    systems, urls = two_regions
    table = "GlobalLateDelete"
    east = new_table(urls[EAST], table)
    _add_replica(urls, table)
    west = _client(urls[WEST])
    east.put_item(TableName=table, Item={"pk": {"S": "base"}})
    _same_everywhere(urls, table)
    systems[WEST].stop_service("repout")  # west's changes wait in its log
    try:
        west.put_item(TableName=table, Item={"pk": {"S": "late"}, "v": {"S": "west"}})
        time.sleep(0.01)  # a later millisecond
        east.delete_item(TableName=table, Key={"pk": {"S": "late"}})  # absent in east: nothing to delete
        # east recorded the delete all the same (its tombstone), so it travels to west and wins there
        deletes = [r for r in _log_records(systems[EAST], table)
                   if r["op"] == "DELETE" and r["origin_region"] == EAST]
        assert len(deletes) == 1 and deletes[0]["old_image"] is None, deletes
        eventually(lambda: "Item" not in west.get_item(TableName=table, Key={"pk": {"S": "late"}},
                                                       ConsistentRead=True), 60, "east's delete applied in west")
    finally:
        systems[WEST].start_service("repout")
    # west's older put now reaches east, where the tombstone refuses it
    eventually(lambda: any(base64.b64decode(c["k"]) == _key("late") for c in _shipped(systems[EAST], WEST)
                           if c["t"] == table), 60, "west's put of the item shipped")
    west.put_item(TableName=table, Item={"pk": {"S": "keep"}})  # shipped after it: applied after it
    eventually(lambda: "Item" in east.get_item(TableName=table, Key={"pk": {"S": "keep"}}, ConsistentRead=True),
               60, "west's next put applied in east")
    items = _same_everywhere(urls, table)
    assert sorted(i["pk"]["S"] for i in items) == ["base", "keep"]
    arn = east.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    events = read_all(_client(urls[EAST], service="dynamodbstreams"), arn, want=3, timeout_s=5)
    assert sorted((e["eventName"], e["dynamodb"]["Keys"]["pk"]["S"]) for e in events) == [
        ("INSERT", "base"), ("INSERT", "keep")]


def test_repout_and_repin_killed_under_load_lose_nothing(two_regions: Any, tmp_path: Path) -> None:
    systems, urls = two_regions
    table = "GlobalLoad"
    new_table(urls[EAST], table)
    _add_replica(urls, table)

    def fault() -> None:
        systems[EAST].kill_service("repout")
        time.sleep(2)
        systems[EAST].start_service("repout")
        time.sleep(2)
        systems[WEST].kill_service("repin")  # most likely mid-batch: it applies all the time
        time.sleep(1)
        systems[WEST].start_service("repin")

    run = under_load(urls[EAST], table, fault, before_s=3, after_s=3, clients=4)
    # the history in the region that took the writes is linearizable, nothing acknowledged lost
    assert_history_ok(run, tmp_path / "history.json")
    # and the other region converges to the same items
    _same_everywhere(urls, table, timeout_s=90)
    # nothing was shipped twice: positions are committed with the changes they follow
    shipped = [(c["k"], c["ts"]) for c in _shipped(systems[WEST], EAST) if c["t"] == table]
    assert len(shipped) == len(set(shipped))


def test_a_replica_is_active_only_once_its_table_there_is(two_regions: Any) -> None:
    """An empty table's replica is added while the other region's storage node is frozen
    (SIGSTOP), so the table there cannot open its partitions.  RepOut's snapshot of an empty table
    is only its ``caught_up`` mark, which used to make the replica ACTIVE at once; an UpdateTable
    of the replica then got "Table is being created".  The replica stays CREATING until its table
    is ACTIVE; then the replica takes writes and its own settings."""
    systems, urls = two_regions
    table = "GlobalHeldReplica"
    east, west = _client(urls[EAST]), _client(urls[WEST])
    east.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                      BillingMode="PAY_PER_REQUEST")
    wait_active(east, table)
    nodes = [p for n, p in systems[WEST].state()["pids"].items() if n.startswith("storage-")]
    assert nodes
    seen: list[str] = []
    for p in nodes:
        os.kill(p, signal.SIGSTOP)
    try:
        east.update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": WEST}}])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen += [r["ReplicaStatus"] for r in east.describe_table(TableName=table)["Table"]["Replicas"]]
            time.sleep(0.5)
        assert west.describe_table(TableName=table)["Table"]["TableStatus"] == "CREATING"
    finally:
        for p in nodes:
            os.kill(p, signal.SIGCONT)
    assert set(seen) == {"CREATING"}, seen
    eventually(lambda: east.describe_table(TableName=table)["Table"]["Replicas"] == [
        {"RegionName": WEST, "ReplicaStatus": "ACTIVE"}], 120, "the replica ACTIVE")
    assert west.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    east.update_table(TableName=table, ReplicaUpdates=[{"Update": {
        "RegionName": WEST, "OnDemandThroughputOverride": {"MaxReadRequestUnits": 100}}}])
    assert west.describe_table(TableName=table)["Table"]["OnDemandThroughput"]["MaxReadRequestUnits"] == 100
    west.put_item(TableName=table, Item={"pk": {"S": "k"}, "v": {"S": "from west"}})
    eventually(lambda: east.get_item(TableName=table, Key={"pk": {"S": "k"}}).get("Item", {}).get("v")
               == {"S": "from west"}, 60, "the item written in the replica, in the other region")


def test_bad_replica_updates_change_nothing(two_regions: Any) -> None:
    systems, urls = two_regions
    east = _client(urls[EAST])
    table = "GlobalBad"
    new_table(urls[EAST], table)
    before = east.describe_table(TableName=table)["Table"]

    def refused(updates: list[dict[str, Any]], name: str = table) -> str:
        with pytest.raises(ClientError) as e:
            east.update_table(TableName=name, ReplicaUpdates=updates)
        assert e.value.response["Error"]["Code"] == "ValidationException", e.value.response
        return str(e.value.response["Error"]["Message"])

    assert "not a region this one replicates with" in refused([{"Create": {"RegionName": "eu-west-1"}}])
    assert refused([{"Create": {"RegionName": EAST}}]) == (
        "Cannot add, delete, or update the local region through ReplicaUpdates. Use CreateTable, DeleteTable, "
        "or UpdateTable as required.")
    assert "has no replica there" in refused([{"Delete": {"RegionName": WEST}}])
    # a provisioned table without auto scaling cannot have a replica
    new_table(urls[EAST], "GlobalProv", capacity=(5, 5))
    assert refused([{"Create": {"RegionName": WEST}}], "GlobalProv") == (
        "Table write capacity should either be Pay-Per-Request or AutoScaled.")
    # a stream that does not carry both images cannot carry the replication
    east.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    wait_active(east, table)
    assert "NEW_AND_OLD_IMAGES" in refused([{"Create": {"RegionName": WEST}}])
    after = east.describe_table(TableName=table)["Table"]
    assert "Replicas" not in after and "GlobalTableVersion" not in after
    assert after["KeySchema"] == before["KeySchema"]
    west = _client(urls[WEST])
    assert table not in west.list_tables()["TableNames"] and "GlobalProv" not in west.list_tables()["TableNames"]
    # the replication key permits replication only
    known, _ = asyncio.run(regions.read_all(systems[EAST].settings(), systems[EAST].system_key()))
    key = (known[WEST].key_id, known[WEST].secret)
    with pytest.raises(ClientError) as e:
        _client(urls[EAST], key=key).put_item(TableName=table, Item={"pk": {"S": "x"}})
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert table in _client(urls[EAST]).list_tables()["TableNames"]
    assert "Item" not in east.get_item(TableName=table, Key={"pk": {"S": "x"}}, ConsistentRead=True)
    # once its write capacity is auto scaled, the provisioned table can have its replica
    make_client(urls[EAST], "application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb", ResourceId="table/GlobalProv", ScalableDimension="dynamodb:table:WriteCapacityUnits",
        MinCapacity=5, MaxCapacity=50)
    _add_replica(urls, "GlobalProv")
    prov = west.describe_table(TableName="GlobalProv")["Table"]
    assert prov["ProvisionedThroughput"]["WriteCapacityUnits"] == 5


def test_the_2017_operations_over_the_same_replication(two_regions: Any) -> None:
    _, urls = two_regions
    table = "GlobalLegacy"
    east, west = _client(urls[EAST]), _client(urls[WEST])
    for c in (east, west):
        c.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       BillingMode="PAY_PER_REQUEST",
                       StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        wait_active(c, table)

    def code(call: Any, **kw: Any) -> str:
        with pytest.raises(ClientError) as e:
            call(**kw)
        return str(e.value.response["Error"]["Code"])

    assert code(east.describe_global_table, GlobalTableName=table) == "GlobalTableNotFoundException"
    new_table(urls[EAST], "GlobalNoStream")
    assert code(east.create_global_table, GlobalTableName="GlobalNoStream",
                ReplicationGroup=[{"RegionName": EAST}, {"RegionName": WEST}]) == "ValidationException"
    out = east.create_global_table(GlobalTableName=table, ReplicationGroup=[{"RegionName": EAST},
                                                                            {"RegionName": WEST}])
    assert out["GlobalTableDescription"]["ReplicationGroup"] == [{"RegionName": EAST}, {"RegionName": WEST}]
    assert code(east.create_global_table, GlobalTableName=table,
                ReplicationGroup=[{"RegionName": EAST}]) == "GlobalTableAlreadyExistsException"
    eventually(lambda: east.describe_global_table(GlobalTableName=table)["GlobalTableDescription"][
        "GlobalTableStatus"] == "ACTIVE", 60, "the global table ACTIVE")
    assert east.describe_table(TableName=table)["Table"]["GlobalTableVersion"] == "2017.11.29"
    listed = east.list_global_tables()["GlobalTables"]
    assert {"GlobalTableName": table, "ReplicationGroup": [{"RegionName": EAST}, {"RegionName": WEST}]} in listed
    west.put_item(TableName=table, Item={"pk": {"S": "from-west"}})
    east.put_item(TableName=table, Item={"pk": {"S": "from-east"}})
    assert len(_same_everywhere(urls, table)) == 2
    assert code(east.update_global_table, GlobalTableName=table,
                ReplicaUpdates=[{"Delete": {"RegionName": "eu-west-1"}}]) == "ReplicaNotFoundException"
    assert code(east.update_global_table, GlobalTableName=table,
                ReplicaUpdates=[{"Create": {"RegionName": WEST}}]) == "ReplicaAlreadyExistsException"
    out = east.update_global_table(GlobalTableName=table, ReplicaUpdates=[{"Delete": {"RegionName": WEST}}])
    assert out["GlobalTableDescription"]["ReplicationGroup"] == [{"RegionName": EAST}]
    # the table in the removed region stays, as a table of that region only
    assert west.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    assert "Replicas" not in west.describe_table(TableName=table)["Table"]


def test_a_replica_restores_to_a_plain_table_with_its_indexes(two_regions: Any) -> None:
    # A backup and a point-in-time restore of a global table's replica (in the region that did
    # not create it) give a plain table, as DynamoDB's do: no Replicas, nothing shipped to the
    # other region, the items of both regions' writes, and its global and local indexes
    # rebuilt and answering queries.
    _systems, urls = two_regions
    table = "GlobalRestore"
    east = _client(urls[EAST])
    east.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g", "l")],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        LocalSecondaryIndexes=[{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                                  {"AttributeName": "l", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "ALL"}}])
    wait_active(east, table)
    for i in range(10):
        east.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": f"e{i}"}, "g": {"S": f"g{i % 2}"},
                                             "l": {"S": f"l{i}"}})
    _add_replica(urls, table)
    west = _client(urls[WEST])
    west.update_continuous_backups(TableName=table,
                                   PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    for i in range(10):
        west.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": f"w{i}"}, "g": {"S": f"g{i % 2}"},
                                             "l": {"S": f"m{i}"}})
    items = _same_everywhere(urls, table)
    assert len(items) == 20
    arn = west.create_backup(TableName=table, BackupName="replica")["BackupDetails"]["BackupArn"]
    eventually(lambda: west.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"]
               == "AVAILABLE", 60, "the backup AVAILABLE")
    time.sleep(1.5)  # past the latest restorable time's settle
    west.restore_table_from_backup(TargetTableName="FromBackup", BackupArn=arn)
    west.restore_table_to_point_in_time(SourceTableName=table, TargetTableName="FromTime",
                                        UseLatestRestorableTime=True)
    for target in ("FromBackup", "FromTime"):
        wait_active(west, target, timeout_s=120)
        desc = west.describe_table(TableName=target)["Table"]
        assert "Replicas" not in desc and "GlobalTableVersion" not in desc, desc
        assert [i["IndexName"] for i in desc["GlobalSecondaryIndexes"]] == ["byg"]
        assert [i["IndexName"] for i in desc["LocalSecondaryIndexes"]] == ["byl"]
        assert _items(urls[WEST], target) == items
        by_g = west.query(TableName=target, IndexName="byg", KeyConditionExpression="g = :g",
                          ExpressionAttributeValues={":g": {"S": "g1"}})["Items"]
        assert sorted(i["sk"]["S"] for i in by_g) == [f"{r}{i}" for r in "ew" for i in (1, 3, 5, 7, 9)]
        by_l = west.query(TableName=target, IndexName="byl", KeyConditionExpression="pk = :p AND l >= :l",
                          ExpressionAttributeValues={":p": {"S": "p"}, ":l": {"S": "m5"}})["Items"]
        assert [i["l"]["S"] for i in by_l] == ["m5", "m6", "m7", "m8", "m9"]
        west.put_item(TableName=target, Item={"pk": {"S": "p"}, "sk": {"S": "only-here"}})
    time.sleep(3)  # anything (wrongly) replicated would have arrived
    assert [t for t in east.list_tables()["TableNames"] if t in ("FromBackup", "FromTime")] == []


def test_the_console_shows_each_linked_regions_stream_and_replication_lag(two_regions: Any) -> None:
    # The console's snapshot (its event stream carries the same) gives RepOut's and RepIn's
    # figures as they publish them for `dynamolog status`: records not read or applied yet, and
    # RepIn's write-to-applied milliseconds.
    import base64
    import json

    systems, urls = two_regions
    table = "ConsoleLag"
    east = new_table(urls[EAST], table)
    _add_replica(urls, table)
    west = _client(urls[WEST])
    for i in range(20):
        east.put_item(TableName=table, Item={"pk": {"S": f"e{i}"}})
        west.put_item(TableName=table, Item={"pk": {"S": f"w{i}"}})
    _same_everywhere(urls, table)
    creds = systems[EAST].credentials()
    basic = base64.b64encode(f"{creds['AWS_ACCESS_KEY_ID']}:{creds['AWS_SECRET_ACCESS_KEY']}".encode()).decode()

    def snapshot() -> dict[str, Any]:
        req = urllib.request.Request(urls[EAST] + "/console/api/system", headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read())["regions"])

    def caught_up() -> bool:
        s = snapshot()
        out, inn = s["repout"].get(WEST, {}), s["repin"].get(WEST, {})
        return (s["linked"] == [WEST] and out.get("lag_records") == 0 and (out.get("shipped") or 0) >= 20
                and (inn.get("applied") or 0) >= 20)
    try:
        eventually(caught_up, 60, "the console's RepOut and RepIn figures caught up")
    except AssertionError as e:
        raise AssertionError(f"{e}; the last: {snapshot()}") from None
    s = snapshot()
    assert s["repout"][WEST]["state"] == s["repin"][WEST]["state"] == "running"
    p50, p99 = s["repin"][WEST]["lag_ms_p50"], s["repin"][WEST]["lag_ms_p99"]
    assert isinstance(p50, int) and isinstance(p99, int) and 0 <= p50 <= p99
    # RepOut's part of it: from the write here to its commit in the other region's cluster
    ship50, ship99 = s["repout"][WEST]["ship_ms_p50"], s["repout"][WEST]["ship_ms_p99"]
    assert isinstance(ship50, int) and isinstance(ship99, int) and 0 <= ship50 <= ship99
    # the figures `dynamolog status` prints (both read RepIn's last published figures, every 2 s:
    # RepIn may still be applying the other region's writes, so the two agree once it is done)
    deadline = time.monotonic() + 30
    while True:
        status = _cli("status", "--data-dir", str(systems[EAST].data_dir))
        line = re.search(rf"repin  <- {WEST}\s+running\s+applied (\d+) position \d+ lag (\d+) records", status)
        assert line, status
        assert re.search(rf"repout -> {WEST}\s+running .* stamp -> committed there p50 \d+ ms p99 \d+ ms",
                         status), status
        s = snapshot()
        console = (s["repin"][WEST]["applied"], s["repin"][WEST]["lag_records"])
        if (int(line[1]), int(line[2])) == console or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (int(line[1]), int(line[2])) == console


def _key(pk: str) -> bytes:
    """The log key of the item ``{"pk": {"S": pk}}``."""
    return encode_item_key({"S": pk}, None)


def _digest(items: list[Any]) -> str:
    """A digest of a region's items (sorted as _items sorts them)."""
    h = hashlib.sha256()
    for i in items:
        h.update(orjson.dumps(i, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _changes_per_item(records: list[dict[str, Any]], origin: str) -> dict[bytes, list[tuple[int, str]]]:
    """Each item's changes made in ``origin``, in log order: (stamp, op)."""
    out: dict[bytes, list[tuple[int, str]]] = {}
    for r in records:
        if r["origin_region"] == origin:
            out.setdefault(r["key"], []).append((r["timestamp_ms"], r["op"]))
    return out


def _start(system: System, region: str) -> None:
    """Start a region (again, after an outage) on its router and Kafka ports (the other region's
    link and its own cluster name them). Its metrics ports, and on a second try its storage
    node's, are chosen afresh: on a shared machine another process may take a port that was
    free when it was chosen."""
    import dataclasses

    for attempt in range(3):
        spec = dataclasses.replace(SPECS[region], metrics_base_port=free_port_block(12))
        if attempt:
            spec = dataclasses.replace(spec, storage_base_port=free_port_block(1) - 1)
        try:
            system.up(spec, timeout_s=240)
        except RuntimeError as e:
            # a port that was free when chosen may be taken by the time the system checks it (the
            # check comes before anything starts): choose again, as for a start that failed
            retry = "stopped during start" in str(e) or "ports already in use" in str(e)
            if not retry or attempt == 2:
                raise
            print(f"{region} did not start ({e}); stopping it and trying again with other ports")
            system.down()
            continue
        SPECS[region] = spec
        return


def test_a_region_stopped_for_a_minute_catches_up_and_both_converge(
        two_regions: Any, record_property: Any) -> None:
    systems, urls = two_regions
    table = "GlobalOutage"
    east = new_table(urls[EAST], table)
    _add_replica(urls, table)
    west = _client(urls[WEST])
    for i in range(20):
        west.put_item(TableName=table, Item={"pk": {"S": f"w{i}"}, "v": {"S": "west"}})
    _same_everywhere(urls, table)
    systems[WEST].down()  # the whole region: routers, storage, RepOut, RepIn and its Kafka cluster
    stopped = time.monotonic()
    writes = 0
    while time.monotonic() - stopped < OUTAGE_S:  # east takes puts, updates and deletes meanwhile
        key = {"pk": {"S": f"k{writes % 150}" if writes % 10 else f"w{writes % 20}"}}
        if writes % 7 == 6:
            east.delete_item(TableName=table, Key=key)
        elif writes % 3 == 1:
            east.update_item(TableName=table, Key=key, UpdateExpression="ADD n :one",
                             ExpressionAttributeValues={":one": {"N": "1"}})
        else:
            east.put_item(TableName=table, Item={**key, "v": {"S": "east"}, "at": {"N": str(writes)}})
        writes += 1
        time.sleep(0.02)
    outage = time.monotonic() - stopped
    _start(systems[WEST], WEST)
    restarted = time.monotonic()
    items = _same_everywhere(urls, table, timeout_s=180)
    converge_s = time.monotonic() - restarted
    # the same items in both regions, compared by digest, and east's writes among them
    assert _digest(_items(urls[EAST], table)) == _digest(_items(urls[WEST], table)) == _digest(items)
    assert len(items) > 20 and any(i["v"]["S"] == "east" for i in items if "v" in i)
    # and the restarted region's own writes travel again
    _client(urls[WEST]).put_item(TableName=table, Item={"pk": {"S": "after"}, "v": {"S": "west"}})
    assert len(_same_everywhere(urls, table)) == len(items) + 1
    print(f"outage {outage:.1f} s with {writes} writes in {EAST}; {WEST} up in {restarted - stopped - outage:.1f} s, "
          f"both regions identical {converge_s:.1f} s after it was up")
    record_property("outage_s", round(outage, 1))
    record_property("writes_during_outage", writes)
    record_property("converge_s_after_restart", round(converge_s, 1))


def test_the_link_cut_by_an_unreachable_target_loses_nothing_and_keeps_each_items_order(
        two_regions: Any, tmp_path: Path) -> None:
    systems, urls = two_regions
    table = "GlobalCut"
    new_table(urls[EAST], table)
    _add_replica(urls, table)
    west_port = SPECS[WEST].port
    shipped_while_cut: list[int] = []

    def fault() -> None:
        # the target unreachable: the other region's endpoint and its RepIn stopped; a RepOut
        # that starts now (the link cut: kill -9) cannot learn where the other cluster is
        systems[WEST].stop_service("repin")
        systems[WEST].stop_service("router")
        systems[EAST].kill_service("repout")
        systems[EAST].start_service("repout")
        time.sleep(2)
        shipped_while_cut.append(len(_shipped(systems[WEST], EAST)))
        time.sleep(6)  # writes go on in east, none can travel
        shipped_while_cut.append(len(_shipped(systems[WEST], EAST)))
        # restored
        systems[WEST].start_service("router")
        eventually(lambda: health(west_port) is not None, 60, f"{WEST}'s router answering")
        systems[WEST].start_service("repin")

    run = under_load(urls[EAST], table, fault, before_s=3, after_s=4, clients=4)
    # the region that took the writes: a linearizable history, nothing acknowledged lost
    assert_history_ok(run, tmp_path / "history.json")
    assert shipped_while_cut[0] == shipped_while_cut[1], shipped_while_cut  # the link was cut indeed
    _same_everywhere(urls, table, timeout_s=90)
    # no change lost, none applied twice or out of order: for every item the changes recorded in
    # the other region are the changes made here, in the same order
    made = _changes_per_item(_log_records(systems[EAST], table), EAST)
    applied = _changes_per_item(_log_records(systems[WEST], table), EAST)
    assert made and applied == made, {k: (made.get(k), applied.get(k)) for k in set(made) | set(applied)
                                      if made.get(k) != applied.get(k)}
    shipped = [(c["k"], c["ts"]) for c in _shipped(systems[WEST], EAST) if c["t"] == table]
    assert len(shipped) == len(set(shipped)) == sum(len(v) for v in made.values())


def _code(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return str(e.value.response["Error"]["Code"])


def test_replica_auto_scaling_is_alike_in_every_replica_and_replicas_take_overrides(two_regions: Any) -> None:
    _, urls = two_regions
    table = "GlobalScaled"
    east, west = _client(urls[EAST]), _client(urls[WEST])
    east.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                            {"AttributeName": "g", "AttributeType": "S"}],
                      BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                      GlobalSecondaryIndexes=[{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                               "Projection": {"ProjectionType": "ALL"},
                                               "ProvisionedThroughput": {"ReadCapacityUnits": 5,
                                                                         "WriteCapacityUnits": 5}}])
    wait_active(east, table)
    make_client(urls[EAST], "application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb", ResourceId=f"table/{table}", ScalableDimension="dynamodb:table:WriteCapacityUnits",
        MinCapacity=5, MaxCapacity=50)
    _add_replica(urls, table)
    before = east.describe_table_replica_auto_scaling(TableName=table)["TableAutoScalingDescription"]
    assert [r["RegionName"] for r in before["Replicas"]] == [EAST, WEST]
    # bad input: DynamoDB's errors, nothing changed in either region
    assert _code(east.update_table_replica_auto_scaling, TableName=table, ReplicaUpdates=[
        {"RegionName": "eu-west-1", "ReplicaProvisionedReadCapacityAutoScalingUpdate": {"MinimumUnits": 1}}]) \
        == "ResourceNotFoundException"
    assert _code(east.update_table_replica_auto_scaling, TableName=table, GlobalSecondaryIndexUpdates=[
        {"IndexName": "nope", "ProvisionedWriteCapacityAutoScalingUpdate": {"MinimumUnits": 1}}]) \
        == "ResourceNotFoundException"
    assert _code(east.update_table_replica_auto_scaling, TableName=table, ProvisionedWriteCapacityAutoScalingUpdate={
        "MinimumUnits": 30, "MaximumUnits": 10}) == "ValidationException"
    assert _code(east.update_table_replica_auto_scaling, TableName="NoSuchTable",
                 ProvisionedWriteCapacityAutoScalingUpdate={"MinimumUnits": 1}) == "ResourceNotFoundException"
    assert _code(east.describe_table_replica_auto_scaling, TableName="NoSuchTable") == "ResourceNotFoundException"
    assert east.describe_table_replica_auto_scaling(TableName=table)["TableAutoScalingDescription"] == before
    # write scaling applied alike in both replicas; read scaling per replica
    policy = {"TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60.0}}
    out = east.update_table_replica_auto_scaling(
        TableName=table,
        ProvisionedWriteCapacityAutoScalingUpdate={"MinimumUnits": 5, "MaximumUnits": 40, "ScalingPolicyUpdate": policy},
        GlobalSecondaryIndexUpdates=[{"IndexName": "byG", "ProvisionedWriteCapacityAutoScalingUpdate": {
            "MinimumUnits": 5, "MaximumUnits": 20}}],
        ReplicaUpdates=[{"RegionName": WEST, "ReplicaProvisionedReadCapacityAutoScalingUpdate": {
            "MinimumUnits": 3, "MaximumUnits": 30}}])["TableAutoScalingDescription"]
    reps = {r["RegionName"]: r for r in out["Replicas"]}
    for region in (EAST, WEST):
        w = reps[region]["ReplicaProvisionedWriteCapacityAutoScalingSettings"]
        assert (w["MinimumUnits"], w["MaximumUnits"]) == (5, 40), (region, w)
        assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in w["ScalingPolicies"]] == [60.0]
        g = reps[region]["GlobalSecondaryIndexes"][0]["ProvisionedWriteCapacityAutoScalingSettings"]
        assert (g["MinimumUnits"], g["MaximumUnits"]) == (5, 20)
    assert reps[WEST]["ReplicaProvisionedReadCapacityAutoScalingSettings"]["MaximumUnits"] == 30
    assert reps[EAST]["ReplicaProvisionedReadCapacityAutoScalingSettings"] == {"AutoScalingDisabled": True}
    # the other region's own auto scaling holds the same targets, and describes them the same
    targets = _client(urls[WEST], service="application-autoscaling").describe_scalable_targets(
        ServiceNamespace="dynamodb", ResourceIds=[f"table/{table}"])["ScalableTargets"]
    assert {(t["ScalableDimension"], t["MinCapacity"], t["MaxCapacity"]) for t in targets} == {
        ("dynamodb:table:WriteCapacityUnits", 5, 40), ("dynamodb:table:ReadCapacityUnits", 3, 30)}
    assert west.describe_table_replica_auto_scaling(TableName=table)["TableAutoScalingDescription"]["Replicas"] \
        == out["Replicas"]
    # ReplicaUpdates Update: the replica's own read capacity; bad overrides change nothing
    def refused(body: dict[str, Any]) -> str:
        with pytest.raises(ClientError) as e:
            east.update_table(TableName=table, ReplicaUpdates=[{"Update": {"RegionName": WEST, **body}}])
        return str(e.value.response["Error"]["Code"])
    assert refused({"GlobalSecondaryIndexes": [{"IndexName": "nope", "ProvisionedThroughputOverride": {
        "ReadCapacityUnits": 4}}]}) == "ResourceNotFoundException"
    assert refused({"OnDemandThroughputOverride": {"MaxReadRequestUnits": 100}}) == "ValidationException"
    assert refused({"KMSMasterKeyId": "alias/mine"}) == "ValidationException"
    assert refused({"TableClassOverride": "GLACIER"}) == "ValidationException"
    assert west.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    out = east.update_table(TableName=table, ReplicaUpdates=[{"Update": {
        "RegionName": WEST, "ProvisionedThroughputOverride": {"ReadCapacityUnits": 7},
        "GlobalSecondaryIndexes": [{"IndexName": "byG", "ProvisionedThroughputOverride": {"ReadCapacityUnits": 6}}]}}])
    (rep,) = out["TableDescription"]["Replicas"]
    assert rep["ProvisionedThroughputOverride"] == {"ReadCapacityUnits": 7}
    assert rep["GlobalSecondaryIndexes"] == [{"IndexName": "byG", "ProvisionedThroughputOverride": {
        "ReadCapacityUnits": 6}}]
    desc = west.describe_table(TableName=table)["Table"]
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert desc["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["ReadCapacityUnits"] == 6
    assert east.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 5


def test_the_2017_global_table_settings_over_every_replica(two_regions: Any) -> None:
    _, urls = two_regions
    table = "GlobalLegacySettings"
    east, west = _client(urls[EAST]), _client(urls[WEST])
    for c in (east, west):
        c.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       BillingMode="PAY_PER_REQUEST",
                       StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        wait_active(c, table)
    assert _code(east.describe_global_table_settings, GlobalTableName=table) == "GlobalTableNotFoundException"
    east.create_global_table(GlobalTableName=table, ReplicationGroup=[{"RegionName": EAST}, {"RegionName": WEST}])
    eventually(lambda: east.describe_global_table(GlobalTableName=table)["GlobalTableDescription"][
        "GlobalTableStatus"] == "ACTIVE", 60, "the global table ACTIVE")
    settings = east.describe_global_table_settings(GlobalTableName=table)
    assert [(r["RegionName"], r["ReplicaBillingModeSummary"]["BillingMode"]) for r in settings["ReplicaSettings"]] \
        == [(EAST, "PAY_PER_REQUEST"), (WEST, "PAY_PER_REQUEST")]
    # bad input: DynamoDB's errors, nothing changed
    assert _code(east.update_global_table_settings, GlobalTableName=table, ReplicaSettingsUpdate=[
        {"RegionName": "eu-west-1", "ReplicaProvisionedReadCapacityUnits": 4}]) == "ReplicaNotFoundException"
    assert _code(east.update_global_table_settings, GlobalTableName=table, GlobalTableGlobalSecondaryIndexSettingsUpdate=[
        {"IndexName": "nope", "ProvisionedWriteCapacityUnits": 4}]) == "IndexNotFoundException"
    assert _code(east.update_global_table_settings, GlobalTableName="GlobalMusic",
                 GlobalTableProvisionedWriteCapacityUnits=4) == "GlobalTableNotFoundException"
    assert _code(east.update_global_table_settings, GlobalTableName=table,
                 GlobalTableProvisionedWriteCapacityUnits=4) == "ValidationException"  # on demand
    assert east.describe_global_table_settings(GlobalTableName=table)["ReplicaSettings"] == settings["ReplicaSettings"]
    # provisioned everywhere: the same write units, each replica its own read units
    out = east.update_global_table_settings(
        GlobalTableName=table, GlobalTableBillingMode="PROVISIONED", GlobalTableProvisionedWriteCapacityUnits=6,
        ReplicaSettingsUpdate=[{"RegionName": EAST, "ReplicaProvisionedReadCapacityUnits": 4},
                               {"RegionName": WEST, "ReplicaProvisionedReadCapacityUnits": 8}])
    got = {r["RegionName"]: (r["ReplicaBillingModeSummary"]["BillingMode"], r["ReplicaProvisionedReadCapacityUnits"],
                             r["ReplicaProvisionedWriteCapacityUnits"]) for r in out["ReplicaSettings"]}
    assert got == {EAST: ("PROVISIONED", 4, 6), WEST: ("PROVISIONED", 8, 6)}
    assert west.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 8
    wait_active(east, table)
    wait_active(west, table)
    # write auto scaling, kept alike in every replica
    out = east.update_global_table_settings(
        GlobalTableName=table, GlobalTableProvisionedWriteCapacityAutoScalingSettingsUpdate={
            "MinimumUnits": 6, "MaximumUnits": 20,
            "ScalingPolicyUpdate": {"TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50.0}}})
    for r in out["ReplicaSettings"]:
        w = r["ReplicaProvisionedWriteCapacityAutoScalingSettings"]
        assert (w["MinimumUnits"], w["MaximumUnits"], w["AutoScalingDisabled"]) == (6, 20, False), r
    seen = west.describe_global_table_settings(GlobalTableName=table)["ReplicaSettings"]
    for mine, theirs in zip(out["ReplicaSettings"], seen, strict=True):
        for k in mine:
            assert mine[k] == theirs[k], (mine["RegionName"], k, mine[k], theirs[k])
