"""Scan: every rule of its request, in DynamoDB's order."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from dynamolog import errors
from dynamolog.catalog import TableDefinition, Unit, attribute_types, key_names
from dynamolog.keys import encode_item_key, partition_hash

from ..validate import raise_constraints
from . import ranges
from .common import capacity_mode, limit
from .expressions import Expressions
from .keys import parse_key

HASH_SPACE = 1 << 64
TOTAL_SEGMENTS_MAX = 1000000


@dataclass(frozen=True)
class ScanRequest:
    """A checked Scan."""

    #: the table scanned (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: what the partitions read belong to: the table, or a global index's IndexUnit
    unit: Unit
    #: Select, defaults applied
    select: str
    #: the key attribute names a LastEvaluatedKey holds (index keys first)
    key_names: list[str]
    #: the storage node's arguments of a local secondary index read (ranges.local_read)
    local: dict[str, Any]
    #: Limit, or None
    limit: int | None
    #: ConsistentRead
    consistent: bool
    #: the segment's hash range [lo, hi) (Segment, TotalSegments), the whole space without them
    segment_lo: int
    segment_hi: int
    #: the partition hash of ExclusiveStartKey (where the scan resumes), or None
    start_hash: int | None
    #: the encoded ExclusiveStartKey (base64), or None
    after: str | None
    #: the filter and projection, legacy parameters translated
    expressions: Expressions
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str


def segment(p: dict[str, Any]) -> tuple[int, int]:
    """Segment and TotalSegments as the hash range [lo, hi) they name."""
    seg, total = p.get("Segment"), p.get("TotalSegments")
    if seg is None and total is None:
        return 0, HASH_SPACE
    if seg is None or total is None:
        missing = "Segment" if seg is None else "TotalSegments"
        other = "TotalSegments" if seg is None else "Segment"
        raise errors.validation(f"The {missing} parameter is required but was not present in the request when "
                                f"parameter {other} is present")
    problems = []
    if not isinstance(total, int) or not 1 <= total <= TOTAL_SEGMENTS_MAX:
        problems.append(f"Value '{total}' at 'totalSegments' failed to satisfy constraint: Member must have value "
                        + ("less than or equal to 1000000" if isinstance(total, int) and total > 1 else
                           "greater than or equal to 1"))
    if not isinstance(seg, int) or seg < 0:
        problems.append(f"Value '{seg}' at 'segment' failed to satisfy constraint: Member must have value greater "
                        "than or equal to 0")
    raise_constraints(problems)
    if seg >= total:
        raise errors.validation(f"The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                                f"Segment: {seg} is not less than TotalSegments: {total}")
    return seg * HASH_SPACE // total, (seg + 1) * HASH_SPACE // total


def parse(p: dict[str, Any], table: TableDefinition) -> ScanRequest:
    """Scan: the index, filter and projection, Select, Limit, the segment, ExclusiveStartKey."""
    hk, rk = key_names(table)
    types = attribute_types(table)
    gsi = ranges.index(table, p)
    ex = Expressions(p, filter="FilterExpression", projection="ProjectionExpression")
    select = ranges.select(p, ex, gsi)
    key_names_out = [hk] + ([rk] if rk else [])
    local = ranges.local_read(gsi, key_names_out, select, ex)
    if gsi is not None:
        ikeys = ranges.index_keys(table, gsi)
        key_names_out = ikeys + [k for k in key_names_out if k not in ikeys]
    page_limit = limit(p)
    consistent = bool(p.get("ConsistentRead"))
    seg_lo, seg_hi = segment(p)
    after: str | None = None
    start_hash: int | None = None
    esk = p.get("ExclusiveStartKey")
    if esk is not None:
        if gsi is not None:
            after = ranges.index_start(esk, table, gsi, types)
            start_hash = int.from_bytes(base64.b64decode(after)[:8], "big")  # the entry's partition hash
        else:
            start = parse_key(esk, hk, rk, types, what="start")
            start_hash = partition_hash(start[hk])
            after = ranges.b64(encode_item_key(start[hk], start.get(rk) if rk else None))
        if not seg_lo <= start_hash < seg_hi:
            raise errors.validation("The provided starting key is invalid: Exclusive start key is not in the "
                                    "segment range")
    return ScanRequest(table=table, unit=ranges.read_unit(table, gsi), select=select, key_names=key_names_out,
                       local=local, limit=page_limit, consistent=consistent, segment_lo=seg_lo, segment_hi=seg_hi,
                       start_hash=start_hash, after=after, expressions=ex, capacity=capacity_mode(p))
