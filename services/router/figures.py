"""DescribeTable's measured figures: ``ItemCount``, ``TableSizeBytes`` and each index's
``ItemCount`` / ``IndexSizeBytes``, from the auto-admin's ``<ns>.stats`` (dynamolog/stats.py).

DynamoDB refreshes them about every six hours; here they are at most ``Settings.table_stats_s``
(10 s) plus a ping (0.25 s) old.  A table not measured yet shows 0, as a new DynamoDB table does.
Local secondary indexes show 0 (their entries live in the table's partitions and are not counted
apart; docs/compatibility.md).
"""

from __future__ import annotations

from typing import Any

from dynamolog.catalog import TableDefinition
from dynamolog.stats import StatsView


def with_figures(desc: dict[str, Any], table: TableDefinition, view: StatsView | None) -> dict[str, Any]:
    """``desc`` (a TableDescription of ``table``) with the last published figures filled in."""
    st = view.of(table) if view is not None else None
    if st is None:
        return desc
    desc["ItemCount"] = st.table.item_count
    desc["TableSizeBytes"] = st.table.size_bytes
    for index in desc.get("GlobalSecondaryIndexes", []):
        s = st.indexes.get(index["IndexName"])
        if s is not None:
            index["ItemCount"] = s.item_count
            index["IndexSizeBytes"] = s.size_bytes
    return desc
