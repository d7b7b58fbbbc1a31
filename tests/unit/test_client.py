"""dynamolog.client without a network: attribute conversion, SigV4, retries, Writer, stream shards."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.client import (
    Client,
    ClientError,
    FileCheckpoint,
    MemoryCheckpoint,
    StreamNotEnabledError,
    StreamRecord,
    WriterError,
    from_attr,
    from_item,
    sigv4,
    to_attr,
    to_item,
)

# --------------------------------------------------------------------------------------------
# Attribute values
# --------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
)
scalars = st.one_of(st.text(max_size=20), st.booleans(), numbers, st.binary(max_size=20), st.none())
values = st.recursive(
    st.one_of(
        scalars,
        st.frozensets(st.text(max_size=8), min_size=1, max_size=5),
        st.frozensets(st.integers(-1000, 1000), min_size=1, max_size=5),
        st.frozensets(st.binary(max_size=8), min_size=1, max_size=5),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_attr_round_trip(v: Any) -> None:
    wire = to_attr(v)
    back = from_attr(json.loads(json.dumps(wire)))  # the wire form survives JSON
    assert back == v
    assert from_attr(to_attr(back)) == v


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6))
def test_item_round_trip(item: dict[str, Any]) -> None:
    assert from_item(to_item(item)) == item


def test_attr_examples() -> None:
    assert to_attr("x") == {"S": "x"}
    assert to_attr(True) == {"BOOL": True}
    assert to_attr(0) == {"N": "0"}
    assert to_attr(1.5) == {"N": "1.5"}
    assert to_attr(0.1) == {"N": "0.1"}
    assert to_attr(Decimal("3.14")) == {"N": "3.14"}
    assert to_attr(b"\x00\x01") == {"B": "AAE="}
    assert to_attr(None) == {"NULL": True}
    assert to_attr([1, "a"]) == {"L": [{"N": "1"}, {"S": "a"}]}
    assert to_attr({"a": {"b": False}}) == {"M": {"a": {"M": {"b": {"BOOL": False}}}}}
    assert to_attr({"b", "a"}) == {"SS": ["a", "b"]}
    assert to_attr({10, 2, Decimal("-1.5")}) == {"NS": ["-1.5", "2", "10"]}
    assert to_attr({b"a"}) == {"BS": ["YQ=="]}
    # numbers: int when integral, Decimal otherwise, never float
    assert from_attr({"N": "3"}) == 3 and type(from_attr({"N": "3"})) is int
    assert type(from_attr({"N": "3.0"})) is int
    assert from_attr({"N": "1E+2"}) == 100 and type(from_attr({"N": "1E+2"})) is int
    assert from_attr({"N": "1.5"}) == Decimal("1.5")
    assert from_attr({"NS": ["1", "2.5"]}) == {1, Decimal("2.5")}
    assert from_attr({"B": "AAE="}) == b"\x00\x01"
    big = 12345678901234567890123456789012345678
    assert from_attr(to_attr(big)) == big


@pytest.mark.parametrize("bad, exc", [
    (set(), ValueError), (math.nan, ValueError), (math.inf, ValueError), (Decimal("NaN"), ValueError),
    ({1, "a"}, TypeError), ({1: "x"}, TypeError), (object(), TypeError),
])
def test_attr_refuses(bad: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        to_attr(bad)


# --------------------------------------------------------------------------------------------
# Signature V4
# --------------------------------------------------------------------------------------------

def test_sigv4_aws_test_suite_get_vanilla() -> None:
    """The 'get-vanilla' case of the AWS Signature V4 test suite."""
    auth = sigv4.sign(
        method="GET", path="/", headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body=b"", access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1", service="service", timestamp="20150830T123600Z")
    assert auth == ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                    "SignedHeaders=host;x-amz-date, "
                    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def _botocore_authorization(url: str, headers: Mapping[str, str], body: bytes, stamp: str,
                            access_key: str, secret_key: str, region: str, token: str | None = None) -> str:
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth = SigV4Auth(Credentials(access_key, secret_key, token), "dynamodb", region)
    req.context["timestamp"] = stamp
    auth._modify_request_before_signing(req)
    canonical = auth.canonical_request(req)
    sts = auth.string_to_sign(req, canonical)
    signed = auth.signed_headers(auth.headers_to_sign(req))
    scope = auth.scope(req)
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={auth.signature(sts, req)}"


class FakeTransport:
    """Records requests; answers with ``handler(operation, params) -> (status, answer)``."""

    def __init__(self, handler: Callable[[str, dict[str, Any]], tuple[int, Any]],
                 host_header: str = "127.0.0.1:8000") -> None:
        self.handler = handler
        self.host_header = host_header
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.ops: list[str] = []
        self.closed = False

    async def request(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        self.requests.append((dict(headers), body))
        op = headers["X-Amz-Target"].split(".", 1)[1]
        self.ops.append(op)
        await asyncio.sleep(0)
        status, answer = self.handler(op, json.loads(body))
        return status, json.dumps(answer).encode()

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("token", [None, "session-token"])
async def test_client_signature_matches_botocore(token: str | None) -> None:
    fake = FakeTransport(lambda op, p: (200, {}))
    async with Client("http://127.0.0.1:8000", region="eu-west-1", access_key="AKID", secret_key="s3cr3t",
                      session_token=token, transport=fake) as c:
        await c.call("ListTables", {"Limit": 3})
        await c.call("GetRecords", {"ShardIterator": "x"})
    assert fake.closed
    for headers, body in fake.requests:
        assert headers["Content-Type"] == "application/x-amz-json-1.0"
        want = {k: v for k, v in headers.items() if k != "Authorization"}
        assert headers["Authorization"] == _botocore_authorization(
            "http://127.0.0.1:8000/", want, body, headers["X-Amz-Date"], "AKID", "s3cr3t", "eu-west-1", token)
    assert fake.requests[0][0]["X-Amz-Target"] == "DynamoDB_20120810.ListTables"
    assert fake.requests[1][0]["X-Amz-Target"] == "DynamoDBStreams_20120810.GetRecords"
    assert "/dynamodb/aws4_request" in fake.requests[1][0]["Authorization"]


# --------------------------------------------------------------------------------------------
# Errors and retries
# --------------------------------------------------------------------------------------------

async def test_errors_and_retries() -> None:
    answers: list[tuple[int, Any]] = [
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"}),
        (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}),
        (200, {"Item": {"pk": {"S": "a"}, "n": {"N": "2"}}}),
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
               "message": "The conditional request failed"}),
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}),
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}),
    ]
    fake = FakeTransport(lambda op, p: answers.pop(0))
    async with Client("http://127.0.0.1:8000", transport=fake, backoff_base=0.001, max_retries=1) as c:
        c.max_retries = 5
        assert await c.get("T", {"pk": "a"}) == {"pk": "a", "n": 2}
        with pytest.raises(ClientError) as e:
            await c.put("T", {"pk": "a"}, ConditionExpression="attribute_not_exists(pk)")
        assert e.value.code == "ConditionalCheckFailedException"
        assert e.value.status == 400 and e.value.message == "The conditional request failed"
        c.max_retries = 1
        with pytest.raises(ClientError) as e:
            await c.delete("T", {"pk": "a"})
        assert e.value.code == "ThrottlingException"
    assert fake.ops == ["GetItem"] * 3 + ["PutItem"] + ["DeleteItem"] * 2


async def test_query_pages() -> None:
    items = [{"pk": {"S": "a"}, "sk": {"N": str(i)}} for i in range(7)]

    def handler(op: str, p: dict[str, Any]) -> tuple[int, Any]:
        assert op == "Query" and p["ExpressionAttributeValues"] == {":p": {"S": "a"}}
        start = int(p["ExclusiveStartKey"]["sk"]["N"]) + 1 if "ExclusiveStartKey" in p else 0
        page = items[start:start + 3]
        answer: dict[str, Any] = {"Items": page, "Count": len(page)}
        if start + 3 < len(items):
            answer["LastEvaluatedKey"] = page[-1]
        return 200, answer

    fake = FakeTransport(handler)
    async with Client("http://127.0.0.1:8000", transport=fake) as c:
        got = [i async for i in c.query("T", "pk = :p", {":p": "a"})]
        assert [i["sk"] for i in got] == list(range(7))
        assert len(fake.ops) == 3
        assert len([i async for i in c.query("T", "pk = :p", {":p": "a"}, limit=4)]) == 4


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

def _batch_handler(batches: list[list[dict[str, Any]]], unprocessed: list[int] | None = None):
    def handler(op: str, p: dict[str, Any]) -> tuple[int, Any]:
        if op == "DescribeTable":
            return 200, {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}
        assert op == "BatchWriteItem"
        reqs = p["RequestItems"]["T"]
        assert 1 <= len(reqs) <= 25
        batches.append(reqs)
        keys = [json.dumps(r.get("PutRequest", {}).get("Item", {}).get("pk") or r["DeleteRequest"]["Key"]["pk"])
                for r in reqs]
        assert len(keys) == len(set(keys)), "duplicate keys in one batch"
        if unprocessed:
            n = unprocessed.pop(0)
            return 200, {"UnprocessedItems": {"T": reqs[:n]} if n else {}}
        return 200, {"UnprocessedItems": {}}
    return handler


async def test_writer_batches_of_25() -> None:
    batches: list[list[dict[str, Any]]] = []
    fake = FakeTransport(_batch_handler(batches))
    async with Client("http://127.0.0.1:8000", transport=fake) as c:
        async with c.writer("T", flush_interval=10) as w:
            for i in range(60):
                await w.put({"pk": f"k{i}", "v": i})
            assert [len(b) for b in batches] == [25, 25]
        assert [len(b) for b in batches] == [25, 25, 10]
    assert fake.ops.count("DescribeTable") == 1


async def test_writer_interval_flush_and_dedup() -> None:
    batches: list[list[dict[str, Any]]] = []
    fake = FakeTransport(_batch_handler(batches))
    client = Client("http://127.0.0.1:8000", transport=fake)
    async with client as c, c.writer("T", flush_interval=0.01, key_names=("pk",)) as w:
        await w.put({"pk": "a", "v": 1})
        await w.put({"pk": "b", "v": 1})
        await w.put({"pk": "a", "v": 2})     # replaces the first put of a
        await w.delete({"pk": "b"})          # replaces the put of b
        for _ in range(100):
            if batches:
                break
            await asyncio.sleep(0.01)
        assert batches == [[{"PutRequest": {"Item": {"pk": {"S": "a"}, "v": {"N": "2"}}}},
                             {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]]
        with pytest.raises(ValueError):
            await w.put({"v": 1})
    assert "DescribeTable" not in fake.ops


async def test_writer_resends_unprocessed_and_fails_after_attempts() -> None:
    batches: list[list[dict[str, Any]]] = []
    fake = FakeTransport(_batch_handler(batches, unprocessed=[3, 1, 0]))
    async with Client("http://127.0.0.1:8000", transport=fake, backoff_base=0.001) as c:
        async with c.writer("T", key_names=("pk",), flush_interval=10) as w:
            for i in range(5):
                await w.put({"pk": f"k{i}"})
        assert [len(b) for b in batches] == [5, 3, 1]

        batches.clear()
        fake.handler = _batch_handler(batches, unprocessed=[2, 2, 2])
        with pytest.raises(WriterError) as e:
            async with c.writer("T", key_names=("pk",), max_attempts=3) as w:
                await w.put({"pk": "x"})
                await w.put({"pk": "y"})
        assert len(e.value.requests) == 2 and len(batches) == 3

        fake.handler = lambda op, p: (400, {"__type": "x#ValidationException", "message": "bad"})
        with pytest.raises(ClientError) as ce:
            async with c.writer("T", key_names=("pk",)) as w:
                await w.put({"pk": "x"})
        assert ce.value.code == "ValidationException"


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------

class FakeStream:
    """A DynamoDB Streams endpoint: shards with parents, records, paged DescribeStream."""

    ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2024-01-01T00:00:00.000"

    def __init__(self) -> None:
        self.shards: dict[str, dict[str, Any]] = {}  # id -> {"parent", "closed", "records"}
        self.seq = 0
        self.fully_read: set[str] = set()
        self.expire_once: set[str] = set()
        self.status = "ENABLED"
        self.iterators_asked: list[tuple[str, str, str | None]] = []
        self.strict_lineage = True  # a child's iterator only once its parent was read to its end

    def shard(self, sid: str, parent: str | None = None, n: int = 0, closed: bool = False) -> None:
        self.shards[sid] = {"parent": parent, "closed": closed, "records": []}
        for _ in range(n):
            self.add(sid)

    def add(self, sid: str, name: str = "INSERT") -> None:
        self.seq += 1
        i = self.seq
        self.shards[sid]["records"].append({
            "eventID": f"e{i}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1700000000 + i, "Keys": {"pk": {"S": sid}},
                         "NewImage": {"pk": {"S": sid}, "i": {"N": str(i)}}, "SequenceNumber": f"{i:021d}",
                         "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}})

    def handler(self, op: str, p: dict[str, Any]) -> tuple[int, Any]:
        if op == "DescribeTable":
            return 200, {"Table": {"TableName": "T", "LatestStreamArn": self.ARN}}
        if op == "DescribeStream":
            assert p["StreamArn"] == self.ARN
            ids = sorted(self.shards)
            start = ids.index(p["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in p else 0
            page = ids[start:start + 2]  # two shards a page
            shards = []
            for sid in page:
                s = self.shards[sid]
                rng: dict[str, str] = {"StartingSequenceNumber": "0"}
                if s["closed"]:
                    rng["EndingSequenceNumber"] = s["records"][-1]["dynamodb"]["SequenceNumber"] if s["records"] else "0"
                shard: dict[str, Any] = {"ShardId": sid, "SequenceNumberRange": rng}
                if s["parent"]:
                    shard["ParentShardId"] = s["parent"]
                shards.append(shard)
            d: dict[str, Any] = {"StreamArn": self.ARN, "StreamStatus": self.status, "Shards": shards}
            if start + 2 < len(ids):
                d["LastEvaluatedShardId"] = page[-1]
            return 200, {"StreamDescription": d}
        if op == "GetShardIterator":
            sid, kind = p["ShardId"], p["ShardIteratorType"]
            self.iterators_asked.append((sid, kind, p.get("SequenceNumber")))
            parent = self.shards[sid]["parent"]
            assert not self.strict_lineage or parent is None or parent not in self.shards \
                or parent in self.fully_read, \
                f"child {sid} read before its parent {parent} was finished"
            recs = self.shards[sid]["records"]
            if kind == "TRIM_HORIZON":
                pos = 0
            elif kind == "LATEST":
                pos = len(recs)
            else:
                assert kind == "AFTER_SEQUENCE_NUMBER"
                pos = next(i + 1 for i, r in enumerate(recs) if r["dynamodb"]["SequenceNumber"] == p["SequenceNumber"])
            return 200, {"ShardIterator": f"{sid}|{pos}"}
        if op == "GetRecords":
            sid, pos_text = p["ShardIterator"].split("|")
            if sid in self.expire_once:
                self.expire_once.discard(sid)
                return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException",
                             "message": "Iterator expired"}
            pos = int(pos_text)
            s = self.shards[sid]
            recs = s["records"][pos:pos + 2]
            answer: dict[str, Any] = {"Records": recs}
            end = pos + len(recs)
            if s["closed"] and end >= len(s["records"]):
                self.fully_read.add(sid)
            else:
                answer["NextShardIterator"] = f"{sid}|{end}"
            return 200, answer
        raise AssertionError(op)


async def _take(it: Any, n: int, timeout: float = 5.0) -> list[StreamRecord]:
    out: list[StreamRecord] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await it.__anext__())
    return out


def _lineage(fs: FakeStream) -> None:
    fs.shard("A", n=3, closed=True)
    fs.shard("B", parent="A", n=2, closed=True)   # A split into B and C
    fs.shard("C", parent="A", n=2)
    fs.shard("D", parent="B", n=1)
    fs.shard("E", n=2)                            # an unrelated open root
    fs.shard("F", parent="gone", n=1)             # parent trimmed away: readable at once


async def test_stream_parents_before_children() -> None:
    fs = FakeStream()
    _lineage(fs)
    fs.expire_once.add("C")
    fake = FakeTransport(fs.handler)
    async with Client("http://127.0.0.1:8000", transport=fake, backoff_base=0.001) as c:
        it = c.stream("T", poll_interval=0.001, describe_interval=0.05)
        got = await _take(it, 11)
        order = {r.sequence_number: i for i, r in enumerate(got)}
        by_shard: dict[str, list[StreamRecord]] = {}
        for r in got:
            by_shard.setdefault(r.shard_id, []).append(r)
        assert {k: len(v) for k, v in by_shard.items()} == {"A": 3, "B": 2, "C": 2, "D": 1, "E": 2, "F": 1}
        for recs in by_shard.values():  # in order within a shard
            assert [r.sequence_number for r in recs] == sorted(r.sequence_number for r in recs)
        for child, parent in [("B", "A"), ("C", "A"), ("D", "B")]:
            assert max(order[r.sequence_number] for r in by_shard[parent]) < \
                min(order[r.sequence_number] for r in by_shard[child])
        first = by_shard["A"][0]
        assert first.event_name == "INSERT" and first.keys == {"pk": "A"} and first.new_image == {"pk": "A", "i": 1}
        assert first.old_image is None and first.size_bytes == 10 and first.approximate_creation is not None
        assert first.approximate_creation.timestamp() == 1700000001 and first.raw["eventID"] == "e1"
        # the expired iterator of C was replaced after C's first batch
        assert ("C", "AFTER_SEQUENCE_NUMBER", by_shard["C"][1].sequence_number) in fs.iterators_asked \
            or ("C", "TRIM_HORIZON", None) in fs.iterators_asked
        # new records on open shards keep coming
        fs.add("D", "MODIFY")
        (rec,) = await _take(it, 1)
        assert rec.shard_id == "D" and rec.event_name == "MODIFY"
        # a split found later is read from its start
        fs.shards["E"]["closed"] = True
        fs.shard("G", parent="E", n=1)
        (rec,) = await _take(it, 1)
        assert rec.shard_id == "G"
    assert it._closed


async def test_stream_checkpoint_resume(tmp_path: Path) -> None:
    fs = FakeStream()
    _lineage(fs)
    fake = FakeTransport(fs.handler)
    path = tmp_path / "pos.json"
    async with Client("http://127.0.0.1:8000", transport=fake) as c:
        it = c.stream("T", checkpoint=FileCheckpoint(path), poll_interval=0.001, describe_interval=0.05)
        first = await _take(it, 6)
        # records 1..5 are committed (each when the next was asked for), the 6th is not
        saved = json.loads(path.read_text())
        assert all(saved[r.shard_id] >= r.sequence_number for r in first[:5])
        await it.aclose()

        it2 = c.stream("T", checkpoint=FileCheckpoint(path), poll_interval=0.001, describe_interval=0.05)
        rest = await _take(it2, 6)  # the uncommitted 6th again, then the other 5
        await it2.commit()
        await it2.aclose()
        ids = [r.event_id for r in first[:5] + rest]
        assert len(ids) == len(set(ids)) == 11
        assert rest[0].event_id == first[5].event_id

        it3 = c.stream("T", checkpoint=FileCheckpoint(path), poll_interval=0.001, describe_interval=0.05)
        with pytest.raises(TimeoutError):
            await _take(it3, 1, timeout=0.3)  # nothing new
        fs.add("C")
        (rec,) = await _take(it3, 1)
        assert rec.shard_id == "C" and rec.event_id == f"e{fs.seq}"
    assert not c._readers


async def test_stream_latest_and_memory_checkpoint() -> None:
    fs = FakeStream()
    _lineage(fs)
    fs.strict_lineage = False  # LATEST skips the closed parents
    fake = FakeTransport(fs.handler)
    cp = MemoryCheckpoint()
    async with Client("http://127.0.0.1:8000", transport=fake) as c:
        it = c.stream("T", start="LATEST", checkpoint=cp, poll_interval=0.001, describe_interval=0.05)
        task = asyncio.ensure_future(_take(it, 2))
        await asyncio.sleep(0.2)
        fs.add("E")
        fs.add("C")
        got = await task
        assert sorted(r.shard_id for r in got) == ["C", "E"]
        await it.commit()
        assert set(cp.positions) == {"C", "E"}
        # closed shards (A, B) were skipped, never asked for an iterator
        assert {s for s, _, _ in fs.iterators_asked} <= {"C", "D", "E", "F"}
        await it.aclose()


async def test_stream_ends_when_disabled_and_errors_without_stream() -> None:
    fs = FakeStream()
    fs.shard("A", n=2, closed=True)
    fs.status = "DISABLED"
    async with Client("http://127.0.0.1:8000", transport=FakeTransport(fs.handler)) as c:
        got = [r async for r in c.stream("T", poll_interval=0.001)]
        assert len(got) == 2

    def no_stream(op: str, p: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"Table": {"TableName": "T"}}

    async with Client("http://127.0.0.1:8000", transport=FakeTransport(no_stream)) as c:
        with pytest.raises(StreamNotEnabledError):
            await c.stream("T").__anext__()


async def test_memory_and_file_checkpoint(tmp_path: Path) -> None:
    fc = FileCheckpoint(tmp_path / "sub" / "cp.json")
    assert await fc.load() == {}
    await fc.save("s1", "100")
    await fc.save("s2", "7")
    await fc.save("s1", "200")
    assert await FileCheckpoint(tmp_path / "sub" / "cp.json").load() == {"s1": "200", "s2": "7"}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cp.json"]  # no temporary files left
