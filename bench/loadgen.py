#!/usr/bin/env python3
"""Closed-loop load generator for DynamoDB-compatible servers (JSON 1.0 protocol).

It speaks raw HTTP/1.1 over keep-alive connections (asyncio + uvloop, one
connection per client, one request in flight per connection), pre-builds the
constant part of every request and parses responses with httptools
(Content-Length and chunked bodies).  No AWS SDK is involved, so one Python
core drives far more requests than boto3 could (see
docs/decisions/0005-benchmark-load-generator.md).

Data layout
  --items N partition keys  pk00000000 .. pk{N-1}, each with --sort-keys S
  sort keys s0 .. s{S-1}  (default S=4, so N*S items in all).  Every item is
  {pk, sk, v} where the string v pads the item to --item-bytes (DynamoDB item
  size = attribute-name lengths + value lengths).

Phases (each run for 1 s of warm-up, not counted, then --duration seconds)
  put    PutItem of one item at a random (pk, sk) among the N*S keys
  get    GetItem of a random existing key, ConsistentRead false; an empty
         answer counts as error "check:ItemMissing"
  query  Query pk = :p with Limit 10: returns the S items of one partition;
         a different Count counts as error "check:QueryCount"
  txn2   TransactWriteItems of two PutItems: one item of the table and one of a second
         table (<table>-txn, created with --create), so the transaction always spans two
         partitions, as two Puts of different tables live in different partition logs
  Before get/query all N*S keys are preloaded (BatchWriteItem of 25, falling
  back to PutItem if the server lacks BatchWriteItem), with a progress bar.

Figures per phase: ops (successful, in the measured window), errors by
__type (or HTTP status / transport failure), throughput ops/s, latency
p50/p90/p99/max in ms over successful ops, and the CPU the load generator
itself used (100% = one core; the generator is one thread, so near 100% means
the figures are bounded by the generator, not the server).

Examples
  python bench/loadgen.py --endpoint http://127.0.0.1:8000 --create \\
      --clients 32 --duration 10 --items 10000 --json /tmp/r.json
  python bench/loadgen.py --endpoint http://127.0.0.1:8001 --create \
      --clients 32 --duration 5 --items 2000 --repeat 3 --label dynalite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import creds

from dynamolog.auth import sigv4

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a project dependency
    uvloop = None

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

PHASES = ("put", "get", "query", "txn2")
WARMUP_S = 1.0


# --------------------------------------------------------------------------
# Request construction
# --------------------------------------------------------------------------


#: the headers the load generator signs, in canonical (sorted) order
_SIGNED = ("content-type", "host", "x-amz-date", "x-amz-target")
_CONTENT_TYPE = "application/x-amz-json-1.0"


class RequestBuilder:
    """Builds each request with a real SigV4 signature (what an SDK sends), computed by
    dynamolog.auth.sigv4 (the router's own implementation): the signing key is derived once per
    day and the date header once per second, the rest is per request."""

    def __init__(self, hostport: str, access_key: str = "AKIDBENCHPLACEHOLDER",
                 secret_key: str = "bench-placeholder-secret", region: str = "us-east-1") -> None:
        self.host = hostport.encode()
        self._host = hostport
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self._second = -1
        self._date = b""
        self._stamp = ""
        self._scope = ""
        self._key = b""

    def _clock(self) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            if stamp[:8] != self._scope[:8]:
                self._key = sigv4.derive_signing_key(self.secret_key, stamp[:8], self.region)
                self._scope = sigv4.scope_of(stamp[:8], self.region)
            self._stamp = stamp
            self._date = stamp.encode()

    def build(self, op: str, body: bytes) -> bytes:
        self._clock()
        target = "DynamoDB_20120810." + op
        headers = {"content-type": _CONTENT_TYPE, "host": self._host, "x-amz-date": self._stamp,
                   "x-amz-target": target}
        canonical = sigv4.canonical_request("POST", "/", headers, _SIGNED, body)
        auth = sigv4.authorization(self.access_key, self._scope, _SIGNED,
                                   sigv4.signature(self._key, self._stamp, self._scope, canonical))
        return b"".join((
            b"POST / HTTP/1.1\r\nHost: ", self.host,
            b"\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: ", target.encode(),
            b"\r\nX-Amz-Date: ", self._date,
            b"\r\nAuthorization: ", auth.encode(),
            b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))


class Workload:
    """Keys, item payloads and the per-op body templates."""

    def __init__(self, table: str, items: int, sort_keys: int, item_bytes: int, seed: int) -> None:
        self.table = table
        self.n_pk = items
        self.n_sk = sort_keys
        self.pks = [b"pk%08d" % i for i in range(items)]
        self.sks = [b"s%d" % j for j in range(sort_keys)]
        # item size = len("pk")+len(pk) + len("sk")+len(sk) + len("v")+len(v)
        overhead = 2 + len(self.pks[0]) + 2 + len(self.sks[-1]) + 1
        self.pad = max(1, item_bytes - overhead)
        rnd = random.Random(seed)
        alphabet = string.ascii_letters + string.digits
        # A pool bigger than one payload; each put takes a slice at a random
        # offset, so values differ without generating bytes per request.
        self.pool = "".join(rnd.choice(alphabet) for _ in range(self.pad + 4096)).encode()
        t = orjson.dumps(table)
        self.put_pre = b'{"TableName":' + t + b',"Item":{"pk":{"S":"'
        self.get_pre = b'{"TableName":' + t + b',"Key":{"pk":{"S":"'
        self.get_post = b'"}},"ConsistentRead":false}'
        self.query_pre = (
            b'{"TableName":' + t + b',"KeyConditionExpression":"pk = :p",'
            b'"ExpressionAttributeValues":{":p":{"S":"'
        )
        self.query_post = b'"}},"Limit":10}'
        self.query_expect = min(10, sort_keys)
        self.txn_pre = b'{"TransactItems":[{"Put":{"TableName":' + t + b',"Item":'
        self.txn_mid = b'}},{"Put":{"TableName":' + orjson.dumps(table + "-txn") + b',"Item":'
        self.txn_post = b'}}]}'

    def value(self, rnd: random.Random) -> bytes:
        off = int(rnd.random() * 4096)
        return self.pool[off : off + self.pad]

    def put_body(self, pk: bytes, sk: bytes, rnd: random.Random) -> bytes:
        return b"".join(
            (self.put_pre, pk, b'"},"sk":{"S":"', sk, b'"},"v":{"S":"', self.value(rnd), b'"}}}')
        )

    def item_json(self, pk: bytes, sk: bytes, rnd: random.Random) -> bytes:
        return b"".join((b'{"pk":{"S":"', pk, b'"},"sk":{"S":"', sk, b'"},"v":{"S":"', self.value(rnd), b'"}}'))

    def txn2_body(self, pk: bytes, sk: bytes, rnd: random.Random) -> bytes:
        return b"".join((self.txn_pre, self.item_json(pk, sk, rnd), self.txn_mid, self.item_json(pk, sk, rnd),
                         self.txn_post))

    def get_body(self, pk: bytes, sk: bytes) -> bytes:
        return b"".join((self.get_pre, pk, b'"},"sk":{"S":"', sk, self.get_post))

    def query_body(self, pk: bytes) -> bytes:
        return b"".join((self.query_pre, pk, self.query_post))


# --------------------------------------------------------------------------
# Connection: asyncio Protocol + httptools response parser
# --------------------------------------------------------------------------


class Conn(asyncio.Protocol):
    __slots__ = ("chunks", "closed", "keep", "loop", "parser", "transport", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.chunks: list[bytes] = []
        self.closed = False
        self.keep = True

    # asyncio callbacks
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.closed = True
        self._fail(ConnectionError("connection closed by peer"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.chunks = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep = self.parser.should_keep_alive()
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            w.set_result((self.parser.get_status_code(), body))

    def _fail(self, exc: Exception) -> None:
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            w.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future:
        fut = self.loop.create_future()
        self.waiter = fut
        self.transport.write(data)
        return fut

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Client:
    """One keep-alive connection; reconnects after failures."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: Conn | None = None
        self.sent_at = 0.0

    async def _connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: Conn(loop), self.host, self.port), self.timeout
        )
        return proto

    async def request(self, data: bytes) -> tuple[int, bytes]:
        conn = self.conn
        if conn is None or conn.closed or not conn.keep:
            if conn is not None:
                conn.close()
            conn = self.conn = await self._connect()
        # No per-request timer (asyncio.wait_for costs more than the request
        # itself): the watchdog below fails requests older than the timeout.
        self.sent_at = time.monotonic()
        try:
            return await conn.send(data)
        except BaseException:
            conn.close()
            self.conn = None
            raise
        finally:
            self.sent_at = 0.0

    def expire(self, now: float) -> None:
        if self.sent_at and now - self.sent_at > self.timeout and self.conn is not None:
            self.conn._fail(TimeoutError())
            self.conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def watchdog(clients: list[Client]) -> None:
    """Times out stuck requests; runs for the whole benchmark."""
    while True:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        for c in clients:
            c.expire(now)


def error_type(status: int, body: bytes) -> str:
    try:
        t = orjson.loads(body).get("__type", "")
    except Exception:
        t = ""
    if t:
        return t.rsplit("#", 1)[-1]
    return f"HTTP{status}"


async def call(client: Client, rb: RequestBuilder, op: str, payload: dict) -> tuple[int, dict]:
    status, body = await client.request(rb.build(op, orjson.dumps(payload)))
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        doc = {"__type": f"HTTP{status}", "raw": body[:200].decode("latin-1")}
    return status, doc


# --------------------------------------------------------------------------
# Table management
# --------------------------------------------------------------------------


def _type(doc: dict) -> str:
    return str(doc.get("__type", "")).rsplit("#", 1)[-1]


#: the benchmark table's key: pk (S) hash, sk (S) range
KEY_SCHEMA = (("pk", "HASH"), ("sk", "RANGE"))


async def create_table(client: Client, rb: RequestBuilder, table: str, timeout: float = 120.0,
                       key_schema: tuple[tuple[str, str], ...] = KEY_SCHEMA,
                       extra: dict[str, Any] | None = None) -> None:
    """(Re)create ``table`` (PAY_PER_REQUEST, string key attributes ``key_schema``, and any
    ``extra`` CreateTable parameters) and wait for ACTIVE."""
    deadline = time.monotonic() + timeout
    status, doc = await call(client, rb, "DescribeTable", {"TableName": table})
    if status == 200:
        print(f"table {table!r} exists: deleting it", file=sys.stderr)
        status, doc = await call(client, rb, "DeleteTable", {"TableName": table})
        if status != 200 and _type(doc) != "ResourceNotFoundException":
            raise SystemExit(f"DeleteTable failed: {status} {doc}")
        while time.monotonic() < deadline:
            status, doc = await call(client, rb, "DescribeTable", {"TableName": table})
            if status != 200 and _type(doc) == "ResourceNotFoundException":
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit("timed out waiting for DeleteTable")
    elif _type(doc) != "ResourceNotFoundException":
        raise SystemExit(f"DescribeTable failed: {status} {doc}")
    status, doc = await call(
        client,
        rb,
        "CreateTable",
        {
            "TableName": table,
            "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name, _ in key_schema],
            "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in key_schema],
            "BillingMode": "PAY_PER_REQUEST",
            **(extra or {}),
        },
    )
    if status != 200:
        raise SystemExit(f"CreateTable failed: {status} {doc}")
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        status, doc = await call(client, rb, "DescribeTable", {"TableName": table})
        if status == 200 and doc.get("Table", {}).get("TableStatus") == "ACTIVE":
            print(f"table {table!r} ACTIVE after {time.monotonic() - t0:.2f}s", file=sys.stderr)
            return
        await asyncio.sleep(0.05)
    raise SystemExit("timed out waiting for the table to become ACTIVE")


# --------------------------------------------------------------------------
# Preload
# --------------------------------------------------------------------------


async def preload(
    clients: list[Client], rb: RequestBuilder, wl: Workload, timeout: float, progress: bool
) -> dict:
    keys = [(pk, sk) for pk in wl.pks for sk in wl.sks]
    total = len(keys)
    rnd = random.Random(7)
    deadline = time.monotonic() + timeout
    t_name = wl.table
    state = {"mode": "batch", "errors": Counter(), "done": 0}
    bar = tqdm(total=total, unit="item", desc="preload", file=sys.stderr, disable=not progress) if tqdm else None
    batches = [keys[i : i + 25] for i in range(0, total, 25)]
    it = iter(range(len(batches)))
    mode_lock = asyncio.Lock()

    def tick(n: int) -> None:
        state["done"] += n
        if bar is not None:
            bar.update(n)

    async def put_one(c: Client, pk: bytes, sk: bytes) -> None:
        for _ in range(20):
            if time.monotonic() > deadline:
                raise SystemExit("preload timed out")
            status, body = await c.request(rb.build("PutItem", wl.put_body(pk, sk, rnd)))
            if status == 200:
                tick(1)
                return
            state["errors"][error_type(status, body)] += 1
            await asyncio.sleep(0.05)
        raise SystemExit(f"PutItem keeps failing during preload: {dict(state['errors'])}")

    async def worker(c: Client) -> None:
        for bi in it:
            batch = batches[bi]
            if state["mode"] == "batch":
                reqs = [b'{"PutRequest":{"Item":' + wl.item_json(pk, sk, rnd) + b"}}" for pk, sk in batch]
                body = b'{"RequestItems":{' + orjson.dumps(t_name) + b":[" + b",".join(reqs) + b"]}}"
                pending = len(batch)
                for attempt in range(50):
                    if time.monotonic() > deadline:
                        raise SystemExit("preload timed out")
                    status, rbody = await c.request(rb.build("BatchWriteItem", body))
                    if status != 200:
                        et = error_type(status, rbody)
                        state["errors"][et] += 1
                        if "Throttl" in et or "Throughput" in et or status >= 500:
                            await asyncio.sleep(min(1.0, 0.02 * 2**attempt))
                            continue
                        # The server does not handle BatchWriteItem: single puts.
                        async with mode_lock:
                            if state["mode"] == "batch":
                                print(f"\nBatchWriteItem answered {et}: preloading with PutItem", file=sys.stderr)
                                state["mode"] = "put"
                        break
                    un = (orjson.loads(rbody).get("UnprocessedItems") or {}).get(t_name) or []
                    tick(pending - len(un))
                    if not un:
                        pending = 0
                        break
                    pending = len(un)
                    body = orjson.dumps({"RequestItems": {t_name: un}})
                    await asyncio.sleep(min(1.0, 0.01 * 2**attempt))
                else:
                    raise SystemExit("BatchWriteItem keeps leaving unprocessed items")
                if pending == 0:
                    continue
                if state["mode"] == "batch":
                    raise SystemExit("preload failed")
            for pk, sk in batch:
                await put_one(c, pk, sk)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        if bar is not None:
            bar.close()
    dt = time.perf_counter() - t0
    return {
        "items": total,
        "written": state["done"],
        "seconds": round(dt, 3),
        "items_per_s": round(total / dt, 1) if dt else None,
        "mode": "BatchWriteItem" if state["mode"] == "batch" else "PutItem",
        "retried_errors": dict(state["errors"]),
    }


# --------------------------------------------------------------------------
# Measured phases
# --------------------------------------------------------------------------


@dataclass
class PhaseResult:
    phase: str
    seconds: float
    ops: int = 0
    errors: Counter = field(default_factory=Counter)
    lat: list = field(default_factory=list)
    cpu_s: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.lat)
        n = len(lat)

        def pct(p: float) -> float | None:
            if not n:
                return None
            return round(lat[min(n - 1, int(p * n))] * 1000.0, 3)

        return {
            "phase": self.phase,
            "seconds": round(self.seconds, 3),
            "ops": self.ops,
            "ops_per_s": round(self.ops / self.seconds, 1) if self.seconds else 0.0,
            "errors": sum(self.errors.values()),
            "errors_by_type": dict(self.errors),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000.0, 3) if n else None,
            "loadgen_cpu_pct": round(100.0 * self.cpu_s / (self.seconds + WARMUP_S), 1),
        }


def ceiling(row: dict) -> float | None:
    """Throughput the generator could drive at 100% of its one core, estimated
    as ops/s divided by the fraction of a core it used."""
    cpu = row.get("loadgen_cpu_pct")
    return round(row["ops_per_s"] * 100.0 / cpu) if cpu else None


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_phase(
    phase: str, clients: list[Client], rb: RequestBuilder, wl: Workload, duration: float, max_ops: int, seed: int,
    rate: float = 0.0,
) -> PhaseResult:
    res = PhaseResult(phase, duration)
    loop_time = time.perf_counter
    start = loop_time()
    measure_from = start + WARMUP_S
    deadline = measure_from + duration
    budget = [max_ops]
    lat = res.lat
    errors = res.errors
    pks, sks, n_pk, n_sk = wl.pks, wl.sks, wl.n_pk, wl.n_sk
    build = rb.build
    expect = wl.query_expect
    loads = orjson.loads

    # --rate: each client sends on a fixed schedule (open loop); latency counts from the
    # scheduled send time, so a slow server is not hidden by the generator waiting for it.
    interval = len(clients) / rate if rate > 0 else 0.0

    async def worker(c: Client, wseed: int) -> None:
        rnd = random.Random(wseed)
        rr = rnd.random
        ok = 0
        scheduled = start + (interval * (wseed % 100003) / len(clients) if interval else 0.0)
        while budget[0] > 0:
            if interval:
                scheduled += interval
                delay = scheduled - loop_time()
                if delay > 0:
                    await asyncio.sleep(delay)
            budget[0] -= 1
            pk = pks[int(rr() * n_pk)]
            if phase == "put":
                req = build("PutItem", wl.put_body(pk, sks[int(rr() * n_sk)], rnd))
            elif phase == "txn2":
                req = build("TransactWriteItems", wl.txn2_body(pk, sks[int(rr() * n_sk)], rnd))
            elif phase == "get":
                req = build("GetItem", wl.get_body(pk, sks[int(rr() * n_sk)]))
            else:
                req = build("Query", wl.query_body(pk))
            t0 = loop_time()
            if t0 >= deadline:
                break
            if interval:
                t0 = min(t0, scheduled)
            err = None
            try:
                status, body = await c.request(req)
            except TimeoutError:
                err = "Timeout"
            except (ConnectionError, OSError) as exc:
                err = type(exc).__name__
                await asyncio.sleep(0.01)
            else:
                if status != 200:
                    err = error_type(status, body)
                elif phase == "get":
                    if b'"Item"' not in body:
                        err = "check:ItemMissing"
                elif phase == "query":
                    try:
                        if loads(body).get("Count") != expect:
                            err = "check:QueryCount"
                    except orjson.JSONDecodeError:
                        err = "check:BadJSON"
            t1 = loop_time()
            if measure_from <= t1 <= deadline:
                if err is None:
                    ok += 1
                    lat.append(t1 - t0)
                else:
                    errors[err] += 1
        res.ops += ok

    cpu0 = _cpu()
    await asyncio.gather(*(worker(c, seed * 100003 + i) for i, c in enumerate(clients)))
    res.cpu_s = _cpu() - cpu0
    if budget[0] <= 0:
        # Stopped by --max-ops before the deadline: measure the real window.
        res.seconds = max(1e-9, min(deadline, loop_time()) - measure_from)
    return res


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

COLS = ("phase", "runs", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "loadgen CPU%")


def median_summary(runs: list[dict]) -> dict:
    def med(key: str):
        vals = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    errs: Counter = Counter()
    for r in runs:
        errs.update(r["errors_by_type"])
    return {
        "phase": runs[0]["phase"],
        "runs": len(runs),
        "ops": int(statistics.median(r["ops"] for r in runs)),
        "ops_per_s": med("ops_per_s"),
        "p50_ms": med("p50_ms"),
        "p90_ms": med("p90_ms"),
        "p99_ms": med("p99_ms"),
        "max_ms": med("max_ms"),
        "errors": sum(errs.values()),
        "errors_by_type": dict(errs),
        "loadgen_cpu_pct": med("loadgen_cpu_pct"),
        "loadgen_ceiling_ops_s": med("loadgen_ceiling_ops_s"),
    }


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if v >= 100 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def format_table(rows: list[dict]) -> str:
    lines = [[
        r["phase"], r["runs"], r["ops"], r["ops_per_s"], r["p50_ms"], r["p90_ms"],
        r["p99_ms"], r["max_ms"],
        r["errors"] if not r["errors"] else f'{r["errors"]} ' + ",".join(f"{k}={v}" for k, v in sorted(r["errors_by_type"].items())),
        r["loadgen_cpu_pct"],
    ] for r in rows]
    cells = [list(COLS)] + [[_fmt(c) for c in line] for line in lines]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLS))]
    out = []
    for k, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="loadgen.py",
        description=__doc__.split("\n\n", 1)[0] + "\n\n" + __doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--endpoint", default="http://127.0.0.1:8000", help="server URL, http://127.0.0.1 only (default %(default)s)")
    p.add_argument("--clients", type=int, default=32, help="concurrent connections, one request in flight each (default %(default)s)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase run, after 1 s of warm-up (default %(default)s)")
    p.add_argument("--item-bytes", type=int, default=1024, help="DynamoDB size of each item (default %(default)s)")
    p.add_argument("--items", type=int, default=10000, help="number of partition keys; items = items x sort-keys (default %(default)s)")
    p.add_argument("--sort-keys", type=int, default=4, help="sort keys per partition key = items a Query returns (default %(default)s)")
    p.add_argument("--ops", default="put,get,query", help="phases to run, in this order (default %(default)s)")
    p.add_argument("--table", default="bench", help="table name (default %(default)s)")
    p.add_argument("--create", action="store_true", help="(re)create the table: pk (S) hash, sk (S) range, PAY_PER_REQUEST; waits for ACTIVE")
    p.add_argument("--no-preload", action="store_true", help="skip the preload before get/query (the table must already hold every key)")
    p.add_argument("--repeat", type=int, default=1, help="runs per phase; the table quotes the median of each figure (default %(default)s)")
    p.add_argument("--max-ops", type=int, default=5_000_000, help="hard cap on requests per phase run (default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default %(default)s)")
    p.add_argument("--preload-timeout", type=float, default=900.0, help="give up preloading after this many seconds (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="offered load in ops/s across all clients (open loop: each client sends on a fixed "
                   "schedule and latency counts from the scheduled time); default 0 = closed loop, as fast as "
                   "answers come")
    p.add_argument("--data-dir", default=None,
                   help="sign with the administrator key in DATA_DIR/credentials.env unless $AWS_ACCESS_KEY_ID and "
                   "$AWS_SECRET_ACCESS_KEY are set (default: $DYNAMOLOG_DATA_DIR or .data)")
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                   help="region of the signature's scope (default: $AWS_DEFAULT_REGION or us-east-1)")
    p.add_argument("--label", default="", help="name of this run in the output (e.g. dynamolog, dynalite)")
    p.add_argument("--json", metavar="OUT", help="write all results (every run and the medians) to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    a.ops = [o.strip() for o in a.ops.split(",") if o.strip()]
    bad = [o for o in a.ops if o not in PHASES]
    if bad:
        p.error(f"unknown ops {bad}; choose from {','.join(PHASES)}")
    u = urlsplit(a.endpoint)
    if u.scheme != "http" or not u.hostname:
        p.error("--endpoint must look like http://127.0.0.1:PORT")
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("--endpoint must be a loopback address")
    a.host = "127.0.0.1" if u.hostname == "localhost" else u.hostname
    a.port = u.port or 80
    a.hostport = u.netloc
    if a.clients < 1 or a.duration <= 0 or a.items < 1 or a.sort_keys < 1 or a.repeat < 1:
        p.error("--clients, --duration, --items, --sort-keys and --repeat must be positive")
    return a


async def amain(a: argparse.Namespace) -> dict:
    key, secret = creds.credentials(Path(a.data_dir) if a.data_dir else None)
    rb = RequestBuilder(a.hostport, key, secret, a.region)
    wl = Workload(a.table, a.items, a.sort_keys, a.item_bytes, a.seed)
    clients = [Client(a.host, a.port, a.timeout) for _ in range(a.clients)]
    layout = (
        f"{a.items} partition keys x {a.sort_keys} sort keys = {a.items * a.sort_keys} items of "
        f"{a.item_bytes} B; Query pk = :p Limit 10 returns {wl.query_expect} items"
    )
    out: dict = {
        "label": a.label,
        "endpoint": a.endpoint,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "params": {k: getattr(a, k) for k in ("clients", "duration", "item_bytes", "items", "sort_keys", "ops", "table", "repeat")},
        "layout": layout,
        "warmup_s": WARMUP_S,
        "event_loop": "uvloop" if uvloop else "asyncio",
        "preload": None,
        "runs": {},
        "median": [],
    }
    label = f"[{a.label}] " if a.label else ""
    print(f"{label}{a.endpoint}  clients={a.clients} duration={a.duration}s(+{WARMUP_S}s warm-up) repeat={a.repeat}", file=sys.stderr)
    print(f"{label}layout: {layout}", file=sys.stderr)
    dog = asyncio.ensure_future(watchdog(clients))
    try:
        if a.create:
            await create_table(clients[0], rb, a.table)
            if "txn2" in a.ops:
                await create_table(clients[0], rb, a.table + "-txn")
        loaded = False
        run = 0
        for phase in a.ops:
            if phase in ("get", "query") and not loaded and not a.no_preload:
                out["preload"] = await preload(clients, rb, wl, a.preload_timeout, not a.no_progress)
                pl = out["preload"]
                print(f"{label}preloaded {pl['items']} items in {pl['seconds']}s ({pl['items_per_s']}/s via {pl['mode']})", file=sys.stderr)
                loaded = True
            runs = []
            for r in range(a.repeat):
                run += 1
                res = (await run_phase(phase, clients, rb, wl, a.duration, a.max_ops, a.seed + run,
                                       a.rate)).summary()
                res["loadgen_ceiling_ops_s"] = ceiling(res)
                runs.append(res)
                print(
                    f"{label}{phase} run {r + 1}/{a.repeat}: {res['ops_per_s']:,.0f} ops/s  p50 {res['p50_ms']} ms  "
                    f"p99 {res['p99_ms']} ms  errors {res['errors']}  loadgen CPU {res['loadgen_cpu_pct']}%",
                    file=sys.stderr,
                )
            out["runs"][phase] = runs
            out["median"].append(median_summary(runs))
    finally:
        dog.cancel()
        for c in clients:
            c.close()
    return out


def main(argv=None) -> int:
    a = parse_args(argv)
    if uvloop is not None:
        uvloop.install()
    out = asyncio.run(amain(a))
    title = f"{a.label or a.endpoint}: {a.clients} clients, {a.duration:g}s per run, median of {a.repeat} run(s)"
    print()
    print(title)
    print(out["layout"])
    print(format_table(out["median"]))
    print(
        "loadgen CPU% = the generator's own CPU (100% = its one core); it could drive about "
        + ", ".join(
            f'{r["phase"]} ' + (f'{r["loadgen_ceiling_ops_s"]:,.0f}' if r["loadgen_ceiling_ops_s"] else "-")
            for r in out["median"]
        )
        + " ops/s at 100%."
    )
    if a.json:
        d = os.path.dirname(os.path.abspath(a.json))
        os.makedirs(d, exist_ok=True)
        with open(a.json, "wb") as f:
            f.write(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    return 1 if any(r["ops"] == 0 for r in out["median"]) else 0


if __name__ == "__main__":
    sys.exit(main())
