"""Control-plane latency through the catalog's one writer (the auto-admin).

Against a running endpoint (default http://127.0.0.1:8000; credentials from the usual AWS
environment, e.g. ``set -a; . <data-dir>/credentials.env``): creates --tables tables one after
another and times CreateTable until DescribeTable says ACTIVE, then times --tags sequential
TagResource calls on the first one (each is router -> auto-admin -> one Kafka transaction ->
answer). Prints p50, p99 and max; drops the tables at the end.

    python bench/control_plane.py --endpoint-url http://127.0.0.1:8000 --tables 5 --tags 100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsi import drop_table

from dynamolog.client import Client


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))]


async def main_async(a: argparse.Namespace) -> None:
    async with Client(a.endpoint_url, timeout=60) as db:
        names = [f"{a.prefix}{i}" for i in range(a.tables)]
        active_s: list[float] = []
        for name in names:
            await drop_table(db, name)
            t0 = time.monotonic()
            await db.call("CreateTable", {
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]})
            while (await db.call("DescribeTable", {"TableName": name}))["Table"]["TableStatus"] != "ACTIVE":
                await asyncio.sleep(0.05)
            active_s.append(time.monotonic() - t0)
        arn = (await db.call("DescribeTable", {"TableName": names[0]}))["Table"]["TableArn"]
        tag_s: list[float] = []
        for i in range(a.tags):
            t0 = time.monotonic()
            await db.call("TagResource", {"ResourceArn": arn, "Tags": [{"Key": f"k{i % 40}", "Value": str(i)}]})
            tag_s.append(time.monotonic() - t0)
        for name in names:
            await drop_table(db, name)
    print(f"CreateTable -> ACTIVE s: {', '.join(f'{x:.2f}' for x in active_s)}")
    print(f"TagResource ms: p50 {_pct(tag_s, 0.5) * 1000:.1f} p99 {_pct(tag_s, 0.99) * 1000:.1f} "
          f"max {max(tag_s) * 1000:.1f} ({len(tag_s)} calls)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    p.add_argument("--prefix", default="bench_control_")
    p.add_argument("--tables", type=int, default=5)
    p.add_argument("--tags", type=int, default=100)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
