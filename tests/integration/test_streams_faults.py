"""The stream under a router crash: the router serves DynamoDB Streams from the partition logs,
so killing it (kill -9) and starting it again under write load must neither lose nor repeat a
stream record; a reader just retries its last shard iterator (iterators carry their position)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dynamolog.launcher import health
from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

KEYS = [f"k{i}" for i in range(5)]


def client(url: str, service: str = "dynamodb") -> Any:
    return make_client(url, service, retries=1, read_timeout=10, connect_timeout=2)


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("streams-faults")))
    try:
        yield sysm, url
    finally:
        sysm.down()


def test_router_killed_under_load_no_stream_record_lost_or_repeated(system: Any) -> None:
    sysm, url = system
    ddb = client(url)
    table = "stream_faults"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    wait_active(ddb, table)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = client(url, "dynamodbstreams")
    shards = [s["ShardId"] for s in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]]
    iterators = {s: streams.get_shard_iterator(StreamArn=arn, ShardId=s, ShardIteratorType="TRIM_HORIZON")
                 ["ShardIterator"] for s in shards}
    seen: list[dict[str, Any]] = []
    acked: dict[str, list[int]] = {k: [] for k in KEYS}
    unknown: dict[str, list[int]] = {k: [] for k in KEYS}
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for sid, it in list(iterators.items()):
                try:
                    res = streams.get_records(ShardIterator=it)
                except Exception:
                    time.sleep(0.2)
                    continue
                seen.extend(res["Records"])
                iterators[sid] = res["NextShardIterator"]
            time.sleep(0.05)

    def writer() -> None:
        for i in range(240):
            k = KEYS[i % len(KEYS)]
            try:
                ddb.put_item(TableName=table, Item={"pk": {"S": k}, "v": {"N": str(i)}})
                acked[k].append(i)
            except Exception:
                unknown[k].append(i)
                time.sleep(0.1)
            time.sleep(0.02)

    rt, wt = threading.Thread(target=reader), threading.Thread(target=writer)
    rt.start()
    wt.start()
    time.sleep(2.0)
    sysm.kill_service("router")
    time.sleep(1.0)
    sysm.start_service("router")
    deadline = time.monotonic() + 60
    while health(sysm.state()["port"]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    wt.join(120)
    want = sum(len(v) for v in acked.values())
    deadline = time.monotonic() + 30
    while len(seen) < want and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # anything more would be a duplicate
    stop.set()
    rt.join(30)

    assert sum(len(v) for v in unknown.values()) > 0, "the router was never down while writing"
    assert len({r["eventID"] for r in seen}) == len(seen), "a stream record was returned twice"
    per_key: dict[str, list[int]] = {k: [] for k in KEYS}
    for r in seen:
        per_key[r["dynamodb"]["Keys"]["pk"]["S"]].append(int(r["dynamodb"]["NewImage"]["v"]["N"]))
    for k in KEYS:
        got = per_key[k]
        assert got == sorted(got) and len(set(got)) == len(got), f"{k}: out of order or repeated: {got}"
        assert set(acked[k]) <= set(got), f"{k}: acknowledged writes missing from the stream"
        assert set(got) <= set(acked[k]) | set(unknown[k]), f"{k}: a record of a write never made"
