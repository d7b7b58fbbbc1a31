"""Tables' measured item counts and sizes: the ``<ns>.stats`` topic and its view.

Every replica keeps its partition's item count and size exactly, in the WriteBatch of each
record (services/storage/replica.py).  The auto-admin reads them from the partitions' leaders
(their ``ping`` answers, four times a second), sums them per table and per global secondary
index (:func:`table_stats`), and publishes a :class:`TableStats` per table to ``<ns>.stats``
(compacted, key: table name) when they changed, at most every ``Settings.table_stats_s``.
Routers follow the topic (:class:`StatsView`) and answer DescribeTable's ``ItemCount``,
``TableSizeBytes`` and each index's ``IndexSizeBytes`` / ``ItemCount`` from it.  The catalog is
never rewritten for this (docs/decisions/0027-table-stats-and-metrics.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .catalog import PartitionInfo, TableDefinition
from .config import Settings
from .kafka.admin import KafkaAdmin
from .metadata import TopicView
from .metrics import Samples


@dataclass(frozen=True)
class Sizes:
    """An item count and a size in bytes."""

    item_count: int = 0
    size_bytes: int = 0

    def __add__(self, other: Sizes) -> Sizes:
        return Sizes(self.item_count + other.item_count, self.size_bytes + other.size_bytes)


@dataclass(frozen=True)
class TableStats:
    """A table's figures (``schemas/TableStats.avsc``)."""

    table_id: str
    """The table they belong to (a table created again under the same name has another id)."""
    table: Sizes
    """The table's items."""
    indexes: Mapping[str, Sizes] = field(default_factory=dict)
    """Global secondary index name -> its entries."""
    partitions: Mapping[str, Sizes] = field(default_factory=dict)
    """Partition id (the table's and its indexes') -> its items or entries."""
    measured_ms: int = 0
    """When the auto-admin last had every partition's figures from its leader."""

    def same_figures(self, other: TableStats | None) -> bool:
        """Equal but for the time of measurement (nothing to publish)."""
        return other is not None and (self.table_id, self.table, dict(self.indexes), dict(self.partitions)) == (
            other.table_id, other.table, dict(other.indexes), dict(other.partitions))

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> TableStats:
        return cls(r["table_id"], Sizes(r["item_count"], r["size_bytes"]),
                   {i["index_name"]: Sizes(i["item_count"], i["size_bytes"]) for i in r["indexes"]},
                   {p["partition_id"]: Sizes(p["item_count"], p["size_bytes"]) for p in r["partitions"]},
                   r["measured_ms"])

    def to_record(self) -> dict[str, Any]:
        return {"table_id": self.table_id, "item_count": self.table.item_count, "size_bytes": self.table.size_bytes,
                "indexes": [{"index_name": n, "item_count": s.item_count, "size_bytes": s.size_bytes}
                            for n, s in sorted(self.indexes.items())],
                "partitions": [{"partition_id": p, "item_count": s.item_count, "size_bytes": s.size_bytes}
                               for p, s in sorted(self.partitions.items())],
                "measured_ms": self.measured_ms}


def table_stats(table: TableDefinition, partitions: Iterable[PartitionInfo], sizes: Mapping[str, Sizes],
                now_ms: int) -> TableStats | None:
    """A table's figures from its partitions' (``partitions``: every partition of the table and
    of its global indexes), or None while some partition's figures are unknown (its leader has
    not answered since it took over): a sum with a part missing would be wrong."""
    index_names = {g.index_id: g.index_name for g in table.global_indexes}
    total = Sizes()
    indexes: dict[str, Sizes] = {g.index_name: Sizes() for g in table.global_indexes}
    per_partition: dict[str, Sizes] = {}
    for p in partitions:
        s = sizes.get(p.partition_id)
        if s is None:
            return None
        per_partition[p.partition_id] = s
        if p.table_id == table.table_id:
            total += s
        elif p.table_id in index_names:
            indexes[index_names[p.table_id]] += s
    return TableStats(table.table_id, total, indexes, per_partition, now_ms)


async def ensure_stats_topic(settings: Settings) -> None:
    async with KafkaAdmin(settings.bootstrap) as admin:
        await admin.ensure_compacted_topic(settings.stats_topic)
        await admin.wait_for_topics([settings.stats_topic])


def _decode(b: bytes) -> TableStats:
    return TableStats.from_record(codec.decode_table_stats(b))


class StatsView(TopicView[TableStats]):
    """``<ns>.stats`` materialized: table name -> its last published figures."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.stats_topic, _decode)

    async def start(self) -> None:
        await ensure_stats_topic(self.settings)
        await super().start()

    def of(self, table: TableDefinition) -> TableStats | None:
        """The figures of this table (None: not measured yet, or those of an older table of
        the same name)."""
        s = self.items.get(table.table_name)
        return s if s is not None and s.table_id == table.table_id else None


def encode(stats: TableStats) -> bytes:
    return codec.encode_table_stats(stats.to_record())


def add_table_samples(samples: Samples, tables: Iterable[TableDefinition], view: StatsView | None,
                      now_ms: int) -> None:
    """Prometheus samples of every table (dynamolog/metrics.py): provisioned units (catalog) and
    the last published figures (``view``)."""
    for t in tables:
        if t.status == "DELETING":
            continue
        prov = t.billing_mode == "PROVISIONED"
        samples.add("dynamolog_provisioned_read_units", t.read_capacity_units if prov else 0, table=t.table_name,
                    index="")
        samples.add("dynamolog_provisioned_write_units", t.write_capacity_units if prov else 0, table=t.table_name,
                    index="")
        for g in t.global_indexes:
            samples.add("dynamolog_provisioned_read_units", g.read_capacity_units if prov else 0,
                        table=t.table_name, index=g.index_name)
            samples.add("dynamolog_provisioned_write_units", g.write_capacity_units if prov else 0,
                        table=t.table_name, index=g.index_name)
        st = view.of(t) if view is not None else None
        if st is None:
            continue
        samples.add("dynamolog_table_items", st.table.item_count, table=t.table_name)
        samples.add("dynamolog_table_size_bytes", st.table.size_bytes, table=t.table_name)
        samples.add("dynamolog_table_stats_age_seconds", max(0.0, (now_ms - st.measured_ms) / 1000),
                    table=t.table_name)
        for name, sz in st.indexes.items():
            samples.add("dynamolog_index_items", sz.item_count, table=t.table_name, index=name)
            samples.add("dynamolog_index_size_bytes", sz.size_bytes, table=t.table_name, index=name)
