#!/usr/bin/env python3
"""A partition split under write load (issue 13's figure; decision 0039).

An on-demand table of one partition (start the system with `--initial-partitions 1`) is filled
with --preload 1 KB items (so the split copies real data), then PutItem of new 1 KB items is
offered open loop at --rate writes a second (default 300) for --duration seconds (default 30);
--split-at seconds into the load the auto-admin is asked to split the partition (the ``split``
RPC, as `dynamolog split` does). Reported: the split's own timing (from the decision to both
children serving; the seal; the children's copy and open), the writes' p50 / p99 / max latency
before, during and after the split, the longest time without an acknowledged write, every
error answered, and the check: the table holds the preloaded items plus exactly the
acknowledged writes (plus any whose outcome was unknown), counted with a consistent Scan.

    .venv/bin/dynamolog up --detach --data-dir /tmp/bench-split --port 8330 --storage-port 7331 \\
        --kafka-port 29890 --metrics-port 9860 --initial-partitions 1
    .venv/bin/python bench/splits.py --data-dir /tmp/bench-split --endpoint http://127.0.0.1:8330 \\
        --json /tmp/splits.json
    .venv/bin/dynamolog down --data-dir /tmp/bench-split
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import creds  # noqa: E402 - bench/creds.py
from capacity import Endpoint, create, delete, offer  # noqa: E402 - bench/capacity.py
from loadgen import call, watchdog  # noqa: E402

from dynamolog.launcher import System  # noqa: E402
from dynamolog.split_cli import _split  # noqa: E402

PAD = "x" * 950


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


async def _count(ep: Endpoint, name: str) -> int:
    total, start = 0, None
    while True:
        body: dict[str, Any] = {"TableName": name, "Select": "COUNT", "ConsistentRead": True}
        if start is not None:
            body["ExclusiveStartKey"] = start
        status, doc = await call(ep.clients[0], ep.rb, "Scan", body)
        if status != 200:
            raise SystemExit(f"Scan failed: {status} {doc}")
        total += int(doc["Count"])
        start = doc.get("LastEvaluatedKey")
        if start is None:
            return total


async def run(a: argparse.Namespace) -> dict[str, Any]:
    key = creds.credentials(a.data_dir)
    ep = Endpoint(a.endpoint, key, a.clients)
    dog = asyncio.ensure_future(watchdog(ep.clients))
    name = f"split-{uuid.uuid4().hex[:6]}"
    system = System(a.data_dir)
    try:
        await create(ep, name, {"BillingMode": "PAY_PER_REQUEST"})
        for i in range(0, a.preload, 25):
            reqs = [{"PutRequest": {"Item": {"pk": {"S": f"pre{j}"}, "sk": {"S": "0"}, "v": {"S": PAD}}}}
                    for j in range(i, min(a.preload, i + 25))]
            pending: dict[str, Any] = {name: reqs}
            while pending:
                status, doc = await call(ep.clients[0], ep.rb, "BatchWriteItem", {"RequestItems": pending})
                if status != 200:
                    raise SystemExit(f"BatchWriteItem failed: {status} {doc}")
                pending = doc.get("UnprocessedItems") or {}
        counter = itertools.count()

        def put(_rnd: random.Random) -> bytes:
            return orjson.dumps({"TableName": name, "Item": {"pk": {"S": f"k{next(counter)}"}, "sk": {"S": "0"},
                                                             "v": {"S": PAD}}})

        async def split_later() -> tuple[float, dict[str, Any]]:
            await asyncio.sleep(0.2 + a.split_at)
            t = time.monotonic()
            return t, await _split(system, name, None, "size")

        t_load = time.monotonic() + 0.2
        load = asyncio.ensure_future(offer([ep], "PutItem", put, a.rate, a.duration,
                                           bar=f"{a.rate:.0f} writes/s, split at {a.split_at:.0f} s"))
        t_split, done = await split_later()
        rows = await load
        stored = await _count(ep, name)
    finally:
        dog.cancel()
        await delete(ep, name)
        ep.close()
    at = t_split - t_load  # the split's decision, in the load's seconds
    end = at + float(done["total_s"])
    lat = {"before": [], "during": [], "after": []}  # type: dict[str, list[float]]
    for sched, answered, kind in rows:
        if kind != "ok":
            continue
        phase = "before" if answered < at else ("during" if sched <= end else "after")
        lat[phase].append(answered - sched)
    acked = sorted(answered for _, answered, kind in rows if kind == "ok")
    gaps = [b - x for x, b in itertools.pairwise(acked)]
    errors: dict[str, int] = {}
    for _, _, kind in rows:
        if kind != "ok":
            errors[kind] = errors.get(kind, 0) + 1
    ok = sum(1 for _, _, k in rows if k == "ok")
    unknown = sum(n for k, n in errors.items() if k in ("InternalServerError", "TimeoutError", "ConnectionError"))
    return {
        "rate": a.rate, "duration_s": a.duration, "preload": a.preload,
        "split": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in done.items()},
        "latency_ms": {p: {"n": len(v), "p50": _pct(v, 0.5), "p99": _pct(v, 0.99),
                           "max": round(max(v) * 1000, 1) if v else 0.0,
                           "mean": round(statistics.fmean(v) * 1000, 1) if v else 0.0} for p, v in lat.items()},
        "longest_gap_without_ack_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "offered": len(rows), "acknowledged": ok, "errors": errors,
        "stored": stored, "expected_stored": [a.preload + ok, a.preload + ok + unknown],
        "nothing_lost": a.preload + ok <= stored <= a.preload + ok + unknown,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:8000")
    p.add_argument("--data-dir", type=Path, required=True, help="the system's data dir (its key, its nodes)")
    p.add_argument("--rate", type=float, default=300.0, help="writes offered a second")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--split-at", type=float, default=10.0, help="seconds into the load the split is asked for")
    p.add_argument("--preload", type=int, default=5000, help="1 KB items written before the load")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    result = asyncio.run(run(a))
    text = json.dumps(result, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
