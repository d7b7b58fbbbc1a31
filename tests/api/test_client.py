"""dynamolog.client against the endpoint: items, queries, the batching writer, change streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dynamolog.client import Client, ClientError, FileCheckpoint, StreamReader, StreamRecord

from .conftest import TableFactory, credentials_for

pytestmark = pytest.mark.api

STREAM_SPEC = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


@pytest.fixture
async def client(endpoint: str) -> AsyncIterator[Client]:
    import os

    creds = credentials_for(endpoint) or (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    async with Client(endpoint, access_key=creds[0], secret_key=creds[1]) as c:
        yield c


ITEM: dict[str, Any] = {
    "pk": "item-1", "s": "text", "n": 42, "d": Decimal("3.25"), "f": 0.5, "b": b"\x00\xff", "t": True,
    "z": None, "l": [1, "two", [False]], "m": {"inner": {"x": 1}}, "ss": {"a", "b"}, "ns": {1, 2},
    "bs": {b"x", b"y"},
}


async def test_put_get_delete(client: Client, hash_table: str) -> None:
    await client.put(hash_table, ITEM)
    got = await client.get(hash_table, {"pk": "item-1"}, consistent=True)
    assert got == ITEM | {"f": Decimal("0.5")}
    assert isinstance(got["n"], int) and got["d"] == Decimal("3.25")
    await client.delete(hash_table, {"pk": "item-1"})
    assert await client.get(hash_table, {"pk": "item-1"}, consistent=True) is None


async def test_errors(client: Client, hash_table: str) -> None:
    with pytest.raises(ClientError) as e:
        await client.get("no_such_table_here", {"pk": "a"})
    assert e.value.code == "ResourceNotFoundException" and e.value.status == 400
    await client.put(hash_table, {"pk": "cond"})
    with pytest.raises(ClientError) as e:
        await client.put(hash_table, {"pk": "cond"}, ConditionExpression="attribute_not_exists(pk)")
    assert e.value.code == "ConditionalCheckFailedException"


async def test_query_pages_and_concurrency(client: Client, range_table: str) -> None:
    await asyncio.gather(*(client.put(range_table, {"pk": "q", "sk": i, "v": f"v{i}"}) for i in range(30)))
    got = [i async for i in client.query(range_table, "pk = :p", {":p": "q"}, page_size=7, consistent=True)]
    assert [i["sk"] for i in got] == list(range(30))
    back = [i["sk"] async for i in client.query(range_table, "pk = :p AND sk >= :s", {":p": "q", ":s": 20},
                                                forward=False, consistent=True)]
    assert back == list(range(29, 19, -1))
    few = [i async for i in client.query(range_table, "pk = :p", {":p": "q"}, limit=5, page_size=2)]
    assert len(few) == 5


async def test_writer_round_trip(client: Client, range_table: str) -> None:
    async with client.writer(range_table) as w:
        for i in range(60):
            await w.put({"pk": "w", "sk": i, "v": 0})
        await w.put({"pk": "w", "sk": 5, "v": 1})      # may share a batch with the first: last wins
        for i in range(50, 60):
            await w.delete({"pk": "w", "sk": i})
    assert w.batches_sent >= 3
    got = {i["sk"]: i["v"] async for i in client.query(range_table, "pk = :p", {":p": "w"}, consistent=True)}
    assert sorted(got) == list(range(50))
    assert got[5] == 1 and got[4] == 0


# --------------------------------------------------------------------------------------------
# Streams (DynamoDB Streams API: DescribeTable.LatestStreamArn, DescribeStream, GetShardIterator,
# GetRecords)
# --------------------------------------------------------------------------------------------

async def _take(reader: StreamReader, n: int, timeout: float = 30.0) -> list[StreamRecord]:
    out: list[StreamRecord] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await reader.__anext__())
    return out


async def test_stream_insert_modify_remove(client: Client, create_table: TableFactory) -> None:
    table = create_table(StreamSpecification=STREAM_SPEC)
    await client.put(table, {"pk": "k1", "v": 1, "tags": {"a"}})
    await client.put(table, {"pk": "k1", "v": 2})
    await client.delete(table, {"pk": "k1"})
    async with client.stream(table, start="TRIM_HORIZON", poll_interval=0.05) as reader:
        ins, mod, rem = await _take(reader, 3)
        assert reader.stream_arn
    assert [r.event_name for r in (ins, mod, rem)] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(r.keys == {"pk": "k1"} for r in (ins, mod, rem))
    assert ins.new_image == {"pk": "k1", "v": 1, "tags": {"a"}} and ins.old_image is None
    assert mod.new_image == {"pk": "k1", "v": 2} and mod.old_image == {"pk": "k1", "v": 1, "tags": {"a"}}
    assert rem.old_image == {"pk": "k1", "v": 2} and rem.new_image is None
    seqs = [int(r.sequence_number) for r in (ins, mod, rem)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert len({r.event_id for r in (ins, mod, rem)}) == 3
    for r in (ins, mod, rem):
        assert r.approximate_creation is not None and r.shard_id
        assert r.raw["eventSource"] == "aws:dynamodb"


async def test_stream_latest_skips_history(client: Client, create_table: TableFactory) -> None:
    table = create_table(StreamSpecification=STREAM_SPEC)
    await client.put(table, {"pk": "old"})
    async with client.stream(table, start="LATEST", poll_interval=0.05) as reader:
        task = asyncio.ensure_future(_take(reader, 1))
        await asyncio.sleep(2.0)  # the reader holds its LATEST iterators by now
        await client.put(table, {"pk": "new"})
        (rec,) = await task
    assert rec.event_name == "INSERT" and rec.keys == {"pk": "new"}


async def test_stream_resume_from_file_checkpoint(client: Client, create_table: TableFactory,
                                                  tmp_path: Path) -> None:
    table = create_table(StreamSpecification=STREAM_SPEC)
    path = tmp_path / "checkpoint.json"
    for i in range(5):
        await client.put(table, {"pk": f"k{i}", "v": i})

    reader = client.stream(table, checkpoint=FileCheckpoint(path), poll_interval=0.05)
    first = await _take(reader, 3)
    await reader.commit()  # all three handled
    await reader.aclose()
    assert path.exists()

    for i in range(5, 7):
        await client.put(table, {"pk": f"k{i}", "v": i})
    async with client.stream(table, checkpoint=FileCheckpoint(path), poll_interval=0.05) as reader:
        rest = await _take(reader, 4)
        with pytest.raises(TimeoutError):
            await _take(reader, 1, timeout=2.0)  # nothing more: no duplicates
    ids = [r.event_id for r in first + rest]
    assert len(set(ids)) == 7
    assert sorted(r.keys["pk"] for r in first + rest) == [f"k{i}" for i in range(7)]
    assert {r.event_name for r in first + rest} == {"INSERT"}
