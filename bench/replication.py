"""Replication figures of a running multi-node Dynamolog: failover, follower lag, replica repair.

Run against a system started with several storage nodes and one partition per table, e.g.

    dynamolog up --detach --data-dir .bench --brokers 3 --storage-nodes 3 --initial-partitions 1 --port 8000
    python bench/replication.py --data-dir .bench failover --runs 5
    python bench/replication.py --data-dir .bench failover --kill broker --runs 3
    python bench/replication.py --data-dir .bench lag --rate 1000 --duration 30
    python bench/replication.py --data-dir .bench repair --megabytes 100

failover  kills (SIGKILL) the storage node leading the table's partition (--kill storage, the
          default), the Kafka broker leading the partition's log (--kill broker) or the broker
          that is the active KRaft controller (--kill controller); the last two need the three
          brokers of dynamolog up --brokers 3, each a broker and a controller.  Meanwhile one
          client writes (PutItem, one at a time, each to a new key) and four clients read
          (GetItem, eventually consistent).  Reports the time from the kill to the first
          acknowledged write sent after it, the longest time without an acknowledgement and the
          reads that failed; for a broker also when the controller fenced it (from the brokers'
          logs) and the first acknowledgement of Kafka alone (an idempotent acks=all producer
          appending to a scratch topic that the killed broker led).  Then restarts the node (or
          lets the system's supervisor do it) and waits until it has caught up, or restarts the
          broker and waits until every partition's ISR is full again, and reads every
          acknowledged write back (ConsistentRead): none may be missing or hold another value.
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
import contextlib
import datetime
import itertools
import json
import logging
import multiprocessing
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dynamolog.kafka.isr import partition_leader, wait_isr_full  # noqa: E402
from dynamolog.kafka.local import LocalKafka  # noqa: E402
from dynamolog.launcher import System, pid_alive  # noqa: E402
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


def _running(pid: int | None) -> bool:
    return pid is not None and pid > 0 and pid_alive(pid)


def start_again(system: System, name: str, old_pid: int | None, timeout_s: float = 120) -> None:
    """Start a killed service again, unless the system's supervisor (``dynamolog up --detach``)
    does it: then wait until the supervisor has (a second instance would find its port taken)."""
    state = system.state() or {}
    if not _running(state.get("supervisor")):
        system.start_service(name)
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = (system.state() or {}).get("pids", {}).get(name)
        if pid != old_pid and _running(pid):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the supervisor did not start {name} again within {timeout_s} s")


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
class Writer(threading.Thread):
    """One client writing PutItem one at a time, each to a new key with a known value, so that
    every acknowledged write can be checked afterwards; records when each attempt was sent and
    answered."""

    def __init__(self, endpoint: str, table: str, run: int) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.table, self.run_no = endpoint, table, run
        self.stop = threading.Event()
        #: (sent, answered, acknowledged) per attempt, monotonic seconds
        self.attempts: list[tuple[float, float, bool]] = []
        #: key -> value of every acknowledged write
        self.acked: dict[str, int] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        c = client(self.endpoint)
        seq = 0
        while not self.stop.is_set():
            seq += 1
            key = f"w{self.run_no}-{seq}"
            t0 = time.monotonic()
            try:
                c.put_item(TableName=self.table, Item={"pk": {"S": key}, "v": {"N": str(seq)}})
            except Exception as e:  # not acknowledged: it may or may not have been applied
                self.attempts.append((t0, time.monotonic(), False))
                self.errors.append(type(e).__name__)
                time.sleep(0.05)
                continue
            self.attempts.append((t0, time.monotonic(), True))
            self.acked[key] = seq

    def first_ack_after(self, t_kill: float) -> float | None:
        """Seconds from ``t_kill`` to the first acknowledgement of a write sent after it."""
        acks = [done for sent, done, ok in self.attempts if ok and sent >= t_kill]
        return min(acks) - t_kill if acks else None

    def max_ack_gap(self, t_from: float) -> float:
        """The longest time without an acknowledgement from ``t_from`` to the last attempt."""
        acks = sorted(done for _sent, done, ok in self.attempts if ok and done >= t_from)
        last = max((done for _s, done, _ok in self.attempts), default=t_from)
        edges = [t_from, *acks, last]
        return max(b - a for a, b in itertools.pairwise(edges))


def _probe_main(bootstrap: str, topic: str, stop: Any, out: Any) -> None:
    """The probe process: append one record at a time until ``stop`` is set; put (sent,
    answered, acknowledged) of every attempt on ``out`` (monotonic seconds, the same clock in
    every process)."""

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its retry warnings while the broker is dead

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=0, retry_backoff_ms=10, request_timeout_ms=30_000)
        await producer.start()
        try:
            seq = 0
            while not stop.is_set():
                seq += 1
                t0 = time.monotonic()
                try:
                    await asyncio.wait_for(producer.send_and_wait(topic, str(seq).encode(), partition=0), 60)
                    out.put((t0, time.monotonic(), True))
                except Exception:
                    out.put((t0, time.monotonic(), False))
                    await asyncio.sleep(0.05)
        finally:
            await producer.stop()

    asyncio.run(run())


class KafkaProbe:
    """Kafka alone, without the storage layer: an idempotent ``acks=all`` producer appending one
    record at a time to a scratch topic (replication 3, min ISR 2) led by the broker about to be
    killed, as a partition log's leader does. It runs in a process of its own, so that the
    benchmark's client threads do not slow it down."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(target=_probe_main, args=(bootstrap, topic, self._stop, self._out), daemon=True)
        self.attempts: list[tuple[float, float, bool]] = []

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(timeout=90)
        if self._proc.is_alive():
            self._proc.kill()
        self._drain()

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.attempts.append(self._out.get_nowait())

    def first_ack_after(self, t_kill: float) -> float | None:
        self._drain()
        acks = [done for sent, done, ok in self.attempts if ok and sent >= t_kill]
        return min(acks) - t_kill if acks else None


async def _probe_topic(bootstrap: str, name: str, leader: int, brokers: list[int], create: bool) -> None:
    """(Re)create the probe topic with ``leader`` as its preferred (so first) replica, or delete it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    except Exception:  # not there
        pass
    try:
        if not create:
            return
        assignment = {0: [leader] + [b for b in brokers if b != leader]}
        for _ in range(100):  # a deletion a moment ago may still be under way
            resp = await admin.create_topics([NewTopic(name, -1, -1, assignment, {"min.insync.replicas": "2"})])
            if all(code == 0 for _t, code, *_ in resp.topic_errors):
                break
            await asyncio.sleep(0.2)
        for _ in range(150):
            with contextlib.suppress(Exception):
                if await partition_leader(bootstrap, name) == leader:
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{name}: broker {leader} did not become its leader")
    finally:
        await admin.close()


def log_leader_broker(bootstrap: str, topic: str, timeout_s: float = 60) -> int:
    """The broker leading ``topic``'s partition; while a leader is being elected (or a broker of
    the bootstrap list is down) the question is asked again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = asyncio.run(partition_leader(bootstrap, topic))
            if got >= 0:
                return got
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} has no leader after {timeout_s} s")
        time.sleep(0.2)


def fenced_after(kafka: LocalKafka, broker: int, since: float) -> float | None:
    """Seconds from ``since`` (wall clock) to the line in which the active controller fenced
    ``broker`` for a lapsed session (the brokers' own logs), or None if none has yet."""
    marker = f"Fencing broker {broker} at epoch"
    found: list[float] = []
    for node in kafka.status():
        log = Path(str(node["log"]))
        if not log.is_file():
            continue
        for line in log.read_text(errors="replace").splitlines():
            if marker in line and line.startswith("["):
                at = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if at >= since:
                    found.append(at - since)
    return min(found) if found else None


def check_acknowledged(endpoint: str, table: str, acked: dict[str, int]) -> tuple[int, list[str]]:
    """Read every acknowledged write back (ConsistentRead); returns (checked, problems)."""
    c = client(endpoint)
    problems = []
    for key, value in acked.items():
        got: dict[str, Any] | None = None
        error: str | None = None
        for _ in range(20):  # a read may meet a partition still settling: it is retried, a wrong answer never
            try:
                got = c.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
                error = None
                break
            except Exception as e:
                error = type(e).__name__
                time.sleep(0.25)
        if error is not None:
            problems.append(f"{key}: unreadable ({error})")
        elif got is None:
            problems.append(f"{key}: missing")
        elif got.get("v") != {"N": str(value)}:
            problems.append(f"{key}: {got.get('v')} instead of {value}")
    return len(acked), problems


def log_topic(system: System, table: str) -> str:
    """The Kafka topic of the table's (one) partition log."""
    pids = {p["partition_id"] for p in replicas(system, table).values()}
    assert len(pids) == 1, f"the benchmark wants a one-partition table, {table} has {sorted(pids)}"
    return system.settings().log_topic(table, pids.pop())


def failover(system: System, endpoint: str, runs: int, kill: str = "storage") -> dict[str, Any]:
    """``kill``: ``storage`` kills the storage node leading the table's partition, ``broker`` the
    Kafka broker leading the partition's log, ``controller`` the broker that is the active KRaft
    controller (the local cluster that ``dynamolog up`` started: every node is both)."""
    table = "bench_failover"
    make_table(endpoint, table)
    probe_topic = f"{system.settings().namespace}.bench.failover-probe"
    kafka = None
    if kill in ("broker", "controller"):
        state = system.state() or {}
        if not state.get("kafka_managed", True):
            raise SystemExit(f"failover --kill {kill} needs the Kafka cluster that dynamolog up started")
        kafka = LocalKafka.from_data_dir(Path(state["data_dir"]) / "kafka")
        if kafka.brokers < 3:
            raise SystemExit(f"failover --kill {kill} needs three brokers (dynamolog up --brokers 3)")
    results = []
    for run in range(1, runs + 1):
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
                    err = getattr(e, "response", {}).get("Error", {})
                    read_errors.append(f"{err.get('Code') or type(e).__name__}: {str(err.get('Message', e))[:120]}")
                i += 1

        loader = client(endpoint)
        for i in range(100):
            loader.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, "v": {"N": "0"}})
        row: dict[str, Any] = {"run": run, "leader_before": leader(system, table)}
        probe = None
        if kafka is not None:
            bootstrap = system.state()["bootstrap"]
            log_leader = log_leader_broker(bootstrap, log_topic(system, table))
            controller = kafka.active_controller()
            victim_broker = log_leader if kill == "broker" else controller
            assert victim_broker is not None and victim_broker > 0, f"no broker to kill ({kill})"
            row.update(killed=f"broker {victim_broker}", log_leader=log_leader, controller=controller)
            asyncio.run(_probe_topic(bootstrap, probe_topic, victim_broker, list(range(1, kafka.brokers + 1)), True))
            probe = KafkaProbe(bootstrap, probe_topic)
            probe.start()
        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        writer = Writer(endpoint, table, run)
        writer.start()
        time.sleep(1.0)
        row["killed_at"] = time.strftime("%H:%M:%S")
        row["load_1min"] = round(os.getloadavg()[0], 1)  # the machine is shared: how busy it was
        if kafka is not None:
            t_kill, wall_kill = time.monotonic(), time.time()
            kafka.kill_node(victim_broker)
        else:
            victim = leader(system, table)
            assert victim, "no leader"
            row.update(killed=victim)
            victim_pid = system.state()["pids"][f"storage-{victim}"]
            t_kill = time.monotonic()
            system.kill_service(f"storage-{victim}")
        while time.monotonic() - t_kill < 120 and (writer.first_ack_after(t_kill) is None or (
                probe is not None and probe.first_ack_after(t_kill) is None)):
            time.sleep(0.02)
        first_ack = writer.first_ack_after(t_kill)
        time.sleep(2.0)  # keep writing: the writes after the first must go on too
        writer.stop.set()
        stop.set()
        writer.join()
        for t in threads:
            t.join()
        if probe is not None:
            probe.stop()
            kafka_ack = probe.first_ack_after(t_kill)
            row["kafka_first_ack_s"] = round(kafka_ack if kafka_ack is not None else -1, 2)
            fenced = fenced_after(kafka, victim_broker, wall_kill)
            row["fenced_s"] = round(fenced if fenced is not None else -1, 2)
        row["new_leader"] = leader(system, table)
        if kafka is not None:
            row["new_log_leader"] = log_leader_broker(bootstrap, log_topic(system, table))
            t0 = time.monotonic()
            kafka.restart_node(victim_broker, timeout_s=240)
            asyncio.run(_probe_topic(bootstrap, probe_topic, victim_broker, [], False))
            isr_s = asyncio.run(wait_isr_full(bootstrap, timeout_s=300))
            row["rejoined_s"] = round(time.monotonic() - t0, 1)
            row["isr_wait_s"] = round(isr_s, 1)
        else:
            start_again(system, f"storage-{victim}", victim_pid)
            caught_up(system, table, victim)
        checked, problems = check_acknowledged(endpoint, table, writer.acked)
        row.update(first_ack_s=round(first_ack if first_ack is not None else -1, 2),
                   max_ack_gap_s=round(writer.max_ack_gap(t_kill - 1.0), 2),
                   writes_acked=len(writer.acked), write_errors=len(writer.errors),
                   acked_checked=checked, lost_or_wrong=len(problems),
                   reads_ok=reads[0], read_errors=len(read_errors))
        if read_errors:
            row["read_error_kinds"] = dict(Counter(read_errors).most_common(5))
        if problems:
            row["problems"] = problems[:10]
        print(f"failover run {run}: {row}", file=sys.stderr)
        results.append(row)
    acks = [r["first_ack_s"] for r in results]
    kafka_acks = {"median_kafka_first_ack_s": statistics.median(r["kafka_first_ack_s"] for r in results)} if kafka else {}
    return {"kill": kill, "runs": results, "median_first_ack_s": statistics.median(acks), "max_first_ack_s": max(acks),
            **kafka_acks,
            "read_errors": sum(r["read_errors"] for r in results), "reads_ok": sum(r["reads_ok"] for r in results),
            "acked_checked": sum(r["acked_checked"] for r in results),
            "lost_or_wrong": sum(r["lost_or_wrong"] for r in results)}


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
    f = sub.add_parser("failover", help="kill the leader node (or log leader broker), time until the first "
                                        "acknowledged write")
    f.add_argument("--runs", type=int, default=5)
    f.add_argument("--kill", choices=("storage", "broker", "controller"), default="storage",
                   help="storage: the storage node leading the table's partition (default); broker: the Kafka "
                        "broker leading the partition's log; controller: the broker that is the active KRaft "
                        "controller")
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
        res = failover(system, endpoint, a.runs, a.kill)
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
