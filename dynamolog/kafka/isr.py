"""Where a topic's partitions stand in the cluster: their leader brokers and in-sync replicas.

For fault benchmarks and tests that kill a broker: :func:`partition_leader` names the broker to
kill (the leader of a partition log), :func:`wait_isr_full` waits until a restarted broker has
caught up with every partition it holds (every topic's in-sync replica set equals its replica
set again), so that the next fault starts from a whole cluster.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


class Lagging(NamedTuple):
    """A partition whose in-sync replicas are fewer than its replicas."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


async def partition_leader(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The node id of the broker leading ``topic``'s ``partition`` (-1 while it has none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (t,) = await admin.describe_topics([topic])
        if t["error_code"] != 0:
            raise KafkaError(f"{topic}: error code {t['error_code']}")
        for p in t["partitions"]:
            if int(p["partition"]) == partition:
                return int(p["leader"])
        raise KafkaError(f"{topic} has no partition {partition}")
    finally:
        await admin.close()


async def under_replicated(bootstrap: str) -> list[Lagging]:
    """Every partition of every topic (internal ones included) whose ISR lacks a replica."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        out = []
        for t in await admin.describe_topics():
            for p in t["partitions"]:
                replicas, isr = tuple(int(r) for r in p["replicas"]), tuple(int(r) for r in p["isr"])
                if t["error_code"] != 0 or set(isr) != set(replicas):
                    out.append(Lagging(str(t["topic"]), int(p["partition"]), replicas, isr))
        return out
    finally:
        await admin.close()


async def wait_isr_full(bootstrap: str, timeout_s: float = 300.0, poll_s: float = 0.5) -> float:
    """Wait until no partition is under-replicated; return the seconds waited. Raises
    ``TimeoutError`` naming the partitions still lagging after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    lagging: list[Lagging] = []
    while loop.time() - t0 < timeout_s:
        try:
            lagging = await under_replicated(bootstrap)
        except (KafkaError, OSError, TimeoutError):
            lagging = lagging or [Lagging("?", -1, (), ())]  # a broker not answering yet: ask again
        else:
            if not lagging:
                return loop.time() - t0
        await asyncio.sleep(poll_s)
    shown = ", ".join(f"{x.topic}-{x.partition} isr {list(x.isr)} of {list(x.replicas)}" for x in lagging[:5])
    raise TimeoutError(f"{len(lagging)} partition(s) still under-replicated after {timeout_s:.0f} s: {shown}")
