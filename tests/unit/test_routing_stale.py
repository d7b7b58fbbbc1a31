"""Where the router sends an eventually consistent read that a replica may not serve now
(``ReplicaStale``: a follower beyond the staleness bound, or a node still opening its role, such
as a new leader opening its term during a failover).  Real internal RPC servers stand in for the
three storage nodes; the partition map is a real metadata view, filled locally (no broker)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from dynamolog import errors, routing
from dynamolog.catalog import IndexUnit, NodeInfo, PartitionInfo
from dynamolog.config import Settings
from dynamolog.metadata import Metadata
from dynamolog.rpc import RpcServer
from services.storage.node import replica_stale

KEY = os.urandom(32)
NODES = ("n1", "n2", "n3")
TABLE = IndexUnit(table_id="id")


async def _nodes(answers: dict[str, Callable[[int], Any]], leader: str
                 ) -> tuple[routing.Routing, list[RpcServer], list[str], PartitionInfo]:
    """Three nodes; ``answers[node](n)`` is what it answers to its n-th request (an ApiError is
    raised).  Returns the router's routing, the servers, the log of (node) asked, the partition."""
    md = Metadata(Settings(namespace="unit"))
    asked: list[str] = []
    servers = []
    for node in NODES:
        count = [0]

        async def handler(req: dict[str, Any], node: str = node, count: list[int] = count) -> Any:
            asked.append(node)
            count[0] += 1
            answer = answers[node](count[0])
            if isinstance(answer, errors.ApiError):
                raise answer
            return answer

        server = RpcServer(handler, "127.0.0.1", 0, key=KEY)
        await server.start()
        servers.append(server)
        md.nodes.put_local(node, NodeInfo(node_id=node, rpc_address=f"127.0.0.1:{server.port}", pid=1,
                                          started_at_ms=0), 0)
    part = PartitionInfo(partition_id="p-0", table_name="t", table_id="id", hash_start=0, hash_end=2**64 - 1,
                         log_topic="unit.t.t.p-0", replicas=NODES, leader=leader, leader_epoch=2, state="ACTIVE")
    md.partitions.put_local("p-0", part, 0)
    r = routing.Routing(md)
    for node in NODES:  # the internal RPC key of these servers
        r._clients[node] = routing.RpcClient("127.0.0.1", servers[NODES.index(node)].port, key=KEY)
    return r, servers, asked, part


async def _close(r: routing.Routing, servers: list[RpcServer]) -> None:
    await r.close()
    for s in servers:
        await s.close()


def _stale(_n: int) -> errors.ApiError:
    return replica_stale("p-0", "opening")


def _item(node: str) -> Callable[[int], Any]:
    return lambda _n: {"Item": {"pk": {"S": "k"}}, "from": node}


def _read(r: routing.Routing, part: PartitionInfo) -> Any:
    return r.call(TABLE, part, "get", leader=False, key="k")


def test_a_read_while_the_new_leader_opens_its_term_goes_to_a_fresh_follower() -> None:
    # n1 leads in the map but is still opening its term, n2 is a restarted node still catching
    # up: n3 answers, and each of the others is asked once.
    async def main() -> None:
        r, servers, asked, part = await _nodes({"n1": _stale, "n2": _stale, "n3": _item("n3")}, leader="n1")
        try:
            for _ in range(6):
                asked.clear()
                got = await _read(r, part)
                assert got["from"] == "n3"
                assert sorted(asked) == sorted(set(asked)) and asked[-1] == "n3", asked
        finally:
            await _close(r, servers)

    asyncio.run(main())


def test_a_read_waits_while_every_replica_is_opening_and_is_then_answered() -> None:
    # every replica answers ReplicaStale for its first two requests: the read waits and asks again
    def opening_then(node: str) -> Callable[[int], Any]:
        return lambda n: _stale(n) if n <= 2 else _item(node)(n)

    async def main() -> None:
        r, servers, asked, part = await _nodes({n: opening_then(n) for n in NODES}, leader="n2")
        try:
            started = time.monotonic()
            got = await _read(r, part)
            assert got["from"] in NODES
            assert time.monotonic() - started < 3.0
            assert len(asked) >= 7, asked  # two rounds of three stale answers, then one that serves
        finally:
            await _close(r, servers)

    asyncio.run(main())


def test_replica_stale_never_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # no replica serves within the retry window: the client gets DynamoDB's retriable 500
    monkeypatch.setattr(routing, "RETRY_WINDOW_S", 0.5)

    async def main() -> None:
        r, servers, _asked, part = await _nodes({n: _stale for n in NODES}, leader="n1")
        try:
            with pytest.raises(errors.ApiError) as e:
                await _read(r, part)
            assert (e.value.type_name, e.value.status) == ("InternalServerError", 500)
        finally:
            await _close(r, servers)

    asyncio.run(main())
