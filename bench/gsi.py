"""Global secondary index figures of a running Dynamolog: propagation delay, write amplification.

    dynamolog up --detach --data-dir .bench
    python bench/gsi.py --data-dir .bench propagation --rate 1000 --duration 20
    python bench/gsi.py --data-dir .bench amplification --updates 2000
    python bench/gsi.py --data-dir .bench query-latency --queries 500

propagation    one table with one GSI that indexes every item (hash ``v``, KEYS_ONLY); PutItem
               load offered at --rate per second by bench/loadgen.py (raw HTTP, open loop, 32
               connections, 200-byte items) for --duration seconds; meanwhile --probes writes per
               second of their own are watched: from its PutItem answer, a probe queries the
               index for its item every 10 ms until it shows.  Reports p50 / p90 / p99 / max of
               answer -> visible in the index, the write rate achieved, and the CPU each of the
               system's processes used per write (from /proc).
amplification  three tables with 0, 1 and 3 GSIs (each on an attribute the update changes), N
               items loaded, then N UpdateItems that change every indexed attribute; counts the
               log records the updates caused (table partitions and index partitions, from the
               storage nodes' leader counters) per update.
query-latency  what read-your-writes for indexes (services/router/freshness.py) costs a Query of a
               GSI: one table with one GSI and 100 items; --queries Query calls one after another
               on a quiet table (the index caught up), then --queries times a PutItem followed at
               once by a Query of the index for the item just written (counting the answers that
               miss it).  Run it on a system started with DYNAMOLOG_GSI_READ_WAIT_MS=0 (no wait)
               and on one with the default to compare.

Talks to 127.0.0.1 only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import creds


async def drop_table(db: Client, name: str) -> None:
    """Delete the table if it exists and wait until it is gone."""
    try:
        await db.call("DeleteTable", {"TableName": name})
        while True:
            await db.call("DescribeTable", {"TableName": name})
            await asyncio.sleep(0.2)
    except ClientError as e:
        if e.code != "ResourceNotFoundException":
            raise


async def make_table(db: Client, name: str, indexes: list[tuple[str, str, str | None]]) -> None:
    await drop_table(db, name)
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


def service_pids(system: System) -> dict[str, int]:
    """The system's processes: its services and, when it runs them, its Kafka brokers."""
    state = system.state() or {}
    pids = dict(state.get("pids") or {})
    for pidfile in sorted((Path(state["data_dir"]) / "kafka").glob("node-*/kafka.pid")):
        try:
            pids[f"kafka-{pidfile.parent.name}"] = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return pids


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time each process has used so far (from /proc)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


async def propagation(endpoint: str, rate: float, duration: float, probes: float,
                      pids: dict[str, int] | None = None) -> dict[str, Any]:
    """PutItem load at ``rate`` (bench/loadgen.py, raw HTTP, open loop) on a table whose GSI
    indexes every item, while ``probes`` writes per second are watched until they show in the
    index."""
    import tempfile

    table = "bench_gsi_propagation"
    async with Client(endpoint, timeout=30, max_connections=16) as db:
        await drop_table(db, table)
        # the load generator's items are {pk, sk, v}: the index is keyed on v (every item has one)
        await db.call("CreateTable", {
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "v")],
            "GlobalSecondaryIndexes": [{"IndexName": "byV", "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "KEYS_ONLY"}}]})
        while (await db.call("DescribeTable", {"TableName": table}))["Table"]["TableStatus"] != "ACTIVE":
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the indexer picks the new table up
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "load.json"
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve().parent / "loadgen.py"), "--endpoint", endpoint,
                "--table", table, "--clients", "32", "--ops", "put", "--rate", str(rate), "--duration",
                str(duration + 2), "--repeat", "1", "--items", "5000", "--item-bytes", "200", "--no-progress",
                "--json", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(3.0)  # the load runs (1 s of it is the generator's warm-up)
            delays: list[float] = []

            async def probe(i: int) -> None:
                value = f"probe-{i:06d}"
                await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": value}, "sk": {"S": "p"},
                                                                        "v": {"S": value}}})
                t_ack = time.monotonic()
                while time.monotonic() < t_ack + 30:
                    res = await db.call("Query", {"TableName": table, "IndexName": "byV",
                                                  "KeyConditionExpression": "v = :v",
                                                  "ExpressionAttributeValues": {":v": {"S": value}}})
                    if res["Count"]:
                        delays.append((time.monotonic() - t_ack) * 1000)
                        return
                    await asyncio.sleep(0.01)
                delays.append(float("inf"))

            tasks = []
            cpu0 = cpu_seconds(pids or {})
            t0 = time.monotonic()
            n = int(probes * (duration - 4))
            for i in range(n):
                delay = t0 + i / probes - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(probe(i)))
            await asyncio.gather(*tasks)
            cpu1, window = cpu_seconds(pids or {}), time.monotonic() - t0
            await load.wait()
            result = json.loads(out.read_text())["median"][0]
        lat = sorted(delays)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)

        return {"load_offered_per_s": rate, "load_achieved_per_s": result["ops_per_s"],
                "load_put_p50_ms": result["p50_ms"], "load_errors": result["errors"], "probes": len(lat),
                "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": round(lat[-1], 1),
                "mean_ms": round(statistics.fmean(lat), 1),
                # CPU each process used per table write in the probe window (load and probes)
                "cpu_ms_per_write": {n: round((cpu1[n] - cpu0[n]) * 1000 / (window * (result["ops_per_s"] + probes)), 3)
                                     for n in cpu1 if n in cpu0},
                "cpu_cores_used": round(sum(cpu1[n] - cpu0.get(n, cpu1[n]) for n in cpu1) / window, 2)}


async def _records(system: System) -> int:
    """Log records the leaders of every partition have committed, summed over the nodes."""
    total = 0
    for port in (system.state() or {})["storage_ports"].values():
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


def _pcts(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"p50_ms": round(s[len(s) // 2] * 1000, 2), "p90_ms": round(s[len(s) * 9 // 10] * 1000, 2),
            "p99_ms": round(s[min(len(s) - 1, len(s) * 99 // 100)] * 1000, 2)}


async def query_latency(endpoint: str, queries: int) -> dict[str, Any]:
    table = "bench_gsi_query"
    async with Client(endpoint, timeout=30, max_connections=4) as db:
        await make_table(db, table, [("byG", "g", None)])
        await asyncio.sleep(1.0)
        for i in range(100):
            await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": f"k{i}"}, "g": {"S": f"g{i % 10}"}}})

        async def query(g: str) -> int:
            res = await db.call("Query", {"TableName": table, "IndexName": "byG", "KeyConditionExpression": "g = :g",
                                          "ExpressionAttributeValues": {":g": {"S": g}}})
            return int(res["Count"])

        for i in range(50):  # warm-up
            await query(f"g{i % 10}")
        quiet = []
        for i in range(queries):
            t = time.perf_counter()
            await query(f"g{i % 10}")
            quiet.append(time.perf_counter() - t)
        after_put, missed = [], 0
        for i in range(queries):
            g = f"fresh{i}"
            await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": f"f{i}"}, "g": {"S": g}}})
            t = time.perf_counter()
            if await query(g) != 1:
                missed += 1
            after_put.append(time.perf_counter() - t)
        await drop_table(db, table)
    return {"quiet_query": _pcts(quiet), "query_right_after_put": _pcts(after_put),
            "queries_missing_the_put": missed, "queries": queries}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="the data dir of the running system")
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("propagation", help="write acknowledged -> visible in an index query")
    pr.add_argument("--rate", type=float, default=1000.0, help="PutItem load offered per second (default 1000)")
    pr.add_argument("--duration", type=float, default=20.0)
    pr.add_argument("--probes", type=float, default=20.0, help="watched writes per second (default 20)")
    am = sub.add_parser("amplification", help="log records per update with 0, 1 and 3 indexes")
    am.add_argument("--updates", type=int, default=2000)
    ql = sub.add_parser("query-latency", help="GSI Query latency, quiet and right after a write")
    ql.add_argument("--queries", type=int, default=500)
    a = p.parse_args()
    system = System(a.data_dir)
    for k, v in creds.read_env_file(a.data_dir / "credentials.env").items():
        os.environ.setdefault(k, v)  # the Client and loadgen sign with the system's administrator key
    creds.use_system_key(a.data_dir)
    state = system.state()
    if state is None:
        raise SystemExit(f"no system in {a.data_dir}")
    endpoint = f"http://127.0.0.1:{state['port']}"
    if a.what == "propagation":
        res = asyncio.run(propagation(endpoint, a.rate, a.duration, a.probes, service_pids(system)))
    elif a.what == "query-latency":
        res = asyncio.run(query_latency(endpoint, a.queries))
    else:
        res = asyncio.run(amplification(endpoint, system, a.updates))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
