"""Table figures (dynamolog/stats.py): sums over the partitions of a table and of its global
indexes, the TableStats record through the codec, DescribeTable's fields, and the metric names
every service may emit (dynamolog/metrics.py) as docs/metrics.md lists them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dynamolog import codec
from dynamolog.catalog import PartitionInfo, TableDefinition
from dynamolog.metrics import METRICS, Samples
from dynamolog.stats import Sizes, TableStats, table_stats
from services.router.figures import with_figures
from services.router.tables import describe
from tests.unit.test_catalog import _table

TABLE = TableDefinition.from_record(_table())
INDEX_ID = TABLE.global_indexes[0].index_id


def part(pid: str, table_id: str) -> PartitionInfo:
    return PartitionInfo(partition_id=pid, table_name=TABLE.table_name, table_id=table_id, hash_start=0,
                         hash_end=2**64 - 1, log_topic=f"dyn.t.Music.{pid}", replicas=("n1",), leader="n1",
                         leader_epoch=1, state="ACTIVE")


PARTS = [part("t-0", TABLE.table_id), part("t-1", TABLE.table_id), part("g-0", INDEX_ID), part("g-1", INDEX_ID)]
SIZES = {"t-0": Sizes(3, 300), "t-1": Sizes(4, 410), "g-0": Sizes(1, 20), "g-1": Sizes(2, 45)}


def test_a_tables_figures_are_its_partitions_sums_and_its_indexes_apart() -> None:
    st = table_stats(TABLE, PARTS, SIZES, 1234)
    assert st is not None
    assert st.table == Sizes(7, 710)
    assert dict(st.indexes) == {"byYear": Sizes(3, 65)}
    assert dict(st.partitions) == SIZES


def test_no_figures_while_a_partition_is_unheard_of() -> None:
    # a sum with one partition missing would show a table smaller than it is
    assert table_stats(TABLE, PARTS, {k: v for k, v in SIZES.items() if k != "g-1"}, 0) is None


def test_table_stats_round_trip_through_the_codec() -> None:
    st = table_stats(TABLE, PARTS, SIZES, 1234)
    assert st is not None
    back = TableStats.from_record(codec.decode_table_stats(codec.encode_table_stats(st.to_record())))
    assert back == st and back.same_figures(replace(st, measured_ms=99))
    assert not back.same_figures(replace(st, table=Sizes(8, 710)))


class _View:
    def __init__(self, st: TableStats | None) -> None:
        self.st = st

    def of(self, table: TableDefinition) -> TableStats | None:
        return self.st if self.st is not None and self.st.table_id == table.table_id else None


def test_describe_table_shows_the_figures_of_this_table_only() -> None:
    st = table_stats(TABLE, PARTS, SIZES, 1)
    desc = with_figures(describe(TABLE, "us-east-1"), TABLE, _View(st))  # type: ignore[arg-type]
    assert (desc["ItemCount"], desc["TableSizeBytes"]) == (7, 710)
    (g,) = desc["GlobalSecondaryIndexes"]
    assert (g["ItemCount"], g["IndexSizeBytes"]) == (3, 65)
    # figures of an older table of the same name are not this table's
    older = replace(st, table_id="another") if st is not None else None
    desc = with_figures(describe(TABLE, "us-east-1"), TABLE, _View(older))  # type: ignore[arg-type]
    assert (desc["ItemCount"], desc["TableSizeBytes"]) == (0, 0)


def test_a_sample_must_have_its_metrics_labels() -> None:
    s = Samples()
    s.add("dynamolog_table_items", 3, table="Music")
    with pytest.raises(ValueError):
        s.add("dynamolog_table_items", 3, table="Music", index="x")
    with pytest.raises(KeyError):
        s.add("dynamolog_no_such_metric", 1)


def test_every_metric_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for name, d in METRICS.items():
        shown = f"`{name}_total`" if d.kind == "counter" else f"`{name}`"
        assert shown in doc, name
