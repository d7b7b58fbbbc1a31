"""Transactions under contention: bank transfers by TransactWriteItems beside a TransactGetItems
reader, against a running endpoint (docs/benchmarks.md, "Transactions").

    dynamolog up --detach --data-dir .bench
    python bench/txn_contention.py --data-dir .bench --writers 1,4 --duration 20

1. A table of --accounts accounts (each --balance) is created afresh (PAY_PER_REQUEST; with
   --partitions N > 1 a table provisioned for N x 1,000 writes/s, which Dynamolog splits into N
   partitions).
2. Alone, one client, for --solo-seconds: a PutItem (to other keys) and a two-item
   TransactWriteItems transfer in turn: the PutItem p50 the transactions are compared with.
3. For each writer count in --writers: that many clients doing random transfers back to back
   (TransactWriteItems: two Updates, the source's with ConditionExpression balance >= :amt), and
   one reader taking TransactGetItems of every account every --read-interval-ms, for --duration
   seconds.  Reports the reader's success rate, the cancellation reasons seen (and how many
   cancellations named no item: every reason Code "None" or missing), the transfers' p50 / p99
   and outcomes.  Every successful read must see the whole total (asserted, as is the final
   total read item by item afterwards).

boto3 (the rates are low), no retries, everything on 127.0.0.1; bounded in time (each phase ends
at its deadline; each request times out after 10 s).  Exit status 1 if a total was ever wrong.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import creds


def client(endpoint: str, key: tuple[str, str]) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10,
                                      max_pool_connections=4))


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def make_table(ddb: Any, name: str, partitions: int) -> None:
    try:
        ddb.delete_table(TableName=name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ddb.describe_table(TableName=name)
            time.sleep(0.2)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    params: dict[str, Any] = {
        "TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}
    if partitions > 1:
        params.update(BillingMode="PROVISIONED", ProvisionedThroughput={
            "ReadCapacityUnits": 3000, "WriteCapacityUnits": 1000 * partitions})
    else:
        params["BillingMode"] = "PAY_PER_REQUEST"
    ddb.create_table(**params)
    deadline = time.monotonic() + 60
    while ddb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} not ACTIVE after 60 s")
        time.sleep(0.1)


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.key = creds.credentials(Path(a.data_dir) if a.data_dir else None)
        self.accounts = [f"acct-{i:02d}" for i in range(a.accounts)]
        self.total = a.accounts * a.balance
        self.wrong_totals: list[int] = []

    def ddb(self) -> Any:
        return client(self.a.endpoint_url, self.key)

    def transfer(self, ddb: Any, rnd: random.Random) -> dict[str, Any]:
        src, dst = rnd.sample(self.accounts, 2)
        amount = rnd.randint(1, 100)
        return dict(TransactItems=[
            {"Update": {"TableName": self.a.table, "Key": {"pk": {"S": src}},
                        "UpdateExpression": "SET balance = balance - :amt",
                        "ConditionExpression": "balance >= :amt", "ExpressionAttributeValues": {":amt": N(amount)}}},
            {"Update": {"TableName": self.a.table, "Key": {"pk": {"S": dst}},
                        "UpdateExpression": "SET balance = balance + :amt",
                        "ExpressionAttributeValues": {":amt": N(amount)}}}])

    # -- one client alone ---------------------------------------------------------------------
    def solo(self) -> dict[str, Any]:
        """One client alone: a PutItem and a transfer in turn (so that both see the same
        moments of a machine whose load varies), for --solo-seconds."""
        ddb = self.ddb()
        rnd = random.Random(7)
        puts: list[float] = []
        txns: list[float] = []
        end = time.monotonic() + self.a.solo_seconds
        i = 0
        while time.monotonic() < end:
            i += 1
            t0 = time.perf_counter()
            ddb.put_item(TableName=self.a.table, Item={"pk": {"S": f"put-{i % 500}"}, "v": N(i)})
            puts.append((time.perf_counter() - t0) * 1000)
            req = self.transfer(ddb, rnd)
            t0 = time.perf_counter()
            try:
                ddb.transact_write_items(**req)
            except ClientError:
                continue
            txns.append((time.perf_counter() - t0) * 1000)
        return {"put_n": len(puts), "put_p50_ms": pct(puts, 0.5), "put_p99_ms": pct(puts, 0.99),
                "txn_n": len(txns), "txn_p50_ms": pct(txns, 0.5), "txn_p99_ms": pct(txns, 0.99)}

    # -- writers and a reader -----------------------------------------------------------------
    def contention(self, writers: int) -> dict[str, Any]:
        stop = time.monotonic() + self.a.duration
        lock = threading.Lock()
        lat: list[float] = []
        write_outcomes: Counter[str] = Counter()
        write_reasons: Counter[str] = Counter()
        read_ok = 0
        read_outcomes: Counter[str] = Counter()
        read_reasons: Counter[str] = Counter()
        read_no_reason = 0
        write_no_reason = 0
        read_lat: list[float] = []
        n = len(self.accounts)

        def named(reasons: list[dict[str, Any]] | None, size: int) -> tuple[bool, list[str]]:
            """Whether the cancellation names at least one item, and every reason's code."""
            codes = [str((r or {}).get("Code")) for r in (reasons or [])]
            return len(codes) == size and any(c not in ("None", "") for c in codes), codes

        def writer(seed: int) -> None:
            nonlocal write_no_reason
            ddb = self.ddb()
            rnd = random.Random(seed)
            while time.monotonic() < stop:
                req = self.transfer(ddb, rnd)
                t0 = time.perf_counter()
                try:
                    ddb.transact_write_items(**req)
                    ms = (time.perf_counter() - t0) * 1000
                    with lock:
                        lat.append(ms)
                        write_outcomes["committed"] += 1
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    with lock:
                        write_outcomes[code] += 1
                        if code == "TransactionCanceledException":
                            ok, codes = named(e.response.get("CancellationReasons"), 2)
                            write_reasons.update(c for c in codes if c != "None")
                            if not ok:
                                write_no_reason += 1

        def reader() -> None:
            nonlocal read_ok, read_no_reason
            ddb = self.ddb()
            items = [{"Get": {"TableName": self.a.table, "Key": {"pk": {"S": k}}}} for k in self.accounts]
            interval = self.a.read_interval_ms / 1000
            next_at = time.monotonic()
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    got = ddb.transact_get_items(TransactItems=items)["Responses"]
                    read_lat.append((time.perf_counter() - t0) * 1000)
                    total = sum(int(r["Item"]["balance"]["N"]) for r in got)
                    read_ok += 1
                    if total != self.total:
                        self.wrong_totals.append(total)
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    read_outcomes[code] += 1
                    if code == "TransactionCanceledException":
                        ok, codes = named(e.response.get("CancellationReasons"), n)
                        read_reasons.update(c for c in codes if c != "None")
                        if not ok:
                            read_no_reason += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=writer, args=(1000 + i,), daemon=True) for i in range(writers)]
        threads.append(threading.Thread(target=reader, daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.a.duration + 30)
        reads = read_ok + sum(read_outcomes.values())
        return {
            "writers": writers,
            "reads": reads,
            "read_success_pct": 100.0 * read_ok / max(1, reads),
            "read_outcomes": dict(read_outcomes),
            "read_reason_codes": dict(read_reasons),
            "read_cancellations_without_reason": read_no_reason,
            "read_p50_ms": pct(read_lat, 0.5),
            "read_p99_ms": pct(read_lat, 0.99),
            "transfers": dict(write_outcomes),
            "transfer_reason_codes": dict(write_reasons),
            "transfer_cancellations_without_reason": write_no_reason,
            "transfer_p50_ms": pct(lat, 0.5),
            "transfer_p99_ms": pct(lat, 0.99),
            "transfers_per_s": write_outcomes["committed"] / self.a.duration,
        }

    def final_total(self) -> int:
        ddb = self.ddb()
        return sum(int(ddb.get_item(TableName=self.a.table, Key={"pk": {"S": k}}, ConsistentRead=True)
                       ["Item"]["balance"]["N"]) for k in self.accounts)

    def run(self) -> dict[str, Any]:
        ddb = self.ddb()
        make_table(ddb, self.a.table, self.a.partitions)
        for k in self.accounts:
            ddb.put_item(TableName=self.a.table, Item={"pk": {"S": k}, "balance": N(self.a.balance)})
        out: dict[str, Any] = {"partitions": self.a.partitions, "solo": self.solo(), "runs": []}
        for w in self.a.writers:
            out["runs"].append(self.contention(w))
        out["final_total"] = self.final_total()
        out["expected_total"] = self.total
        out["wrong_totals_seen"] = self.wrong_totals[:20]
        return out


def report(out: dict[str, Any]) -> None:
    s = out["solo"]
    print(f"alone, one client: PutItem p50 {s['put_p50_ms']:.2f} ms (n={s['put_n']}), "
          f"two-item TransactWriteItems p50 {s['txn_p50_ms']:.2f} ms p99 {s['txn_p99_ms']:.1f} ms "
          f"(n={s['txn_n']}), ratio {s['txn_p50_ms'] / s['put_p50_ms']:.2f}")
    print()
    print("| writers | TransactGetItems ok | reads | cancelled without reason | reason codes seen "
          "| transfers/s | transfer p50 ms | p99 ms | transfer outcomes |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for r in out["runs"]:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(r["read_reason_codes"].items())) or "-"
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["transfers"].items()))
        print(f"| {r['writers']} | {r['read_success_pct']:.1f} % | {r['reads']} | "
              f"{r['read_cancellations_without_reason'] + r['transfer_cancellations_without_reason']} | {codes} | "
              f"{r['transfers_per_s']:.0f} | {r['transfer_p50_ms']:.1f} | {r['transfer_p99_ms']:.1f} | {outcomes} |")
    print()
    for r in out["runs"]:
        print(f"{r['writers']} writers: transfers cancelled by reason: {r['transfer_reason_codes'] or '-'}; "
              f"TransactGetItems p50 {r['read_p50_ms']:.1f} ms p99 {r['read_p99_ms']:.1f} ms")
    print(f"total: expected {out['expected_total']}, final {out['final_total']}, "
          f"wrong totals read: {out['wrong_totals_seen'] or 'none'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", default="http://127.0.0.1:8000")
    ap.add_argument("--data-dir", default=None, help="the system's data dir (its credentials.env signs)")
    ap.add_argument("--table", default="txncontention")
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--balance", type=int, default=1000)
    ap.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per writer count")
    ap.add_argument("--read-interval-ms", type=float, default=50.0)
    ap.add_argument("--solo-seconds", type=float, default=10.0)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()
    if not a.endpoint_url.startswith(("http://127.0.0.1", "http://localhost")):
        ap.error("this benchmark only talks to 127.0.0.1")
    out = Bench(a).run()
    report(out)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    if out["wrong_totals_seen"] or out["final_total"] != out["expected_total"]:
        print("FAILED: a TransactGetItems or the final read saw a wrong total", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
