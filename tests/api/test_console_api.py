"""The console's server side over real HTTP: the system snapshot, its server-sent events, and
DynamoDB operations run as the signed-in key."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import SYSTEMS, credentials_for, make_client, wait_active
from .test_rest_gateway import call

pytestmark = pytest.mark.api


def test_the_snapshot_shows_each_partition_its_leader_and_the_services(endpoint: str, create_table: Any) -> None:
    table = create_table()
    # a live view: the router sees the new table's partitions a moment after DescribeTable says
    # ACTIVE (the catalog and the partition map are two logs), and a snapshot lives 0.5 s
    deadline = time.monotonic() + 10
    while True:
        status, snap = call(endpoint, "GET", "/console/api/system")
        assert status == 200
        mine = [p for p in snap["partitions"] if p["table"] == table]
        settled = mine and all(p["state"] == "ACTIVE" and p["replica_status"].get(p["leader"], {}).get("role")
                               == "leader" for p in mine)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine and all(p["leader"] and p["epoch"] >= 1 and p["state"] == "ACTIVE" for p in mine)
    for p in mine:  # the leader's own replica reports itself as leader, with its log offset
        assert p["replica_status"][p["leader"]]["role"] == "leader"
        assert isinstance(p["replica_status"][p["leader"]]["next_offset"], int)
    assert any(n["healthy"] for n in snap["services"]["storage"])
    assert any(t["name"] == table for t in snap["tables"])
    assert call(endpoint, "GET", "/console/api/system", auth=None)[0] == 401


def test_events_arrive_as_server_sent_events(endpoint: str) -> None:
    creds = credentials_for(endpoint)
    assert creds is not None
    _, session = call(endpoint, "POST", "/v1/session", {"accessKeyId": creds[0], "secretAccessKey": creds[1]},
                      auth=None)
    url = urllib.parse.urlparse(endpoint)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(f"GET /console/api/events HTTP/1.1\r\nHost: x\r\nCookie: dynamolog_session={session['token']}"
                  "\r\n\r\n".encode())
        got = b""
        t0 = time.monotonic()
        while got.count(b"event: system") < 2 and time.monotonic() - t0 < 10:
            got += s.recv(65536)
    head = got.split(b"\r\n\r\n", 1)[0]
    assert b" 200 " in head and b"text/event-stream" in head and b"chunked" in head
    assert got.count(b"event: system") >= 2  # one snapshot after another, on one open answer
    data = got.split(b"event: system\ndata: ", 1)[1].split(b"\n\n", 1)[0]
    assert "partitions" in json.loads(data)


def test_operations_run_as_the_signed_in_key(endpoint: str, ddb: Any, create_table: Any) -> None:
    table = create_table()
    status, _ = call(endpoint, "POST", "/console/api/op/PutItem",
                     {"TableName": table, "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}})
    assert status == 200
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    status, err = call(endpoint, "POST", "/console/api/op/PutItem", {"TableName": table, "Item": {"n": {"N": "1"}}})
    assert status == 400 and err["error"] == "ValidationException"  # the operation's own validation
    status, err = call(endpoint, "POST", "/console/api/op/NoSuchOperation", {})
    assert status == 400 and err["error"] == "UnknownOperationException"
    status, _ = call(endpoint, "POST", "/console/api/op/PutItem", {"TableName": table, "Item": {"pk": {"S": "b"}}},
                     auth=None)
    assert status == 401
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "b"}})


# -- the live plots' figures, as the event stream carries them ---------------------------------

def watch(endpoint: str, until: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0,
          during: Callable[[], None] | None = None,
          show: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """Read the console's event stream (signed in as a browser is, with the session cookie)
    until a snapshot satisfies ``until``; return it.  ``during`` runs between events (load);
    ``show`` picks what a failure prints of the last snapshot."""
    creds = credentials_for(endpoint)
    assert creds is not None
    _, session = call(endpoint, "POST", "/v1/session", {"accessKeyId": creds[0], "secretAccessKey": creds[1]},
                      auth=None)
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    conn.request("GET", "/console/api/events", headers={"Cookie": f"dynamolog_session={session['token']}"})
    answer = conn.getresponse()
    assert answer.status == 200
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            line = answer.readline()
            if not line.startswith(b"data: "):
                continue
            last = json.loads(line[len(b"data: "):])
            if until(last):
                return last
            if during is not None:
                during()
    finally:
        conn.close()
    shown = show(last) if show is not None and last else {k: v for k, v in last.items()
                                                           if k not in ("partitions", "services")}
    raise AssertionError(f"no snapshot in {timeout_s} s satisfied the condition; the last: "
                         f"{json.dumps(shown)[:3000]}")


async def partitions_of(system: Any, table: str) -> int:
    """How many partitions serve ``table`` now, by the system's own metadata logs."""
    from dynamolog.metadata import Metadata

    metadata = Metadata(system.settings())
    await metadata.start()
    try:
        return len(metadata.table_partitions(metadata.catalog.items[table].table_id))
    finally:
        await metadata.close()


def test_splits_as_they_happen(endpoint: str, ddb: Any, create_table: Any) -> None:
    from dynamolog.split_cli import _split

    table = create_table()
    for i in range(20):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, "v": {"S": "x" * 100}})

    def count(s: dict[str, Any]) -> int | None:
        return next((r["partitions"] for r in s["splits"] if r["table"] == table and r["index"] == ""), None)

    # the table is in the catalog a moment before the router's view has its partitions, and those
    # come one at a time: wait until the console shows as many as the system's metadata holds (a
    # snapshot that showed one of a table's two partitions gave before = 1, and after the split
    # the console rightly showed 3, never before + 1)
    before = asyncio.run(partitions_of(SYSTEMS[endpoint], table))
    assert before >= 1
    watch(endpoint, lambda s: count(s) == before)
    done = asyncio.run(_split(SYSTEMS[endpoint], table, None, "size"))
    snap = watch(endpoint, lambda s: count(s) == before + 1 and any(
        e["parent"] == done["parent"] and e["step"] == "done" for e in s["split_events"]),
        show=lambda s: {"before": before, "done": done, "splits": [r for r in s["splits"] if r["table"] == table],
                        "events": [e for e in s["split_events"] if e.get("table") == table]})
    [event] = [e for e in snap["split_events"] if e["parent"] == done["parent"]]
    assert (event["table"], event["index"], event["children"]) == (table, "", done["children"])
    # the children serve: each is in the snapshot's partition list with a leader
    serving = {p["partition_id"]: p for p in snap["partitions"] if p["table"] == table}
    assert all(serving[c]["leader"] and serving[c]["state"] == "ACTIVE" for c in done["children"])
    assert len(ddb.scan(TableName=table)["Items"]) == 20


def test_adaptive_multipliers_of_each_provisioned_partition(endpoint: str, create_table: Any) -> None:
    table = create_table(BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5,
                                                                           "WriteCapacityUnits": 5})
    on_demand = create_table()

    def every_partition_shown(s: dict[str, Any]) -> bool:
        # a snapshot shows a partition's multipliers once its leader reports them: once that
        # node's own view of the catalog holds the new table (services/storage/metering.py), and
        # its status answered in time for the snapshot; every partition of the table, and nothing
        # else of it, within the watch's bound
        rows = sorted(r["partition"] for r in s["adaptive"] if r["table"] == table)
        return bool(rows) and rows == sorted(p["partition_id"] for p in s["partitions"] if p["table"] == table)

    snap = watch(endpoint, every_partition_shown, show=lambda s: {"adaptive": s["adaptive"], "partitions": [
        (p["partition_id"], p["table"], p["state"], p["capacity"]) for p in s["partitions"]]})
    mine = [r for r in snap["adaptive"] if r["table"] == table]
    leaders = [p for p in snap["partitions"] if p["table"] == table]
    assert len(mine) == len(leaders) >= 1
    # what each leader's status reports (the auto-admin's cap_set; 1.0 on an idle table)
    for r in mine:
        lead = next(p for p in leaders if p["partition_id"] == r["partition"])
        assert (r["read"], r["write"]) == (lead["capacity"]["multipliers"]["read"],
                                          lead["capacity"]["multipliers"]["write"]) == (1.0, 1.0)
    assert not any(r["table"] == on_demand for r in snap["adaptive"])  # no provisioned share to adapt


def test_auto_scaling_targets_and_their_activities(endpoint: str, ddb: Any, create_table: Any) -> None:
    table = create_table(BillingMode="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 5,
                                                                           "WriteCapacityUnits": 5})
    aas = make_client(endpoint, "application-autoscaling", retries=1)
    resource = f"table/{table}"
    # a range above the current capacity raises it at once: one scaling action
    aas.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=resource,
                                 ScalableDimension="dynamodb:table:WriteCapacityUnits", MinCapacity=9, MaxCapacity=30)
    aas.put_scaling_policy(PolicyName="keep70", ServiceNamespace="dynamodb", ResourceId=resource,
                           ScalableDimension="dynamodb:table:WriteCapacityUnits", PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={"TargetValue": 70.0, "PredefinedMetricSpecification": {
                               "PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}})

    def target(s: dict[str, Any]) -> dict[str, Any] | None:
        return next((g for g in s["scaling"] if g["resource_id"] == resource), None)

    snap = watch(endpoint, lambda s: (g := target(s)) is not None and g["capacity"] == 9 and bool(g["policies"]))
    g = target(snap)
    assert g is not None
    assert (g["table"], g["index"], g["kind"], g["min"], g["max"]) == (table, "", "write", 9, 30)
    assert g["policies"] == [{"name": "keep70", "target": 70.0}]
    [shown] = g["activities"]
    [listed] = aas.describe_scaling_activities(ServiceNamespace="dynamodb", ResourceId=resource)["ScalingActivities"]
    assert (shown["description"], shown["status"]) == (listed["Description"], listed["StatusCode"]) == \
        ("Setting write capacity units to 9.", "Successful")
    assert ddb.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]["WriteCapacityUnits"] == 9


def test_global_index_lag_rises_under_load_and_returns_to_zero(endpoint: str, ddb: Any, create_table: Any) -> None:
    table = create_table()
    ddb.update_table(TableName=table, AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "ALL"}}}])
    wait_gsi_active(ddb, table)

    def lag(s: dict[str, Any]) -> int | None:
        return next((r["lag_records"] for r in s["gsi_lag"] if (r["table"], r["index"]) == (table, "byg")), None)

    # at rest the figure settles at 0 (a measurement taken while the index was still being
    # filled may show a few records)
    assert lag(watch(endpoint, lambda s: lag(s) == 0)) == 0
    stop = threading.Event()
    written = [0, 0, 0]

    def load(w: int) -> None:
        while not stop.is_set():
            n = written[w]
            ddb.batch_write_item(RequestItems={table: [
                {"PutRequest": {"Item": {"pk": {"S": f"w{w}-{n + i}"}, "g": {"S": f"g{(n + i) % 7}"}}}}
                for i in range(25)]})
            written[w] += 25

    workers = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    for w in workers:
        w.start()
    try:
        seen = watch(endpoint, lambda s: (lag(s) or 0) > 0)
        assert (lag(seen) or 0) > 0
    finally:
        stop.set()
        for w in workers:
            w.join()
    # the indexer catches up: the figure falls back to 0 and the index holds every item
    watch(endpoint, lambda s: lag(s) == 0)
    count = sum(ddb.query(TableName=table, IndexName="byg", KeyConditionExpression="g = :g", Select="COUNT",
                          ExpressionAttributeValues={":g": {"S": f"g{i}"}})["Count"] for i in range(7))
    assert count == sum(written)


def wait_gsi_active(ddb: Any, table: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        d = ddb.describe_table(TableName=table)["Table"]
        if d["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE" for i in d.get("GlobalSecondaryIndexes", [])):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the global index of {table} is not ACTIVE after 60 s")


def test_stream_and_replication_lag_only_when_regions_are_linked(endpoint: str) -> None:
    # this system links no region: nothing to plot (tests/integration/test_global_tables.py
    # checks the figures of two linked regions)
    snap = watch(endpoint, lambda s: "regions" in s)
    assert snap["regions"] == {"linked": [], "repout": {}, "repin": {}}


def test_backups_and_restores_with_their_progress(endpoint: str, ddb: Any, create_table: Any) -> None:
    table = create_table()
    for i in range(40):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    # the table's partitions by the system's metadata (a console snapshot may not show them all
    # yet: a CI run's first snapshot showed none of the two the backup then copied)
    parts = asyncio.run(partitions_of(SYSTEMS[endpoint], table))
    arn = ddb.create_backup(TableName=table, BackupName="console")["BackupDetails"]["BackupArn"]
    backup_id = arn.rsplit("/", 1)[1]

    def job(s: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((j for j in s["backups"]["jobs"] if j["job"] == name), None)

    snap = watch(endpoint, lambda s: (j := job(s, f"backup:{backup_id}")) is not None and j["state"] == "AVAILABLE")
    j = job(snap, f"backup:{backup_id}")
    assert j is not None and (j["kind"], j["table"], j["parts"], j["parts_done"]) == ("backup", table, parts, parts)
    target = f"{table}_restored"
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    try:
        snap = watch(endpoint, lambda s: (j := job(s, f"restore:{target}")) is not None and j["state"] == "ACTIVE",
                     timeout_s=60)
        j = job(snap, f"restore:{target}")
        assert j is not None and (j["kind"], j["parts_done"], j["parts"], j["items"]) == ("restore", parts, parts, 40)
        assert ddb.describe_table(TableName=target)["Table"]["TableStatus"] == "ACTIVE"
    finally:
        wait_active(ddb, target, 60)
        ddb.delete_table(TableName=target)
