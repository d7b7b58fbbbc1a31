"""Storage node restarts and rebuilds, on a real Kafka broker with real processes.

docs/architecture.md invariant 3: a replica's state is exactly the fold of its log up to its stored
offset, so a restart neither skips nor repeats a record; invariant 4: a replica can be rebuilt
from nothing but the log.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from dynamolog.rpc import RpcClient
from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration


def node_status(system: Any) -> dict[str, dict[str, Any]]:
    """Per-partition status of storage node n1, keyed by partition id (waits until it answers)."""
    port = system.state()["storage_ports"]["n1"]

    async def ask() -> dict[str, Any]:
        client = RpcClient("127.0.0.1", port)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    st: dict[str, Any] = await client.call("status", timeout_s=5)
                    if st["partitions"] and all(p["role"] != "opening" for p in st["partitions"]):
                        return st
                except (TimeoutError, ConnectionError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("storage node n1 did not come back")
                await asyncio.sleep(0.2)
        finally:
            await client.close()

    return {p["partition_id"]: p for p in asyncio.run(ask())["partitions"]}


def digests(system: Any, pids: list[str]) -> dict[str, tuple[str, int]]:
    port = system.state()["storage_ports"]["n1"]

    async def ask() -> dict[str, tuple[str, int]]:
        client = RpcClient("127.0.0.1", port)
        try:
            out = {}
            for pid in pids:
                r = await client.call("digest", pid=pid)
                out[pid] = (r["digest"], r["items"])
            return out
        finally:
            await client.close()

    return asyncio.run(ask())


@pytest.fixture
def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    system, endpoint = start_system(kafka_bootstrap, tmp_path / "sys")
    system.endpoint = endpoint
    yield system
    system.down()


def _fill(ddb: Any, table: str, n: int) -> dict[str, dict[str, Any]]:
    expected = {}
    for i in range(n):
        item = {"pk": {"S": f"k{i % 17}"}, "sk": {"N": str(i)}, "v": {"S": f"value-{i}"}}
        ddb.put_item(TableName=table, Item=item)
        expected[(f"k{i % 17}", str(i))] = item
    # overwrite and delete some, so that the fold is more than a set of puts
    for i in range(0, n, 5):
        ddb.update_item(TableName=table, Key={"pk": {"S": f"k{i % 17}"}, "sk": {"N": str(i)}},
                        UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"S": f"new-{i}"}})
        expected[(f"k{i % 17}", str(i))]["v"] = {"S": f"new-{i}"}
    for i in range(3, n, 7):
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i % 17}"}, "sk": {"N": str(i)}})
        expected.pop((f"k{i % 17}", str(i)))
    return expected


def _all_items(ddb: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    items: dict[tuple[str, str], dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        for it in page["Items"]:
            items[(it["pk"]["S"], it["sk"]["N"])] = it
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _make_table(ddb: Any) -> str:
    ddb.create_table(TableName="restart_me", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}])
    wait_active(ddb, "restart_me")
    return "restart_me"


def test_restart_keeps_data_and_applies_nothing_twice(system: Any) -> None:
    # Stop the storage node cleanly, write nothing, start it again: same data, same offsets,
    # and the count of applied records has not moved (nothing re-applied from the log).
    ddb = make_client(system.endpoint)
    table = _make_table(ddb)
    expected = _fill(ddb, table, 120)
    before = node_status(system)
    pids = sorted(before)
    digest_before = digests(system, pids)

    system.stop_service("storage-n1")
    system.start_service("storage-n1")
    after = node_status(system)

    for pid in pids:
        # the restarted leader opens a new term: one FENCE record (dynamolog/fencing.py) is all
        # the log gained, and all the view applied; nothing before it was applied again
        assert after[pid]["next_offset"] == before[pid]["next_offset"] + 1
        assert after[pid]["applied_records"] == before[pid]["applied_records"] + 1, "a record was applied twice"
    assert digests(system, pids) == digest_before
    assert _all_items(ddb, table) == expected


def test_kill_9_loses_no_acknowledged_write(system: Any) -> None:
    # kill -9 right after acknowledged writes: on restart the leader re-reads the log past its
    # stored offset, so every acknowledged write is there.
    ddb = make_client(system.endpoint)
    table = _make_table(ddb)
    expected = _fill(ddb, table, 60)
    system.kill_service("storage-n1")
    system.start_service("storage-n1")
    node_status(system)
    assert _all_items(ddb, table) == expected
    # and the node takes writes again
    ddb.put_item(TableName=table, Item={"pk": {"S": "after"}, "sk": {"N": "1"}})
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "after"}, "sk": {"N": "1"}},
                                  ConsistentRead=True)


def test_rebuild_from_log_is_identical(system: Any) -> None:
    # Delete the node's RocksDB directories: on restart every replica is rebuilt from its log
    # alone and ends byte-for-byte identical (same digest over keys and values).
    ddb = make_client(system.endpoint)
    table = _make_table(ddb)
    expected = _fill(ddb, table, 100)
    before = node_status(system)
    pids = sorted(before)
    digest_before = digests(system, pids)

    system.stop_service("storage-n1")
    views = Path(system.state()["data_dir"]) / "storage" / "n1" / "partitions"
    assert views.exists()
    shutil.rmtree(views)
    system.start_service("storage-n1")
    after = node_status(system)

    assert digests(system, pids) == digest_before
    for pid in pids:
        assert after[pid]["next_offset"] >= before[pid]["next_offset"]
    assert _all_items(ddb, table) == expected
