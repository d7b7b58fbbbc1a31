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


def _zone(zones: Mapping[str, str | None] | None, node: str) -> tuple[str, str]:
    """The zone ``node`` counts in; a node without a zone is a zone of its own."""
    zone = (zones or {}).get(node)
    return ("zone", zone) if zone is not None else ("node", node)


def place_new(nodes: Collection[str], unit_id: str, index: int,
              zones: Mapping[str, str | None] | None = None, replicas: int = REPLICAS) -> list[str]:
    """The replicas of a new partition: up to ``replicas`` distinct nodes, the first its leader,
    in distinct zones as far as the zones allow (then on further distinct nodes).

    Consecutive partitions (``index``) of one table or index (``unit_id``) start on consecutive
    nodes, so that leaders spread; the others follow in node order, skipping a node whose zone
    already holds a replica while another zone has a node left.
    """
    ordered = sorted(nodes)
    if not ordered:
        raise RuntimeError("no storage node has registered yet")
    first = zlib.crc32(unit_id.encode()) + index
    rotation = [ordered[(first + j) % len(ordered)] for j in range(len(ordered))]
    chosen: list[str] = []
    used: set[tuple[str, str]] = set()
    for node in rotation:  # one per zone first
        if len(chosen) < replicas and _zone(zones, node) not in used:
            chosen.append(node)
            used.add(_zone(zones, node))
    for node in rotation:  # then distinct nodes, when there are fewer zones than replicas
        if len(chosen) < replicas and node not in chosen:
            chosen.append(node)
    return chosen


def choose_spare(live_load: Mapping[str, int], current: Collection[str],
                 zones: Mapping[str, str | None] | None = None) -> str | None:
    """A live node to take over a lost replica: not already a replica; in a zone that none of
    the live replicas is in, if there is such a node; least loaded first (``live_load``: live
    node id -> number of replicas it holds); ``None`` if there is none."""
    taken = {_zone(zones, n) for n in current if n in live_load}
    spare = sorted((n for n in live_load if n not in current),
                   key=lambda n: (_zone(zones, n) in taken, live_load[n], n))
    return spare[0] if spare else None
