#!/usr/bin/env python3
"""Do long reads stall the storage node's event loop?  GetItem / PutItem latency while a full
Scan of a large table and a time-to-live sweep run on the same storage node.

Against a running Dynamolog (one storage node, one partition per table, so that everything
shares one event loop), started with a short sweep period, e.g.:

  DYNAMOLOG_TTL_SWEEP_S=2 dynamolog up --data-dir /tmp/ls --port 18621 --kafka-port 29621 \\
      --storage-port 17621 --initial-partitions 1 --detach
  .venv/bin/python bench/loop_stalls.py --endpoint-url http://127.0.0.1:18621 --data-dir /tmp/ls

  1. creates <table> (dropped first unless --skip-load) and loads --items items of about
     --item-bytes bytes (BatchWriteItem), each with an ``exp`` attribute far in the future, and
     turns time to live on for ``exp``: every sweep decodes every item and deletes none;
  2. quiet: --clients threads run GetItem (a random loaded item) and PutItem (a small item) in
     turn for --seconds, nothing else running (the sweep still runs on its period);
  3. busy: the same while one more thread runs full Scans (eventually consistent, page by page)
     of the table back to back;
  4. prints p50 / p99 / max of GetItem and PutItem per phase, the Scans done, and the storage
     node's own event-loop lag (``loop_lag_ms_max`` of the internal ``status``, polled every
     0.5 s) when the node reports it.  --json FILE writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import creds

#: the storage node's pacing slice (``--in-process`` turns it off and on)
SLICE_S = 0.002
#: attempts of one BatchWriteItem's UnprocessedItems at most
BATCH_RETRIES_MAX = 20


def client(url: str, key: tuple[str, str]) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key[0],
                        aws_secret_access_key=key[1],
                        config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16))


def load(url: str, key: tuple[str, str], table: str, items: int, item_bytes: int, writers: int = 4) -> None:
    ddb = client(url, key)
    try:
        ddb.delete_table(TableName=table)
        while True:
            ddb.describe_table(TableName=table)
            time.sleep(0.2)
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    while ddb.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.2)
    far = str(int(time.time()) + 10 * 365 * 86400)
    pad = "x" * max(0, item_bytes - 40)

    def write(w: int) -> None:
        c = client(url, key)
        mine = list(range(w, items, writers))
        for i in range(0, len(mine), 25):
            reqs = [{"PutRequest": {"Item": {"pk": {"S": f"item{n:07d}"}, "exp": {"N": far}, "pad": {"S": pad}}}}
                    for n in mine[i:i + 25]]
            for _ in range(BATCH_RETRIES_MAX):
                left = c.batch_write_item(RequestItems={table: reqs}).get("UnprocessedItems", {}).get(table)
                if not left:
                    break
                reqs = left
                time.sleep(0.05)

    t0 = time.monotonic()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    print(f"loaded {items} items of ~{item_bytes} B in {time.monotonic() - t0:.0f} s", file=sys.stderr)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2) if s else float("nan")


class LagPoller:
    """Polls the storage nodes' ``status`` for their event-loop lag (internal RPC)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.max_ms: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as e:
            print(f"loop lag not polled: {e!r}", file=sys.stderr)

    async def _run(self) -> None:
        from dynamolog.rpc import RpcClient

        creds.use_system_key(self.data_dir)
        state = json.loads((self.data_dir / "system.json").read_text())
        clients = [RpcClient("127.0.0.1", int(p)) for p in state["storage_ports"].values()]
        try:
            while not self.stop.is_set():
                for c in clients:
                    st = await c.call("status", timeout_s=5)
                    if "loop_lag_ms_max" in st:
                        self.max_ms = max(self.max_ms or 0.0, float(st["loop_lag_ms_max"]))
                await asyncio.sleep(0.5)
        finally:
            for c in clients:
                await c.close()


def phase(url: str, key: tuple[str, str], table: str, items: int, clients: int, seconds: float, scan: bool,
          data_dir: Path) -> dict[str, Any]:
    gets: list[float] = []
    puts: list[float] = []
    scans = [0]
    stop = threading.Event()

    def worker(w: int) -> None:
        c = client(url, key)
        rnd = random.Random(w)
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            c.get_item(TableName=table, Key={"pk": {"S": f"item{rnd.randrange(items):07d}"}})
            gets.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            c.put_item(TableName=table, Item={"pk": {"S": f"hot{w}-{n % 100}"}, "v": {"N": str(n)}})
            puts.append((time.perf_counter() - t0) * 1000)
            n += 1

    def scanner() -> None:
        c = client(url, key)
        while not stop.is_set():
            args: dict[str, Any] = {"TableName": table}
            while not stop.is_set():
                page = c.scan(**args)
                if "LastEvaluatedKey" not in page:
                    scans[0] += 1
                    break
                args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    poller = LagPoller(data_dir)
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    if scan:
        threads.append(threading.Thread(target=scanner))
    threads.append(threading.Thread(target=poller.run))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    poller.stop.set()
    for t in threads:
        t.join()
    return {"get_ms_p50": pct(gets, 0.5), "get_ms_p99": pct(gets, 0.99), "get_ms_max": pct(gets, 1.0),
            "put_ms_p50": pct(puts, 0.5), "put_ms_p99": pct(puts, 0.99), "put_ms_max": pct(puts, 1.0),
            "requests": len(gets) + len(puts), "full_scans": scans[0], "loop_lag_ms_max": poller.max_ms}


async def in_process(items: int, item_bytes: int, pages: int, paced: bool, path: Path) -> dict[str, Any]:
    """Scan pages (1 MB, with a filter) read by ``services.storage.reads.range_read`` on a real
    replica, while a probe task on the same loop wakes every millisecond: how late it runs is
    what a GetItem or a heartbeat arriving meanwhile would wait.  ``paced`` False sets the
    pacing slice to infinity (the loop is held for a whole page, as before the pacing)."""
    import shutil

    import orjson

    from services.storage import pacing
    from services.storage.reads import range_read
    from services.storage.replica import Replica, data_key

    shutil.rmtree(path, ignore_errors=True)
    replica = Replica(path)
    pad = "x" * max(0, item_bytes - 40)
    for start in range(0, items, 1000):
        muts = [(data_key(f"item{n:07d}".encode()),
                 orjson.dumps({"pk": {"S": f"item{n:07d}"}, "exp": {"N": str(n)}, "pad": {"S": pad}}))
                for n in range(start, min(items, start + 1000))]
        replica.apply_raw(muts, replica.next_offset + 1, 1)
    pacing.SLICE_S = SLICE_S if paced else float("inf")
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            t0 = loop.time()
            await asyncio.sleep(0.001)
            lags.append((loop.time() - t0 - 0.001) * 1000)

    task = asyncio.ensure_future(probe())
    req = {"filter": "#e > :z AND size(#p) > :z", "names": {"#e": "exp", "#p": "pad"}, "values": {":z": {"N": "0"}}}
    t0 = time.perf_counter()
    after: str | None = None
    for _ in range(pages):
        page = await range_read(replica, dict(req, after=after) if after else req)
        after = page.get("last")
        await asyncio.sleep(0)  # between two requests the server's loop runs other tasks
    elapsed = time.perf_counter() - t0
    done.set()
    await task
    replica.destroy()
    return {"paced": paced, "pages": pages, "ms_per_page": round(elapsed * 1000 / pages, 1),
            "probe_lag_ms_p50": pct(lags, 0.5), "probe_lag_ms_p99": pct(lags, 0.99), "probe_lag_ms_max": pct(lags, 1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    parser.add_argument("--data-dir", type=Path, default=creds.default_data_dir(),
                        help="the system's data directory (credentials, system key, storage ports)")
    parser.add_argument("--table", default="loop_stalls")
    parser.add_argument("--items", type=int, default=15_000)
    parser.add_argument("--item-bytes", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip-load", action="store_true", help="reuse the table loaded by an earlier run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--in-process", type=Path, metavar="DIR",
                        help="instead: scan pages on a replica in DIR in this process, paced and not, "
                             "and measure the event loop's stall (no system needed)")
    parser.add_argument("--pages", type=int, default=40, help="--in-process: scan pages read per run")
    args = parser.parse_args()
    if args.in_process:
        runs = [asyncio.run(in_process(args.items, args.item_bytes, args.pages, paced, args.in_process))
                for _ in range(3) for paced in (False, True)]
        print("| pacing | ms per 1 MB page | probe lag p50 / p99 / max ms |")
        print("|---|---|---|")
        for r in runs:
            print(f"| {'2 ms slices' if r['paced'] else 'none'} | {r['ms_per_page']} | {r['probe_lag_ms_p50']} / "
                  f"{r['probe_lag_ms_p99']} / {r['probe_lag_ms_max']} |")
        if args.json:
            args.json.write_text(json.dumps(runs, indent=2))
        return
    key = creds.credentials(args.data_dir)
    if not args.skip_load:
        load(args.endpoint_url, key, args.table, args.items, args.item_bytes)
    out = {name: phase(args.endpoint_url, key, args.table, args.items, args.clients, args.seconds, scan,
                       args.data_dir)
           for name, scan in (("quiet", False), ("busy", True))}
    print("| phase | GetItem p50 / p99 / max ms | PutItem p50 / p99 / max ms | requests | full scans | loop lag max ms |")
    print("|---|---|---|---|---|---|")
    for name, r in out.items():
        print(f"| {name} | {r['get_ms_p50']} / {r['get_ms_p99']} / {r['get_ms_max']} | {r['put_ms_p50']} / "
              f"{r['put_ms_p99']} / {r['put_ms_max']} | {r['requests']} | {r['full_scans']} | "
              f"{r['loop_lag_ms_max']} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
