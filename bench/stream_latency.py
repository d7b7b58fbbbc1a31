"""Stream latency: from a write's acknowledgement to its record coming back from GetRecords.

Against a running endpoint (default http://127.0.0.1:8000): creates a table with a
NEW_IMAGE stream, then one writer puts --writes items at --rate per second (open loop, each to
a fresh key) while a reader polls GetRecords on every shard (back to back while records come,
every --poll-ms when a shard is at its end). For each item: latency = the reader's receipt of
its record minus the writer's receipt of the PutItem answer (negative when the record is read
before the answer arrives, i.e. zero delay); reports p50, p90, p99, max and how many records
were missing or repeated.

    python bench/stream_latency.py --endpoint-url http://127.0.0.1:8000 --writes 2000 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsi import drop_table

from dynamolog.client import Client


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    async with Client(a.endpoint_url, timeout=30) as db:
        table = a.table
        await drop_table(db, table)
        await db.call("CreateTable", {
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}})
        while (await db.call("DescribeTable", {"TableName": table}))["Table"]["TableStatus"] != "ACTIVE":
            await asyncio.sleep(0.1)
        arn = (await db.call("DescribeTable", {"TableName": table}))["Table"]["LatestStreamArn"]
        shards = (await db.call("DescribeStream", {"StreamArn": arn}))["StreamDescription"]["Shards"]
        acked: dict[str, float] = {}
        seen: dict[str, float] = {}
        repeats = 0
        done = asyncio.Event()

        async def read_shard(shard_id: str) -> None:
            nonlocal repeats
            it = (await db.call("GetShardIterator", {"StreamArn": arn, "ShardId": shard_id,
                                                     "ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
            while not done.is_set():
                res = await db.call("GetRecords", {"ShardIterator": it})
                now = time.monotonic()
                for r in res["Records"]:
                    k = r["dynamodb"]["Keys"]["pk"]["S"]
                    if k in seen:
                        repeats += 1
                    seen.setdefault(k, now)
                it = res["NextShardIterator"]
                if not res["Records"]:
                    await asyncio.sleep(a.poll_ms / 1000)

        async def write(i: int) -> None:
            k = f"item{i:07d}"
            await db.call("PutItem", {"TableName": table, "Item": {"pk": {"S": k}, "n": {"N": str(i)}}})
            acked[k] = time.monotonic()

        readers = [asyncio.ensure_future(read_shard(s["ShardId"])) for s in shards]
        t0 = time.monotonic()
        writes = []
        for i in range(a.writes):
            delay = t0 + i / a.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writes.append(asyncio.ensure_future(write(i)))
            if i % max(1, a.writes // 10) == 0:
                print(f"  {i:,}/{a.writes:,} written", file=sys.stderr)
        await asyncio.gather(*writes)
        deadline = time.monotonic() + 30
        while len(seen) < len(acked) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*readers, return_exceptions=True)
        lat = sorted((seen[k] - t) * 1000 for k, t in acked.items() if k in seen)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)

        return {"writes": len(acked), "rate": a.rate, "shards": len(shards), "missing": len(acked) - len(lat),
                "repeated": repeats, "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
                "max_ms": round(lat[-1], 1), "mean_ms": round(statistics.fmean(lat), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    p.add_argument("--table", default="bench_stream_latency")
    p.add_argument("--writes", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0, help="writes per second offered (default 200)")
    p.add_argument("--poll-ms", type=float, default=10.0, help="a reader at the end of a shard waits this long "
                   "before polling again (default 10)")
    res = asyncio.run(main_async(p.parse_args()))
    for k, v in res.items():
        print(f"{k:>10}: {v}")


if __name__ == "__main__":
    main()
