"""What the fault tests share: a system's replicas seen over the internal RPC, the recorded load
run around a fault, and the checks made on what it recorded.

A fault test creates a table, runs :func:`under_load` with a script of blocking fault steps, and
passes the result to :func:`assert_history_ok`, which checks:

- every key's history is linearizable (``dynamolog.testing.checker``), which covers "an
  acknowledged write is never lost" and "a refused conditional write never took effect";
- the final value of every key is one the history allows;
- availability: acknowledged operations per second before, during and after the fault, against
  floors (:class:`Floors`), and a bound on the operations whose outcome is unknown.

:func:`converged` then waits until every partition's replicas hold identical contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamolog.errors import ApiError
from dynamolog.rpc import RpcClient
from dynamolog.testing import checker, workload
from tests.api.conftest import credentials_for, make_client, wait_active
from tests.api.helpers import all_items

#: keys of a fault test's table: enough that every partition of a 4-partition table gets several
KEYS = [f"key{i}" for i in range(50)]
#: concurrent clients of the workload
CLIENTS = 8
#: ReadCapacityUnits and WriteCapacityUnits that give a PROVISIONED table four partitions (one
#: per 3,000 RCU plus one per 1,000 WCU, services/router/tables.py)
FOUR_PARTITIONS = (6000, 2000)


# -- the system seen over the internal RPC ------------------------------------------------------
async def _call(port: int, op: str, timeout_s: float = 10.0, **args: Any) -> Any:
    client = RpcClient("127.0.0.1", port)
    try:
        return await client.call(op, timeout_s=timeout_s, **args)
    finally:
        await client.close()


def rpc(sysm: Any, node: str, op: str, timeout_s: float = 10.0, **args: Any) -> Any:
    """One internal RPC straight to a node's own port (never through a test's proxy)."""
    return asyncio.run(_call(sysm.state()["storage_ports"][node], op, timeout_s, **args))


def partitions(sysm: Any, table: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{partition id: {node: that node's status of the partition}} over the nodes that answer."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for node in sysm.state()["storage_ports"]:
        try:
            st = rpc(sysm, node, "status")
        except (OSError, TimeoutError, ConnectionError):
            continue
        for p in st["partitions"]:
            if p["table"] == table:
                found.setdefault(p["partition_id"], {})[node] = p
    return found


def replicas(sysm: Any, table: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """(partition id, {node: status}) of a one-partition table."""
    parts = partitions(sysm, table)
    assert len(parts) <= 1, parts
    pid = next(iter(parts), "")
    return pid, parts.get(pid, {})


def leaders(sysm: Any, table: str) -> dict[str, tuple[str, int]]:
    """{partition id: (leader node, epoch)}; fails unless each partition has one unfenced leader."""
    out: dict[str, tuple[str, int]] = {}
    for pid, reps in partitions(sysm, table).items():
        found = [(n, p["epoch"]) for n, p in reps.items() if p["role"] == "leader" and not p["fenced"]]
        assert len(found) == 1, (pid, reps)
        out[pid] = found[0]
    return out


def leader(sysm: Any, table: str) -> tuple[str, int]:
    """(leader node, epoch) of a one-partition table."""
    ls = leaders(sysm, table)
    assert len(ls) == 1, ls
    return next(iter(ls.values()))


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = check()
            if got:
                return got
        except (AssertionError, KeyError, OSError, TimeoutError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.3)


def converged(sysm: Any, table: str, nodes: int = 3) -> dict[str, dict[str, tuple[str, int]]]:
    """Wait until each partition of the table has ``nodes`` replicas with identical contents;
    returns {partition id: {node: (digest, items)}}."""
    def same() -> dict[str, dict[str, tuple[str, int]]] | None:
        out: dict[str, dict[str, tuple[str, int]]] = {}
        for pid, reps in partitions(sysm, table).items():
            if len(reps) != nodes:
                return None
            try:
                ds = {n: rpc(sysm, n, "digest", pid=pid) for n in reps}
            except ApiError as e:  # a replica left between its status and its digest (a repair moved it)
                if e.type_name != "NotLeader":
                    raise
                return None
            got = {n: (d["digest"], d["items"]) for n, d in ds.items()}
            if len(set(got.values())) != 1:
                return None
            out[pid] = got
        return out or None

    result: dict[str, dict[str, tuple[str, int]]] = eventually(same, 60, f"{nodes} identical replicas of {table}")
    return result


def log_leader_broker(bootstrap: str, topic: str) -> int:
    """The Kafka broker that leads a partition log."""
    from dynamolog.kafka.admin import KafkaAdmin

    async def ask() -> int:
        async with KafkaAdmin(bootstrap) as admin:
            (t,) = await admin.client.describe_topics([topic])
            return int(t["partitions"][0]["leader"])

    return asyncio.run(ask())


def new_table(url: str, name: str, capacity: tuple[int, int] | None = None) -> Any:
    """Create and wait for a table with hash key ``pk``; ``capacity`` (RCU, WCU) makes it
    PROVISIONED, which decides its partition count (see :data:`FOUR_PARTITIONS`)."""
    ddb = make_client(url)
    billing: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}
    if capacity is not None:
        billing = {"BillingMode": "PROVISIONED",
                   "ProvisionedThroughput": {"ReadCapacityUnits": capacity[0], "WriteCapacityUnits": capacity[1]}}
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], **billing)
    wait_active(ddb, name)
    return ddb


def restart_with(sysm: Any, service: str, *, args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
    """Kill a service and start it again with extra command-line ``args`` (kept for later
    restarts: they are written into the system's state) and extra environment ``env``."""
    sysm.kill_service(service)
    if args:
        state = sysm.state()
        state["commands"][service] = [*state["commands"][service], *args]
        Path(sysm.state_path).write_text(json.dumps(state, indent=2))
    sysm.start_service(service, extra_env=env)


# -- the load around a fault ----------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A recorded run of the workload around a fault."""

    result: workload.WorkloadResult
    """the history and the counts"""
    final: dict[str, Any]
    """each key's value read consistently after the run"""
    fault_start: float
    """monotonic time the fault script started (the history's clock)"""
    fault_end: float
    """monotonic time the fault script returned (the fault is healed or the system repaired)"""
    end: float
    """monotonic time the load was told to stop"""
    clients: int
    """concurrent clients of the workload"""


@dataclass
class EventualReads:
    """What :func:`eventual_readers` saw: reads that returned the item written, and every other
    outcome (an error's code and message, or the wrong item)."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)


@contextlib.contextmanager
def eventual_readers(url: str, table: str, readers: int = 4, keys: int = 20) -> Iterator[EventualReads]:
    """Eventually consistent GetItems of ``keys`` items written first (``ec0`` ...), from
    ``readers`` threads, one client each without retries, for as long as the block runs: any
    replica may answer one of them, through any fault, but each must come back with its item
    (docs/guarantees.md: eventually consistent reads keep working during a leader failover)."""
    ddb = make_client(url)
    items = {f"ec{i}": {"pk": {"S": f"ec{i}"}, "v": {"S": f"value {i}"}} for i in range(keys)}
    for item in items.values():
        ddb.put_item(TableName=table, Item=item)
    # an eventually consistent read reflects every write acknowledged more than the staleness
    # bound before it (DYNAMOLOG_MAX_STALE_MS, 2 s; docs/guarantees.md), not one just made
    time.sleep(2.5)
    started = time.monotonic()
    seen = EventualReads()
    stop = threading.Event()
    lock = threading.Lock()

    def read(n: int) -> None:
        client = make_client(url, retries=1)
        names = sorted(items)
        i = n
        while not stop.is_set():
            name = names[i % len(names)]
            i += 1
            try:
                got = client.get_item(TableName=table, Key={"pk": {"S": name}}).get("Item")
                outcome = None if got == items[name] else f"{name}: read {got}"
            except Exception as e:  # every failure is the finding
                err = getattr(e, "response", {}).get("Error", {})
                outcome = f"{err.get('Code') or type(e).__name__}: {err.get('Message') or e}"
            if outcome is not None:
                outcome = f"{time.monotonic() - started:.2f} s: {outcome}"
            with lock:
                if outcome is None:
                    seen.ok += 1
                else:
                    seen.failed.append(outcome)

    threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(readers)]
    for t in threads:
        t.start()
    try:
        yield seen
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def under_load(url: str, table: str, script: Callable[[], Any], *, before_s: float = 4.0,
               after_s: float = 4.0, keys: list[str] | None = None, clients: int = CLIENTS,
               timeout_s: float = 20.0) -> Run:
    """Run the workload, run ``script`` (blocking fault steps) in a thread meanwhile, keep the
    load ``after_s`` more seconds; then read every key's final value.  ``timeout_s``: each
    request's (an operation that times out is recorded with an unknown outcome)."""
    keys = keys or KEYS

    async def main() -> Run:
        stop = asyncio.Event()
        key = credentials_for(url)
        load = asyncio.ensure_future(workload.run_workload(url, table, keys, clients=clients, stop=stop,
                                                           timeout=timeout_s, seed=hash(table) & 0xFFFF,
                                                           credentials=key))
        await asyncio.sleep(before_s)
        fault_start = time.monotonic()
        await asyncio.to_thread(script)
        fault_end = time.monotonic()
        await asyncio.sleep(after_s)
        end = time.monotonic()
        stop.set()
        res = await load
        final = await workload.read_all(url, table, keys, timeout=20.0, deadline=60.0, credentials=key)
        return Run(res, final, fault_start, fault_end, end, clients)

    return asyncio.run(main())


@dataclass(frozen=True)
class Floors:
    """What a run must at least achieve besides correctness.

    The rates are acknowledged (``ok``) operations per second, each a fraction of the rate before
    the fault, so that the floors hold on a quiet and on a loaded machine alike.
    """

    during: float = 0.05
    """rate during the fault window over the rate before it: the system keeps serving something
    (the partitions the fault does not touch, then the new leaders)"""
    after: float = 0.3
    """rate once the fault script has returned over the rate before: it is back"""
    unknown_per_client_max: float = 2.0
    """operations whose outcome is unknown (timeouts, 5xx) per client: a client has one request
    in flight when a leader fails, and may have one more when its write meets the fault again
    before the new leader is known"""


def assert_history_ok(run: Run, where: Path, floors: Floors = Floors()) -> dict[str, float]:
    """Check the run (see the module doc); returns the measured rates (ok operations per second)."""
    res = run.result
    stats = res.stats.as_dict()
    ops = res.history.ops()
    t0 = min((op.invoke for op in ops), default=run.fault_start)
    rates = {
        "before": workload.ok_rate(ops, t0 + 1.0, run.fault_start),  # the first second warms up
        "during": workload.ok_rate(ops, run.fault_start, run.fault_end),
        "after": workload.ok_rate(ops, run.fault_end, run.end),
    }
    print(f"workload: {stats}; ok/s {', '.join(f'{k} {v:.1f}' for k, v in rates.items())}; "
          f"fault window {run.fault_end - run.fault_start:.1f} s")
    assert not res.stats.unexpected, stats
    results = res.history.check()
    bad = checker.problems(results) + workload.acknowledged_final_check(res.history, run.final)
    if bad:
        res.history.save(where)
    assert not bad, f"{bad} (history saved to {where}; stats {stats})"
    assert rates["before"] > 0, (rates, stats)
    assert rates["during"] >= floors.during * rates["before"], (rates, floors, stats)
    assert rates["after"] >= floors.after * rates["before"], (rates, floors, stats)
    unknown = res.stats.outcomes.get(checker.UNKNOWN, 0)
    assert unknown <= floors.unknown_per_client_max * run.clients, (unknown, floors, stats)
    return rates


# -- global secondary indexes ------------------------------------------------------------------
def assert_index_matches_table(ddb: Any, table: str, index: str, attribute: str, wait_s: float = 45.0) -> None:
    """The index ``index`` of ``table`` (keyed on ``attribute``) ends equal to the table's items
    that have ``attribute``: waits up to ``wait_s`` for the indexer to catch up, then names what
    is missing and what is stale."""
    def expected() -> list[tuple[str, str]]:
        items = all_items(ddb.scan, TableName=table, ConsistentRead=True)
        return sorted((i["pk"]["S"], repr(sorted(i.items()))) for i in items if attribute in i)

    def indexed() -> list[tuple[str, str]]:
        items = all_items(ddb.scan, TableName=table, IndexName=index)
        return sorted((i["pk"]["S"], repr(sorted(i.items()))) for i in items)

    want = expected()
    deadline = time.monotonic() + wait_s
    got = indexed()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.5)
        got = indexed()
    missing = sorted(set(want) - set(got))
    stale = sorted(set(got) - set(want))
    assert not missing and not stale, f"missing {missing[:5]} stale {stale[:5]}"
    assert len(want) > 10
