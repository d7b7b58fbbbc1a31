"""Replication figures of a running multi-node Dynamolog: failover, follower lag, replica repair.

Run against a system started with several storage nodes and one partition per table, e.g.

    dynamolog up --detach --data-dir .bench --brokers 3 --storage-nodes 3 --initial-partitions 1 --port 8000
    python bench/replication.py --data-dir .bench failover --runs 5
    python bench/replication.py --data-dir .bench lag --rate 1000 --duration 30
    python bench/replication.py --data-dir .bench repair --megabytes 100

failover  kills (SIGKILL) the storage node leading the table's partition while one client writes
          (PutItem, one at a time) and four clients read (GetItem, eventually consistent); reports
          the time from the kill to the first acknowledged write, the reads that failed meanwhile,
          and restarts the node (then waits until it has caught up) before the next run.
lag       offers --rate PutItem/s (bench/loadgen.py, open loop) for --duration seconds, then asks
          every follower for the lag of each record it applied (the record's Kafka timestamp, when
          the leader wrote it, to its application in the follower's RocksDB): p50 / p99.
repair    loads --megabytes of --item-kb items into a one-partition table (BatchWriteItem), kills a
          follower, deletes its data directory and starts it again: the empty replica copies a
          snapshot of a healthy one and follows the log after it.  Reports the time from the start
          to the replica's catching up with the log, and the snapshot copy alone.

Everything talks to 127.0.0.1 only, is bounded in time, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dynamolog.launcher import System  # noqa: E402
from dynamolog.rpc import RpcClient  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import creds  # noqa: E402 - bench/creds.py

#: the access key (set in main from the system's credentials.env or $AWS_*)
KEY: tuple[str, str] = ("", "")


def client(endpoint: str, **kw: Any) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY[0],
                        aws_secret_access_key=KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, **kw))


async def _rpc(port: int, op: str, **args: Any) -> Any:
    c = RpcClient("127.0.0.1", port)
    try:
        return await c.call(op, timeout_s=5, **args)
    finally:
        await c.close()


def rpc(system: System, node: str, op: str, **args: Any) -> Any:
    return asyncio.run(_rpc(system.state()["storage_ports"][node], op, **args))


def replicas(system: System, table: str) -> dict[str, dict[str, Any]]:
    out = {}
    for node in system.state()["storage_ports"]:
        try:
            st = rpc(system, node, "status")
        except Exception:
            continue
        for p in st["partitions"]:
            if p["table"] == table:
                out[node] = p
    return out


def leader(system: System, table: str) -> str | None:
    for n, p in replicas(system, table).items():
        if p["role"] == "leader" and not p.get("fenced"):
            return n
    return None


def make_table(endpoint: str, name: str) -> None:
    ddb = client(endpoint)
    try:
        ddb.delete_table(TableName=name)
        while True:
            ddb.describe_table(TableName=name)
            time.sleep(0.2)
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    while ddb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.1)


def caught_up(system: System, table: str, node: str, timeout_s: float = 300) -> float:
    """Wait until ``node``'s replica of the table is a follower with no lag; returns when."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = replicas(system, table).get(node)
        if p and p["role"] == "follower" and p.get("lag_records") == 0 and p.get("lag_samples", 0) >= 0:
            lead = leader(system, table)
            if lead and abs(replicas(system, table)[lead]["next_offset"] - p["next_offset"]) <= 2:
                return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"{node} did not catch up within {timeout_s} s")


# -- failover ------------------------------------------------------------------------------------
def failover(system: System, endpoint: str, runs: int) -> dict[str, Any]:
    table = "bench_failover"
    make_table(endpoint, table)
    results = []
    for run in range(1, runs + 1):
        writer = client(endpoint)
        stop = threading.Event()
        read_errors: list[str] = []
        reads = [0]

        def reader(stop: threading.Event = stop, reads: list[int] = reads,
                   read_errors: list[str] = read_errors) -> None:
            c = client(endpoint)
            i = 0
            while not stop.is_set():
                try:
                    c.get_item(TableName=table, Key={"pk": {"S": f"k{i % 100}"}})
                    reads[0] += 1
                except Exception as e:
                    read_errors.append(type(e).__name__)
                i += 1

        for i in range(100):
            writer.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, "v": {"N": "0"}})
        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = leader(system, table)
        assert victim, "no leader"
        system.kill_service(f"storage-{victim}")
        t_kill = time.monotonic()
        first_ack = None
        attempts = 0
        while first_ack is None and time.monotonic() - t_kill < 120:
            attempts += 1
            try:
                writer.put_item(TableName=table, Item={"pk": {"S": f"k{attempts % 100}"}, "v": {"N": str(run)}})
                first_ack = time.monotonic() - t_kill
            except Exception:
                time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        new = leader(system, table)
        system.start_service(f"storage-{victim}")
        caught_up(system, table, victim)
        row = {"run": run, "killed": victim, "new_leader": new, "first_ack_s": round(first_ack or -1, 2),
               "reads_ok": reads[0], "read_errors": len(read_errors)}
        print(f"failover run {run}: {row}", file=sys.stderr)
        results.append(row)
    acks = [r["first_ack_s"] for r in results]
    return {"runs": results, "median_first_ack_s": statistics.median(acks), "max_first_ack_s": max(acks),
            "read_errors": sum(r["read_errors"] for r in results), "reads_ok": sum(r["reads_ok"] for r in results)}


# -- follower lag ------------------------------------------------------------------------------------
def lag(system: System, endpoint: str, rate: int, duration: int) -> dict[str, Any]:
    import tempfile

    table = "bench_lag"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "load.json"
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--endpoint", endpoint, "--table", table, "--create",
             "--clients", "32", "--ops", "put", "--rate", str(rate), "--duration", str(duration), "--repeat", "1",
             "--items", "5000", "--no-progress", "--json", str(out)], check=True)
        load = json.loads(out.read_text())["median"][0]
    followers = {n: p for n, p in replicas(system, table).items() if p["role"] == "follower"}
    return {"offered_per_s": rate, "achieved_per_s": load["ops_per_s"], "put_p50_ms": load["p50_ms"],
            "put_p99_ms": load["p99_ms"], "errors": load["errors"],
            "followers": {n: {"lag_ms_p50": p["lag_ms_p50"], "lag_ms_p99": p["lag_ms_p99"],
                              "samples": p["lag_samples"]} for n, p in followers.items()}}


# -- repair --------------------------------------------------------------------------------------
def repair(system: System, endpoint: str, megabytes: int, item_kb: int) -> dict[str, Any]:
    table = "bench_repair"
    make_table(endpoint, table)
    ddb = client(endpoint)
    items = megabytes * 1024 // item_kb
    pad_len = item_kb * 1024 - 20  # random text: RocksDB cannot compress it away
    t0 = time.monotonic()
    batch: list[dict[str, Any]] = []
    for i in range(items):
        pad = os.urandom(pad_len // 2).hex()
        batch.append({"PutRequest": {"Item": {"pk": {"S": f"item{i:08d}"}, "pad": {"S": pad}}}})
        if len(batch) == 25 or i == items - 1:
            req = {table: batch}
            while req:
                req = ddb.batch_write_item(RequestItems=req).get("UnprocessedItems") or {}
            batch = []
        if i % 2048 == 0:
            print(f"repair: loaded {i:,}/{items:,} items", file=sys.stderr)
    load_s = time.monotonic() - t0
    lead = leader(system, table)
    reps = replicas(system, table)
    victim = next(n for n in sorted(reps) if n != lead)
    data = Path(system.state()["data_dir"]) / "storage" / victim
    size = sum(f.stat().st_size for f in (data / "partitions").rglob("*") if f.is_file())
    system.kill_service(f"storage-{victim}")
    shutil.rmtree(data)
    t1 = time.monotonic()
    system.start_service(f"storage-{victim}")
    done = caught_up(system, table, victim, timeout_s=900)
    log = (Path(system.state()["data_dir"]) / "logs" / f"storage-{victim}.log").read_text().splitlines()
    copy = [line for line in log if "copied a snapshot" in line]
    return {"items": items, "item_kb": item_kb, "megabytes_of_items": megabytes, "replica_bytes_on_disk_before": size,
            "load_s": round(load_s, 1), "repair_s": round(done - t1, 1), "snapshot_log": copy[-1] if copy else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="the data dir of the running system")
    p.add_argument("--json", type=Path, help="also write the result here")
    sub = p.add_subparsers(dest="what", required=True)
    f = sub.add_parser("failover", help="kill the leader node, time until the first acknowledged write")
    f.add_argument("--runs", type=int, default=5)
    lg = sub.add_parser("lag", help="follower lag under a steady write rate")
    lg.add_argument("--rate", type=int, default=1000)
    lg.add_argument("--duration", type=int, default=30)
    r = sub.add_parser("repair", help="rebuild a wiped follower of a large partition")
    r.add_argument("--megabytes", type=int, default=100)
    r.add_argument("--item-kb", type=int, default=10, help="size of each item (default 10 KB)")
    a = p.parse_args()
    system = System(a.data_dir)
    global KEY
    KEY = creds.credentials(a.data_dir)
    creds.use_system_key(a.data_dir)
    state = system.state()
    if state is None:
        raise SystemExit(f"no system in {a.data_dir}: start one with dynamolog up --data-dir {a.data_dir} ...")
    endpoint = f"http://127.0.0.1:{state['port']}"
    if a.what == "failover":
        res = failover(system, endpoint, a.runs)
    elif a.what == "lag":
        res = lag(system, endpoint, a.rate, a.duration)
    else:
        res = repair(system, endpoint, a.megabytes, a.item_kb)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
