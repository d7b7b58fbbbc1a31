#!/usr/bin/env python3
"""Global tables: replication latency between two regions, and the write cost of a replica
(issue 14's figures; decisions 0031-0033).

Two regions on this machine, linked (see `dynamolog regions --help`):

    .venv/bin/dynamolog up --detach --region us-east-1 --data-dir /tmp/gt-a --port 8410 \\
        --storage-port 7410 --kafka-port 29410 --metrics-port 9500
    .venv/bin/dynamolog up --detach --region us-west-2 --data-dir /tmp/gt-b --port 8411 \\
        --storage-port 7450 --kafka-port 29430 --metrics-port 9550
    .venv/bin/dynamolog regions add us-west-2 http://127.0.0.1:8411 --data-dir /tmp/gt-a
    .venv/bin/dynamolog regions add us-east-1 http://127.0.0.1:8410 --data-dir /tmp/gt-b --key ID:SECRET
    .venv/bin/python bench/global_tables.py --a /tmp/gt-a --b /tmp/gt-b --rates 200,500 --duration 20 \\
        --json /tmp/global_tables.json

Latency: a table with a replica in B; PutItem in A open loop at each --rates value for
--duration seconds, each item a fresh key; every --poll-ms one watcher reads from B every write
acknowledged in A and not seen there yet (BatchGetItem, eventually consistent): p50, p99 and the
maximum of (visible in B - acknowledged in A).  Then the stages, from RepOut's and RepIn's own
figures of the last 2,000 changes: write in A -> committed in B's cluster (RepOut), write in A
-> applied in B (RepIn). Throughput (--throughput-s, default 10 s; 0: skip): --clients closed
loop PutItem clients for that long on a table without a replica, then on one with a replica.
Run it only on a quiet machine (load average below 3): it measures the machine as much as the
system otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dynamolog import regions  # noqa: E402
from dynamolog.client.core import Client  # noqa: E402
from dynamolog.launcher import System  # noqa: E402


def client(data_dir: Path) -> Client:
    system = System(data_dir)
    env = system.credentials()
    return Client(env["AWS_ENDPOINT_URL"], region=system.settings().region, access_key=env["AWS_ACCESS_KEY_ID"],
                  secret_key=env["AWS_SECRET_ACCESS_KEY"], max_connections=64)


async def table(a: Client, replica_region: str | None) -> str:
    name = f"bench-gt-{uuid.uuid4().hex[:8]}"
    await a.call("CreateTable", {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                                 "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                                 "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]})
    while (await a.call("DescribeTable", {"TableName": name}))["Table"]["TableStatus"] != "ACTIVE":
        await asyncio.sleep(0.2)
    if replica_region:
        await a.call("UpdateTable", {"TableName": name, "ReplicaUpdates": [{"Create": {"RegionName": replica_region}}]})
        while True:
            reps = (await a.call("DescribeTable", {"TableName": name}))["Table"].get("Replicas", [])
            if reps and all(r["ReplicaStatus"] == "ACTIVE" for r in reps):
                break
            await asyncio.sleep(0.2)
    return name


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


async def latency(a: Client, b: Client, name: str, rate: int, duration: float, poll_ms: float) -> dict[str, Any]:
    """Open-loop PutItem in A at ``rate``; one watcher reads every write not yet seen from B
    (BatchGetItem, eventually consistent, up to 100 keys a request) every ``poll_ms``.  One
    GetItem poller per write would put ``rate`` x latency / ``poll_ms`` reads a second on B
    (10,000/s at 500 writes/s) and measure the probe's own load."""
    lat: list[float] = []
    pending: dict[str, float] = {}  # key -> acknowledged in A (monotonic)
    lost = 0
    writing = True

    async def one(i: int) -> None:
        key = f"r{rate}-{i}"
        await a.call("PutItem", {"TableName": name, "Item": {"pk": {"S": key}, "v": {"N": str(i)}}})
        pending[key] = time.monotonic()

    async def read(keys: list[str]) -> None:
        nonlocal lost
        got = await b.call("BatchGetItem", {"RequestItems": {name: {
            "Keys": [{"pk": {"S": k}} for k in keys], "ProjectionExpression": "pk"}}})
        seen = time.monotonic()
        for item in got.get("Responses", {}).get(name, []):
            acked = pending.pop(item["pk"]["S"], None)
            if acked is not None:
                lat.append((seen - acked) * 1000)
        for k in keys:  # unprocessed keys are read again in the next round
            if k in pending and seen - pending[k] > 30:
                del pending[k]
                lost += 1

    async def watch() -> None:
        while writing or pending:
            t0 = time.monotonic()
            keys = list(pending)
            await asyncio.gather(*(read(keys[i:i + 100]) for i in range(0, len(keys), 100)))
            await asyncio.sleep(max(0.0, poll_ms / 1000 - (time.monotonic() - t0)))

    watcher = asyncio.ensure_future(watch())
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < duration:
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.ensure_future(one(i)))
        i += 1
    await asyncio.gather(*tasks)
    writing = False
    await watcher
    return {"rate": rate, "writes": i, "not_seen_in_30s": lost, "p50_ms": round(pct(lat, 0.5), 1),
            "p99_ms": round(pct(lat, 0.99), 1), "max_ms": round(max(lat, default=float("nan")), 1)}


async def stages(a_dir: Path, b_dir: Path) -> dict[str, Any]:
    """RepOut's and RepIn's own figures of the recent changes (as they publish them every
    ``FIGURES_S``): write in A -> committed in B's cluster, and write in A -> applied in B."""
    await asyncio.sleep(regions.FIGURES_S + 1.0)
    out: dict[str, Any] = {}
    for d, role in ((a_dir, "repout"), (b_dir, "repin")):
        view = regions.RegionsView(System(d).settings(), None)
        await view.start()
        await view.close()
        other = System(b_dir if role == "repout" else a_dir).settings().region
        f = view.figures().get(f"{role}/{other}", {})
        k = "ship_ms" if role == "repout" else "lag_ms"
        out[f"{role}_p50_ms"], out[f"{role}_p99_ms"] = f.get(f"{k}_p50"), f.get(f"{k}_p99")
    return out


async def throughput(a: Client, name: str, clients: int, seconds: float) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        n = 0
        while time.monotonic() < stop:
            await a.call("PutItem", {"TableName": name, "Item": {"pk": {"S": f"t{w}-{n}"}, "v": {"N": str(n)}}})
            n += 1
            done += 1

    await asyncio.gather(*(worker(w) for w in range(clients)))
    return done / seconds


async def main(args: argparse.Namespace) -> dict[str, Any]:
    a, b = client(args.a), client(args.b)
    west = System(args.b).settings().region
    out: dict[str, Any] = {"load_average": os.getloadavg()[0], "latency": []}
    try:
        name = await table(a, west)
        for rate in [int(r) for r in args.rates.split(",")]:
            row = await latency(a, b, name, rate, args.duration, args.poll_ms)
            row["stages"] = await stages(args.a, args.b)
            print(json.dumps(row), flush=True)
            out["latency"].append(row)
        if args.throughput_s > 0:
            plain, replicated = await table(a, None), await table(a, west)
            out["puts_per_s_without_replica"] = round(await throughput(a, plain, args.clients, args.throughput_s), 1)
            out["puts_per_s_with_replica"] = round(await throughput(a, replicated, args.clients, args.throughput_s), 1)
            print(json.dumps({k: out[k] for k in ("puts_per_s_without_replica", "puts_per_s_with_replica")}))
    finally:
        await a.close()
        await b.close()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, required=True, help="data dir of the region written to")
    p.add_argument("--b", type=Path, required=True, help="data dir of the region read from")
    p.add_argument("--rates", default="200,500", help="writes a second, comma-separated (default 200,500)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per rate (default 20)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="how often B is read for the writes not seen yet (default 5 ms)")
    p.add_argument("--throughput-s", type=float, default=10.0, help="seconds of each throughput run (default 10; 0: none)")
    p.add_argument("--clients", type=int, default=16, help="closed-loop clients of the throughput runs")
    p.add_argument("--json", type=Path, help="also write the results here")
    ns = p.parse_args()
    result = asyncio.run(main(ns))
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=2))
