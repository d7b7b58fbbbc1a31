"""A storage node's Prometheus samples (dynamolog/metrics.py, docs/metrics.md): per hosted
replica its item count, size and offset, and, at a partition's leader, its token buckets'
counters (services/storage/metering.py: {"read" | "write": {"consumed", "throttled", "rate", ...},
"multiplier"})."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynamolog.metrics import Samples, index_label

if TYPE_CHECKING:
    from .node import StorageNode


def node_metrics(node: StorageNode, s: Samples) -> None:
    for pid, hp in list(node.hosted.items()):
        role = "leader" if hp.leader is not None else "follower" if hp.follower is not None else "opening"
        labels = {"table": hp.info.table_name, "index": index_label(hp.info.table_id), "partition": pid}
        st = hp.replica.stats()
        s.add("dynamolog_partition_items", st.items, **labels, role=role)
        s.add("dynamolog_partition_size_bytes", st.size_bytes, **labels, role=role)
        s.add("dynamolog_partition_next_offset", st.next_offset, **labels, role=role)
        if hp.leader is not None:
            capacity: dict[str, Any] = node.metering.status(hp.info, True) or {}
            for kind in ("read", "write"):
                c = capacity.get(kind)
                if not isinstance(c, dict):
                    continue
                if "consumed" in c:
                    s.add(f"dynamolog_consumed_{kind}_units", float(c["consumed"]), **labels)
                if "throttled" in c:
                    s.add("dynamolog_throttled_requests", float(c["throttled"]), **labels, kind=kind)
                if "rate" in c:
                    s.add("dynamolog_partition_rate_units", float(c["rate"]), **labels, kind=kind)
