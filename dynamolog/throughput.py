"""Provisioned throughput changes: DynamoDB's decrease quota, shared by the services that change
a table's capacity (the router's UpdateTable, the auto-admin's auto scaling).

A table may lower its provisioned throughput four times at any time of a UTC day; after that,
once per hour (DynamoDB's quota).  The count is kept in the table's definition
(``last_decrease_ms``, ``decreases_today``) and belongs to the UTC day of the last decrease.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import replace
from typing import TypeVar

from . import errors
from .catalog import GlobalIndex, TableDefinition
from .units import warm

Unit = TypeVar("Unit", TableDefinition, GlobalIndex)

DAY_MS = 86_400_000
#: throughput decreases allowed at any time of a UTC day; after them, one per DECREASE_INTERVAL_MS
FREE_DECREASES_PER_DAY = 4
DECREASE_INTERVAL_MS = 3_600_000


def decreases_today(table: TableDefinition, now_ms: int | None = None) -> int:
    """Throughput decreases of the current UTC day (the count is kept for the day of the last one)."""
    last = table.last_decrease_ms
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if last is None or last // DAY_MS != now_ms // DAY_MS:
        return 0
    return int(table.decreases_today)


def utc_words(ms: int) -> str:
    """A time as DynamoDB writes it in limit messages: ``Wednesday, July 25, 2018 6:11:31 PM UTC``."""
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    hour = t.hour % 12 or 12
    return f"{t:%A, %B} {t.day}, {t.year} {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'} UTC"


def check_decrease_allowed(table: TableDefinition, now: int) -> None:
    """LimitExceededException unless the table may lower its throughput now."""
    n = decreases_today(table, now)
    last = table.last_decrease_ms
    if n < FREE_DECREASES_PER_DAY or last is None or now - last >= DECREASE_INTERVAL_MS:
        return
    raise errors.limit_exceeded(
        "Subscriber limit exceeded: Provisioned throughput decreases are limited within a given UTC day. After the "
        f"first {FREE_DECREASES_PER_DAY} decreases, each subsequent decrease in the same UTC day can be performed at "
        f"most once every {DECREASE_INTERVAL_MS // 1000} seconds. Number of decreases today: {n}. Last decrease at "
        f"{utc_words(last)}. Next decrease can be made at {utc_words(last + DECREASE_INTERVAL_MS)}")


def keep_warm(unit: Unit, *, on_demand: bool) -> Unit:
    """``unit`` with its current warm throughput recorded, before its capacity or billing mode
    changes: nothing lowers warm throughput (decision 0056)."""
    r, w = warm(unit.warm_read_units, unit.warm_write_units, on_demand=on_demand,
                read_capacity=unit.read_capacity_units, write_capacity=unit.write_capacity_units)
    return replace(unit, warm_read_units=r, warm_write_units=w)


def record_change(table: TableDefinition, old: tuple[int, int], new: tuple[int, int], now: int) -> TableDefinition:
    """``table`` with the bookkeeping of a throughput change from ``old`` to ``new`` (read, write
    units): the last increase, or the decrease count after checking the quota (raises
    LimitExceededException when it is used up), and the warm throughput, which keeps the highest
    capacity ever provisioned (decision 0056)."""
    updated = replace(table, warm_read_units=max(table.warm_read_units or 0, old[0], new[0]),
                      warm_write_units=max(table.warm_write_units or 0, old[1], new[1]))
    if new[0] > old[0] or new[1] > old[1]:
        updated = replace(updated, last_increase_ms=now)
    if new[0] < old[0] or new[1] < old[1]:
        check_decrease_allowed(table, now)
        updated = replace(updated, last_decrease_ms=now, decreases_today=decreases_today(table, now) + 1)
    return updated
