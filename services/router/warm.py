"""WarmThroughput: the read and write units a second a table or global index serves at once.

DynamoDB's rules, as this module applies them (decision 0056):

- Every table and index has a warm throughput, and DescribeTable always shows it
  (``ReadUnitsPerSecond``, ``WriteUnitsPerSecond``, ``Status``): an on-demand one at least
  12,000 / 4,000 units a second, a provisioned one at least its provisioned capacity, and it
  follows the highest capacity ever provisioned (``dynamolog/units.py`` ``warm``).
- CreateTable takes it for the table and for each index: on demand, a member below the start is
  refused ("… lower than initial throughput for OnDemand …"); provisioned, a member below the
  capacity given ("… lower than ReadCapacityUnits of ProvisionedThroughput").
- UpdateTable (and a GlobalSecondaryIndexUpdates Update) raises it; a member below the current
  value is refused ("… decreasing WarmThroughput is not supported"), an equal one is accepted,
  a member left out keeps its value.  The table stays ACTIVE; the answer shows the warm
  throughput UPDATING, DescribeTable ACTIVE once the catalog holds it.
- What it does: the storage nodes make each partition's hard cap at least its share of it, and
  an on-demand table's ceiling starts there (``services/storage/capacity.py``), so a warmed
  table serves that rate from its first second, as DynamoDB's pre-warmed partitions do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from dynamolog import errors
from dynamolog.catalog import GlobalIndex, TableDefinition
from dynamolog.units import ON_DEMAND_READ_START, ON_DEMAND_WRITE_START, warm

from .throughput import Members, longs

READ, WRITE = "ReadUnitsPerSecond", "WriteUnitsPerSecond"
Unit = TypeVar("Unit", TableDefinition, GlobalIndex)
_START_DOCS = ("https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"
               "#on-demand-capacity-mode-initial")


def _invalid(message: str) -> errors.ApiError:
    return errors.validation(f"One or more parameter values were invalid: {message}")


def _whose(index: str | None) -> str:
    return f"index {index}" if index is not None else "table"


def parse(spec: Any, *, index: str | None = None, update: bool = False) -> Members | None:
    """The members a WarmThroughput gives (None: absent, or empty at creation).  ``index``:
    the index it is given for (None: the table)."""
    if spec is None:
        return None
    members = longs(spec, (READ, WRITE))
    if not members and update:
        raise _invalid("WarmThroughput must have at least one of ReadUnitsPerSecond or WriteUnitsPerSecond "
                       f"specified for {'index: ' + index if index is not None else 'table'}")
    return members or None


def current(unit: TableDefinition | GlobalIndex, billing_mode: str) -> tuple[int, int]:
    """The warm throughput ``unit`` has now (read, write units a second)."""
    return warm(unit.warm_read_units, unit.warm_write_units, on_demand=billing_mode != "PROVISIONED",
                read_capacity=unit.read_capacity_units, write_capacity=unit.write_capacity_units)


def at_creation(unit: Unit, members: Members | None, billing_mode: str, *, index: str | None = None) -> Unit:
    """``unit`` (being created) warmed to ``members``, or the error CreateTable gets for them."""
    if not members:
        return unit
    if billing_mode == "PROVISIONED":
        floors = {READ: (unit.read_capacity_units, "ReadCapacityUnits"),
                  WRITE: (unit.write_capacity_units, "WriteCapacityUnits")}
        for name, v in members.items():
            floor, capacity = floors[name]
            if v < floor:
                raise _invalid(f"Requested {name} for WarmThroughput for {_whose(index)} is lower than "
                               f"{capacity} of ProvisionedThroughput")
    else:
        starts = {READ: ON_DEMAND_READ_START, WRITE: ON_DEMAND_WRITE_START}
        for name, v in members.items():
            if v < starts[name]:
                raise _invalid(f"Requested {name} for WarmThroughput for {_whose(index)} is lower than initial "
                               f"throughput for OnDemand. See: {_START_DOCS}")
    return replace(unit, warm_read_units=members.get(READ, unit.warm_read_units),
                   warm_write_units=members.get(WRITE, unit.warm_write_units))


def raised(unit: Unit, members: Members | None, billing_mode: str, *, index: str | None = None) -> Unit:
    """``unit`` warmed to ``members`` by UpdateTable (a member left out keeps its value), or the
    error for a member below the current warm throughput."""
    if not members:
        return unit
    now_r, now_w = current(unit, billing_mode)
    for name, now in ((READ, now_r), (WRITE, now_w)):
        if name in members and members[name] < now:
            raise _invalid(f"Requested {name} for WarmThroughput for {_whose(index)} is lower than current "
                           "WarmThroughput, decreasing WarmThroughput is not supported")
    return replace(unit, warm_read_units=members.get(READ, now_r), warm_write_units=members.get(WRITE, now_w))


def describe(unit: TableDefinition | GlobalIndex, billing_mode: str, status: str = "ACTIVE") -> dict[str, Any]:
    """The ``WarmThroughput`` member of a table's or index's description."""
    r, w = current(unit, billing_mode)
    return {"WarmThroughput": {READ: r, WRITE: w, "Status": status}}
