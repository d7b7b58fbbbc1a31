#!/usr/bin/env python3
"""The least work a DynamoDB-compatible server on a replicated Kafka log can do: the ceiling over
workload A for any Python write path built the way Dynamolog's is, on this machine.

One process serves the DynamoDB JSON protocol for bench/ycsb.py's tables and does only what
every such server must:
  * a write (PutItem, or UpdateItem ``SET #f = :v``) is evaluated against the item held in
    memory, queued for its partition, and appended to the partition's log topic by an
    idempotent ``acks=all`` producer in a group commit (one append in flight per partition; the
    next group takes every write queued meanwhile, after the same linger rule as a Dynamolog
    leader's: services/storage/leader.py); it is answered once the append is acknowledged, then
    held in memory;
  * an eventually consistent GetItem is answered from the memory of acknowledged writes;
  * ``--followers`` follower replicas, in a second process, consume each log topic as a
    Dynamolog follower does (read_committed, the same fetch wait and minimum bytes) and hold the
    items in memory, so the brokers serve the same fetches they serve under Dynamolog.
The brokers are started here by the project's own launcher (dynamolog.kafka.local), with the
settings `dynamolog up` writes, and the log topics are created as a table partition's is (three
replicas, ``min.insync.replicas`` 2, on three brokers).

What it leaves out, each of which Dynamolog does: a request router in its own process and the
hop to the partition's leader, SigV4 verification, the expression language, attribute-value
validation, capacity, RocksDB, log records with terms and images, landing checks, indexes,
streams. So its workload A rate is an upper bound for a server built on this log on this machine:
if it falls short of a peer in the same sitting, no write path on a three-broker Kafka log in
Python reaches that peer here.

    python bench/ceiling.py --data-dir /tmp/ceil --brokers 3 --port 8402 &
    python bench/ycsb.py --endpoint http://127.0.0.1:8402 --data-dir /tmp/ceil --workload load,A \\
        --warmup 30 --duration 15
    kill %1    # or wait --seconds (default 900): it stops its brokers and exits by itself

Two options put back one part of what Dynamolog does each, to weigh it:
  --old-images  each log record holds the item's old image beside the new, as a LogRecord does
  --hop         HTTP is served by a second process that forwards each request over one TCP
                connection to the server and the answer back, as the request router does

bench/ycsb.py reads its CPU from /proc as for a Dynamolog system (the data dir's system.json
names this process "storage-ceiling", the follower process "storage-followers" and --hop's front
"router-front"; the brokers' pid files lie in DATA/kafka), so the CPU columns compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httptools
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dynamolog.kafka.admin import KafkaAdmin, create_topic
from dynamolog.kafka.local import LocalKafka

GROUP_RECORDS_MAX = 500
JSON_TYPE = b"application/x-amz-json-1.0"


def answer(status: int, body: bytes) -> bytes:
    reason = b"OK" if status == 200 else b"Bad Request"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nx-amzn-RequestId: 0\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, JSON_TYPE, len(body))) + body


def error(kind: str, message: str = "") -> bytes:
    return answer(400, orjson.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": message}))


class Partition:
    """One log topic and its group commit."""

    def __init__(self, topic: str, producer: AIOKafkaProducer, linger_ms: float, old_images: bool) -> None:
        self.topic = topic
        self.old_images = old_images
        self.producer = producer
        self.linger_s = linger_ms / 1000
        self.items: dict[str, dict[str, Any]] = {}  # acknowledged writes
        self.pending: dict[str, dict[str, Any]] = {}  # evaluated, not yet acknowledged
        #: (key, new item, old item, its answer)
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], dict[str, Any] | None, asyncio.Future[None]]] = (
            asyncio.Queue())
        self.last_group = 0.0
        self.last_size = 1
        self.want = 0  # the linger waits for this many queued writes (0: not waiting)
        self.enough = asyncio.Event()
        self.groups = 0
        self.writes = 0

    def current(self, key: str) -> dict[str, Any] | None:
        got = self.pending.get(key)
        return got if got is not None else self.items.get(key)

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            want = min(self.last_size, GROUP_RECORDS_MAX) - 1
            linger = self.last_group + self.linger_s - time.monotonic()
            if linger > 0 and want > 0 and self.queue.qsize() < want:
                self.want = want
                self.enough.clear()
                with contextlib.suppress(TimeoutError):  # enough writes queued, or the linger is up
                    await asyncio.wait_for(self.enough.wait(), timeout=linger)
                self.want = 0
            self.last_group = time.monotonic()
            while len(batch) < GROUP_RECORDS_MAX and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            self.last_size = len(batch)
            records = self.producer.create_batch()
            for key, item, old, _ in batch:
                logged = {"new": item, "old": old} if self.old_images else item
                records.append(key=key.encode(), value=orjson.dumps(logged), timestamp=None)
            try:
                await (await self.producer.send_batch(records, self.topic, partition=0))
            except Exception as e:
                for key, _, _, fut in batch:
                    self.pending.pop(key, None)
                    fut.set_exception(e)
                continue
            for key, item, _, fut in batch:
                self.items[key] = item
                if self.pending.get(key) is item:
                    del self.pending[key]
                fut.set_result(None)
            self.groups += 1
            self.writes += len(batch)


class Server:
    def __init__(self, partitions: list[Partition]) -> None:
        self.partitions = partitions
        self.tables: dict[str, str] = {}  # table -> its hash key attribute

    def partition(self, key: str) -> Partition:
        return self.partitions[zlib.crc32(key.encode()) % len(self.partitions)]

    async def handle(self, target: bytes, body: bytes) -> bytes:
        op = target.rpartition(b".")[2]
        req = orjson.loads(body)
        table = req.get("TableName", "")
        if op == b"GetItem":
            key = next(iter(req["Key"].values()))["S"]
            item = self.partition(key).items.get(key)
            return answer(200, orjson.dumps({"Item": item} if item is not None else {}))
        if op in (b"PutItem", b"UpdateItem"):
            if table not in self.tables:
                return error("ResourceNotFoundException", "Requested resource not found")
            if op == b"PutItem":
                item = req["Item"]
                key = item[self.tables[table]]["S"]
                p = self.partition(key)
                old = p.current(key)
            else:
                key_attr, key_value = next(iter(req["Key"].items()))
                key = key_value["S"]
                p = self.partition(key)
                old = p.current(key)
                item = dict(old) if old is not None else {key_attr: key_value}
                item[req["ExpressionAttributeNames"]["#f"]] = req["ExpressionAttributeValues"][":v"]
            p.pending[key] = item
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            p.queue.put_nowait((key, item, old, done))
            if p.want and p.queue.qsize() >= p.want:
                p.enough.set()
            await done
            return answer(200, b"{}")
        desc = {"TableName": table, "TableStatus": "ACTIVE", "ItemCount": 0,
                "KeySchema": req.get("KeySchema", [{"AttributeName": "key", "KeyType": "HASH"}])}
        if op == b"DescribeTable":
            if table not in self.tables:
                return error("ResourceNotFoundException", f"Requested resource not found: Table: {table} not found")
            return answer(200, orjson.dumps({"Table": desc}))
        if op == b"CreateTable":
            self.tables[table] = req["KeySchema"][0]["AttributeName"]
            return answer(200, orjson.dumps({"TableDescription": desc}))
        if op == b"DeleteTable":
            self.tables.pop(table, None)
            for p in self.partitions:
                p.items.clear()
            return answer(200, orjson.dumps({"TableDescription": desc | {"TableStatus": "DELETING"}}))
        return error("UnknownOperationException")


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (as bench/ycsb.py sends)."""

    def __init__(self, handle: Callable[[bytes, bytes], Awaitable[bytes]]) -> None:
        self.handle = handle
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.target = b""
        self.body: list[bytes] = []
        self.answering: set[asyncio.Future[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.target = b""
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-amz-target":
            self.target = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        task = asyncio.ensure_future(self.respond(self.target, b"".join(self.body)))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    async def respond(self, target: bytes, body: bytes) -> None:
        try:
            out = await self.handle(target, body)
        except Exception as e:
            out = answer(500, orjson.dumps({"__type": "InternalServerError", "message": repr(e)}))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)


REQUEST = struct.Struct(">IHI")  # request id, target length, body length
ANSWER = struct.Struct(">II")  # request id, answer length


class FrameServer(asyncio.Protocol):
    """--hop: requests as frames from the front process, answered as they complete."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.answering: set[asyncio.Future[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= REQUEST.size:
            rid, tlen, blen = REQUEST.unpack_from(self.buf)
            end = REQUEST.size + tlen + blen
            if len(self.buf) < end:
                return
            target = bytes(self.buf[REQUEST.size : REQUEST.size + tlen])
            body = bytes(self.buf[REQUEST.size + tlen : end])
            del self.buf[:end]
            task = asyncio.ensure_future(self.respond(rid, target, body))
            self.answering.add(task)
            task.add_done_callback(self.answering.discard)

    async def respond(self, rid: int, target: bytes, body: bytes) -> None:
        try:
            out = await self.server.handle(target, body)
        except Exception as e:
            out = answer(500, orjson.dumps({"__type": "InternalServerError", "message": repr(e)}))
        if self.transport is not None:
            self.transport.write(ANSWER.pack(rid, len(out)) + out)


class FrameClient(asyncio.Protocol):
    """The front process's connection to the server: many requests in flight."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= ANSWER.size:
            rid, n = ANSWER.unpack_from(self.buf)
            if len(self.buf) < ANSWER.size + n:
                return
            out = bytes(self.buf[ANSWER.size : ANSWER.size + n])
            del self.buf[: ANSWER.size + n]
            self.waiting.pop(rid).set_result(out)

    async def call(self, target: bytes, body: bytes) -> bytes:
        assert self.transport is not None
        self.next_id = rid = (self.next_id + 1) & 0xFFFFFFFF
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        self.transport.write(REQUEST.pack(rid, len(target), len(body)) + target + body)
        return await fut


async def front(port: int, inner_port: int) -> None:
    """--hop's front process: HTTP in, frames to the server over one connection, answers back."""
    loop = asyncio.get_running_loop()
    for _ in range(100):
        try:
            _, client = await loop.create_connection(FrameClient, "127.0.0.1", inner_port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise SystemExit(f"front: no server on port {inner_port}")
    srv = await loop.create_server(lambda: Connection(client.call), "127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()


async def follow(bootstrap: str, topics: list[str], followers: int, fetch_wait_ms: int, fetch_min_bytes: int) -> None:
    """The follower replicas: each consumes every log topic and holds its items in memory."""
    held: list[dict[bytes, bytes]] = [{} for _ in range(followers)]

    async def one(i: int, topic: str) -> None:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed",
                             fetch_max_wait_ms=fetch_wait_ms, fetch_min_bytes=fetch_min_bytes,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
        await c.start()
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        while True:
            for r in (await c.getmany(tp, timeout_ms=1000)).get(tp, []):
                held[i][r.key] = r.value

    await asyncio.gather(*(one(i, t) for i in range(followers) for t in topics))


async def serve(a: argparse.Namespace, kafka: LocalKafka, data: Path) -> None:
    topics = [f"ceiling.p{i}" for i in range(a.partitions)]
    admin = await KafkaAdmin(kafka.bootstrap_servers).start()
    try:
        for t in topics:
            await create_topic(admin, t)
    finally:
        await admin.close()
    partitions = []
    for t in topics:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True,
                                    linger_ms=0, max_batch_size=1024 * 1024)
        await producer.start()
        partitions.append(Partition(t, producer, a.linger_ms, a.old_images))
    tasks = [asyncio.ensure_future(p.run()) for p in partitions]
    follower = None
    pids = {"storage-ceiling": os.getpid()}
    if a.followers:
        follower = subprocess.Popen([sys.executable, __file__, "--follow", kafka.bootstrap_servers, ",".join(topics),
                                     "--followers", str(a.followers)])
        pids["storage-followers"] = follower.pid
    (data / "system.json").write_text(json.dumps({"pids": pids}))
    server = Server(partitions)
    loop = asyncio.get_running_loop()
    front = None
    if a.hop:
        # the requests come through a front process over one connection, as through a router
        inner = await loop.create_server(lambda: FrameServer(server), "127.0.0.1", a.port + 1)
        front = subprocess.Popen([sys.executable, __file__, "--front", str(a.port), str(a.port + 1)])
        pids["router-front"] = front.pid
        (data / "system.json").write_text(json.dumps({"pids": pids}))
        srv = inner
        for _ in range(100):  # serving once the front takes connections
            try:
                _, probe = await asyncio.open_connection("127.0.0.1", a.port)
                probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
    else:
        srv = await loop.create_server(lambda: Connection(server.handle), "127.0.0.1", a.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ceiling: serving on 127.0.0.1:{a.port}, {a.brokers} broker(s), {a.partitions} log topic(s), "
          f"{a.followers} follower(s), linger {a.linger_ms:g} ms; stops after {a.seconds:.0f} s", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    with contextlib.suppress(TimeoutError):  # a signal, or --seconds are up
        await asyncio.wait_for(stop.wait(), timeout=a.seconds)
    elapsed = time.monotonic() - t0
    groups = sum(p.groups for p in partitions)
    writes = sum(p.writes for p in partitions)
    print(f"ceiling: {writes} writes in {groups} groups ({writes / max(groups, 1):.2f} a group) over {elapsed:.0f} s",
          file=sys.stderr, flush=True)
    srv.close()
    for t in tasks:
        t.cancel()
    for p in partitions:
        await p.producer.stop()
    for child in (follower, front):
        if child is not None:
            child.terminate()
            child.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="where the brokers keep their data and system.json is written "
                                       "(required unless --follow)")
    ap.add_argument("--brokers", type=int, default=3, choices=(1, 3), help="Kafka brokers (default 3)")
    ap.add_argument("--partitions", type=int, default=1,
                    help="log topics, keys spread by hash (default 1: a new Dynamolog table's one partition)")
    ap.add_argument("--followers", type=int, default=2, help="follower replicas per topic (default 2)")
    ap.add_argument("--linger-ms", type=float, default=6.0,
                    help="a group's linger bound, as DYNAMOLOG_GROUP_LINGER_MS (default 6; 0: none)")
    ap.add_argument("--old-images", action="store_true",
                    help="log each write's old item beside its new one, as a Dynamolog log record does")
    ap.add_argument("--port", type=int, default=8402, help="HTTP port on 127.0.0.1 (default 8402)")
    ap.add_argument("--kafka-port", type=int, default=29510, help="first broker port (default 29510)")
    ap.add_argument("--seconds", type=float, default=900, help="stop after this long (default 900)")
    ap.add_argument("--hop", action="store_true",
                    help="serve HTTP from a second process that forwards each request to the server over one "
                         "TCP connection, as a request router forwards to a partition's leader")
    ap.add_argument("--front", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--follow", nargs=2, metavar=("BOOTSTRAP", "TOPICS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    uvloop.install()
    if a.front:
        asyncio.run(front(*a.front))
        return
    if a.follow:
        from dynamolog import config
        s = config.settings()
        asyncio.run(follow(a.follow[0], a.follow[1].split(","), a.followers, s.follower_fetch_wait_ms,
                           s.follower_fetch_min_bytes))
        return
    if not a.data_dir:
        ap.error("--data-dir is required")
    data = Path(a.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(data / "kafka", brokers=a.brokers, base_port=a.kafka_port)
    print(f"ceiling: starting {a.brokers} Kafka broker(s) in {data / 'kafka'} ...", file=sys.stderr, flush=True)
    kafka.start(timeout_s=180)
    try:
        asyncio.run(serve(a, kafka, data))
    finally:
        kafka.stop()


if __name__ == "__main__":
    main()
