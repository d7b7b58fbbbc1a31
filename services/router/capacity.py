"""ConsumedCapacity: the units an operation consumed, and the shapes DynamoDB answers them in.

The arithmetic is DynamoDB's: a write unit is 1 KB of item and a read unit 4 KB, each rounded
up and at least one; an eventually consistent read costs half, a transactional read or write
twice.  ``ReturnConsumedCapacity=TOTAL`` answers the units per table, ``INDEXES`` adds the
table's own share under ``Table``.  Every operation builds its answer here: the single-item
operations, Query and Scan (one entry), the batches and the transactions (one entry per table).
"""

from __future__ import annotations

from typing import Any, Literal

from dynamolog.units import READ_UNIT_BYTES, WRITE_UNIT_BYTES, read_units, write_units

__all__ = ["MODES", "READ_UNIT_BYTES", "WRITE_UNIT_BYTES", "entry", "per_table", "read_units", "single",
           "write_units"]
#: the ReturnConsumedCapacity values, in the order DynamoDB lists them in its enum message
MODES = ("INDEXES", "TOTAL", "NONE")

#: which per-kind field an entry repeats its units in (the batches answer none)
Kind = Literal["Read", "Write"] | None


def entry(mode: str, table_name: str, units: float, kind: Kind) -> dict[str, Any]:
    """One ConsumedCapacity entry (``mode`` is TOTAL or INDEXES)."""
    shares: dict[str, Any] = {"CapacityUnits": units}
    if kind is not None:
        shares[f"{kind}CapacityUnits"] = units
    out: dict[str, Any] = {"TableName": table_name} | shares
    if mode == "INDEXES":
        out["Table"] = dict(shares)
    return out


def single(mode: str, table_name: str, units: float, kind: Kind) -> dict[str, Any]:
    """The ConsumedCapacity member of a single-table answer, or nothing when ``mode`` is NONE."""
    if mode == "NONE":
        return {}
    return {"ConsumedCapacity": entry(mode, table_name, units, kind)}


def per_table(mode: str, units: dict[str, float], kind: Kind) -> dict[str, Any]:
    """The ConsumedCapacity member of a multi-table answer (one entry per table, in ``units``'
    order), or nothing when ``mode`` is NONE."""
    if mode == "NONE":
        return {}
    return {"ConsumedCapacity": [entry(mode, name, u, kind) for name, u in units.items()]}
