#!/usr/bin/env python3
"""YCSB-style benchmark for DynamoDB-compatible servers, with the CPU each process of the server used.

It speaks raw HTTP/1.1 through bench/loadgen.py's client (keep-alive connections, one request in
flight per connection, every request SigV4-signed), not through an AWS SDK.

Data (the YCSB core workloads' record layout)
  table `usertable`, hash key `key` (S); --records records with keys user0 .. user{N-1}, each
  with ten string fields field0 .. field9 of 100 bytes (random letters and digits): about 1 KB of
  DynamoDB item size per record.  Created on demand (PAY_PER_REQUEST); a Dynamolog table with
  WarmThroughput of --warm units a second (reads and writes), so that its capacity rules (a new
  on-demand table serves 4,000 write / 12,000 read units a second at once, and a 1 KB item is two
  write units) do not stop a workload a DynamoDB user would have pre-warmed for.

Workloads (--workload, several comma-separated run in the order given)
  load      PutItem of every record once, in key order, shared among --clients clients (closed
            loop; a failed put is retried until it succeeds, and its error counted); puts/s =
            records / wall time.  Creates the table first (dropping it if it exists) unless
            --no-create; with --repeat the later loads overwrite the same records.
  A         --duration seconds, closed loop, --clients clients: 50 % GetItem (eventually
            consistent) / 50 % UpdateItem `SET fieldK = :v` of one field K chosen uniformly, with
            a new 100-byte value.  Keys follow a zipfian distribution (below).
  C         the same with 100 % GetItem.
  put-lone  one client, one request at a time: --lone-requests PutItems of whole records (keys
            uniform), after 20 unmeasured ones.  The latency of a lone write.
  put-rate  PutItem of whole records (keys uniform) offered at --rate per second for
            --probe-duration seconds, open loop over --clients connections: each connection sends
            on a fixed schedule and latency counts from the scheduled time, so a server that falls
            behind shows as latency (bench/loadgen.py --rate does the same).
  A, C and put-rate first run 1 s unmeasured, as bench/loadgen.py does.  A GetItem that returns
  no item counts as error check:ItemMissing: run `load` before A or C.

Key distribution of A and C: zipfian with YCSB's constant 0.99 over the --records keys, drawn by
the method YCSB uses (from "Quickly generating billion-record synthetic databases",
SIGMOD 1994), and scrambled: rank r (0 = hottest) names record perm[r], where perm is a fixed
random permutation of the records (seed 1), so that the hot keys are spread over the key space
and the partitions.  (YCSB scrambles with an FNV hash of the rank modulo the record count; a
permutation keeps the mapping one to one, so every record keeps exactly one rank.)  With 5,000
records the hottest key takes about 11 % of the requests and the 100 hottest about 56 %.

CPU per process, from /proc/<pid>/stat (utime + stime), sampled every 0.5 s over each measured
window (re-reading the process list, so a restarted service is still counted), in classes:
  broker    the Kafka brokers the system started: DATA/kafka/node-*/kafka.pid, a java process whose
            command line holds kafka.Kafka (--data-dir; a system on an external Kafka has none)
  storage   the storage nodes (storage-n*)          router    the request router(s)
  services  the auto-admins, the indexers and the supervisor
  dynalite  the node process bench/peers.py started for the endpoint's port (or --peer-pid)
reported as CPU ms per write (PutItem / UpdateItem acknowledged in the window) and per operation.
Of the brokers' CPU, what their JIT compiler threads took (ms a second, from /proc/<pid>/task at
the window's start and end) is reported too: brokers still compiling are not yet a steady state.
The load generator's own CPU is the last column (100 % = the one core it runs on).

Examples
  python bench/ycsb.py --endpoint http://127.0.0.1:8400 --data-dir /tmp/d --workload load,A,C
  python bench/ycsb.py --endpoint http://127.0.0.1:8401 --workload load,A,C,put-lone,put-rate \\
      --records 500 --duration 3 --lone-requests 200 --probe-duration 3 --json /tmp/dynalite.json
  python bench/ycsb.py --report /tmp/dynalite.json /tmp/dynamolog.json --out /tmp/ycsb.md
bench/ycsb.sh runs the whole sitting (dynalite and two Dynamolog topologies) and writes the table.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import platform
import random
import resource
import shlex
import statistics
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)

import creds  # noqa: E402 - bench/creds.py
import peers  # noqa: E402 - bench/peers.py
from loadgen import Client, RequestBuilder, create_table, error_type, watchdog  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a project dependency
    uvloop = None

WORKLOADS = ("load", "A", "C", "put-lone", "put-rate")
TABLE = "usertable"
KEY_ATTR = "key"
FIELDS = 10
FIELD_BYTES = 100
ZIPF_CONSTANT = 0.99
WARMUP_S = 1.0
LONE_WARMUP_REQUESTS = 20
CPU_SAMPLE_S = 0.5
#: CPU classes, in report order
CLASSES = ("broker", "storage", "router", "services", "dynalite")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# Key choice
# --------------------------------------------------------------------------


class Zipfian:
    """Ranks 0 .. n-1 with P(rank i) proportional to 1 / (i + 1) ** theta, drawn in O(1) from one
    uniform number (the method of "Quickly generating billion-record synthetic databases", SIGMOD 1994, which
    YCSB's zipfian generator uses)."""

    def __init__(self, n: int, theta: float = ZIPF_CONSTANT) -> None:
        if n < 2:
            raise ValueError("a zipfian distribution needs at least 2 items")
        self.n = n
        self.zetan = sum(1.0 / (i**theta) for i in range(1, n + 1))
        zeta2 = 1.0 + 0.5**theta
        self.second = zeta2  # u * zetan below this (and >= 1) draws rank 1
        self.alpha = 1.0 / (1.0 - theta)
        self.eta = (1.0 - (2.0 / n) ** (1.0 - theta)) / (1.0 - zeta2 / self.zetan)

    def rank(self, u: float) -> int:
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < self.second:
            return 1
        return min(self.n - 1, int(self.n * (self.eta * u - self.eta + 1.0) ** self.alpha))


class Records:
    """The records' keys and the request bodies of every operation."""

    def __init__(self, n: int, table: str = TABLE, seed: int = 1) -> None:
        self.n = n
        self.keys = [b"user%d" % i for i in range(n)]
        rnd = random.Random(seed)
        alphabet = string.ascii_letters + string.digits
        self.pool = "".join(rnd.choice(alphabet) for _ in range(4096 + FIELD_BYTES)).encode()
        perm = list(range(n))
        random.Random(seed).shuffle(perm)
        self.perm = perm
        self.zipf = Zipfian(n) if n >= 2 else None
        t = json.dumps(table).encode()
        k = json.dumps(KEY_ATTR).encode()
        self.put_pre = b'{"TableName":' + t + b',"Item":{' + k + b':{"S":"'
        self.field_pre = [b'"},"field%d":{"S":"' % i for i in range(FIELDS)]
        self.get = [b'{"TableName":' + t + b',"Key":{' + k + b':{"S":"' + key + b'"}},"ConsistentRead":false}'
                    for key in self.keys]
        self.upd_pre = [b'{"TableName":' + t + b',"Key":{' + k + b':{"S":"' + key
                        + b'"}},"UpdateExpression":"SET #f = :v","ExpressionAttributeNames":{"#f":"field'
                        for key in self.keys]
        self.upd_mid = b'"},"ExpressionAttributeValues":{":v":{"S":"'

    def value(self, rnd: random.Random) -> bytes:
        off = int(rnd.random() * 4096)
        return self.pool[off : off + FIELD_BYTES]

    def put_body(self, i: int, rnd: random.Random) -> bytes:
        parts = [self.put_pre, self.keys[i]]
        for pre in self.field_pre:
            parts += (pre, self.value(rnd))
        parts.append(b'"}}}')
        return b"".join(parts)

    def update_body(self, i: int, rnd: random.Random) -> bytes:
        return b"".join((self.upd_pre[i], b"%d" % int(rnd.random() * FIELDS), self.upd_mid, self.value(rnd),
                         b'"}}}'))

    def zipf_key(self, rnd: random.Random) -> int:
        if self.zipf is None:
            return 0
        return self.perm[self.zipf.rank(rnd.random())]

    def item_bytes(self) -> int:
        """DynamoDB size of one record: attribute names plus values."""
        return len(KEY_ATTR) + len(self.keys[-1]) + sum(len(b"field%d" % i) + FIELD_BYTES for i in range(FIELDS))


# --------------------------------------------------------------------------
# CPU per process from /proc
# --------------------------------------------------------------------------


def stat_ticks(path: str) -> tuple[bytes, int] | None:
    """(comm, utime + stime in clock ticks) of a /proc ``stat`` file (None if it is gone)."""
    try:
        with open(path, "rb") as f:
            head, _, rest = f.read().rpartition(b")")
        fields = rest.split()
        return head.partition(b"(")[2], int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def proc_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` in clock ticks (None if it is gone)."""
    got = stat_ticks(f"/proc/{pid}/stat")
    return None if got is None else got[1]


def jit_ticks(pid: int) -> int:
    """utime + stime of the JVM ``pid``'s JIT compiler threads ("C1 CompilerThread0", "C2 ...")
    in clock ticks: how much of a broker's CPU went to compiling rather than to requests."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    threads = (stat_ticks(f"/proc/{pid}/task/{tid}/stat") for tid in tids)
    # the comm field is cut at 15 characters
    return sum(t[1] for t in threads if t is not None and t[0].startswith((b"C1 CompilerThre", b"C2 CompilerThre")))


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def service_class(name: str) -> str:
    if name.startswith("storage"):
        return "storage"
    if name.startswith("router"):
        return "router"
    return "services"  # admin, admin-2, indexer, indexer-2, supervisor


def dynamolog_processes(data_dir: Path) -> dict[int, tuple[str, str]]:
    """{pid: (class, name)} of the system in ``data_dir`` (its system.json and its brokers' pid files)."""
    out: dict[int, tuple[str, str]] = {}
    try:
        state = json.loads((data_dir / "system.json").read_text())
    except (OSError, ValueError):
        state = {}
    for name, pid in (state.get("pids") or {}).items():
        out[int(pid)] = (service_class(name), name)
    if state.get("supervisor"):
        out[int(state["supervisor"])] = ("services", "supervisor")
    for pid_file in sorted(glob.glob(str(data_dir / "kafka" / "node-*" / "kafka.pid"))):
        try:
            pid = int(Path(pid_file).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        cmd = proc_cmdline(pid)
        # the broker of this system: java ... kafka.Kafka DATA/kafka/node-<i>/server.properties
        if "kafka.Kafka" in cmd and os.path.dirname(pid_file) in cmd:
            out[pid] = ("broker", "broker-" + os.path.basename(os.path.dirname(pid_file)))
    return out


def dynalite_processes(pid: int) -> dict[int, tuple[str, str]]:
    return {pid: ("dynalite", "dynalite")} if "dynalite" in proc_cmdline(pid) else {}


class CpuMeter:
    """CPU used by each process of the system under test between start() and stop()."""

    def __init__(self, resolve: Callable[[], dict[int, tuple[str, str]]]) -> None:
        self.resolve = resolve
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.names: dict[int, tuple[str, str]] = {}
        #: the brokers' JIT compiler threads' ticks at start() (read at start and stop only: a
        #: JVM may end an idle compiler thread, whose ticks then go uncounted)
        self.jit_first: dict[int, int] = {}
        self.started = False

    def sample(self) -> None:
        for pid, who in self.resolve().items():
            t = proc_ticks(pid)
            if t is None:
                continue
            if pid not in self.first:
                # a process that appeared during the window (a restarted service): all its CPU counts
                self.first[pid] = t if not self.started else 0
            self.last[pid] = t
            self.names[pid] = who

    def start(self) -> None:
        self.first.clear()
        self.last.clear()
        self.started = False
        self.sample()
        self.jit_first = {pid: jit_ticks(pid) for pid, (cls, _) in self.names.items() if cls == "broker"}
        self.started = True

    def stop(self) -> dict[str, Any]:
        self.sample()
        by_class = {c: 0.0 for c in CLASSES}
        by_process: dict[str, float] = {}
        for pid, t in self.last.items():
            cls, name = self.names[pid]
            ms = (t - self.first[pid]) * 1000.0 / CLK_TCK
            by_class[cls] = by_class.get(cls, 0.0) + ms
            by_process[name] = by_process.get(name, 0.0) + ms
        present = {cls for cls, _ in self.names.values()}
        out: dict[str, Any] = {"by_class": {c: round(v, 1) for c, v in by_class.items() if c in present},
                               "by_process": {n: round(v, 1) for n, v in sorted(by_process.items())}}
        if self.jit_first:
            jit = sum(max(0, jit_ticks(pid) - t) for pid, t in self.jit_first.items())
            out["broker_jit_ms"] = round(jit * 1000.0 / CLK_TCK, 1)
        return out

    async def sampling(self) -> None:
        while True:
            await asyncio.sleep(CPU_SAMPLE_S)
            self.sample()


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------


class Tally:
    """Latencies and errors per operation type within a measured window."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {}
        self.errors: dict[str, Counter] = {}

    def ok(self, op: str, seconds: float) -> None:
        self.lat.setdefault(op, []).append(seconds)

    def error(self, op: str, kind: str) -> None:
        self.errors.setdefault(op, Counter())[kind] += 1


def pct(sorted_lat: list[float], p: float) -> float | None:
    if not sorted_lat:
        return None
    return round(sorted_lat[min(len(sorted_lat) - 1, int(p * len(sorted_lat)))] * 1000.0, 3)


def summarize(workload: str, tally: Tally, seconds: float, cpu: dict[str, Any] | None, loadgen_cpu_s: float,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    by_op: dict[str, Any] = {}
    all_lat: list[float] = []
    errors: Counter = Counter()
    for op in sorted(set(tally.lat) | set(tally.errors)):
        lat = sorted(tally.lat.get(op, []))
        all_lat += lat
        errs = tally.errors.get(op, Counter())
        errors.update({f"{op}:{k}": v for k, v in errs.items()})
        by_op[op] = {"ops": len(lat), "ops_per_s": round(len(lat) / seconds, 1) if seconds else 0.0,
                     "p50_ms": pct(lat, 0.50), "p99_ms": pct(lat, 0.99), "errors": sum(errs.values()),
                     "errors_by_type": dict(errs)}
    all_lat.sort()
    ops = len(all_lat)
    writes = sum(len(tally.lat.get(op, [])) for op in ("PutItem", "UpdateItem"))
    out: dict[str, Any] = {
        "workload": workload, "seconds": round(seconds, 3), "ops": ops,
        "ops_per_s": round(ops / seconds, 1) if seconds else 0.0, "writes": writes,
        "p50_ms": pct(all_lat, 0.50), "p99_ms": pct(all_lat, 0.99),
        "errors": sum(errors.values()), "errors_by_type": dict(errors), "by_op": by_op,
        "loadgen_cpu_pct": round(100.0 * loadgen_cpu_s / seconds, 1) if seconds else None,
    }
    if cpu is not None:
        out["cpu_ms"] = cpu["by_class"]
        out["cpu_ms_by_process"] = cpu["by_process"]
        out["cpu_ms_per_write"] = {c: round(v / writes, 3) for c, v in cpu["by_class"].items()} if writes else {}
        out["cpu_ms_per_op"] = {c: round(v / ops, 3) for c, v in cpu["by_class"].items()} if ops else {}
        if "broker_jit_ms" in cpu and seconds:
            # of the brokers' CPU, what their JIT compilers took (ms a second): not yet a steady state
            out["broker_jit_ms_per_s"] = round(cpu["broker_jit_ms"] / seconds, 1)
    out.update(extra or {})
    return out


async def exchange(c: Client, req: bytes, op: str) -> str | None:
    """Send one request; None on success, else the error's kind."""
    try:
        status, body = await c.request(req)
    except TimeoutError:
        return "Timeout"
    except (ConnectionError, OSError) as exc:
        await asyncio.sleep(0.01)
        return type(exc).__name__
    if status != 200:
        return error_type(status, body)
    if op == "GetItem" and b'"Item"' not in body:
        return "check:ItemMissing"
    return None


Next = Callable[[random.Random], tuple[str, bytes]]


async def drive(workload: str, clients: list[Client], next_op: Next, duration: float, seed: int,
                meter: CpuMeter | None, rate: float = 0.0, warmup: float = WARMUP_S) -> dict[str, Any]:
    """Run ``next_op`` from every client for ``warmup`` + ``duration`` seconds; closed loop, or open
    loop at ``rate`` requests/s in all when rate > 0 (latency from the scheduled send time)."""
    clock = time.perf_counter
    tally = Tally()
    start = clock()
    measure_from = start + warmup
    deadline = measure_from + duration
    interval = len(clients) / rate if rate > 0 else 0.0
    marks: dict[str, float] = {}
    cpu_result: list[dict[str, Any]] = []
    build = RB.build

    async def window() -> None:
        await asyncio.sleep(max(0.0, measure_from - clock()))
        marks["cpu0"] = self_cpu()
        if meter is not None:
            meter.start()
        await asyncio.sleep(max(0.0, deadline - clock()))
        marks["cpu1"] = self_cpu()
        if meter is not None:
            cpu_result.append(meter.stop())

    async def worker(c: Client, wseed: int, index: int) -> None:
        rnd = random.Random(wseed)
        scheduled = start + interval * index / len(clients)
        while True:
            if interval:
                scheduled += interval
                delay = scheduled - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            op, body = next_op(rnd)
            req = build(op, body)
            t0 = clock()
            if t0 >= deadline:
                return
            if interval:
                t0 = min(t0, scheduled)
            err = await exchange(c, req, op)
            t1 = clock()
            if measure_from <= t1 <= deadline:
                if err is None:
                    tally.ok(op, t1 - t0)
                else:
                    tally.error(op, err)

    sampler = asyncio.ensure_future(meter.sampling()) if meter is not None else None
    try:
        await asyncio.gather(window(), *(worker(c, seed * 100003 + i, i) for i, c in enumerate(clients)))
    finally:
        if sampler is not None:
            sampler.cancel()
    return summarize(workload, tally, duration, cpu_result[0] if cpu_result else None,
                     marks.get("cpu1", 0.0) - marks.get("cpu0", 0.0),
                     {"offered_per_s": rate} if rate > 0 else None)


async def load(clients: list[Client], recs: Records, meter: CpuMeter | None, seed: int) -> dict[str, Any]:
    """PutItem of every record once, in key order; a failed put is retried (its error counted)."""
    tally = Tally()
    nxt = iter(range(recs.n))
    clock = time.perf_counter

    async def worker(c: Client, rnd: random.Random) -> None:
        for i in nxt:
            t0 = clock()
            for attempt in range(50):
                err = await exchange(c, RB.build("PutItem", recs.put_body(i, rnd)), "PutItem")
                if err is None:
                    tally.ok("PutItem", clock() - t0)
                    break
                tally.error("PutItem", err)
                await asyncio.sleep(min(1.0, 0.02 * 2**attempt))
            else:
                raise SystemExit(f"PutItem of record {i} keeps failing: {dict(tally.errors['PutItem'])}")

    cpu0 = self_cpu()
    if meter is not None:
        meter.start()
    sampler = asyncio.ensure_future(meter.sampling()) if meter is not None else None
    t0 = clock()
    try:
        await asyncio.gather(*(worker(c, random.Random(seed * 7919 + k)) for k, c in enumerate(clients)))
    finally:
        if sampler is not None:
            sampler.cancel()
    seconds = clock() - t0
    cpu = meter.stop() if meter is not None else None
    return summarize("load", tally, seconds, cpu, self_cpu() - cpu0, {"records": recs.n})


async def put_lone(client: Client, recs: Records, requests: int, meter: CpuMeter | None,
                   seed: int) -> dict[str, Any]:
    """One client, one PutItem at a time."""
    rnd = random.Random(seed)
    tally = Tally()
    clock = time.perf_counter
    for _ in range(LONE_WARMUP_REQUESTS):
        await exchange(client, RB.build("PutItem", recs.put_body(int(rnd.random() * recs.n), rnd)), "PutItem")
    cpu0 = self_cpu()
    if meter is not None:
        meter.start()
    sampler = asyncio.ensure_future(meter.sampling()) if meter is not None else None
    start = clock()
    try:
        for _ in range(requests):
            req = RB.build("PutItem", recs.put_body(int(rnd.random() * recs.n), rnd))
            t0 = clock()
            err = await exchange(client, req, "PutItem")
            if err is None:
                tally.ok("PutItem", clock() - t0)
            else:
                tally.error("PutItem", err)
    finally:
        if sampler is not None:
            sampler.cancel()
    seconds = clock() - start
    cpu = meter.stop() if meter is not None else None
    return summarize("put-lone", tally, seconds, cpu, self_cpu() - cpu0)


async def run_workload(workload: str, a: argparse.Namespace, clients: list[Client], recs: Records,
                       meter: CpuMeter | None, seed: int) -> dict[str, Any]:
    if workload == "load":
        return await load(clients, recs, meter, seed)
    if workload == "put-lone":
        return await put_lone(clients[0], recs, a.lone_requests, meter, seed)
    if workload == "put-rate":
        def put_uniform(rnd: random.Random) -> tuple[str, bytes]:
            return "PutItem", recs.put_body(int(rnd.random() * recs.n), rnd)
        return await drive("put-rate", clients, put_uniform, a.probe_duration, seed, meter, rate=a.rate)
    read_share = 0.5 if workload == "A" else 1.0
    get = recs.get

    def ycsb_op(rnd: random.Random) -> tuple[str, bytes]:
        i = recs.zipf_key(rnd)
        if read_share >= 1.0 or rnd.random() < read_share:
            return "GetItem", get[i]
        return "UpdateItem", recs.update_body(i, rnd)

    return await drive(workload, clients, ycsb_op, a.duration, seed, meter)


# --------------------------------------------------------------------------
# Medians over --repeat runs
# --------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number over the runs; error counts are summed instead."""

    def merge(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        if not present:
            return None
        first = present[0]
        if isinstance(first, dict):
            return {k: merge([v.get(k) for v in present]) for k in sorted({k for v in present for k in v})}
        if isinstance(first, bool) or not isinstance(first, int | float):
            return first
        m = statistics.median(present)
        return round(m, 3) if isinstance(m, float) else m

    def summed(dicts: list[dict[str, int] | None]) -> dict[str, int]:
        total: Counter = Counter()
        for d in dicts:
            total.update(d or {})
        return dict(total)

    out = {k: merge([r.get(k) for r in runs]) for k in runs[0]}
    out["errors_by_type"] = summed([r.get("errors_by_type") for r in runs])
    out["errors"] = sum(out["errors_by_type"].values())
    for op, row in (out.get("by_op") or {}).items():
        row["errors_by_type"] = summed([(r.get("by_op", {}).get(op) or {}).get("errors_by_type") for r in runs])
        row["errors"] = sum(row["errors_by_type"].values())
    out["runs"] = len(runs)
    return out


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def num(v: Any) -> str:
    """A count or a rate: whole numbers with thousands separators."""
    return "-" if v is None else f"{v:,.0f}"


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 1000 else f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def errors_text(row: dict[str, Any]) -> str:
    if not row.get("errors"):
        return "0"
    return f"{row['errors']} (" + ", ".join(f"{k}: {v}" for k, v in sorted(row["errors_by_type"].items())) + ")"


def text_summary(row: dict[str, Any]) -> str:
    parts = [f"{row['workload']}: {row['ops_per_s']:,.0f} ops/s"]
    for op, r in row["by_op"].items():
        parts.append(f"{op} {r['ops_per_s']:,.0f}/s p50 {fmt(r['p50_ms'])} p99 {fmt(r['p99_ms'])} ms")
    parts.append(f"errors {errors_text(row)}")
    if row.get("cpu_ms_per_write"):
        parts.append("CPU ms/write " + " ".join(f"{c} {v:.3f}" for c, v in row["cpu_ms_per_write"].items()))
    elif row.get("cpu_ms_per_op"):
        parts.append("CPU ms/op " + " ".join(f"{c} {v:.3f}" for c, v in row["cpu_ms_per_op"].items()))
    if row.get("broker_jit_ms_per_s") is not None:
        parts.append(f"brokers' JIT compilers {row['broker_jit_ms_per_s']:.0f} ms/s")
    parts.append(f"loadgen CPU {row['loadgen_cpu_pct']}%")
    return "; ".join(parts)


def report(results: list[dict[str, Any]]) -> str:
    """The markdown table of one sitting: one row per system, ratios against the dynalite row."""
    base = next((r for r in results if r.get("system") == "dynalite"), None)

    def med(res: dict[str, Any] | None, workload: str) -> dict[str, Any] | None:
        return (res or {}).get("median", {}).get(workload)

    def ratio(res: dict[str, Any], workload: str) -> str:
        mine, theirs = med(res, workload), med(base, workload)
        if not mine or not theirs or not theirs["ops_per_s"]:
            return "-"
        return f"{mine['ops_per_s'] / theirs['ops_per_s']:.2f}"

    def put_p50(res: dict[str, Any], workload: str) -> str:
        m = med(res, workload)
        if not m:
            return "-"
        text = fmt(m["by_op"].get("PutItem", {}).get("p50_ms"))
        offered = m.get("offered_per_s")
        if offered and m["ops_per_s"] < 0.95 * offered:
            text += f" (only {num(m['ops_per_s'])}/s answered)"
        return text

    def cpu_w(res: dict[str, Any], cls: str) -> str:
        m = med(res, "A")
        v = (m or {}).get("cpu_ms_per_write", {}).get(cls)
        return "-" if v is None else f"{v:.3f}"

    first = results[0] if results else {}
    p = first.get("params", {})
    lines = [
        "# YCSB-style benchmark: Dynamolog and dynalite, one sitting",
        "",
        f"- Date: {', '.join(sorted({r['date'] for r in results}))}",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}; load generator, "
        "servers and Kafka share it",
        f"- Data: {fmt(p.get('records'))} records of {first.get('item_bytes', '-')} B (key user<N>, ten 100-byte fields);"
        f" {p.get('clients')} clients; A and C run {p.get('duration', 0):g} s each after 1 s unmeasured, keys "
        f"zipfian {ZIPF_CONSTANT}, scrambled by a fixed permutation; Dynamolog's table on demand with WarmThroughput "
        f"{num(p.get('warm')) if p.get('warm') else 'none (a new table: 4,000 write / 12,000 read units a second)'}",
        f"- A = 50 % GetItem (eventually consistent) / 50 % UpdateItem SET of one 100-byte field; C = 100 % GetItem;"
        f" PutItem lone = one client, {num(p.get('lone_requests'))} requests one at a time; PutItem @{num(p.get('rate'))}"
        f"/s = open loop over {p.get('clients')} connections for {p.get('probe_duration', 0):g} s",
        f"- Each figure is the median of {p.get('repeat')} run(s); warm-up before measuring: "
        f"{p.get('warmup', 0):g} s of PutItem (keys uniform, all clients), then {p.get('idle', 0):g} s at rest",
        "- Load average before each system: " + "; ".join(
            f"{r['label']} {' '.join(f'{x:.2f}' for x in r['loadavg_before'])}" for r in results),
        "",
        f"| topology | workload A ops/s | A vs dynalite | workload C ops/s | C vs dynalite | bulk load puts/s "
        f"| PutItem p50 lone ms | PutItem p50 @{num(p.get('rate'))}/s ms | CPU ms/write in A: broker | storage | router "
        "| other services | dynalite |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        a_, c_, ld = med(res, "A"), med(res, "C"), med(res, "load")
        lines.append(
            f"| {res['label']} | {num(a_['ops_per_s']) if a_ else '-'} | {ratio(res, 'A')} | "
            f"{num(c_['ops_per_s']) if c_ else '-'} | {ratio(res, 'C')} | {num(ld['ops_per_s']) if ld else '-'} | "
            f"{put_p50(res, 'put-lone')} | {put_p50(res, 'put-rate')} | "
            + " | ".join(cpu_w(res, c) for c in CLASSES) + " |")
    lines += [
        "",
        "Every phase (p50 / p99 in ms; CPU ms per operation of each process class, from /proc; errors summed over"
        " the runs):",
        "",
        "| topology | phase | ops/s | GetItem p50 / p99 | UpdateItem p50 / p99 | PutItem p50 / p99 | errors "
        "| CPU ms/op: broker | storage | router | other services | dynalite | loadgen CPU % |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for workload, row in res.get("median", {}).items():
            lat = []
            for op in ("GetItem", "UpdateItem", "PutItem"):
                r = row["by_op"].get(op)
                lat.append(f"{fmt(r['p50_ms'])} / {fmt(r['p99_ms'])}" if r and r["ops"] else "-")
            cpu = row.get("cpu_ms_per_op", {})
            lines.append(
                f"| {res['label']} | {workload} | {num(row['ops_per_s'])} | " + " | ".join(lat)
                + f" | {errors_text(row)} | "
                + " | ".join("-" if cpu.get(c) is None else f"{cpu[c]:.3f}" for c in CLASSES)
                + f" | {fmt(row.get('loadgen_cpu_pct'), 1)} |")
    idle = [(r["label"], r["idle"]) for r in results if r.get("idle")]
    if idle:
        lines += ["", "CPU at rest (ms per second, measured after the warm-up without load; it is part of every "
                  "per-operation figure above, most visibly at low rates):", ""]
        lines += [f"- {label}: " + ", ".join(f"{c} {v:,.1f}" for c, v in row["cpu_ms_per_s"].items())
                  for label, row in idle]
    lines += ["", "Commands:", "", "```"] + [r["command"] for r in results] + ["```", ""]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

#: the request builder (set in amain; one per process, as the signing key is per endpoint)
RB: RequestBuilder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ycsb.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:8000", help="server URL, loopback only (default %(default)s)")
    p.add_argument("--workload", default="load,A,C",
                   help=f"comma-separated, run in this order: {', '.join(WORKLOADS)} (default %(default)s)")
    p.add_argument("--records", type=int, default=5000, help="records to load and to pick keys from (default %(default)s)")
    p.add_argument("--clients", type=int, default=16, help="connections, one request in flight each (default %(default)s)")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds of A and C (default %(default)s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the whole --workload list this many times, interleaved; medians reported (default %(default)s)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds of closed-loop PutItem (keys uniform, unmeasured) before the first workload, for "
                   "the servers' JIT compilers (default %(default)s)")
    p.add_argument("--idle", type=float, default=5.0,
                   help="seconds without load after the warm-up, whose CPU per process is reported as the system's "
                   "CPU at rest (0: skip; default %(default)s)")
    p.add_argument("--lone-requests", type=int, default=2000, help="PutItems of put-lone (default %(default)s)")
    p.add_argument("--rate", type=float, default=500.0, help="PutItem/s offered by put-rate (default %(default)s)")
    p.add_argument("--probe-duration", type=float, default=15.0, help="measured seconds of put-rate (default %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help="the Dynamolog system under test (`dynamolog up --data-dir`): its administrator key signs "
                   "the requests and its processes are measured")
    p.add_argument("--peer-pid", type=int, default=None,
                   help="pid of a dynalite under test (default: the one bench/peers.py started on the endpoint's port)")
    p.add_argument("--system", choices=("dynamolog", "dynalite"), default=None,
                   help="what the endpoint is (default: dynamolog with --data-dir, else dynalite)")
    p.add_argument("--label", default="", help="name of this system in the table (e.g. the topology)")
    p.add_argument("--table", default=TABLE, help="table name (default %(default)s)")
    p.add_argument("--no-create", action="store_true", help="load into the existing table instead of recreating it")
    p.add_argument("--warm", type=int, default=40_000, metavar="UNITS",
                   help="Dynamolog: create the table with WarmThroughput of UNITS read and UNITS write units a "
                   "second (DynamoDB's pre-warming; its account's default table maximum is 40,000), as a "
                   "DynamoDB user would before driving a new on-demand table past the 4,000 write / 12,000 read "
                   "units a second it serves at once; 0: a new table's start (default %(default)s). dynalite "
                   "has no capacity limits and gets none")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    p.add_argument("--json", metavar="OUT", help="write every run and the medians to this JSON file")
    p.add_argument("--report", nargs="+", metavar="JSON",
                   help="do not run: print the markdown table of these --json files (one per system, dynalite's "
                   "row is the reference)")
    p.add_argument("--out", metavar="MD", help="with --report: also write the table to this file")
    a = p.parse_args(argv)
    if a.report:
        return a
    a.workloads = [w.strip() for w in a.workload.split(",") if w.strip()]
    bad = [w for w in a.workloads if w not in WORKLOADS]
    if bad or not a.workloads:
        p.error(f"unknown workload {bad}; choose from {', '.join(WORKLOADS)}")
    u = urlsplit(a.endpoint)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost"):
        p.error("--endpoint must look like http://127.0.0.1:PORT")
    a.host, a.port, a.hostport = "127.0.0.1", u.port or 80, u.netloc
    if a.records < 2 or a.clients < 1 or a.duration <= 0 or a.repeat < 1 or a.rate <= 0 or a.lone_requests < 1:
        p.error("--records (>= 2), --clients, --duration, --repeat, --rate and --lone-requests must be positive")
    if a.system is None:
        a.system = "dynamolog" if a.data_dir else "dynalite"
    return a


def make_meter(a: argparse.Namespace) -> CpuMeter | None:
    if a.system == "dynamolog":
        if not a.data_dir:
            print("no --data-dir: no CPU figures", file=sys.stderr)
            return None
        d = Path(a.data_dir).resolve()
        if not dynamolog_processes(d):
            print(f"no running system in {d}: no CPU figures", file=sys.stderr)
            return None
        return CpuMeter(lambda: dynamolog_processes(d))
    pid = a.peer_pid or peers.recorded_pid(a.port)
    if pid is None or not dynalite_processes(pid):
        print("no dynalite pid (start it with bench/peers.py start, or give --peer-pid): no CPU figures",
              file=sys.stderr)
        return None
    return CpuMeter(lambda: dynalite_processes(pid))


async def amain(a: argparse.Namespace) -> dict[str, Any]:
    global RB
    key, secret = creds.credentials(Path(a.data_dir) if a.data_dir else None)
    RB = RequestBuilder(a.hostport, key, secret)
    recs = Records(a.records, a.table, a.seed)
    clients = [Client(a.host, a.port, a.timeout) for _ in range(a.clients)]
    meter = make_meter(a)
    label = a.label or a.system
    out: dict[str, Any] = {
        "label": label, "system": a.system, "endpoint": a.endpoint,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "loadavg_before": list(os.getloadavg()),
        "command": shlex.join([os.path.basename(sys.executable), os.path.relpath(__file__), *sys.argv[1:]]),
        "params": {k: getattr(a, k) for k in ("records", "clients", "duration", "repeat", "warmup", "idle",
                                               "lone_requests",
                                               "rate", "probe_duration", "workloads", "table", "warm")},
        "item_bytes": recs.item_bytes(), "zipf_constant": ZIPF_CONSTANT, "key_scramble": "fixed permutation",
        "event_loop": "uvloop" if uvloop else "asyncio", "processes": {},
        "runs": {}, "median": {},
    }
    if meter is not None:
        meter.sample()
        out["processes"] = {name: cls for cls, name in meter.names.values()}
    print(f"[{label}] {a.endpoint}: {a.records} records of {recs.item_bytes()} B, {a.clients} clients, "
          f"workloads {','.join(a.workloads)} x{a.repeat}; CPU of {out['processes'] or 'nothing'}", file=sys.stderr)
    dog = asyncio.ensure_future(watchdog(clients))
    try:
        if "load" in a.workloads and not a.no_create:
            warmed = ({"WarmThroughput": {"ReadUnitsPerSecond": a.warm, "WriteUnitsPerSecond": a.warm}}
                      if a.system == "dynamolog" and a.warm > 0 else None)
            await create_table(clients[0], RB, a.table, key_schema=((KEY_ATTR, "HASH"),), extra=warmed)
        if a.warmup > 0:
            def put_uniform(rnd: random.Random) -> tuple[str, bytes]:
                return "PutItem", recs.put_body(int(rnd.random() * recs.n), rnd)
            w = await drive("warm-up", clients, put_uniform, a.warmup, a.seed + 999, None, warmup=0.0)
            out["warmup"] = {k: w[k] for k in ("seconds", "ops_per_s", "p50_ms", "errors", "errors_by_type")}
            print(f"[{label}] warm-up: {w['ops_per_s']:,.0f} puts/s for {a.warmup:g} s, errors {errors_text(w)}",
                  file=sys.stderr)
        if a.idle > 0 and meter is not None:
            await asyncio.sleep(1.0)  # let the last requests' work drain
            meter.start()
            await asyncio.sleep(a.idle)
            cpu = meter.stop()
            out["idle"] = {"seconds": a.idle, "cpu_ms_by_process": cpu["by_process"],
                           "cpu_ms_per_s": {c: round(v / a.idle, 1) for c, v in cpu["by_class"].items()}}
            print(f"[{label}] at rest, CPU ms/s: {out['idle']['cpu_ms_per_s']}", file=sys.stderr)
        run = 0
        for r in range(a.repeat):
            for workload in a.workloads:
                run += 1
                row = await run_workload(workload, a, clients, recs, meter, a.seed + run)
                out["runs"].setdefault(workload, []).append(row)
                print(f"[{label}] run {r + 1}/{a.repeat} {text_summary(row)}", file=sys.stderr)
        for workload, rows in out["runs"].items():
            out["median"][workload] = median_of(rows)
    finally:
        dog.cancel()
        for c in clients:
            c.close()
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.report:
        results = []
        for path in a.report:
            with open(path) as f:
                results.append(json.load(f))
        md = report(results)
        print(md)
        if a.out:
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            with open(a.out, "w") as f:
                f.write(md)
        return 0
    if uvloop is not None:
        uvloop.install()
    out = asyncio.run(amain(a))
    for row in out["median"].values():
        print(f"{out['label']} (median of {row['runs']}) {text_summary(row)}")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    failed = [w for w, row in out["median"].items() if row["ops"] == 0]
    if failed:
        print(f"no successful operation in {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
