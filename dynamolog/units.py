"""Capacity-unit arithmetic, DynamoDB's: a write unit is 1 KB of item and a read unit 4 KB, each
rounded up and at least one; an eventually consistent read costs half, a transactional read or
write twice.  The router answers ConsumedCapacity with it (services/router/capacity.py) and the
storage node charges its token buckets with it (services/storage/capacity.py)."""

from __future__ import annotations

import math

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def write_units(size_bytes: int, *, transactional: bool = False) -> float:
    """The write units of writing (or deleting) an item of ``size_bytes``."""
    units = max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))
    return float(2 * units if transactional else units)


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> float:
    """The read units of reading ``size_bytes`` of items (one item, or a page's summed sizes)."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    if transactional:
        return float(2 * units)
    return float(units if consistent else units / 2)


#: what a new on-demand table (or index) serves at once, in request units a second: DynamoDB's
#: start, and the floor of an on-demand table's warm throughput
ON_DEMAND_READ_START = 12000
ON_DEMAND_WRITE_START = 4000


def warm(stored_read: int | None, stored_write: int | None, *, on_demand: bool,
         read_capacity: int = 0, write_capacity: int = 0) -> tuple[int, int]:
    """A table's or index's warm throughput (read, write units a second): what it serves at once.

    DynamoDB's rule: an on-demand table starts at 12,000 / 4,000; a provisioned one at its
    provisioned capacity, and it follows the highest capacity ever provisioned; WarmThroughput
    raises either, and nothing lowers it.  ``stored_*`` is what the catalog recorded as raised
    (None: never); the current mode's floor applies on top."""
    floor_r, floor_w = (ON_DEMAND_READ_START, ON_DEMAND_WRITE_START) if on_demand else (read_capacity, write_capacity)
    return max(stored_read or 0, floor_r), max(stored_write or 0, floor_w)
