"""The auto-admin's table figures: item counts and sizes gathered from the partitions' leaders
and published to ``<ns>.stats`` (dynamolog/stats.py, docs/decisions/0027-table-stats-and-metrics.md).

Each ``ping`` answer of a storage node carries ``sizes``: {pid: [items, bytes]} of the partitions
it leads (:meth:`TableFigures.heard`).  Every ``Settings.table_stats_s`` (:meth:`TableFigures.publish_changed`)
the figures of every table whose partitions' current leaders have all answered are summed and,
when they changed, published; a table gone from the catalog gets a tombstone.  Nothing here
touches the catalog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from dynamolog.metadata import Metadata, MetadataWriter
from dynamolog.stats import Sizes, StatsView, TableStats, encode, table_stats

log = logging.getLogger(__name__)


class TableFigures:
    """Per-partition figures as the leaders report them, and what was published."""

    def __init__(self, metadata: Metadata, writer: MetadataWriter, view: StatsView) -> None:
        self.metadata = metadata
        self.writer = writer
        #: what ``<ns>.stats`` holds (this process's own publications included)
        self.view = view
        #: node id -> {pid: figures} from its last ping answer (partitions it leads)
        self._by_node: dict[str, dict[str, Sizes]] = {}
        self.published = 0

    def heard(self, node_id: str, sizes: Mapping[str, list[int]]) -> None:
        """A ping answer's ``sizes``."""
        self._by_node[node_id] = {pid: Sizes(int(v[0]), int(v[1])) for pid, v in sizes.items()}

    def partition_sizes(self) -> dict[str, Sizes]:
        """pid -> figures, from the node the partition map names its leader."""
        out: dict[str, Sizes] = {}
        for pid, part in self.metadata.partitions.items.items():
            s = self._by_node.get(part.leader or "", {}).get(pid)
            if s is not None:
                out[pid] = s
        return out

    def current(self) -> dict[str, TableStats]:
        """Table name -> its figures now (tables whose partitions all reported)."""
        sizes = self.partition_sizes()
        now_ms = int(time.time() * 1000)
        out: dict[str, TableStats] = {}
        for name, table in list(self.metadata.catalog.items.items()):
            if table.status in ("CREATING", "DELETING"):
                continue
            ids = {table.table_id} | {g.index_id for g in table.global_indexes}
            parts = [p for p in self.metadata.partitions.items.values() if p.table_id in ids and p.state == "ACTIVE"]
            if not parts:
                continue
            st = table_stats(table, parts, sizes, now_ms)
            if st is not None:
                out[name] = st
        return out

    async def publish_changed(self) -> int:
        """Publish the figures that changed, tombstones for tables gone; how many records."""
        n = 0
        for name, st in self.current().items():
            if not st.same_figures(self.view.items.get(name)):
                offset = await self.writer.publish(self.view.topic, name, encode(st))
                self.view.put_local(name, st, offset)
                n += 1
        for name in [k for k in self.view.items if k not in self.metadata.catalog.items]:
            offset = await self.writer.publish(self.view.topic, name, None)
            self.view.put_local(name, None, offset)
            n += 1
        self.published += n
        return n
