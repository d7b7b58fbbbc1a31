#!/usr/bin/env python3
"""The REST gateway beside the DynamoDB protocol, at the same load, in one run.

One router serves both on one port (decision 0036). The same closed-loop load (``--clients``
keep-alive connections, one request in flight on each) runs four phases in turn, repeated
``--rounds`` times so that whatever else the machine does falls on both protocols alike:
PutItem and GetItem signed with SigV4 (what an SDK sends; bench/loadgen.py builds them), then
``PUT`` and ``GET /v1/tables/T/items/pk/sk`` with Basic credentials, and PutItem again with a
console open (its event stream read throughout: what the console costs the router). Each phase's
p50, p99 and throughput are reported, medians over the rounds.  Last, with no other load, the
time from a write to its effect on a live plot (``--plot-samples`` single PutItems, each at a
random moment): from sending the PutItem to the first event of the console's stream whose
snapshot shows the table's consumed write units moved, which is the event on which the browser
draws the point (tests/api/test_console.py watches the same in headless Chromium).

    .venv/bin/dynamolog up --detach --data-dir /tmp/bench-rest --port 8430 --storage-port 7440 \\
        --kafka-port 29470 --metrics-port 0
    .venv/bin/python bench/rest_gateway.py --data-dir /tmp/bench-rest --rounds 3 --duration 5
    .venv/bin/dynamolog down --data-dir /tmp/bench-rest

It measures only when the machine's 1-minute load average is below --max-load (default 3): on
a busy machine the figures would say more about the neighbours than about the gateway, so it
prints "not measured" and why, and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from loadgen import Client, RequestBuilder

from dynamolog.auth.credentials import read_env_file


def _rest(method: str, path: str, host: str, auth: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def phase(name: str, clients: list[Client], make: Any, duration: float) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    end = time.monotonic() + duration

    async def worker(c: Client, rnd: random.Random) -> None:
        nonlocal errors
        while time.monotonic() < end:
            data = make(rnd)
            t0 = time.perf_counter()
            status, _ = await c.request(data)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker(c, random.Random(i)) for i, c in enumerate(clients)))
    took = time.monotonic() - t0
    lat.sort()
    return {"phase": name, "requests": len(lat), "errors": errors, "throughput_s": round(len(lat) / took, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None}


class ConsoleStream:
    """The console's event stream, read as a browser reads it: each snapshot's time of arrival
    and the table's consumed write units in it (summed over its partitions' leaders)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.consumed: float | None = None
        self.arrived = 0.0
        self.new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self, port: int, host: str, auth: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_rest("GET", "/console/api/events", host, auth))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        first = head.split(b"\r\n", 1)[0]
        if b" 200 " not in first:
            raise RuntimeError(f"the console's event stream answered {first!r}")
        self._task = asyncio.ensure_future(self._follow(reader, writer))

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        try:
            while True:  # chunked transfer: a size line, the chunk, CRLF
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                buf += await reader.readexactly(size)
                await reader.readexactly(2)
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    for line in event.split(b"\n"):
                        if line.startswith(b"data: "):
                            self._seen(orjson.loads(line[6:]))
        finally:
            writer.close()

    def _seen(self, snap: dict[str, Any]) -> None:
        parts = [p for p in snap["partitions"] if p["table"] == self.table and p.get("capacity")]
        self.consumed = sum(float(p["capacity"]["write"]["consumed"]) for p in parts)
        self.arrived = time.perf_counter()
        self.new.set()

    async def moved_from(self, base: float, timeout_s: float = 10.0) -> float:
        """When the first snapshot with more consumed units than ``base`` arrived."""
        deadline = time.monotonic() + timeout_s
        while self.consumed is None or self.consumed <= base:
            self.new.clear()
            await asyncio.wait_for(self.new.wait(), max(0.01, deadline - time.monotonic()))
        return self.arrived

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def plot_delays(port: int, host: str, auth: str, client: Client, put: Any, table: str,
                      samples: int) -> dict[str, Any]:
    """Write-to-plot delays of ``samples`` single writes (see the module docstring)."""
    stream = ConsoleStream(table)
    await stream.open(port, host, auth)
    delays: list[float] = []
    rnd = random.Random(7)
    try:
        await stream.moved_from(-1.0)  # the first snapshot
        for _ in range(samples):
            await asyncio.sleep(rnd.uniform(0.6, 1.4))  # quiet: the last write is in the figures
            base = stream.consumed if stream.consumed is not None else 0.0
            t0 = time.perf_counter()
            status, _ = await client.request(put(rnd))
            if status != 200:
                raise RuntimeError(f"PutItem answered {status}")
            delays.append(await stream.moved_from(base) - t0)
    finally:
        stream.close()
    delays.sort()
    return {"phase": "write to plot", "samples": len(delays), "p50_ms": round(delays[len(delays) // 2] * 1000, 1),
            "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000, 1),
            "max_ms": round(delays[-1] * 1000, 1)}


async def run(a: argparse.Namespace) -> list[dict[str, Any]]:
    state = json.loads((a.data_dir / "system.json").read_text())
    env = read_env_file(a.data_dir / "credentials.env")
    port = int(state["port"])
    host = f"127.0.0.1:{port}"
    key, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    basic = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    rb = RequestBuilder(host, key, secret, state.get("region", "us-east-1"))
    table = a.table
    admin = Client("127.0.0.1", port, 30)
    status, body = await admin.request(rb.build("DescribeTable", orjson.dumps({"TableName": table})))
    if status != 200:
        await admin.request(rb.build("CreateTable", orjson.dumps({
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "S"}]})))
        for _ in range(600):
            status, body = await admin.request(rb.build("DescribeTable", orjson.dumps({"TableName": table})))
            if status == 200 and orjson.loads(body)["Table"]["TableStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.1)
    value = "x" * a.item_bytes
    for i in range(a.items):  # every GET finds its item
        await admin.request(_rest("PUT", f"/v1/tables/{table}/items/p{i}/s", host, basic,
                                  orjson.dumps({"v": value})))
    clients = [Client("127.0.0.1", port, 30) for _ in range(a.clients)]

    def ddb_put(rnd: random.Random) -> bytes:
        k = rnd.randrange(a.items)
        return rb.build("PutItem", orjson.dumps({"TableName": table, "Item": {
            "pk": {"S": f"p{k}"}, "sk": {"S": "s"}, "v": {"S": value}}}))

    def ddb_get(rnd: random.Random) -> bytes:
        k = rnd.randrange(a.items)
        return rb.build("GetItem", orjson.dumps({"TableName": table, "Key": {"pk": {"S": f"p{k}"}, "sk": {"S": "s"}}}))

    def rest_put(rnd: random.Random) -> bytes:
        return _rest("PUT", f"/v1/tables/{table}/items/p{rnd.randrange(a.items)}/s", host, basic,
                     orjson.dumps({"v": value}))

    def rest_get(rnd: random.Random) -> bytes:
        return _rest("GET", f"/v1/tables/{table}/items/p{rnd.randrange(a.items)}/s", host, basic)

    async def open_console() -> asyncio.Task[None]:
        """An open console: the session's event stream, read as a browser reads it."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_rest("GET", "/console/api/events", host, basic))
        await writer.drain()

        async def drain() -> None:
            try:
                while await reader.read(65536):
                    pass
            finally:
                writer.close()

        return asyncio.ensure_future(drain())

    rows: list[dict[str, Any]] = []
    for r in range(a.rounds):
        for name, make in (("dynamodb PutItem", ddb_put), ("rest PUT", rest_put),
                           ("dynamodb GetItem", ddb_get), ("rest GET", rest_get),
                           ("PutItem, console open", ddb_put)):
            console = await open_console() if "console" in name else None
            await phase(name, clients, make, 1.0)  # warm-up, not counted
            row = await phase(name, clients, make, a.duration)
            if console is not None:
                console.cancel()
            row["round"] = r + 1
            rows.append(row)
            print(json.dumps(row), flush=True)
    for c in clients:
        c.close()
    if a.plot_samples > 0:
        row = await plot_delays(port, host, basic, admin, ddb_put, table, a.plot_samples)
        rows.append(row)
        print(json.dumps(row), flush=True)
    admin.close()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="the data directory of a running `dynamolog up`")
    p.add_argument("--clients", type=int, default=16, help="connections, one request in flight each (default 16)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per phase (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the four phases (default 3)")
    p.add_argument("--items", type=int, default=500, help="items written first and then read (default 500)")
    p.add_argument("--item-bytes", type=int, default=100, help="size of each item's value (default 100)")
    p.add_argument("--table", default="bench_rest", help="table to use (made when missing)")
    p.add_argument("--plot-samples", type=int, default=20,
                   help="single writes timed from PutItem to the live plot's event (default 20; 0: skip)")
    p.add_argument("--max-load", type=float, default=3.0, help="measure only below this 1-minute load average")
    p.add_argument("--json", type=Path, help="write the rows and the medians here")
    a = p.parse_args()
    load = os.getloadavg()[0]
    if load >= a.max_load:
        print(f"not measured: the 1-minute load average is {load:.1f} (>= {a.max_load}); other work on this machine "
              "would dominate the figures", file=sys.stderr)
        return 2
    rows = asyncio.run(run(a))
    medians = {}
    plot = [r for r in rows if r["phase"] == "write to plot"]
    rows = [r for r in rows if r["phase"] != "write to plot"]
    for name in dict.fromkeys(r["phase"] for r in rows):
        mine = [r for r in rows if r["phase"] == name]
        medians[name] = {k: statistics.median(r[k] for r in mine) for k in ("throughput_s", "p50_ms", "p99_ms")}
        medians[name]["errors"] = sum(r["errors"] for r in mine)
    print(f"{'phase':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} errors  (medians of {a.rounds} rounds, "
          f"{a.clients} clients, load average {load:.1f} at start)")
    for name, m in medians.items():
        print(f"{name:<22} {m['throughput_s']:>9.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['errors']:>6}")
    for r in plot:
        print(f"write to a live plot: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms "
              f"({r['samples']} single writes; target <= 1000 ms)")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows + plot, "medians": medians, "load_average": load}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
