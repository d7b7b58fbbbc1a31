#!/usr/bin/env python3
"""Adaptive capacity under a skewed load (issue 13's figure; decision 0026).

A table of four partitions (start the system with `--initial-partitions 4`) provisioned at
--wcu write units (default 400: an even share of 100 a second per partition) is created and at
once given PutItem of 1 KB items (one write unit each), open loop, at --rate writes a second
(default 350) for --duration seconds (default 60), --hot (default 70 %) of them on keys of one
partition: 245 a second against its even share of 100, while the table as a whole stays under
its capacity. Reported, per 5-second window from the start of the load: the requests offered,
the fraction throttled, and when throttling last exceeded 1 % (the figure: within 30 s); at the
end, each partition's write rate and multiplier at its leader (`dynamolog status`).

    .venv/bin/dynamolog up --detach --data-dir /tmp/bench-ad --port 8320 --storage-port 7321 \\
        --kafka-port 9412 --initial-partitions 4
    .venv/bin/python bench/adaptive.py --data-dir /tmp/bench-ad --endpoint http://127.0.0.1:8320 \\
        --json /tmp/adaptive.json
    .venv/bin/dynamolog down --data-dir /tmp/bench-ad
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import creds  # noqa: E402 - bench/creds.py
from capacity import Endpoint, create, delete, offer  # noqa: E402 - bench/capacity.py
from loadgen import watchdog  # noqa: E402

from dynamolog.keys import partition_hash  # noqa: E402

QUARTER = 1 << 62
PAD = "x" * 900  # with the keys: about 1 KB, one write unit


def keys(n: int, hot: bool) -> list[str]:
    """Keys whose hash is (hot) or is not in the first quarter of the hash space: the first of
    four even partitions."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        k = f"user{i}"
        if (partition_hash({"S": k}) < QUARTER) == hot:
            out.append(k)
        i += 1
    return out


async def run(a: argparse.Namespace) -> dict[str, Any]:
    key = creds.credentials(a.data_dir)
    ep = Endpoint(a.endpoint, key, a.clients)
    dog = asyncio.ensure_future(watchdog(ep.clients))
    name = f"adaptive-{uuid.uuid4().hex[:6]}"
    hot, cold = keys(1000, True), keys(1000, False)
    try:
        await create(ep, name, {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {
            "ReadCapacityUnits": 10, "WriteCapacityUnits": a.wcu}})

        def put(rnd: random.Random) -> bytes:
            k = rnd.choice(hot) if rnd.random() < a.hot else rnd.choice(cold)
            return orjson.dumps({"TableName": name, "Item": {"pk": {"S": k}, "sk": {"S": "0"}, "v": {"S": PAD}}})

        rows = await offer([ep], "PutItem", put, a.rate, a.duration, bar=f"{a.rate:.0f} writes/s, {a.hot:.0%} hot")
    finally:
        dog.cancel()
        status = None
        if a.data_dir is not None:
            status = await partition_status(a.data_dir, name)
        await delete(ep, name)
        ep.close()
    windows = []
    for lo in range(0, int(a.duration), 5):
        w = [kind for at, _, kind in rows if lo <= at < lo + 5]
        thr = sum(1 for k in w if k == "ProvisionedThroughputExceededException")
        windows.append({"from_s": lo, "offered": len(w), "throttled_pct": round(100 * thr / max(1, len(w)), 2)})
    over = [w["from_s"] + 5 for w in windows if w["throttled_pct"] > 1.0]
    errors = sorted({k for _, _, k in rows if k not in ("ok", "ProvisionedThroughputExceededException")})
    return {"wcu": a.wcu, "rate": a.rate, "hot": a.hot, "windows": windows,
            "throttling_above_1pct_until_s": max(over) if over else 0, "other_errors": errors,
            "partitions": status}


async def partition_status(data_dir: Path, table: str) -> list[dict[str, Any]]:
    """Each partition's write rate, multiplier and consumed units at its leader."""
    from dynamolog.launcher import System
    from dynamolog.rpc import RpcClient

    out = []
    system = System(data_dir)
    state = system.state() or {}
    for node, port in (state.get("storage_ports") or {}).items():
        client = RpcClient("127.0.0.1", int(port), key=system.rpc_key())
        try:
            st = await client.call("status", timeout_s=5.0)
        except (OSError, TimeoutError):
            continue
        finally:
            await client.close()
        for p in st["partitions"]:
            if p.get("table") == table and p.get("role") == "leader" and "capacity" in p:
                c = p["capacity"]
                out.append({"partition": p["partition_id"], "node": node, "write_rate": c["write"]["rate"],
                            "write_multiplier": c.get("multipliers", {}).get("write", c.get("multiplier")),
                            "consumed": c["write"]["consumed"], "throttled": c["write"]["throttled"]})
    return sorted(out, key=lambda r: r["partition"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:8000")
    p.add_argument("--data-dir", type=Path, required=True, help="the system's data dir (its key, its nodes)")
    p.add_argument("--wcu", type=int, default=400)
    p.add_argument("--rate", type=float, default=350.0, help="writes offered a second")
    p.add_argument("--hot", type=float, default=0.7, help="fraction of the writes on one partition's keys")
    p.add_argument("--duration", type=float, default=60.0)
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
