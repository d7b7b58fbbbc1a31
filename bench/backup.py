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
  5. prints seconds, items/s and MB/s (of the items' bytes) of each.  --json FILE writes them.
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = ap.parse_args()
    key = creds.credentials(args.data_dir)
    ddb = client(args.endpoint_url, key)
    table = f"bench_backup_{uuid.uuid4().hex[:6]}"
    load(args.endpoint_url, key, table, args.items, args.item_bytes)
    data_mb = args.items * args.item_bytes / 1e6
    figures: dict[str, Any] = {"items": args.items, "item_bytes": args.item_bytes}

    t0 = time.monotonic()
    arn = ddb.create_backup(TableName=table, BackupName="bench")["BackupDetails"]["BackupArn"]
    while True:
        d = ddb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]
        if d["BackupStatus"] == "AVAILABLE":
            break
        time.sleep(0.05)
    figures["backup_s"] = time.monotonic() - t0
    figures["backup_bytes"] = d["BackupSizeBytes"]

    target = f"{table}_restored"
    t0 = time.monotonic()
    ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
    wait_table(ddb, target)
    figures["restore_s"] = time.monotonic() - t0
    assert count(ddb, target) == args.items, "the restored table lacks items"

    time.sleep(1.5)  # past the settle time: every loaded item is before the latest restorable time
    target = f"{table}_pitr"
    t0 = time.monotonic()
    ddb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=target, UseLatestRestorableTime=True)
    wait_table(ddb, target)
    figures["pitr_restore_s"] = time.monotonic() - t0
    assert count(ddb, target) == args.items, "the point-in-time restore lacks items"

    for what in ("backup", "restore", "pitr_restore"):
        s = figures[f"{what}_s"]
        figures[f"{what}_items_per_s"] = args.items / s
        figures[f"{what}_mb_per_s"] = data_mb / s
        print(f"{what:<13} {s:7.2f} s  {args.items / s:9.0f} items/s  {data_mb / s:6.2f} MB/s")
    print(f"backup size {figures['backup_bytes'] / 1e6:.2f} MB (uncompressed chunks) for {data_mb:.2f} MB of items")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
