"""Adaptive capacity on the real system: a hot partition gets more than its even share.

A table of four partitions provisioned at 40 write units (an even share of 10 a second each)
takes 24 one-unit writes a second, 70 % of them on keys of one partition (about 17 a second,
well over its share, while the table as a whole stays within its capacity). The partition is throttled at first; within seconds the auto-admin's
controller (services/admin/adaptive.py, decision 0026) raises that partition's multiplier on its
leader, and from then on almost nothing is throttled, while what the hot partition may take plus
what the others consume stays within the table's capacity.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamolog.keys import partition_hash
from tests.api.conftest import make_client, start_system, wait_active

from .faults import leaders, partitions

pytestmark = pytest.mark.integration

WCU = 40
RATE = 24.0
HOT = 0.7
SECONDS = 36


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("adaptive")), initial_partitions=4)
    try:
        yield sysm, url
    finally:
        sysm.down()


def keys_of_first_quarter(n: int, hot: bool) -> list[str]:
    """Keys whose partition-key hash is in the first quarter of the hash space (the first of four
    even partitions), or outside it."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        k = f"k{i}"
        if (partition_hash({"S": k}) < 1 << 62) == hot:
            out.append(k)
        i += 1
    return out


def test_a_hot_partition_is_throttled_only_until_the_controller_raises_its_share(system: tuple[Any, str]) -> None:
    sysm, url = system
    name = f"adaptive_{uuid.uuid4().hex[:6]}"
    ddb = make_client(url, retries=0)
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": WCU})
    wait_active(ddb, name)
    hot, cold = keys_of_first_quarter(200, True), keys_of_first_quarter(200, False)
    start = time.monotonic()
    log: list[tuple[float, bool]] = []  # (seconds from the start, throttled)
    lock = threading.Lock()
    threads_n = 6

    def writer(n: int) -> None:
        c = make_client(url, retries=0)
        i = n
        while time.monotonic() - start < SECONDS:
            due = start + i / RATE
            time.sleep(max(0.0, due - time.monotonic()))
            key = hot[i % 200] if (i * 7919) % 100 < HOT * 100 else cold[i % 200]
            try:
                c.put_item(TableName=name, Item={"pk": {"S": key}, "v": {"S": "x" * 500}})
                ok = True
            except c.exceptions.ProvisionedThroughputExceededException:
                ok = False
            with lock:
                log.append((time.monotonic() - start, not ok))
            i += threads_n

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def throttled(lo: float, hi: float) -> tuple[int, int]:
        window = [thr for at, thr in log if lo <= at < hi]
        return sum(window), len(window)

    late, late_n = throttled(SECONDS - 14, SECONDS)
    rates, multipliers, consumed = {}, {}, {}
    for pid, (node, _) in leaders(sysm, name).items():
        cap = partitions(sysm, name)[pid][node]["capacity"]
        rates[pid] = cap["write"]["rate"]
        multipliers[pid] = cap["multipliers"]["write"]
        consumed[pid] = cap["write"]["consumed"]
    share = WCU / 4
    # the hot partition took far more than an even share (and its one second of burst) could give
    assert max(consumed.values()) > 1.4 * share * SECONDS, (consumed, throttled(0, SECONDS))
    # the load was really offered, and in its last 14 s under 1 % of the requests were throttled
    assert late_n > 0.8 * RATE * 14, late_n
    assert late / late_n < 0.01, (late, late_n, throttled(0, 10))
    # the hot partition's leader refills faster than an even share, but what it may take and what
    # the other partitions consume stay within the table's capacity
    hot_pid = max(consumed, key=lambda p: consumed[p])
    assert multipliers[hot_pid] > 1.2, multipliers
    cold_rate = sum(c for p, c in consumed.items() if p != hot_pid) / SECONDS
    assert rates[hot_pid] + cold_rate <= WCU, (rates, cold_rate)
