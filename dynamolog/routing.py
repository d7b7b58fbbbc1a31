"""Finding a partition's replica and calling it, with retries where a retry can succeed.

The partition map comes from the metadata views.  A "not the leader" answer or a lost
connection makes the router wait for the map to change (or a short backoff) and try again,
within ``RETRY_WINDOW_S``; only then does the client see an error, and it is one that SDKs
retry (HTTP 500).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mypy_extensions import mypyc_attr

from . import errors
from .catalog import PartitionInfo, Unit, partition_index_for_hash
from .keys import partition_hash
from .metadata import Metadata, split_done
from .rpc import RequestLost, RequestTimeout, RpcClient

log = logging.getLogger(__name__)

#: how long a request keeps retrying a partition that has no reachable leader
RETRY_WINDOW_S = 15.0


class PartitionSplit(errors.ApiError):
    """A request planned on a partition that has been split, which it cannot follow on its own
    (it names no key): the caller plans again on the children (a Scan resumes where it was; a
    transaction, whose items may now be in two partitions, is run again).  Should it reach a
    client, it is a retriable InternalServerError."""

    def __init__(self, part: PartitionInfo) -> None:
        super().__init__("InternalServerError", f"Partition {part.partition_id} was split; retry the request",
                         status=500)
        self.part = part


@mypyc_attr(allow_interpreted_subclasses=True)  # a test stands in a storage layer with a subclass
class Routing:
    """Partition lookup and RPC clients to storage nodes."""

    def __init__(self, metadata: Metadata, zone: str | None = None) -> None:
        """``zone``: the availability zone this process runs in; an eventually consistent read
        goes to the replica in it when there is one (decision 0050), else round robin."""
        self.metadata = metadata
        self.zone = zone
        self._clients: dict[str, RpcClient] = {}
        self._rr = 0
        # table_id -> (sorted hash starts, partitions), rebuilt when dyn.partitions changes
        self._maps: dict[str, tuple[list[int], list[PartitionInfo]]] = {}
        metadata.partitions.listen(lambda _k, _v: self._maps.clear())

    def partitions(self, table: Unit) -> list[PartitionInfo]:
        entry = self._maps.get(table.table_id)
        if entry is None:
            parts = self.metadata.table_partitions(table.table_id)
            entry = ([p.hash_start for p in parts], parts)
            self._maps[table.table_id] = entry
        return entry[1]

    def partition_index_for(self, table: Unit, hash_av: dict[str, Any]) -> int:
        self.partitions(table)
        starts, parts = self._maps[table.table_id]
        if not parts:
            raise errors.resource_not_found()
        return partition_index_for_hash(starts, partition_hash(hash_av))

    def partition_for(self, table: Unit, hash_av: dict[str, Any]) -> PartitionInfo:
        return self.partitions(table)[self.partition_index_for(table, hash_av)]

    @staticmethod
    def key_hash(item_key: bytes) -> int:
        """The partition-key hash of an encoded item key (its first 8 bytes)."""
        return int.from_bytes(item_key[:8], "big")

    def partition_for_item_key(self, table: Unit, item_key: bytes) -> PartitionInfo:
        """The partition of an encoded item key (its first 8 bytes are the partition hash)."""
        self.partitions(table)
        starts, parts = self._maps[table.table_id]
        if not parts:
            raise errors.resource_not_found()
        return parts[partition_index_for_hash(starts, int.from_bytes(item_key[:8], "big"))]

    def client(self, node_id: str) -> RpcClient:
        c = self._clients.get(node_id)
        node = self.metadata.nodes.items.get(node_id)
        if node is None:
            raise ConnectionError(f"storage node {node_id} is not registered")
        host, port = node.host_port()
        if c is None or (c.host, c.port) != (host, port):
            c = RpcClient(host, port)
            self._clients[node_id] = c
        return c

    def _serving(self, part: PartitionInfo, route_hash: int | None) -> PartitionInfo:
        """The partition that serves ``part``'s keys now: ``part``, or once it is split the child
        holding ``route_hash`` (PartitionSplit without one)."""
        items = self.metadata.partitions.items
        for _ in range(64):
            current = items.get(part.partition_id, part)
            if not split_done(current, items):
                return current
            if route_hash is None:
                raise PartitionSplit(current)
            child = next((c for pid in current.children if (c := items.get(pid)) is not None
                          and c.hash_start <= route_hash <= c.hash_end), None)
            if child is None:
                raise PartitionSplit(current)
            part = child
        raise PartitionSplit(part)

    def _holder(self, part: PartitionInfo, route_hash: int | None) -> PartitionInfo:
        """:meth:`_serving`, and for a key outside what that partition holds (a map read before a
        split finished) the partition of the current map that holds it."""
        current = self._serving(part, route_hash)
        if route_hash is None or current.hash_start <= route_hash <= current.hash_end:
            return current
        live = self.metadata.table_partitions(current.table_id)
        found = next((p for p in live if p.hash_start <= route_hash <= p.hash_end), None)
        return found or current

    async def call(self, table: Unit, part: PartitionInfo, op: str, *, leader: bool,
                   idempotent: bool = True, route_hash: int | None = None, **args: Any) -> Any:
        """Call ``op`` on the partition's leader (or, for ``leader=False``, any replica).

        ``idempotent=False`` (a client's write): once the request has been sent, a lost
        connection or a timeout may hide a write that was carried out, so it is not retried —
        retrying a conditional write could answer ConditionalCheckFailed for a write that took
        effect.  The client gets a retriable InternalServerError (outcome unknown), as from
        DynamoDB.  A "not the leader" answer or a refused connection is retried: nothing ran.

        ``route_hash``: the partition-key hash the request is for; once ``part`` is split the
        request goes to the child holding it (without one, :class:`PartitionSplit` is raised).

        A replica that may not serve an eventually consistent read now answers ``ReplicaStale``
        (a follower beyond the staleness bound, a node still opening its role): the read goes to
        the leader at once, which is never behind; and when the leader itself is still opening its
        term (a failover), to the replicas not yet asked, then after a wait to all of them again.
        ``ReplicaStale`` never reaches the client."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_WINDOW_S
        attempt = waits = 0
        any_replica = not leader
        #: replicas that answered ReplicaStale since the last wait
        stale: set[str] = set()
        while True:
            attempt += 1
            current = self._holder(part, route_hash)
            pid = current.partition_id
            node_id = current.leader if leader else self._pick_replica(current, attempt, avoid=stale)
            try:
                if not node_id:
                    raise ConnectionError(f"partition {pid} has no leader")
                return await self.client(node_id).call(op, pid=pid, **args)
            except errors.ApiError as e:
                if e.type_name == "ReplicaStale" and any_replica:
                    stale.add(str(node_id))
                    leader = bool(current.leader) and current.leader not in stale
                    if leader or any(r not in stale for r in current.replicas):
                        continue
                    stale.clear()  # every replica is behind or opening: wait, then ask again
                elif e.type_name != "NotLeader":
                    raise
                reason = e.message
            except (RequestLost, RequestTimeout) as e:
                if not idempotent:
                    log.warning("routing: %s to partition %s sent, outcome unknown: %r", op, pid, e)
                    raise errors.internal("The write could not be confirmed; its outcome is unknown, retry it") \
                        from None
                reason = str(e) or type(e).__name__
            except (TimeoutError, ConnectionError) as e:
                reason = str(e)
            if loop.time() >= deadline:
                log.warning("routing: giving up on partition %s after %d attempts: %s", pid, attempt, reason)
                raise errors.internal("The partition is unavailable; retry the request")
            # wait for a change in the partition map (a new leader, a split's children), or back off
            def changed(seen: PartitionInfo = current) -> bool:
                now = self.metadata.partitions.items.get(seen.partition_id)
                return now is None or now.leader_epoch != seen.leader_epoch \
                    or split_done(now, self.metadata.partitions.items)

            waits += 1
            await self.metadata.partitions.wait_until(
                changed,
                min(0.05 * 2**waits, 1.0),
            )

    def send_now(self, part: PartitionInfo, op: str, *, leader: bool, route_hash: int | None = None,
                 **args: Any) -> asyncio.Future[Any] | None:
        """The first attempt of :meth:`call`, sent without waiting: the future of the node's answer
        (an ApiError or a lost connection is its exception, and nothing retries it), or None when
        the attempt cannot be sent at once (no leader, no open connection to the node)."""
        current = self._holder(part, route_hash)
        node_id = current.leader if leader else self._pick_replica(current, 1)
        if not node_id:
            return None
        try:
            c = self.client(node_id)
        except ConnectionError:
            return None
        return c.send_now(op, pid=current.partition_id, **args)

    def _pick_replica(self, part: PartitionInfo, attempt: int,
                      avoid: set[str] | frozenset[str] = frozenset()) -> str | None:
        """A replica for an eventually consistent read: the one in this router's zone first, else
        round robin; none in ``avoid`` while another is left."""
        replicas = part.replicas
        if avoid:
            replicas = tuple(r for r in replicas if r not in avoid) or replicas
        if not replicas:
            return None
        if self.zone is not None and attempt == 1:
            # the replica in this zone first (a zone's reads stay in it, and a node that gets
            # the reads of a zone gets them in groups: decision 0050)
            nodes = self.metadata.nodes.items
            for r in replicas:
                info = nodes.get(r)
                if info is not None and info.zone == self.zone:
                    return str(r)
        # round robin over the replicas; a retry moves on to the next one (the one that failed
        # may be down, and any replica serves an eventually consistent read)
        self._rr += 1
        return str(replicas[self._rr % len(replicas)])

    async def close(self) -> None:
        for c in self._clients.values():
            await c.close()
