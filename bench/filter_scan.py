#!/usr/bin/env python3
"""What a FilterExpression costs: Scan and Query of 10,000 items with and without a filter.

Against a running endpoint (Dynamolog by default at http://127.0.0.1:8000, or any
DynamoDB-compatible one), with boto3's low-level client (dummy credentials, us-east-1):

  1. creates two tables (PAY_PER_REQUEST; dropped first if they exist):
       <prefix>_scan   hash key pk (S)                 — --items items, one per pk
       <prefix>_query  hash key pk (S), range sk (S)   — --items items, all under pk "p"
  2. loads them with BatchWriteItem (25 items a request, UnprocessedItems retried); every item
     is about --item-bytes bytes (DynamoDB's item size) and has attributes a filter can test:
       status (S)   "active" for 1 item in 10 (i % 10 == 0), else "idle" / "gone"
       price  (N)   i % 100
       tags   (SS)  on every item;  name (S);  pad (S) filling up to --item-bytes
  3. times, --runs times each (after one untimed warm-up run), a full read that pages through
     LastEvaluatedKey:
       Scan of <prefix>_scan, Query pk = "p" of <prefix>_query,
     each without a filter and with the selective FilterExpression
       #s = :active AND price BETWEEN :lo AND :hi AND attribute_exists(tags) AND size(#n) > :z
     (keeps the 10 % of items whose status is "active"). Count / ScannedCount are checked.
  4. prints a markdown table: median seconds per full read, items/s scanned, pages, and the
     ratio filter / no filter (target: within 2x).

The time is what the client sees, boto3's JSON parsing included: a read without a filter
returns every item, so the client parses 10x more; the ratio therefore understates the server's
own filter cost a little. The tables are deleted at the end unless --keep.

  .venv/bin/python bench/filter_scan.py                      # default endpoint, 10,000 items
  .venv/bin/python bench/filter_scan.py --endpoint-url http://127.0.0.1:8000 --runs 5 --keep
  .venv/bin/python bench/filter_scan.py --skip-load --keep   # reuse tables loaded before
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

FILTER = "#s = :active AND price BETWEEN :lo AND :hi AND attribute_exists(tags) AND size(#n) > :z"
FILTER_ARGS: dict[str, Any] = {
    "FilterExpression": FILTER,
    "ExpressionAttributeNames": {"#s": "status", "#n": "name"},
    "ExpressionAttributeValues": {":active": {"S": "active"}, ":lo": {"N": "0"}, ":hi": {"N": "1000"},
                                  ":z": {"N": "0"}},
}
QUERY_PK = "p"


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import creds  # noqa: E402 - bench/creds.py

KEY = creds.credentials()  # $AWS_* or .data/credentials.env ($DYNAMOLOG_DATA_DIR)


def client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=KEY[0], aws_secret_access_key=KEY[1],
        config=Config(retries={"max_attempts": 10, "mode": "standard"}, read_timeout=120),
    )


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item of S, N and SS attributes (names + values; N approximated)."""
    n = 0
    for name, v in item.items():
        n += len(name.encode())
        if "S" in v:
            n += len(v["S"].encode())
        elif "N" in v:
            n += len(v["N"]) // 2 + 1
        else:
            n += sum(len(s.encode()) for s in v["SS"])
    return n


def make_item(i: int, hash_only: bool, item_bytes: int) -> dict[str, Any]:
    if hash_only:
        item: dict[str, Any] = {"pk": {"S": f"k{i:07d}"}}
    else:
        item = {"pk": {"S": QUERY_PK}, "sk": {"S": f"s{i:07d}"}}
    item |= {
        "status": {"S": "active" if i % 10 == 0 else ("idle" if i % 10 < 6 else "gone")},
        "price": {"N": str(i % 100)},
        "tags": {"SS": ["red", f"t{i % 7}"]},
        "name": {"S": f"item number {i}"},
    }
    item["pad"] = {"S": "x" * max(1, item_bytes - item_size(item) - 4)}
    return item


def recreate(ddb: Any, name: str, hash_only: bool) -> None:
    try:
        ddb.delete_table(TableName=name)
        ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except ddb.exceptions.ResourceNotFoundException:
        pass
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if not hash_only:
        attrs.append({"AttributeName": "sk", "AttributeType": "S"})
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
    ddb.create_table(TableName=name, AttributeDefinitions=attrs, KeySchema=schema, BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def load(ddb: Any, name: str, hash_only: bool, items: int, item_bytes: int) -> float:
    """BatchWriteItem all items; returns the seconds it took."""
    t0 = time.perf_counter()
    for start in range(0, items, 25):
        batch = [{"PutRequest": {"Item": make_item(i, hash_only, item_bytes)}}
                 for i in range(start, min(items, start + 25))]
        pending: dict[str, Any] = {name: batch}
        for attempt in range(50):
            left = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not left:
                break
            pending = left
            time.sleep(min(1.0, 0.02 * 2 ** attempt))
        else:
            raise SystemExit(f"{name}: BatchWriteItem keeps leaving unprocessed items")
    return time.perf_counter() - t0


def read_all(call: Callable[..., Any], args: dict[str, Any]) -> tuple[float, int, int, int]:
    """Page through a Scan or Query; returns (seconds, Count, ScannedCount, pages)."""
    count = scanned = pages = 0
    start: dict[str, Any] | None = None
    t0 = time.perf_counter()
    while True:
        page = call(**args, **({"ExclusiveStartKey": start} if start else {}))
        count += page["Count"]
        scanned += page["ScannedCount"]
        pages += 1
        start = page.get("LastEvaluatedKey")
        if not start:
            return time.perf_counter() - t0, count, scanned, pages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", default="http://127.0.0.1:8000", help="default http://127.0.0.1:8000")
    ap.add_argument("--items", type=int, default=10_000, help="items per table (default 10,000)")
    ap.add_argument("--item-bytes", type=int, default=200, help="approximate item size (default 200)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per case; the median is shown (default 5)")
    ap.add_argument("--table-prefix", default="filterbench", help="tables <prefix>_scan and <prefix>_query")
    ap.add_argument("--consistent", action="store_true", help="ConsistentRead on every Scan and Query")
    ap.add_argument("--skip-load", action="store_true", help="reuse the tables as they are (loaded before)")
    ap.add_argument("--keep", action="store_true", help="do not delete the tables at the end")
    a = ap.parse_args()

    ddb = client(a.endpoint_url)
    scan_t, query_t = f"{a.table_prefix}_scan", f"{a.table_prefix}_query"
    print(f"# filter_scan  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  endpoint {a.endpoint_url}  "
          f"items {a.items:,} of ~{a.item_bytes} B  runs {a.runs}  consistent={a.consistent}", flush=True)
    if not a.skip_load:
        for name, hash_only in ((scan_t, True), (query_t, False)):
            recreate(ddb, name, hash_only)
            took = load(ddb, name, hash_only, a.items, a.item_bytes)
            print(f"loaded {name}: {a.items:,} items in {took:.1f} s ({a.items / took:,.0f} items/s)", flush=True)

    consistent = {"ConsistentRead": True} if a.consistent else {}
    query_key = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": QUERY_PK}}}
    query_filter = dict(FILTER_ARGS, ExpressionAttributeValues=FILTER_ARGS["ExpressionAttributeValues"]
                        | query_key["ExpressionAttributeValues"])
    cases: list[tuple[str, Callable[..., Any], dict[str, Any], int]] = [
        ("Scan", ddb.scan, {"TableName": scan_t, **consistent}, a.items),
        ("Scan + filter", ddb.scan, {"TableName": scan_t, **consistent, **FILTER_ARGS}, (a.items + 9) // 10),
        ("Query", ddb.query, {"TableName": query_t, **consistent, **query_key}, a.items),
        ("Query + filter", ddb.query,
         {"TableName": query_t, **consistent, **query_key, **query_filter}, (a.items + 9) // 10),
    ]
    medians: dict[str, float] = {}
    rows = []
    for label, call, args, expect in cases:
        read_all(call, args)  # warm-up, not counted
        runs = [read_all(call, args) for _ in range(a.runs)]
        for _, count, scanned, _ in runs:
            if count != expect or scanned != a.items:
                raise SystemExit(f"{label}: Count {count} ScannedCount {scanned}, expected {expect} / {a.items}")
        secs = statistics.median(r[0] for r in runs)
        medians[label] = secs
        rows.append((label, secs, runs[0][1], runs[0][3], min(r[0] for r in runs), max(r[0] for r in runs)))
        print(f"  {label}: median {secs * 1000:.0f} ms", flush=True)

    print("\n| read | returned | pages | median ms | min ms | max ms | items scanned/s | filter / no filter |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for label, secs, count, pages, lo, hi in rows:
        base = label.removesuffix(" + filter")
        ratio = ""
        if base != label:
            r = secs / medians[base]
            worst = max(worst, r)
            ratio = f"{r:.2f}x"
        print(f"| {label} | {count:,} | {pages} | {secs * 1000:,.0f} | {lo * 1000:,.0f} | {hi * 1000:,.0f} "
              f"| {a.items / secs:,.0f} | {ratio} |")
    print(f"\nworst filter / no-filter ratio {worst:.2f}x: {'within' if worst <= 2 else 'OVER'} the 2x target")

    if not a.keep:
        for name in (scan_t, query_t):
            ddb.delete_table(TableName=name)
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
