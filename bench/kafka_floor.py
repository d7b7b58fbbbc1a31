#!/usr/bin/env python3
"""What Kafka alone costs for Dynamolog's write pattern on this machine: the floor under any
write path built on it.

Dynamolog acknowledges a write once its log record is appended with ``acks=all`` (decision
0023) and its followers apply the log; this benchmark does only that, with no Dynamolog code:

  * a local Kafka cluster started here from the project's launcher (dynamolog.kafka.local), with
    the same broker settings `dynamolog up` writes (``--brokers 1`` or ``3``);
  * ``--topics`` one-partition log topics (replication min(3, brokers), ``min.insync.replicas``
    2 of 3), one per table partition: each with one idempotent ``acks=all`` producer, as a
    partition's leader has, and ``--followers`` read_committed consumers, as its follower
    replicas are (fetch wait 100 ms, as services/storage/follower.py);
  * ``--clients`` writers in total, spread over the topics, each appending one record of
    ``--record-bytes`` and waiting for its acknowledgement before the next (a closed loop, like
    the YCSB load's clients; records sent in the same event-loop turn share a batch, as a group
    commit does);
  * then appends offered at ``--rate`` per second for the same time (open loop).

``--commit watermark`` measures another rule for the same appends (tried for issue 12, not kept:
docs/benchmarks.md, "Appends acknowledged by the leading broker, committed by the high
watermark"): each producer appends with ``acks=1``, so the leading broker answers at once and the
next append goes out while this one replicates, and an append counts as done once a consumer of
the topic (``read_uncommitted``: it reads up to the high watermark, which Kafka 4 advances only over
records ``min.insync.replicas`` brokers hold) has read it.

It reports appends/s, acknowledgement latency p50/p99, how long the followers trail, and the
CPU milliseconds per append of the brokers (from /proc) and of this process (the producers
and consumers, which in Dynamolog are the storage nodes). The brokers' figure is what Kafka
needs per append; whatever Dynamolog adds comes on top of it.

    python bench/kafka_floor.py --brokers 3            # the replicated topology's log
    python bench/kafka_floor.py --brokers 1            # the local default's
    python bench/kafka_floor.py --brokers 3 --commit watermark   # acks=1, done below the high watermark
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dynamolog.kafka.admin import KafkaAdmin, create_topic
from dynamolog.kafka.local import LocalKafka

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK


def broker_pids(data_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(data_dir.glob("node-*/kafka.pid"))]


class Floor:
    def __init__(self, args: argparse.Namespace, bootstrap: str, kafka_dir: Path) -> None:
        self.args = args
        self.bootstrap = bootstrap
        self.kafka_dir = kafka_dir
        self.topics = [f"floor.t{i}" for i in range(args.topics)]
        self.producers: list[AIOKafkaProducer] = []
        self.consumers: list[AIOKafkaConsumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.applied: dict[tuple[str, int], int] = {}
        self.acked: dict[str, int] = {}
        #: --commit watermark: each topic's end below the high watermark, and the appends waiting for it
        self.committed: dict[str, int] = {}
        self.waiting: dict[str, list[tuple[int, asyncio.Future[None]]]] = {t: [] for t in self.topics}
        self.value = os.urandom(args.record_bytes // 2).hex().encode()[: args.record_bytes]

    async def start(self) -> None:
        admin = await KafkaAdmin(self.bootstrap).start()
        try:
            for t in self.topics:
                await create_topic(admin, t)
        finally:
            await admin.close()
        for _ in self.topics:
            p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                 linger_ms=0, max_batch_size=1024 * 1024)
            await p.start()
            if self.args.commit == "watermark":
                # aiokafka allows an idempotent producer only acks=all; the broker takes acks=1 from it
                p._sender._acks = 1
            self.producers.append(p)
        for t in self.topics:
            for f in range(self.args.followers):
                c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                     isolation_level="read_committed", fetch_max_wait_ms=100,
                                     max_partition_fetch_bytes=8 * 1024 * 1024)
                await c.start()
                c.assign([TopicPartition(t, 0)])
                self.consumers.append(c)
                self.tasks.append(asyncio.ensure_future(self._follow(c, t, f)))
            if self.args.commit == "watermark":
                c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                     isolation_level="read_uncommitted", fetch_max_wait_ms=500)
                await c.start()
                c.assign([TopicPartition(t, 0)])
                self.consumers.append(c)
                self.tasks.append(asyncio.ensure_future(self._watch(c, t)))

    async def _follow(self, c: AIOKafkaConsumer, topic: str, f: int) -> None:
        tp = TopicPartition(topic, 0)
        while True:
            batches = await c.getmany(tp, timeout_ms=1000)
            for r in batches.get(tp, []):
                self.applied[(topic, f)] = r.offset + 1

    async def _watch(self, c: AIOKafkaConsumer, topic: str) -> None:
        """--commit watermark: read the topic up to its high watermark; release the appends below it."""
        tp = TopicPartition(topic, 0)
        while True:
            batches = await c.getmany(tp, timeout_ms=1000)
            got = batches.get(tp, [])
            if got:
                end = self.committed[topic] = got[-1].offset + 1
                still = []
                for offset, f in self.waiting[topic]:
                    if offset < end:
                        f.set_result(None)
                    else:
                        still.append((offset, f))
                self.waiting[topic] = still

    async def append(self, i: int) -> float:
        t0 = time.perf_counter()
        topic = self.topics[i % len(self.topics)]
        fut = await self.producers[i % len(self.topics)].send(topic, self.value, key=b"k%d" % i, partition=0)
        meta = await fut
        if self.args.commit == "watermark" and self.committed.get(topic, 0) <= meta.offset:
            below: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting[topic].append((meta.offset, below))
            await below
        self.acked[topic] = max(self.acked.get(topic, 0), meta.offset + 1)
        return time.perf_counter() - t0

    async def drained(self) -> float:
        """Seconds until every follower holds every acknowledged append."""
        t0 = time.perf_counter()
        while any(self.applied.get((t, f), 0) < end for t, end in self.acked.items()
                  for f in range(self.args.followers)):
            await asyncio.sleep(0.005)
        return time.perf_counter() - t0

    async def closed(self, seconds: float) -> list[float]:
        lat: list[float] = []
        end = time.perf_counter() + seconds

        async def client(i: int) -> None:
            while time.perf_counter() < end:
                lat.append(await self.append(i))

        await asyncio.gather(*(client(i) for i in range(self.args.clients)))
        return lat

    async def opened(self, seconds: float, rate: float) -> list[float]:
        lat: list[float] = []
        n = int(seconds * rate)
        t0 = time.perf_counter()

        async def one(k: int) -> None:
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            scheduled = t0 + k / rate
            await self.append(k)
            lat.append(time.perf_counter() - scheduled)

        await asyncio.gather(*(one(k) for k in range(n)))
        return lat

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for c in self.consumers:
            await c.stop()
        for p in self.producers:
            await p.stop()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


async def measure(floor: Floor, name: str, coro_fn: Callable[[], Awaitable[list[float]]]) -> dict[str, Any]:
    brokers = broker_pids(floor.kafka_dir)
    b0 = sum(cpu_ms(p) for p in brokers)
    s0 = cpu_ms(os.getpid())
    t0 = time.perf_counter()
    lat = await coro_fn()
    wall = time.perf_counter() - t0
    drain = await floor.drained()  # the followers' trail after the last acknowledgement
    b1 = sum(cpu_ms(p) for p in brokers)
    s1 = cpu_ms(os.getpid())
    n = len(lat)
    out = {
        "phase": name, "appends": n, "per_s": n / wall, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
        "broker_cpu_ms_per_append": (b1 - b0) / max(n, 1), "client_cpu_ms_per_append": (s1 - s0) / max(n, 1),
        "broker_cpu_share": (b1 - b0) / 1000 / wall, "drain_s": drain,
    }
    print(f"{name:>12}: {out['per_s']:7.0f} appends/s  p50 {out['p50_ms']:6.2f} ms  p99 {out['p99_ms']:7.2f} ms  "
          f"CPU ms/append: brokers {out['broker_cpu_ms_per_append']:.3f}, clients "
          f"{out['client_cpu_ms_per_append']:.3f}  (brokers used {out['broker_cpu_share']:.2f} cores; followers done {drain * 1000:.0f} ms after the last ack)", flush=True)
    return out


async def main_async(args: argparse.Namespace) -> None:
    data = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="kafka-floor."))
    kafka = LocalKafka(data / "kafka", brokers=args.brokers, base_port=args.kafka_port)
    print(f"starting {args.brokers} Kafka broker(s) in {data} ...", file=sys.stderr, flush=True)
    kafka.start(timeout_s=180)
    try:
        floor = Floor(args, kafka.bootstrap_servers, data / "kafka")
        await floor.start()
        print(f"{args.topics} topic(s), {args.followers} follower(s) each, {args.clients} writers, "
              f"commit by {'the high watermark (acks=1)' if args.commit == 'watermark' else 'acks=all'}, "
              f"{args.record_bytes} B records; warming up {args.warmup:.0f} s", flush=True)
        await floor.closed(args.warmup)
        if args.idle:
            brokers = broker_pids(data / "kafka")
            b0 = sum(cpu_ms(p) for p in brokers)
            await asyncio.sleep(args.idle)
            print(f"{'at rest':>12}: brokers used {(sum(cpu_ms(p) for p in brokers) - b0) / 1000 / args.idle:.2f} cores",
                  flush=True)
        await measure(floor, "closed loop", lambda: floor.closed(args.duration))
        if args.rate:
            await measure(floor, f"{args.rate:.0f}/s offered", lambda: floor.opened(args.duration, args.rate))
        await floor.stop()
    finally:
        kafka.stop()
        if not args.data_dir:
            shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", type=int, default=3, choices=(1, 3), help="Kafka brokers (default 3)")
    ap.add_argument("--topics", type=int, default=3, help="log topics, one per partition (default 3: one per "
                                                           "storage node of the replicated topology)")
    ap.add_argument("--followers", type=int, default=2, help="read_committed consumers per topic (default 2: "
                                                              "the two follower replicas)")
    ap.add_argument("--clients", type=int, default=16, help="closed-loop writers in total (default 16)")
    ap.add_argument("--record-bytes", type=int, default=1100, help="bytes per record (default 1100: a 1 KB item "
                                                                   "and its log record's envelope)")
    ap.add_argument("--duration", type=float, default=15, help="seconds per measured phase (default 15)")
    ap.add_argument("--warmup", type=float, default=30, help="seconds of closed loop first (default 30)")
    ap.add_argument("--idle", type=float, default=5, help="seconds at rest measured after the warm-up (default 5)")
    ap.add_argument("--rate", type=float, default=500, help="appends/s offered in the open-loop phase "
                                                            "(default 500; 0: skip)")
    ap.add_argument("--commit", choices=("acks-all", "watermark"), default="acks-all",
                    help="when an append is done: acks-all (the broker's acks=all answer, as Dynamolog's leaders "
                         "append) or watermark (acks=1, then read back below the high watermark by a consumer)")
    ap.add_argument("--kafka-port", type=int, default=29490, help="first broker port (default 29490)")
    ap.add_argument("--data-dir", help="where the brokers keep their data (default: a temporary dir, deleted)")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
