"""Partition splits on the real system, under load (services/admin/splits.py, decision 0039).

A table with a local and a global secondary index and a stream starts with one partition; the
auto-admin splits any partition whose items pass 40 KB (``DYNAMOLOG_SPLIT_BYTES``) while four
clients write and one reads with ConsistentRead.  Afterwards:

- every key's recorded history is linearizable (no acknowledged write lost or applied twice, no
  consistent read that missed one), and the table holds exactly what the history allows;
- the partition map has more partitions, each with identical replicas on the three nodes;
- the global index holds exactly the table's items, the local index answers as the table does;
- the stream shows every split partition as a closed shard with two children whose
  ParentShardId names it, and reading the shards parents first yields every acknowledged write
  exactly once, in an order whose replay is the table's contents;
- a point-in-time restore to the latest restorable time holds exactly the table's items.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from dynamolog.testing.checker import OK, READ, WRITE, History, Op
from tests.api.conftest import credentials_for, free_port_block, make_client, start_system, wait_active
from tests.api.helpers import all_items

from .faults import converged, eventually, partitions

pytestmark = pytest.mark.integration

SPLIT_BYTES = 40_000
KEYS = [(f"p{i}", f"s{j}") for i in range(20) for j in range(3)]
PAD = "x" * 2000
SECONDS = 15
SECONDS_MAX = 120


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("splits")), storage_nodes=3,
                             initial_partitions=1, extra_env={"DYNAMOLOG_SPLIT_BYTES": str(SPLIT_BYTES)})
    try:
        yield sysm, url
    finally:
        sysm.down()


def _create(ddb: Any) -> str:
    name = f"split_{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "lv", "g")],
        LocalSecondaryIndexes=[{"IndexName": "bylv", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "lv", "KeyType": "RANGE"}]}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    wait_active(ddb, name)
    ddb.update_continuous_backups(TableName=name,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return name


def _run_load(url: str, name: str, enough: Callable[[History], bool]) -> History:
    """Writes and consistent reads from five clients until ``enough`` (checked every second after
    SECONDS) or SECONDS_MAX."""
    history = History()
    stop = threading.Event()
    counter = iter(range(1, 10**9))
    lock = threading.Lock()

    def writer(w: int) -> None:
        client = make_client(url, retries=0)
        rnd = random.Random(w)
        while not stop.is_set():
            pk, sk = rnd.choice(KEYS)
            delete = rnd.random() < 0.1
            with lock:
                value = None if delete else next(counter)
            h = history.invoke(f"w{w}", f"{pk}|{sk}", WRITE, value=value)
            try:
                if value is None:
                    client.delete_item(TableName=name, Key={"pk": {"S": pk}, "sk": {"S": sk}})
                else:
                    client.put_item(TableName=name, Item={
                        "pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": str(value)}, "pad": {"S": PAD},
                        "lv": {"S": f"l{value % 7}"}, "g": {"S": f"g{value % 5}"}})
            except Exception as e:  # an error leaves the outcome unknown to the checker
                history.complete(h, "unknown", error=repr(e))
            else:
                history.complete(h, OK)

    def reader() -> None:
        client = make_client(url, retries=0)
        rnd = random.Random(99)
        while not stop.is_set():
            pk, sk = rnd.choice(KEYS)
            h = history.invoke("r", f"{pk}|{sk}", READ)
            try:
                got = client.get_item(TableName=name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True)
            except Exception as e:  # nothing observed
                history.complete(h, "unknown", error=repr(e))
            else:
                item = got.get("Item")
                history.complete(h, OK, observed=int(item["v"]["N"]) if item else None)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        start = time.monotonic()
        time.sleep(SECONDS)
        while time.monotonic() - start < SECONDS_MAX and not enough(history):
            time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return history


def _stream(ddb_streams: Any, arn: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shards, records read parents first, each shard to its end or to where it stands now)."""
    shards = []
    desc: dict[str, Any] = {"StreamArn": arn}
    while True:
        d = ddb_streams.describe_stream(**desc)["StreamDescription"]
        shards += d["Shards"]
        if "LastEvaluatedShardId" not in d:
            break
        desc["ExclusiveStartShardId"] = d["LastEvaluatedShardId"]
    by_id = {s["ShardId"]: s for s in shards}
    order: list[str] = []

    def visit(sid: str) -> None:
        parent = by_id[sid].get("ParentShardId")
        if parent in by_id and parent not in order:
            visit(parent)
        if sid not in order:
            order.append(sid)

    for s in shards:
        visit(s["ShardId"])
    records: list[dict[str, Any]] = []
    for sid in order:
        it = ddb_streams.get_shard_iterator(StreamArn=arn, ShardId=sid,
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        empty = 0
        while it is not None and empty < 2:
            page = ddb_streams.get_records(ShardIterator=it, Limit=1000)
            records += page["Records"]
            empty = 0 if page["Records"] else empty + 1
            it = page.get("NextShardIterator")
    return shards, records


def _read_with_client(url: str, name: str) -> dict[str, list[int | None]]:
    """Every key's values as dynamolog.client's StreamReader yields them (it reads a parent shard
    before its children), until it has been idle for 3 s."""
    from dynamolog.client import Client

    async def read() -> dict[str, list[int | None]]:
        key = credentials_for(url)
        assert key is not None
        out: dict[str, list[int | None]] = {}
        async with Client(url, access_key=key[0], secret_key=key[1]) as client:
            reader = client.stream(name, start="TRIM_HORIZON")
            try:
                while True:
                    rec = await asyncio.wait_for(reader.__anext__(), 3.0)
                    k = f"{rec.keys['pk']}|{rec.keys['sk']}"
                    out.setdefault(k, []).append(int(rec.new_image["v"]) if rec.new_image else None)
            except TimeoutError:
                return out
            finally:
                await reader.aclose()

    return asyncio.run(read())


def test_splits_under_load_lose_nothing_and_keep_indexes_and_stream_lineage(system: tuple[Any, str]) -> None:
    sysm, url = system
    ddb = make_client(url)
    name = _create(ddb)

    def table_parts() -> dict[str, Any]:
        """The table's live partitions: a parent sealed by a split, still hosted until it is
        dropped, and a child still being opened are not counted."""
        return {pid: reps for pid, reps in partitions(sysm, name).items() if "-g" not in pid
                and not any(r.get("sealed") or r.get("role") == "opening" for r in reps.values())}

    def enough(h: History) -> bool:  # writes went on during two splits at least, and after them
        return sum(1 for o in h.ops() if o.kind == WRITE and o.outcome == OK) > 300 and len(table_parts()) >= 3

    history = _run_load(url, name, enough)
    acked_n = sum(1 for o in history.ops() if o.kind == WRITE and o.outcome == OK)
    errors_seen = {o.error for o in history.ops() if o.outcome != OK}
    assert acked_n > 150, f"only {acked_n} writes acknowledged; errors: {list(errors_seen)[:5]}"

    # the table was split, more than once, and every partition's replicas agree
    parts = eventually(lambda: len(table_parts()) >= 3 and table_parts(), 60,
                       "the table split into three or more partitions")
    converged(sysm, name)

    # no acknowledged write lost or applied twice; no consistent read missed one; and the table's
    # contents, read after the load, are a state the history allows (one more read of every key)
    table = {f"{i['pk']['S']}|{i['sk']['S']}": int(i["v"]["N"])
             for i in all_items(ddb.scan, TableName=name, ConsistentRead=True)}
    t = history.clock()
    for pk, sk in KEYS:
        history.add(Op(client="final", key=f"{pk}|{sk}", kind=READ, invoke=t, complete=t, outcome=OK,
                       observed=table.get(f"{pk}|{sk}")))
    results = history.check()
    bad = {k: r for k, r in results.items() if r.linearizable is not True}
    if bad:  # kept beside the system's logs for whoever looks into it
        (sysm.data_dir / "history.json").write_text(history.to_json())
    assert not bad, "\n".join(f"{k}: {r.explanation}\n" + "\n".join(
        repr(o) for o in sorted((o for o in history.ops() if o.key == k), key=lambda o: o.invoke)) for k, r in bad.items())
    writes = [o for o in history.ops() if o.kind == WRITE]
    unknown = [o for o in writes if o.outcome != OK]
    assert len(unknown) < len(writes) // 20, f"{len(unknown)} of {len(writes)} writes with an unknown outcome"

    # the global index holds exactly the table's items; the local index answers as the table does
    def gsi_matches() -> bool:
        found = {f"{i['pk']['S']}|{i['sk']['S']}": int(i["v"]["N"]) for i in all_items(ddb.scan, TableName=name,
                                                                                       IndexName="byg")}
        return found == table

    eventually(gsi_matches, 30, "the global index holds the table's items")
    pk = "p3"
    by_lsi = all_items(ddb.query, TableName=name, IndexName="bylv", ConsistentRead=True,
                       KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}})
    assert sorted(i["sk"]["S"] for i in by_lsi) == sorted(k.split("|")[1] for k in table if k.startswith(pk + "|"))

    # the stream: closed parents, children naming them, every acknowledged write once
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    streams = make_client(url, "dynamodbstreams")
    shards, records = _stream(streams, arn)
    closed = [s for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    assert len(shards) >= len(parts) + len(closed) and closed, shards
    for parent in closed:
        kids = [s for s in shards if s.get("ParentShardId") == parent["ShardId"]]
        assert len(kids) == 2, (parent, shards)
    seen: dict[str, list[int | None]] = {}
    for r in records:
        keys = r["dynamodb"]["Keys"]
        k = f"{keys['pk']['S']}|{keys['sk']['S']}"
        new = r["dynamodb"].get("NewImage")
        seen.setdefault(k, []).append(int(new["v"]["N"]) if new else None)
    values = [v for vs in seen.values() for v in vs if v is not None]
    assert len(values) == len(set(values)), "a write appears twice in the stream"
    acked = {o.value for o in writes if o.outcome == OK and o.value is not None}
    assert acked <= set(values), f"{len(acked - set(values))} acknowledged writes missing from the stream"
    replayed = {k: vs[-1] for k, vs in seen.items() if vs[-1] is not None}
    assert replayed == table
    # the project's own stream consumer follows the lineage the same way
    assert _read_with_client(url, name) == seen

    # a restore to the latest restorable time folds each child's log on its share of its parent's
    ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=name + "_r", UseLatestRestorableTime=True)
    wait_active(ddb, name + "_r", timeout_s=120)
    restored = {f"{i['pk']['S']}|{i['sk']['S']}": int(i["v"]["N"])
                for i in all_items(ddb.scan, TableName=name + "_r", ConsistentRead=True)}
    assert restored == table

    # DeleteTable removes every log of the table, those of the split partitions too
    state = sysm.state()
    prefix = f"{state['namespace']}.t.{name}."
    ddb.delete_table(TableName=name)

    def topics() -> list[str]:
        async def names() -> list[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=state["bootstrap"])
            await admin.start()
            try:
                return [t for t in await admin.list_topics() if t.startswith(prefix)]
            finally:
                await admin.close()

        return asyncio.run(names())

    eventually(lambda: not topics(), 60, f"no log topic {prefix}* left after DeleteTable")


@pytest.fixture(scope="module")
def heat_system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    # a split for heat when a partition consumes 0.2 % of the cap (2 write units a second) for 2 s
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("heat")), initial_partitions=1,
                             metrics_base_port=free_port_block(12),
                             extra_env={"DYNAMOLOG_SPLIT_HEAT_SHARE": "0.002", "DYNAMOLOG_SPLIT_HEAT_S": "2"})
    try:
        yield sysm, url
    finally:
        sysm.down()


def _scrape(sysm: Any, service: str) -> dict[str, list[Any]]:
    port = sysm.state()["metrics_ports"][service]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return {f.name: f.samples for f in text_string_to_metric_families(r.read().decode())}


def _hammer(url: str, name: str, keys: list[str], seconds: float) -> None:
    client = make_client(url, retries=0)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        client.put_item(TableName=name, Item={"pk": {"S": keys[i % len(keys)]}, "v": {"N": str(i)}})
        i += 1


def test_a_partition_hot_on_one_key_is_not_split_and_says_so_one_hot_on_many_keys_is(
        heat_system: tuple[Any, str]) -> None:
    sysm, url = heat_system
    ddb = make_client(url)
    name = f"heat_{uuid.uuid4().hex[:6]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wait_active(ddb, name)
    # one key takes every write: splitting cannot spread it, the metrics say why
    hot = [threading.Thread(target=_hammer, args=(url, name, ["the-one"], 20)) for _ in range(2)]
    for t in hot:
        t.start()

    def blocked() -> list[Any]:
        return [s for s in _scrape(sysm, "admin").get("dynamolog_partition_split_blocked", [])
                + _scrape(sysm, "admin-2").get("dynamolog_partition_split_blocked", [])
                if s.labels["table"] == name]

    try:
        found = eventually(blocked, 20, "the admin's metrics name the partition that cannot be split")
    finally:
        for t in hot:
            t.join()
    assert "one partition key" in found[0].labels["reason"], found
    assert len(partitions(sysm, name)) == 1
    # the same partition hot on many keys is split, at the median of its requests
    writer = threading.Thread(target=_hammer, args=(url, name, [f"k{i}" for i in range(50)], 40))
    writer.start()
    try:
        eventually(lambda: len(partitions(sysm, name)) >= 2, 40, "the hot partition split")
    finally:
        writer.join()
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "the-one"}}, ConsistentRead=True)["Item"]
