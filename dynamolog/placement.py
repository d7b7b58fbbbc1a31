"""Where a partition's replicas go: pure functions of the registered storage nodes.

Used by provisioning (a new partition) and by the auto-admin's repair (a replacement for a lost
replica), so both follow one rule. A node is named by its id; ``zones`` maps a node id to its
availability zone (``None`` when the node did not say).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping

#: replicas per partition (at most; fewer when fewer storage nodes are registered)
REPLICAS = 3


def place_new(nodes: Collection[str], unit_id: str, index: int,
              zones: Mapping[str, str | None] | None = None, replicas: int = REPLICAS) -> list[str]:
    """The replicas of a new partition: up to ``replicas`` distinct nodes, the first its leader.

    Consecutive partitions (``index``) of one table or index (``unit_id``) start on consecutive
    nodes, so that leaders spread.
    """
    ordered = sorted(nodes)
    if not ordered:
        raise RuntimeError("no storage node has registered yet")
    first = zlib.crc32(unit_id.encode()) + index
    return [ordered[(first + j) % len(ordered)] for j in range(min(replicas, len(ordered)))]


def choose_spare(live_load: Mapping[str, int], current: Collection[str],
                 zones: Mapping[str, str | None] | None = None) -> str | None:
    """A live node to take over a lost replica: not already a replica, least loaded first
    (``live_load``: live node id -> number of replicas it holds); ``None`` if there is none."""
    spare = sorted((n for n in live_load if n not in current), key=lambda n: (live_load[n], n))
    return spare[0] if spare else None
