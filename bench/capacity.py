#!/usr/bin/env python3
"""Capacity enforcement: how exactly a provisioned table is held to its capacity, and what the
checks cost on the hot path (issue 13's figures; decision 0024).

accuracy  A table provisioned at --wcu write units (default 100) is left idle --idle seconds
          after it is created (it saves that much burst, on top of the one second a new
          partition starts with), then PutItem of 1 KB items (one write unit each) is offered at
          --rate a second (default 300, open loop: each connection sends on a fixed schedule,
          nothing is retried) for --duration seconds (default 120).  Reported: write units
          acknowledged per second, second by second; when the burst was spent (the first second
          from which the 5 s average stays under 1.1 × the capacity); and over the rest the mean
          units a second and the lowest and highest 10 s average (target: capacity ± 5 %).  With
          --routers 2 the same load is split over two routers of the system (a second one is
          added as the service ``router-2``, which ``dynamolog down`` stops); each run uses a
          fresh table.
cost      PutItem and GetItem (eventually consistent) of 1 KB items at the same offered rates
          against tables at once: one PROVISIONED (capacity well above the load: the checks
          run, nothing is throttled) and one PAY_PER_REQUEST, with the same number of
          partitions, and with --baseline-endpoint a PROVISIONED table on a second system whose
          storage nodes run with DYNAMOLOG_CAPACITY_ENFORCE=0 (nothing counted: the cost of no
          enforcement).  The loads run at the same time so that whatever else the machine does
          slows them alike; --rounds rounds, medians of p50 and of the acknowledged rate.  An
          on-demand table's requests pass the same buckets (its ceiling), so the first two
          compare two ways of counting and the baseline what counting costs.  ``micro``: the
          in-process cost of an admission and a charge (microseconds per request, no system).

    .venv/bin/dynamolog up --detach --data-dir /tmp/bench-cap --port 8300 --storage-port 7301 --kafka-port 9392
    .venv/bin/python bench/capacity.py --data-dir /tmp/bench-cap --endpoint http://127.0.0.1:8300 all \\
        --json /tmp/capacity.json
    .venv/bin/dynamolog down --data-dir /tmp/bench-cap

With a baseline system (no enforcement) for the cost figure:

    DYNAMOLOG_CAPACITY_ENFORCE=0 .venv/bin/dynamolog up --detach --data-dir /tmp/bench-cap0 --port 8310 \
        --storage-port 7311 --kafka-port 9402 --initial-partitions 2
    .venv/bin/python bench/capacity.py --data-dir /tmp/bench-cap --endpoint http://127.0.0.1:8300 cost \
        --baseline-data-dir /tmp/bench-cap0 --baseline-endpoint http://127.0.0.1:8310
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import creds  # noqa: E402 - bench/creds.py
from loadgen import Client, RequestBuilder, Workload, call, watchdog  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dynamolog.launcher import System, health  # noqa: E402

#: DynamoDB item size of the benchmark's items: one write unit, one read unit
ITEM_BYTES = 1000


# -- the system ----------------------------------------------------------------------------------
def add_router(data_dir: Path, port: int) -> str:
    """A second router of the running system on ``port`` (service ``router-2``)."""
    system = System(data_dir)
    state = system.state()
    if state is None:
        raise SystemExit(f"no system runs in {data_dir}: start one with `dynamolog up --detach --data-dir {data_dir}`")
    if "router-2" not in state["pids"] or not health(port):
        cmd = list(state["commands"]["router"])
        cmd[cmd.index("--port") + 1] = str(port)
        state["commands"]["router-2"] = cmd
        system._write(state)
        system.start_service("router-2")
        deadline = time.monotonic() + 60
        while not health(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"the second router did not answer on {port}; see {data_dir}/logs/router-2.log")
            time.sleep(0.2)
    return f"http://127.0.0.1:{port}"


class Endpoint:
    """Connections and a request signer for one router."""

    def __init__(self, url: str, key: tuple[str, str], clients: int) -> None:
        u = urlsplit(url)
        assert u.hostname and u.port
        self.rb = RequestBuilder(u.netloc, key[0], key[1])
        self.clients = [Client(u.hostname, u.port, 10.0) for _ in range(clients)]

    def close(self) -> None:
        for c in self.clients:
            c.close()


async def create(ep: Endpoint, name: str, billing: dict[str, Any]) -> None:
    c = ep.clients[0]
    status, doc = await call(c, ep.rb, "CreateTable", {
        "TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"}], **billing})
    if status != 200:
        raise SystemExit(f"CreateTable {name} failed: {status} {doc}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, doc = await call(c, ep.rb, "DescribeTable", {"TableName": name})
        if status == 200 and doc["Table"]["TableStatus"] == "ACTIVE":
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"table {name} not ACTIVE within 120 s")


async def delete(ep: Endpoint, name: str) -> None:
    await call(ep.clients[0], ep.rb, "DeleteTable", {"TableName": name})


# -- an open-loop load ----------------------------------------------------------------------------
async def offer(eps: list[Endpoint], op: str, bodies: Any, rate: float, duration: float,
                bar: str | None = None) -> list[tuple[float, float, str]]:
    """``rate`` requests a second for ``duration`` seconds, request i scheduled at i / rate and
    sent on connection i mod (all connections of ``eps``); returns (scheduled, answered, outcome)
    per request, times in seconds from the start, outcome ``ok`` or the error type."""
    conns = [(ep, c) for ep in eps for c in ep.clients]
    n = int(rate * duration)
    out: list[tuple[float, float, str]] = []
    t0 = time.monotonic() + 0.2
    progress = tqdm(total=int(duration), desc=bar, unit="s", leave=False) if bar else None

    async def worker(k: int) -> None:
        ep, c = conns[k]
        rnd = random.Random(k)
        for i in range(k, n, len(conns)):
            at = t0 + i / rate
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status, body = await c.request(ep.rb.build(op, bodies(rnd)))
                kind = "ok" if status == 200 else json.loads(body).get("__type", f"HTTP{status}").rsplit("#", 1)[-1]
            except Exception as e:
                kind = type(e).__name__
            out.append((at - t0, time.monotonic() - t0, kind))

    async def tick() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(1)
            progress.update(1)

    ticker = asyncio.ensure_future(tick()) if progress else None
    try:
        await asyncio.gather(*(worker(k) for k in range(len(conns))))
    finally:
        if ticker is not None:
            ticker.cancel()
        if progress is not None:
            progress.close()
    return out


def p50_ms(rows: list[tuple[float, float, str]]) -> float:
    lat = [(done - at) * 1000 for at, done, kind in rows if kind == "ok"]
    return statistics.median(lat) if lat else float("nan")


# -- accuracy --------------------------------------------------------------------------------------
async def accuracy(a: argparse.Namespace, urls: list[str]) -> dict[str, Any]:
    key = creds.credentials(a.data_dir)
    eps = [Endpoint(u, key, max(1, a.clients // len(urls))) for u in urls]
    dog = asyncio.ensure_future(watchdog([c for ep in eps for c in ep.clients]))
    name = f"cap-acc-{uuid.uuid4().hex[:6]}"
    try:
        await create(eps[0], name, {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {
            "ReadCapacityUnits": a.wcu, "WriteCapacityUnits": a.wcu}})
        print(f"table {name}: {a.wcu} WCU; idle {a.idle:.0f} s to save burst", file=sys.stderr)
        await asyncio.sleep(a.idle)
        w = Workload(name, 100_000, 1, ITEM_BYTES, seed=1)

        def put(rnd: random.Random) -> bytes:
            return w.put_body(w.pks[int(rnd.random() * w.n_pk)], w.sks[0], rnd)

        rows = await offer(eps, "PutItem", put, a.rate, a.duration, bar=f"accuracy, {len(urls)} router(s)")
    finally:
        dog.cancel()
        await delete(eps[0], name)
        for ep in eps:
            ep.close()
    seconds = int(a.duration)
    per_s = [0] * (seconds + 5)
    outcomes: dict[str, int] = {}
    for _, done, kind in rows:
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if kind == "ok" and int(done) < len(per_s):
            per_s[int(done)] += 1  # one write unit each
    per_s = per_s[:seconds]
    cap = float(a.wcu)
    burst_end = next((s for s in range(seconds) if all(
        statistics.mean(per_s[t:t + 5]) < 1.1 * cap for t in range(s, seconds - 5))), seconds)
    steady = per_s[burst_end:]
    tens = [statistics.mean(steady[i:i + 10]) for i in range(0, len(steady) - 9, 10)]
    result = {
        "routers": len(urls), "wcu": a.wcu, "rate": a.rate, "duration_s": a.duration, "idle_s": a.idle,
        "outcomes": outcomes, "units_per_s": per_s, "burst_spent_after_s": burst_end,
        "burst_units": sum(per_s[:burst_end]) - cap * burst_end,
        "steady_mean": statistics.mean(steady) if steady else None,
        "steady_10s_min": min(tens) if tens else None, "steady_10s_max": max(tens) if tens else None,
    }
    print(f"accuracy, {len(urls)} router(s): burst spent after {burst_end} s "
          f"({result['burst_units']:.0f} units above capacity), then {result['steady_mean']:.1f} units/s "
          f"(10 s averages {result['steady_10s_min']:.1f}-{result['steady_10s_max']:.1f}); outcomes {outcomes}",
          file=sys.stderr)
    return result


# -- cost ------------------------------------------------------------------------------------------
async def cost(a: argparse.Namespace, url: str) -> dict[str, Any]:
    key = creds.credentials(a.data_dir)
    modes = [m for m in a.tables.split(",") if m]
    if "unenforced" in modes and not a.baseline_endpoint:
        raise SystemExit("--tables unenforced needs --baseline-endpoint (a system with DYNAMOLOG_CAPACITY_ENFORCE=0)")
    eps = {m: Endpoint(a.baseline_endpoint if m == "unenforced" else url,
                       creds.credentials(a.baseline_data_dir) if m == "unenforced" else key, a.clients) for m in modes}
    dog = asyncio.ensure_future(watchdog([c for ep in eps.values() for c in ep.clients]))
    tag = uuid.uuid4().hex[:6]
    names = {"provisioned": f"cap-cost-p-{tag}", "on_demand": f"cap-cost-o-{tag}", "unenforced": f"cap-cost-u-{tag}"}
    # two partitions each: 3,000 RCU and 1,000 WCU make two (one per 3,000 RCU, one per 1,000 WCU)
    billing = {"provisioned": {"BillingMode": "PROVISIONED",
                               "ProvisionedThroughput": {"ReadCapacityUnits": 3000, "WriteCapacityUnits": 1000}},
               "on_demand": {"BillingMode": "PAY_PER_REQUEST"}}
    billing["unenforced"] = billing["provisioned"]
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {m: {"put": [], "get": []} for m in eps}
    try:
        for mode, ep in eps.items():
            await create(ep, names[mode], billing[mode])
        works = {m: Workload(names[m], a.items, 1, ITEM_BYTES, seed=1) for m in eps}

        def putter(m: str) -> Any:
            w = works[m]
            return lambda rnd: w.put_body(w.pks[int(rnd.random() * w.n_pk)], w.sks[0], rnd)

        def getter(m: str) -> Any:
            w = works[m]
            return lambda rnd: w.get_body(w.pks[int(rnd.random() * w.n_pk)], w.sks[0])

        # preload every key once (in key order, under the provisioned table's capacity)
        for m, ep in eps.items():
            w = works[m]
            keys = iter(w.pks)
            await offer([ep], "PutItem", lambda rnd, w=w, keys=keys: w.put_body(next(keys), w.sks[0], rnd),
                        400.0, a.items / 400.0, bar=f"preload {m}")
        for r in range(a.rounds):
            for op, rate, maker in (("put", a.put_rate, putter), ("get", a.get_rate, getter)):
                both = await asyncio.gather(*(offer([eps[m]], "PutItem" if op == "put" else "GetItem", maker(m),
                                                    rate, a.round_s) for m in eps))
                for m, rows in zip(eps, both, strict=True):
                    ok = sum(1 for *_, kind in rows if kind == "ok")
                    errs = len(rows) - ok
                    runs[m][op].append((p50_ms(rows), ok / a.round_s))
                    if errs:
                        print(f"round {r + 1} {op} {m}: {errs} errors", file=sys.stderr)
            print(f"round {r + 1}/{a.rounds}: " + ", ".join(
                f"{m} {op} p50 {runs[m][op][-1][0]:.2f} ms" for m in eps for op in ("put", "get")), file=sys.stderr)
    finally:
        dog.cancel()
        for m, ep in eps.items():
            await delete(ep, names[m])
            ep.close()
    out: dict[str, Any] = {"rounds": a.rounds, "round_s": a.round_s, "put_rate": a.put_rate, "get_rate": a.get_rate}
    for op in ("put", "get"):
        row: dict[str, Any] = {"rounds": {m: runs[m][op] for m in runs}}
        for m in runs:
            row[f"{m}_p50_ms"] = statistics.median(x[0] for x in runs[m][op])
            row[f"{m}_ops_s"] = statistics.median(x[1] for x in runs[m][op])
        base = "unenforced" if "unenforced" in runs else "on_demand" if "on_demand" in runs else next(iter(runs))
        for m in runs:
            if m != base:
                row[f"{m}_added_p50"] = row[f"{m}_p50_ms"] / row[f"{base}_p50_ms"] - 1
                # the same, round by round (both loads saw the same moments of the machine)
                row[f"{m}_added_p50_by_round"] = statistics.median(
                    x[0] / y[0] - 1 for x, y in zip(runs[m][op], runs[base][op], strict=True))
        out[op] = row
        print(f"cost {op}: " + ", ".join(f"{m} p50 {row[f'{m}_p50_ms']:.2f} ms ({row[f'{m}_ops_s']:.0f} ops/s"
                                       + (f", {row[f'{m}_added_p50']:+.1%} vs {base}, median of rounds "
                                          f"{row[f'{m}_added_p50_by_round']:+.1%})" if m != base else ")")
                                       for m in runs), file=sys.stderr)
    return out


def micro(n: int = 200_000) -> dict[str, float]:
    """Microseconds of CPU per admission + charge of a write and of a read (the bucket work each
    request adds on the storage node), in process."""
    from services.storage.capacity import PartitionCapacity, Rates

    cap = PartitionCapacity(Rates(1e9, 1e9, False), time.monotonic())
    out = {}
    for kind, limit, charge in (("write", cap.write, cap.charge_write), ("read", cap.read, cap.charge_read)):
        t0 = time.process_time()
        for _ in range(n):
            now = time.monotonic()
            if limit.admits(now):
                charge(1.0, now)
        out[f"{kind}_us"] = (time.process_time() - t0) / n * 1e6
    print(f"in process: admit + charge {out['write_us']:.2f} µs (write), {out['read_us']:.2f} µs (read)",
          file=sys.stderr)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("accuracy", "cost", "micro", "all"),
                   help="accuracy (one router, then two), cost, micro (in process only), or all of them")
    p.add_argument("--data-dir", type=Path, default=Path(".data"), help="data dir of the running system")
    p.add_argument("--endpoint", default="http://127.0.0.1:8000", help="its router (default %(default)s)")
    p.add_argument("--second-port", type=int, default=0,
                   help="port of the second router the two-router run adds (default: the endpoint's + 1)")
    p.add_argument("--routers", default="1,2", help="accuracy runs to make, by router count (default %(default)s)")
    p.add_argument("--wcu", type=int, default=100, help="accuracy: the table's write capacity (default %(default)s)")
    p.add_argument("--rate", type=float, default=300.0, help="accuracy: writes offered a second (default %(default)s)")
    p.add_argument("--duration", type=float, default=120.0, help="accuracy: seconds of load (default %(default)s)")
    p.add_argument("--idle", type=float, default=20.0,
                   help="accuracy: seconds the new table stays idle before the load (default %(default)s)")
    p.add_argument("--clients", type=int, default=32, help="connections in all (default %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="cost: rounds (default %(default)s)")
    p.add_argument("--round-s", type=float, default=8.0, help="cost: seconds per load per round (default %(default)s)")
    p.add_argument("--put-rate", type=float, default=200.0, help="cost: PutItem offered a second per table "
                   "(default %(default)s)")
    p.add_argument("--get-rate", type=float, default=600.0, help="cost: GetItem offered a second per table "
                   "(default %(default)s)")
    p.add_argument("--items", type=int, default=1000, help="cost: keys of each table (default %(default)s)")
    p.add_argument("--baseline-endpoint", default="", help="cost: the router of a system whose storage nodes run "
                   "with DYNAMOLOG_CAPACITY_ENFORCE=0")
    p.add_argument("--baseline-data-dir", type=Path, default=None, help="cost: that system's data dir")
    p.add_argument("--tables", default="provisioned,on_demand",
                   help="cost: the tables loaded at once, of provisioned, on_demand and unenforced (the "
                   "baseline system's); each system should carry the same load (default %(default)s)")
    p.add_argument("--json", type=Path, help="write the results to this file")
    a = p.parse_args()
    creds.use_system_key(a.data_dir)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, Any] = {"started": started}
    if a.what in ("micro", "all"):
        results["micro"] = micro()
    if a.what in ("accuracy", "all"):
        for n in (int(x) for x in a.routers.split(",")):
            urls = [a.endpoint]
            if n == 2:
                urls.append(add_router(a.data_dir, a.second_port or (urlsplit(a.endpoint).port or 8000) + 1))
            results[f"accuracy_{n}"] = asyncio.run(accuracy(a, urls))
    if a.what in ("cost", "all"):
        results["cost"] = asyncio.run(cost(a, a.endpoint))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
        print(f"results in {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
