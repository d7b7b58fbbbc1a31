"""OnDemandThroughput: the maximum read / write request units of an on-demand table or index.

CreateTable and UpdateTable take it for the table and for each global index (``MaxReadRequestUnits``,
``MaxWriteRequestUnits``, each at least 1; UpdateTable's -1 removes a maximum, and a member it
leaves out keeps its value); DescribeTable shows the members that are set.  Only an on-demand
table takes it: on a PROVISIONED one DynamoDB refuses it (naming the first member given, read
first), and a switch to PROVISIONED clears it.  The storage nodes cap the table's on-demand
ceiling with it (services/storage/capacity.py, decision 0025).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from dynamolog import errors
from dynamolog.catalog import GlobalIndex, TableDefinition

MEMBERS = ("MaxReadRequestUnits", "MaxWriteRequestUnits")
#: a request's members: name -> value (-1: remove)
Members = dict[str, int]
Unit = TypeVar("Unit", TableDefinition, GlobalIndex)


def parse(spec: Any, mode: str, *, update: bool) -> Members | None:
    """The members an OnDemandThroughput gives (None: absent or empty), checked against the
    billing mode the table has after the request."""
    if spec is None:
        return None
    members = longs(spec, MEMBERS)
    if not members:
        return None
    if mode == "PROVISIONED":
        first = next(iter(members))
        if update:
            raise errors.validation(f"One or more parameter values were invalid: {first} for OnDemandThroughput "
                                    "cannot be specified when the table BillingMode is PROVISIONED")
        raise errors.validation(f"One or more parameter values were invalid: {first} for OnDemandThroughput "
                                "cannot be specified when table BillingMode is PROVISIONED.")
    for name, v in members.items():
        if v < 1 and not (update and v == -1):
            raise errors.validation(f"One or more parameter values were invalid: {name} for OnDemandThroughput "
                                    "must be greater than or equal to 1" + (" or equal to -1" if update else ""))
    return members


def longs(spec: Any, names: tuple[str, ...]) -> Members:
    """The members ``names`` that a request structure ``spec`` gives, each a Long (DynamoDB's
    SerializationException for another type)."""
    if not isinstance(spec, dict):
        raise errors.serialization("Unexpected value type in payload")
    members: Members = {}
    for name in names:
        v = spec.get(name)
        if v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool):
            raise errors.serialization("NUMBER_VALUE cannot be converted to Long" if isinstance(v, float)
                                       else "Unexpected value type in payload")
        members[name] = v
    return members


def apply(unit: Unit, members: Members | None) -> Unit:
    """``unit`` with the members applied (-1 removes; a member not given is kept)."""
    if not members:
        return unit
    r = members.get("MaxReadRequestUnits", unit.max_read_request_units)
    w = members.get("MaxWriteRequestUnits", unit.max_write_request_units)
    return replace(unit, max_read_request_units=None if r == -1 else r,
                   max_write_request_units=None if w == -1 else w)


def cleared(unit: Unit) -> Unit:
    """``unit`` without maxima (a switch to PROVISIONED)."""
    return replace(unit, max_read_request_units=None, max_write_request_units=None)


def describe(unit: TableDefinition | GlobalIndex) -> dict[str, Any]:
    """The ``OnDemandThroughput`` member of a table's or index's description (nothing when no
    maximum is set)."""
    out = {name: v for name, v in zip(MEMBERS, (unit.max_read_request_units, unit.max_write_request_units),
                                      strict=True) if v is not None}
    return {"OnDemandThroughput": out} if out else {}
