"""Global secondary index figures of a running Dynamolog: propagation delay, write amplification.

    dynamolog up --detach --data-dir .bench
    python bench/gsi.py --data-dir .bench propagation --rate 1000 --duration 20
    python bench/gsi.py --data-dir .bench amplification --updates 2000

propagation    one table with one GSI (hash ``grp``, range ``ts``; projection ALL); PutItem offered
               at --rate per second (open loop, 64 connections) for --duration seconds, every item
               a fresh key in one of 1,000 groups; a sample of the writes (one in --sample) is
               watched: from its PutItem answer, a watcher queries the index for the item
               every 5 ms until it shows.  Reports p50 / p90 / p99 / max of
               answer -> visible in the index, and the write rate achieved.
amplification  three tables with 0, 1 and 3 GSIs (each on an attribute the update changes), N
               items loaded, then N UpdateItems that change every indexed attribute; counts the
               log records the updates caused (table partitions and index partitions, from the
               storage nodes' leader counters) per update.

Talks to 127.0.0.1 only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynamolog.client import Client, ClientError
from dynamolog.launcher import System
from dynamolog.rpc import RpcClient


async def make_table(db: Client, name: str, indexes: list[tuple[str, str, str | None]]) -> None:
    try:
        await db.call("DeleteTable", {"TableName": name})
        while True:
            await db.call("DescribeTable", {"TableName": name})
            await asyncio.sleep(0.2)
    except ClientError as e:
        if e.code != "ResourceNotFoundException":
            raise
    defs = {"pk": "S"}
    gsis = []
    for iname, h, r in indexes:
        defs[h] = "S"
        ks = [{"AttributeName": h, "KeyType": "HASH"}]
        if r:
            defs[r] = "N"
            ks.append({"AttributeName": r, "KeyType": "RANGE"})
        gsis.append({"IndexName": iname, "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}})
    params: dict[str, Any] = {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                              "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                              "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in defs.items()]}
    if gsis:
        params["GlobalSecondaryIndexes"] = gsis
    await db.call("CreateTable", params)
    while (await db.call("DescribeTable", {"TableName": name}))["Table"]["TableStatus"] != "ACTIVE":
        await asyncio.sleep(0.1)


async def propagation(endpoint: str, rate: float, duration: float, sample: int) -> dict[str, Any]:
    table = "bench_gsi_propagation"
    async with Client(endpoint, timeout=30, max_connections=64) as db:
        await make_table(db, table, [("byGrp", "grp", "ts")])
        await asyncio.sleep(1.0)  # the indexer picks the new table up
        delays: list[float] = []
        done = 0
        errors = 0
        watchers: list[asyncio.Task[None]] = []

        async def watch(grp: str, ts: int, t_ack: float) -> None:
            deadline = t_ack + 30
            while time.monotonic() < deadline:
                res = await db.call("Query", {"TableName": table, "IndexName": "byGrp",
                                              "KeyConditionExpression": "grp = :g AND ts = :t",
                                              "ExpressionAttributeValues": {":g": {"S": grp}, ":t": {"N": str(ts)}}})
                if res["Count"]:
                    delays.append((time.monotonic() - t_ack) * 1000)
                    return
                await asyncio.sleep(0.005)  # a watcher must not load the system it measures
            delays.append(float("inf"))

        async def write(i: int) -> None:
            nonlocal done, errors
            grp, ts = f"g{i % 1000}", i
            try:
                await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": f"item{i:08d}"},
                                                                        "grp": {"S": grp}, "ts": {"N": str(ts)},
                                                                        "pad": {"S": "x" * 200}}})
            except ClientError:
                errors += 1
                return
            done += 1
            if i % sample == 0:
                watchers.append(asyncio.ensure_future(watch(grp, ts, time.monotonic())))

        t0 = time.monotonic()
        writes = []
        n = int(rate * duration)
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writes.append(asyncio.ensure_future(write(i)))
        await asyncio.gather(*writes)
        elapsed = time.monotonic() - t0
        await asyncio.gather(*watchers)
        lat = sorted(delays)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)

        return {"offered_per_s": rate, "achieved_per_s": round(done / elapsed, 1), "write_errors": errors,
                "sampled": len(lat), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
                "max_ms": round(lat[-1], 1), "mean_ms": round(statistics.fmean(lat), 1)}


async def _records(system: System) -> int:
    """Log records the leaders of every partition have committed, summed over the nodes."""
    total = 0
    for port in system.state()["storage_ports"].values():
        c = RpcClient("127.0.0.1", port)
        try:
            st = await c.call("status", timeout_s=5)
        finally:
            await c.close()
        total += sum(p.get("records_committed", 0) for p in st["partitions"] if p["role"] == "leader")
    return total


async def amplification(endpoint: str, system: System, updates: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with Client(endpoint, timeout=30, max_connections=32) as db:
        for k in (0, 1, 3):
            table = f"bench_gsi_amp{k}"
            await make_table(db, table, [(f"by{j}", f"a{j}", None) for j in range(k)])
            await asyncio.sleep(1.0)
            rnd = random.Random(k)

            def attrs(rnd: random.Random = rnd) -> dict[str, Any]:
                return {f"a{j}": {"S": f"v{rnd.randrange(1000)}"} for j in range(3)}

            sem = asyncio.Semaphore(32)

            async def put(i: int, sem: asyncio.Semaphore = sem, table: str = table) -> None:
                async with sem:
                    await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": f"k{i}"}, **attrs()}})

            await asyncio.gather(*(put(i) for i in range(updates)))
            await asyncio.sleep(3.0)  # the indexer finishes the load
            before = await _records(system)

            async def update(i: int, sem: asyncio.Semaphore = sem, table: str = table) -> None:
                values = {f":v{j}": {"S": f"w{i}-{j}"} for j in range(3)}
                async with sem:
                    await db.call("UpdateItem", {"TableName": table, "Key": {"pk": {"S": f"k{i}"}},
                                                 "UpdateExpression": "SET a0 = :v0, a1 = :v1, a2 = :v2",
                                                 "ExpressionAttributeValues": values})

            await asyncio.gather(*(update(i) for i in range(updates)))
            await asyncio.sleep(3.0)
            after = await _records(system)
            out[f"{k}_gsi"] = {"updates": updates, "log_records": after - before,
                               "records_per_update": round((after - before) / updates, 2)}
            print(f"  {k} GSI: {out[f'{k}_gsi']}", file=sys.stderr)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="the data dir of the running system")
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("propagation", help="write acknowledged -> visible in an index query")
    pr.add_argument("--rate", type=float, default=1000.0)
    pr.add_argument("--duration", type=float, default=20.0)
    pr.add_argument("--sample", type=int, default=50, help="watch one write in this many (default 50)")
    am = sub.add_parser("amplification", help="log records per update with 0, 1 and 3 indexes")
    am.add_argument("--updates", type=int, default=2000)
    a = p.parse_args()
    system = System(a.data_dir)
    state = system.state()
    if state is None:
        raise SystemExit(f"no system in {a.data_dir}")
    endpoint = f"http://127.0.0.1:{state['port']}"
    if a.what == "propagation":
        res = asyncio.run(propagation(endpoint, a.rate, a.duration, a.sample))
    else:
        res = asyncio.run(amplification(endpoint, system, a.updates))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
