#!/usr/bin/env python3
"""Backup and restore throughput: CreateBackup until AVAILABLE, RestoreTableFromBackup and
RestoreTableToPointInTime until ACTIVE, for a table of --items items of about --item-bytes.

Against a running Dynamolog, e.g. the default topology:

  dynamolog up --data-dir /tmp/bk --port 18650 --kafka-port 29650 --storage-port 17650 --detach
  .venv/bin/python bench/backup.py --endpoint-url http://127.0.0.1:18650 --data-dir /tmp/bk

  1. creates <table> with point-in-time recovery on and loads the items (BatchWriteItem, 4 writers);
  2. backup: CreateBackup, then DescribeBackup until AVAILABLE;
  3. restore: RestoreTableFromBackup into a new table, DescribeTable until ACTIVE, then a
     COUNT Scan checks every item is there;
  4. point in time: RestoreTableToPointInTime (latest restorable time) the same way -- it replays
     the table's log from its newest recovery snapshot at or before that time (with the default
     DYNAMOLOG_PITR_SNAPSHOT_S of 600 s and a fresh table: the first snapshot, or the whole log);
  5. prints seconds, items/s and MB/s (of the items' bytes) of each.  --json FILE writes them;
  6. --probe-s S: PutItem latency (p50, p99) of --probe-writers closed-loop writers in quiet
     windows of S seconds with a backup of the table between each two, --probe-rounds backups in
     all; each backup's p99 is compared with the quiet windows before and after it, pooled (this
     machine's p99 moves by a third between quiet minutes: each round's ratio, and their median,
     compare neighbours);
  --table NAME --only probe: the probe alone, on a table loaded before (no load, no restores);
  --skip restore,pitr leaves those steps out;
  7. --pitr-lengths 1000,10000,...: for each length L a fresh table with recovery on gets L
     writes over --pitr-keys keys (the items restored stay the same, the log grows), and a
     RestoreTableToPointInTime to the latest time is timed: restore time against log length.

The store is the system's (`dynamolog up` with DYNAMOLOG_BACKUP_STORE unset: a directory;
`DYNAMOLOG_BACKUP_STORE=s3://bucket/prefix AWS_ENDPOINT_URL_S3=...`: an S3 API server, e.g.
moto's `moto_server -p 5000`); --store names it in the output.  A 1 GB table:
`--items 1000000 --item-bytes 1000`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import creds
from tqdm import tqdm


def client(url: str, key: tuple[str, str]) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key[0],
                        aws_secret_access_key=key[1],
                        config=Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=16))


def wait_table(ddb: Any, name: str) -> None:
    while ddb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.1)


def load(url: str, key: tuple[str, str], table: str, items: int, item_bytes: int, writers: int = 4) -> None:
    ddb = client(url, key)
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    wait_table(ddb, table)
    ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    pad = "x" * max(0, item_bytes - 30)
    bar = tqdm(total=items, desc="load", unit="item")
    lock = threading.Lock()

    def write(w: int) -> None:
        c = client(url, key)
        mine = list(range(w, items, writers))
        for i in range(0, len(mine), 25):
            reqs = [{"PutRequest": {"Item": {"pk": {"S": f"item{n:08d}"}, "pad": {"S": pad}}}} for n in mine[i:i + 25]]
            while reqs:
                left = c.batch_write_item(RequestItems={table: reqs}).get("UnprocessedItems", {}).get(table)
                reqs = left or []
            with lock:
                bar.update(len(mine[i:i + 25]))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def probe(url: str, key: tuple[str, str], table: str, writers: int, stop: threading.Event) -> list[float]:
    """PutItem latencies (ms) of ``writers`` closed-loop writers until ``stop`` is set."""
    out: list[float] = []
    lock = threading.Lock()

    def run(w: int) -> None:
        c = client(url, key)
        n = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            c.put_item(TableName=table, Item={"pk": {"S": f"probe{w}-{n % 1000}"}, "n": {"N": str(n)}})
            with lock:
                out.append((time.perf_counter() - t0) * 1000)
            n += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def put_latency(url: str, key: tuple[str, str], table: str, writers: int, seconds: float,
                during: Any = None) -> tuple[list[float], Any]:
    """Latencies for ``seconds`` (or while ``during()`` runs, if longer), and what it returned."""
    stop = threading.Event()
    got: list[list[float]] = []
    t = threading.Thread(target=lambda: got.append(probe(url, key, table, writers, stop)))
    t.start()
    t0 = time.monotonic()
    result = during() if during else None
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    stop.set()
    t.join()
    return got[0], result


#: seconds of PutItem before the first quiet window, not counted (the first seconds after a
#: start ran at twice the p99 of the later quiet windows)
WARMUP_S = 20.0


def probe_rounds(ddb: Any, url: str, key: tuple[str, str], table: str, writers: int, seconds: float,
                 rounds: int) -> dict[str, Any]:
    """PutItem latencies in quiet windows of ``seconds`` with a backup between each two, ``rounds``
    backups in all; each backup is compared with the quiet windows on both sides of it (this
    machine's quiet p99 moves between minutes: neighbours on both sides, pooled, are the fairest
    reference).  Prints each round."""

    def backup() -> float:
        t0 = time.monotonic()
        arn = ddb.create_backup(TableName=table, BackupName="probe")["BackupDetails"]["BackupArn"]
        while ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] != \
                "AVAILABLE":
            time.sleep(0.05)
        return time.monotonic() - t0

    out: dict[str, Any] = {"probe_rounds": []}
    put_latency(url, key, table, writers, WARMUP_S)  # connections, caches: not a quiet window's
    before, _ = put_latency(url, key, table, writers, seconds)
    for r in range(rounds):
        busy, took = put_latency(url, key, table, writers, 0.0, backup)
        after, _ = put_latency(url, key, table, writers, seconds)
        quiet = before + after
        row = {"put_p50_ms": percentile(quiet, 0.5), "put_p99_ms": percentile(quiet, 0.99),
               "put_p99_before_ms": percentile(before, 0.99), "put_p99_after_ms": percentile(after, 0.99),
               "put_p50_during_backup_ms": percentile(busy, 0.5),
               "put_p99_during_backup_ms": percentile(busy, 0.99), "probe_backup_s": took,
               "put_samples": len(quiet), "put_samples_during_backup": len(busy)}
        row["p99_ratio"] = row["put_p99_during_backup_ms"] / row["put_p99_ms"]
        out["probe_rounds"].append(row)
        print(f"round {r + 1}: PutItem without a backup (before and after it) p50 {row['put_p50_ms']:.2f} p99 "
              f"{row['put_p99_ms']:.2f} ms ({row['put_p99_before_ms']:.2f} before, {row['put_p99_after_ms']:.2f} "
              f"after; {len(quiet)} puts); during one p50 {row['put_p50_during_backup_ms']:.2f} "
              f"p99 {row['put_p99_during_backup_ms']:.2f} ms ({len(busy)} puts, backup {took:.1f} s); "
              f"p99 ratio {row['p99_ratio']:.2f}", flush=True)
        before = after
    for k in ("put_p50_ms", "put_p99_ms", "put_p50_during_backup_ms", "put_p99_during_backup_ms", "p99_ratio",
              "probe_backup_s"):
        out[k] = statistics.median(x[k] for x in out["probe_rounds"])
    print(f"median of {rounds} rounds: p99 {out['put_p99_ms']:.2f} ms without, {out['put_p99_during_backup_ms']:.2f}"
          f" ms during a backup; p99 ratio {out['p99_ratio']:.2f}")
    return out


def pitr_lengths(url: str, key: tuple[str, str], lengths: list[int], keys: int) -> dict[str, float]:
    """Point-in-time restore time (s) for each log length."""
    ddb = client(url, key)
    out = {}
    for n in lengths:
        table = f"bench_pitr_{uuid.uuid4().hex[:6]}"
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        wait_table(ddb, table)
        ddb.update_continuous_backups(TableName=table,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        time.sleep(3)  # the recovery snapshot taken when recovery is turned on (empty): replay is the whole log
        for i in tqdm(range(0, n, 25), desc=f"log of {n}", unit="batch"):
            reqs = [{"PutRequest": {"Item": {"pk": {"S": f"k{j % keys}"}, "n": {"N": str(j)}}}}
                    for j in range(i, min(n, i + 25))]
            reqs = list({r["PutRequest"]["Item"]["pk"]["S"]: r for r in reqs}.values())
            while reqs:
                reqs = ddb.batch_write_item(RequestItems={table: reqs}).get("UnprocessedItems", {}).get(table) or []
        time.sleep(1.5)
        t0 = time.monotonic()
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=f"{table}_r",
                                           UseLatestRestorableTime=True)
        wait_table(ddb, f"{table}_r")
        out[str(n)] = time.monotonic() - t0
        print(f"pitr restore, log of {n:>9} records over {min(n, keys)} keys: {out[str(n)]:7.2f} s")
    return out


def count(ddb: Any, table: str) -> int:
    n, kw = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kw)
        n += page["Count"]
        if "LastEvaluatedKey" not in page:
            return n
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    ap.add_argument("--data-dir", type=Path, default=creds.default_data_dir())
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--item-bytes", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--store", default="file", help="the system's backup store, for the output (file or s3)")
    ap.add_argument("--probe-s", type=float, default=0.0,
                    help="PutItem p99 without and during a backup, each for at least this long (0: skip)")
    ap.add_argument("--probe-writers", type=int, default=4)
    ap.add_argument("--probe-rounds", type=int, default=3, help="backups probed, each between two quiet windows (the median is reported)")
    ap.add_argument("--table", default=None, help="an existing table to use instead of loading one")
    ap.add_argument("--only", choices=["probe"], default=None, help="run only this step (with --table)")
    ap.add_argument("--skip", default="", help="steps to leave out, comma-separated: restore, pitr")
    ap.add_argument("--pitr-lengths", default="", help="comma-separated log lengths for PITR restore time")
    ap.add_argument("--pitr-keys", type=int, default=1000, help="distinct keys the PITR logs write")
    args = ap.parse_args()
    key = creds.credentials(args.data_dir)
    ddb = client(args.endpoint_url, key)
    table = args.table or f"bench_backup_{uuid.uuid4().hex[:6]}"
    if args.only == "probe":
        if not args.table:
            ap.error("--only probe needs --table (a table loaded before)")
        figures = probe_rounds(ddb, args.endpoint_url, key, table, args.probe_writers, args.probe_s or 15.0,
                               args.probe_rounds)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return
    if not args.table:
        load(args.endpoint_url, key, table, args.items, args.item_bytes)
    if args.table:  # a table loaded before holds what it holds (the probe's items too)
        args.items = count(ddb, table)
    data_mb = args.items * args.item_bytes / 1e6
    figures: dict[str, Any] = {"items": args.items, "item_bytes": args.item_bytes, "store": args.store}

    t0 = time.monotonic()
    arn = ddb.create_backup(TableName=table, BackupName="bench")["BackupDetails"]["BackupArn"]
    while True:
        d = ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]
        if d["BackupStatus"] == "AVAILABLE":
            break
        time.sleep(0.05)
    figures["backup_s"] = time.monotonic() - t0
    figures["backup_bytes"] = d["BackupSizeBytes"]

    skip = set(args.skip.split(",")) if args.skip else set()
    if "restore" not in skip:
        target = f"{table}_restored"
        t0 = time.monotonic()
        ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
        wait_table(ddb, target)
        figures["restore_s"] = time.monotonic() - t0
        assert count(ddb, target) == args.items, "the restored table lacks items"

    if "pitr" not in skip:
        time.sleep(1.5)  # past the settle time: every loaded item is before the latest restorable time
        target = f"{table}_pitr"
        t0 = time.monotonic()
        ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target,
                                           UseLatestRestorableTime=True)
        wait_table(ddb, target)
        figures["pitr_restore_s"] = time.monotonic() - t0
        assert count(ddb, target) == args.items, "the point-in-time restore lacks items"

    for what in [w for w in ("backup", "restore", "pitr_restore") if f"{w}_s" in figures]:
        s = figures[f"{what}_s"]
        figures[f"{what}_items_per_s"] = args.items / s
        figures[f"{what}_mb_per_s"] = data_mb / s
        print(f"{what:<13} {s:7.2f} s  {args.items / s:9.0f} items/s  {data_mb / s:6.2f} MB/s")
    print(f"backup size {figures['backup_bytes'] / 1e6:.2f} MB (uncompressed chunks) for {data_mb:.2f} MB of items"
          f" ({args.store} store)")

    if args.probe_s > 0:
        figures.update(probe_rounds(ddb, args.endpoint_url, key, table, args.probe_writers, args.probe_s,
                                    args.probe_rounds))
    if args.pitr_lengths:
        figures["pitr_restore_s_by_log_length"] = pitr_lengths(
            args.endpoint_url, key, [int(x) for x in args.pitr_lengths.split(",") if x], args.pitr_keys)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
