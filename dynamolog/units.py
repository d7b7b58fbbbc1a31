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
