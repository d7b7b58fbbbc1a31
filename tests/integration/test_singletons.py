"""The auto-admin and the indexer as fenced singletons with a standby, and the supervisor.

``dynamolog up`` runs each of them twice; a Kafka consumer group elects the active one
(dynamolog/singleton.py). These tests kill -9 the active process of real systems and check what
a user would notice: a table created after the kill still becomes ACTIVE, a storage node leader
killed after it is still replaced (no acknowledged write lost meanwhile), a global index still
ends up equal to its table; and that the supervisor of ``dynamolog up --detach`` restarts a
killed process and stops with ``down``.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dynamolog.launcher import health, pid_alive
from tests.api.conftest import make_client, start_system, wait_active
from tests.integration.faults import (
    Floors,
    assert_history_ok,
    assert_index_matches_table,
    converged,
    eventually,
    leader,
    new_table,
    under_load,
)

pytestmark = pytest.mark.integration

#: the bound on a standby's take-over plus the work it then does (the election's session timeout
#: is 2 s on the test session's own cluster, see tests/api/conftest.py, 6 s on an external one)
TAKEOVER_BOUND_S = 30.0


def _log(sysm: Any, name: str) -> str:
    path = Path(sysm.state()["data_dir"]) / "logs" / f"{name}.log"
    return path.read_text() if path.exists() else ""


def _is_active(sysm: Any, name: str) -> bool:
    """Whether the process ``name`` runs its service now, by the last election line of its log."""
    if not pid_alive(sysm.state()["pids"][name]):
        return False
    marks = [line for line in _log(sysm, name).splitlines()
             if "dynamolog.singleton" in line and ("active (started" in line or "joined the election" in line
                                                  or "stopping the active" in line)]
    return bool(marks) and "active (started" in marks[-1]


def active(sysm: Any, service: str) -> str:
    """The one process of ``service`` (``admin`` or ``indexer``) that is active, waiting for it."""
    def one() -> str | None:
        names = [n for n in (service, f"{service}-2") if _is_active(sysm, n)]
        return names[0] if len(names) == 1 else None

    found: str = eventually(one, TAKEOVER_BOUND_S, f"exactly one active {service}")
    return found


def _standby_again(sysm: Any, name: str, joined_before: int) -> bool:
    return _log(sysm, name).count("joined the election") > joined_before


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(
        kafka_bootstrap, Path(tmp_path_factory.mktemp("singletons")), storage_nodes=3, initial_partitions=1,
        extra_env={"DYNAMOLOG_DEAD_AFTER_S": "2", "DYNAMOLOG_ADMIN_CHECK_S": "0.2"})
    try:
        yield sysm, url
    finally:
        sysm.down()


def test_standby_admin_provisions_and_replaces_a_leader_after_the_active_is_killed(system: Any,
                                                                                  tmp_path: Path) -> None:
    sysm, url = system
    ddb = new_table(url, "before_kill")
    first = active(sysm, "admin")

    # 1. the active auto-admin dies: a table created right after must still become ACTIVE
    sysm.kill_service(first)
    t0 = time.monotonic()
    ddb.create_table(TableName="after_kill", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, "after_kill", timeout_s=TAKEOVER_BOUND_S)
    create_s = time.monotonic() - t0
    assert create_s < TAKEOVER_BOUND_S
    second = active(sysm, "admin")
    assert second != first
    ddb.put_item(TableName="after_kill", Item={"pk": {"S": "k"}})
    print(f"admin killed -> CreateTable issued after it ACTIVE in {create_s:.1f} s")

    # the killed process comes back (as the supervisor would restart it) and stands by
    joined = _log(sysm, first).count("joined the election")
    sysm.start_service(first)
    eventually(lambda: _standby_again(sysm, first, joined), 60, f"{first} back on standby")
    assert active(sysm, "admin") == second  # a returning standby does not depose the active

    # 2. the active auto-admin and a partition's leader die together, under load: the standby
    # takes over and elects a new leader; no acknowledged write is lost
    old, epoch = leader(sysm, "before_kill")
    took: list[float] = []

    def fault() -> None:
        sysm.kill_service(second)
        sysm.kill_service(f"storage-{old}")
        t1 = time.monotonic()
        eventually(lambda: leader(sysm, "before_kill")[0] != old, TAKEOVER_BOUND_S, "a new leader")
        took.append(time.monotonic() - t1)

    run = under_load(url, "before_kill", fault, after_s=8.0)  # a slow machine: enough load after
    print(f"admin and leader killed together -> new leader in {took[0]:.1f} s")
    assert took[0] < TAKEOVER_BOUND_S
    # one partition, whose leader is gone: every client waits on it during the fault, so the
    # floor that counts here is the time to a new leader (asserted above); after it, the one
    # partition also serves the killed node catching up, so its rate comes back more slowly
    assert_history_ok(run, tmp_path / "history.json", Floors(during=0.0, after=0.15))
    new, new_epoch = leader(sysm, "before_kill")
    assert new != old and new_epoch > epoch
    assert active(sysm, "admin") == first
    sysm.start_service(f"storage-{old}")
    converged(sysm, "before_kill")


def test_standby_indexer_keeps_the_index_equal_to_its_table_after_the_active_is_killed(system: Any) -> None:
    sysm, url = system
    ddb = make_client(url)
    table = "singleton_gsi"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "grp", "AttributeType": "S"}],
                     GlobalSecondaryIndexes=[{"IndexName": "byGrp",
                                              "KeySchema": [{"AttributeName": "grp", "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "ALL"}}])
    wait_active(ddb, table)
    first = active(sysm, "indexer")
    stop = threading.Event()
    written = [0]

    def writer(seed: int) -> None:
        c = make_client(url)
        rnd = random.Random(seed)
        while not stop.is_set():
            k = f"k{rnd.randrange(60)}"
            try:
                if rnd.random() < 0.15:
                    c.delete_item(TableName=table, Key={"pk": {"S": k}})
                else:
                    c.put_item(TableName=table, Item={"pk": {"S": k}, "grp": {"S": f"g{rnd.randrange(5)}"},
                                                      "v": {"N": str(rnd.randrange(10**6))}})
                written[0] += 1
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        sysm.kill_service(first)  # not restarted: the standby must carry on alone
        t0 = time.monotonic()
        second = active(sysm, "indexer")
        print(f"indexer killed -> standby active in {time.monotonic() - t0:.1f} s")
        assert second != first
        time.sleep(3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert written[0] > 30

    assert_index_matches_table(ddb, table, "byGrp", "grp")
    sysm.start_service(first)


def test_supervisor_restarts_a_killed_process_and_stops_with_down(kafka_bootstrap: str, tmp_path: Path) -> None:
    sysm, url = start_system(kafka_bootstrap, tmp_path / "sys", supervise=True)
    pids: list[int] = []
    try:
        supervisor = sysm.state()["supervisor"]
        assert pid_alive(supervisor)
        port = sysm.state()["port"]
        old = sysm.state()["pids"]["router"]
        sysm.kill_service("router")
        t0 = time.monotonic()
        eventually(lambda: sysm.state()["pids"]["router"] != old and health(port), 60, "the router restarted")
        print(f"router killed -> restarted and answering in {time.monotonic() - t0:.1f} s")
        assert sysm.state()["restarts"] == {"router": 1}
        ddb = make_client(url)
        ddb.list_tables()
        assert "router (pid" in _log(sysm, "supervisor") and "restart 1" in _log(sysm, "supervisor")
        pids = list(sysm.state()["pids"].values())
    finally:
        sysm.down()
    assert not pid_alive(supervisor)
    assert pids and not any(pid_alive(p) for p in pids)
