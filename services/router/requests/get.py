"""GetItem: every rule of its request, in DynamoDB's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamolog.catalog import TableDefinition, attribute_types, key_names
from dynamolog.keys import encode_item_key

from .common import capacity_mode
from .expressions import Expressions
from .keys import parse_key


@dataclass(frozen=True)
class GetRequest:
    """A checked GetItem."""

    #: the table read (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: the item's encoded key (dynamolog/keys.py)
    item_key: bytes
    #: the projection (AttributesToGet translated), names included
    expressions: Expressions
    #: ConsistentRead: read at the leader
    consistent: bool
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str


def parse(p: dict[str, Any], table: TableDefinition) -> GetRequest:
    """GetItem: the key, the projection, ConsistentRead, ReturnConsumedCapacity."""
    hk, rk = key_names(table)
    key = parse_key(p.get("Key"), hk, rk, attribute_types(table))
    ex = Expressions(p, projection="ProjectionExpression")
    consistent = bool(p.get("ConsistentRead"))
    return GetRequest(table=table, item_key=encode_item_key(key[hk], key.get(rk) if rk else None), expressions=ex,
                      consistent=consistent, capacity=capacity_mode(p))
