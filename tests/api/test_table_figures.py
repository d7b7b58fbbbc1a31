"""DescribeTable's ItemCount and TableSizeBytes follow the table's contents.

DynamoDB refreshes them about every six hours; Dynamolog publishes them at most
``DYNAMOLOG_TABLE_STATS_S`` (10 s by default) after a change, so this test waits for that period
(docs/decisions/0027-table-stats-and-metrics.md).  Against DynamoDB itself it would time out.
"""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import TableFactory

#: the refresh period of the system the session starts, and a margin for the ping and the publish
REFRESH_S = 10.0 + 5.0


def _figures(ddb: Any, name: str) -> tuple[int, int]:
    t = ddb.describe_table(TableName=name)["Table"]
    return t["ItemCount"], t["TableSizeBytes"]


def _wait_for(ddb: Any, name: str, want: tuple[int, int]) -> float:
    t0 = time.monotonic()
    while _figures(ddb, name) != want:
        assert time.monotonic() - t0 < REFRESH_S, f"{_figures(ddb, name)} != {want} after {REFRESH_S} s"
        time.sleep(0.25)
    return time.monotonic() - t0


def test_item_count_and_size_within_the_refresh_period(ddb: Any, create_table: TableFactory) -> None:
    # a new table shows 0; three items of 9 bytes each (pk: 2 + 1, v: 1 + 5) show 3 and 27
    name = create_table()
    assert _figures(ddb, name) == (0, 0)
    for k in "abc":
        ddb.put_item(TableName=name, Item={"pk": {"S": k}, "v": {"S": "hello"}})
    _wait_for(ddb, name, (3, 27))
    # an overwrite that grows one item by 5 bytes and a delete
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"S": "hello world"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "b"}})
    _wait_for(ddb, name, (2, 9 + 15))
