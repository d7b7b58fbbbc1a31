"""Faust or an in-process aggregation for the per-minute consumption series?

Auto scaling's alarms read per-minute consumed units per table and kind (read, write), a
one-minute tumbling-window sum over a stream of consumption samples.  This measures the same
aggregation two ways over the same Kafka topic, each in a process of its own:

- ``faust``: a faust-streaming app (in-memory store, its changelog topic in Kafka) with a
  tumbling 60 s table, one agent summing the samples;
- ``inprocess``: an aiokafka consumer summing the samples into a dict keyed by
  (table, kind, minute), as the auto-admin would in its own loop.

Each process produces ``--records`` samples at ``--rate`` per second once its consumer is ready
and reports: resident memory after start and at the end, start-up time (process start to the
first sample aggregated; faust waits ``--warmup-s`` for its partition first), CPU time per 1,000
samples (producer included, the same in both), and the delay from a sample's production to its
aggregation (p50, p99; ``late_*``: over the second half of the samples, past any start-up
backlog).  The window sums are
checked against the produced total.

Faust is not a dependency of the project; run this with a Python that has faust-streaming and
aiokafka (e.g. a virtual environment of its own), against a Kafka broker, e.g.:

    python bench/faust_window.py --bootstrap 127.0.0.1:9092 --mode faust
    python bench/faust_window.py --bootstrap 127.0.0.1:9092 --mode inprocess

Results: docs/decisions/0027-table-stats-and-metrics.md ("Faust").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
import uuid
from typing import Any

T0 = time.monotonic()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sample(i: int) -> dict[str, Any]:
    return {"t": f"table{i % 10}", "k": "write" if i % 3 else "read", "u": 1.0 + i % 4, "ts": time.time()}


async def produce(bootstrap: str, topic: str, n: int, rate: float) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    total = 0.0
    start = time.monotonic()
    try:
        for i in range(n):
            s = sample(i)
            total += s["u"]
            await producer.send(topic, json.dumps(s).encode())
            ahead = start + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return total


async def create_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


class Report:
    def __init__(self, mode: str, n: int) -> None:
        self.mode = mode
        self.n = n
        self.seen = 0
        self.delays: list[float] = []
        self.first_s: float | None = None
        self.rss_started = 0.0
        self.cpu_at_first = 0.0

    def saw(self, ts: float) -> bool:
        if self.first_s is None:
            self.first_s = time.monotonic() - T0
            self.cpu_at_first = cpu_s()
        self.seen += 1
        self.delays.append(time.time() - ts)
        return self.seen >= self.n

    def result(self, total: float, produced: float) -> dict[str, Any]:
        d = sorted(self.delays)
        late = sorted(self.delays[len(self.delays) // 2:])  # the second half: past any start-up backlog
        return {"mode": self.mode, "records": self.n, "rss_mb_started": round(self.rss_started, 1),
                "rss_mb_end": round(rss_mb(), 1), "startup_s": round(self.first_s or 0, 2),
                "cpu_ms_per_1000": round((cpu_s() - self.cpu_at_first) * 1000 / (self.n / 1000), 1),
                "delay_ms_p50": round(d[len(d) // 2] * 1000, 1), "delay_ms_p99": round(d[int(len(d) * 0.99)] * 1000, 1),
                "late_delay_ms_p50": round(late[len(late) // 2] * 1000, 1),
                "late_delay_ms_p99": round(late[int(len(late) * 0.99)] * 1000, 1),
                "window_sum_ok": abs(total - produced) < 1e-6}


def run_faust(args: argparse.Namespace, topic: str) -> None:
    import faust

    rep = Report("faust", args.records)
    app = faust.App(f"capbench-{uuid.uuid4().hex[:6]}", broker=f"kafka://{args.bootstrap}", store="memory://",
                    topic_partitions=1, web_enabled=False)
    source = app.topic(topic, value_serializer="json", partitions=1)
    per_minute = app.Table("per_minute", default=float, partitions=1).tumbling(60.0, expires=180.0)
    produced: list[float] = []

    @app.agent(source)
    async def aggregate(stream: Any) -> None:
        async for ev in stream:
            per_minute[(ev["t"], ev["k"])] += ev["u"]
            if rep.saw(ev["ts"]):
                while not produced:
                    await asyncio.sleep(0.01)
                total = sum(v for _, v in per_minute.table.data.items())  # every window's sums
                print(json.dumps(rep.result(total, produced[0])), flush=True)
                os._exit(0)

    @app.task
    async def load() -> None:
        await asyncio.sleep(args.warmup_s)  # the agent is assigned its partition by then
        rep.rss_started = rss_mb()
        produced.append(await produce(args.bootstrap, topic, args.records, args.rate))

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


async def run_inprocess(args: argparse.Namespace, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    rep = Report("inprocess", args.records)
    sums: dict[tuple[str, str, int], float] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    rep.rss_started = rss_mb()
    producing = asyncio.ensure_future(produce(args.bootstrap, topic, args.records, args.rate))
    done = False
    while not done:
        got = await consumer.getmany(tp, timeout_ms=200)
        for rec in got.get(tp, []):
            ev = json.loads(rec.value)
            key = (ev["t"], ev["k"], int(ev["ts"] // 60))
            sums[key] = sums.get(key, 0.0) + ev["u"]
            done = rep.saw(ev["ts"])
    produced = await producing
    await consumer.stop()
    print(json.dumps(rep.result(sum(sums.values()), produced)), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    p.add_argument("--mode", choices=("faust", "inprocess"), required=True)
    p.add_argument("--records", type=int, default=20_000, help="consumption samples to aggregate (default 20000)")
    p.add_argument("--rate", type=float, default=2000.0, help="samples produced per second (default 2000)")
    p.add_argument("--warmup-s", type=float, default=8.0, help="faust: wait before producing (default 8)")
    args = p.parse_args()
    topic = f"capbench-consumption-{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topic(args.bootstrap, topic))
    if args.mode == "faust":
        run_faust(args, topic)
    else:
        asyncio.run(run_inprocess(args, topic))


if __name__ == "__main__":
    main()
