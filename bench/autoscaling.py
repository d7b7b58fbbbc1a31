#!/usr/bin/env python3
"""Auto scaling under a step of load (issue 13's figure; decision 0030).

A table provisioned at --wcu write units (default 100) gets a scalable target (MinCapacity
--wcu, MaxCapacity --max) and a target-tracking policy on write utilization (--target, default
70 %) through the application-autoscaling API.  Then PutItem of 1 KB items (one write unit each)
is offered open loop: --low writes a second (default 50) for --low-s seconds, --high (default
400) for --high-s seconds, and --low again for --tail-s seconds.  Every second the table's
provisioned write capacity is read (DescribeTable).  Reported: the capacity over time, when each
scaling activity happened relative to the step up and the step down, and the table's decrease
count at the end (the scale-in must respect DynamoDB's quota).

The alarms' period is the system's DYNAMOLOG_SCALING_PERIOD_S (DynamoDB: 60 s, two periods to
scale out and fifteen to scale in); start the system with shorter ones to run this in minutes:

    DYNAMOLOG_SCALING_PERIOD_S=5 DYNAMOLOG_SCALING_IN_PERIODS=3 \\
        .venv/bin/dynamolog up --detach --data-dir /tmp/bench-as --port 8310 --storage-port 7311 --kafka-port 9402
    .venv/bin/python bench/autoscaling.py --data-dir /tmp/bench-as --endpoint http://127.0.0.1:8310 \\
        --period-s 5 --json /tmp/autoscaling.json
    .venv/bin/dynamolog down --data-dir /tmp/bench-as
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import creds  # noqa: E402 - bench/creds.py
from capacity import ITEM_BYTES, Endpoint, create, delete, offer  # noqa: E402 - bench/capacity.py
from loadgen import Workload, call, watchdog  # noqa: E402

WRITE = "dynamodb:table:WriteCapacityUnits"


def scaling_client(endpoint: str, key: tuple[str, str]) -> Any:
    """boto3's application-autoscaling client, pointed at the system (what a user runs)."""
    import boto3

    return boto3.client("application-autoscaling", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1])


async def run(a: argparse.Namespace) -> dict[str, Any]:
    key = creds.credentials(a.data_dir)
    ep = Endpoint(a.endpoint, key, a.clients)
    probe = Endpoint(a.endpoint, key, 1)
    dog = asyncio.ensure_future(watchdog(ep.clients + probe.clients))
    name = f"as-{uuid.uuid4().hex[:6]}"
    timeline: list[tuple[float, int]] = []
    t0 = time.monotonic()
    try:
        await create(ep, name, {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {
            "ReadCapacityUnits": 10, "WriteCapacityUnits": a.wcu}})
        rid = f"table/{name}"
        aas = scaling_client(a.endpoint, key)
        await asyncio.to_thread(aas.register_scalable_target, ServiceNamespace="dynamodb", ResourceId=rid,
                                ScalableDimension=WRITE, MinCapacity=a.wcu, MaxCapacity=a.max)
        await asyncio.to_thread(
            aas.put_scaling_policy, PolicyName="writes", ServiceNamespace="dynamodb", ResourceId=rid,
            ScalableDimension=WRITE, PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": a.target,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}})
        w = Workload(name, 100_000, 1, ITEM_BYTES, seed=1)

        def put(rnd: random.Random) -> bytes:
            return w.put_body(w.pks[int(rnd.random() * w.n_pk)], w.sks[0], rnd)

        stop = asyncio.Event()

        async def watch() -> None:
            c = probe.clients[0]
            while not stop.is_set():
                status, doc = await call(c, probe.rb, "DescribeTable", {"TableName": name})
                if status == 200:
                    timeline.append((time.monotonic() - t0, int(doc["Table"]["ProvisionedThroughput"]
                                                                ["WriteCapacityUnits"])))
                await asyncio.sleep(1.0)

        watcher = asyncio.ensure_future(watch())
        phases = []
        t_start = time.monotonic() - t0
        for label, rate, secs in (("low", a.low, a.low_s), ("high", a.high, a.high_s), ("tail", a.low, a.tail_s)):
            start = time.monotonic() - t0
            rows = await offer([ep], "PutItem", put, rate, secs, bar=f"{label}: {rate:.0f} writes/s")
            ok = sum(1 for r in rows if r[2] == "ok")
            phases.append({"phase": label, "offered_per_s": rate, "start_s": round(start - t_start, 1),
                           "acked_per_s": round(ok / secs, 1),
                           "throttled": sum(1 for r in rows if r[2] == "ProvisionedThroughputExceededException")})
        stop.set()
        await watcher
        acts = (await asyncio.to_thread(aas.describe_scaling_activities, ServiceNamespace="dynamodb",
                                        ResourceId=rid))["ScalingActivities"]
        status, doc = await call(ep.clients[0], ep.rb, "DescribeTable", {"TableName": name})
        decreases = doc["Table"]["ProvisionedThroughput"].get("NumberOfDecreasesToday") if status == 200 else None
    finally:
        dog.cancel()
        await delete(ep, name)
        ep.close()
        probe.close()
    high_at = phases[1]["start_s"]
    tail_at = phases[2]["start_s"]
    changes = []
    last = None
    for t, cap in timeline:
        if cap != last:
            changes.append({"t_s": round(t - t_start, 1), "wcu": cap})
            last = cap
    first_out = next((c["t_s"] - high_at for c in changes if c["t_s"] >= high_at and c["wcu"] > a.wcu), None)
    first_in = next((c["t_s"] - tail_at for c in changes[1:] if c["t_s"] >= tail_at
                     and c["wcu"] < max(x["wcu"] for x in changes)), None)
    return {"wcu": a.wcu, "target": a.target, "period_s": a.period_s, "phases": phases, "capacity_changes": changes,
            "scale_out_after_step_s": first_out, "scale_in_after_drop_s": first_in,
            "activities": [{"description": x["Description"], "status": x["StatusCode"],
                            "cause": x["Cause"].split(" triggered")[0]} for x in reversed(acts)],
            "decreases_today": decreases}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:8000")
    p.add_argument("--data-dir", type=Path, required=True, help="the system's data dir (its administrator key)")
    p.add_argument("--wcu", type=int, default=100, help="the table's write capacity and MinCapacity")
    p.add_argument("--max", type=int, default=2000, help="MaxCapacity")
    p.add_argument("--target", type=float, default=70.0, help="target write utilization, percent")
    p.add_argument("--low", type=float, default=50.0, help="writes/s before and after the step")
    p.add_argument("--high", type=float, default=400.0, help="writes/s of the step")
    p.add_argument("--period-s", type=float, default=60.0,
                   help="the system's DYNAMOLOG_SCALING_PERIOD_S (sets the phases' default lengths)")
    p.add_argument("--low-s", type=float, help="seconds of the first phase (default 3 periods)")
    p.add_argument("--high-s", type=float, help="seconds of the step (default 8 periods)")
    p.add_argument("--tail-s", type=float, help="seconds after the drop (default 8 periods)")
    p.add_argument("--clients", type=int, default=32, help="connections")
    p.add_argument("--json", type=Path, help="write the result here too")
    a = p.parse_args()
    a.low_s = a.low_s or 3 * a.period_s
    a.high_s = a.high_s or 8 * a.period_s
    a.tail_s = a.tail_s or 8 * a.period_s
    result = asyncio.run(run(a))
    text = json.dumps(result, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
