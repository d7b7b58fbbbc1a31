"""Query: every rule of its request, in DynamoDB's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamolog import errors, expr
from dynamolog.catalog import GlobalIndex, TableDefinition, Unit, attribute_types, index_key_names, key_names
from dynamolog.indexes import composite_hash, composite_prefix, sort_prefix
from dynamolog.keys import encode_item_key, hash_prefix, partition_hash

from . import ranges
from .common import capacity_mode, limit
from .expressions import Expressions
from .keys import parse_key


@dataclass(frozen=True)
class QueryRequest:
    """A checked Query."""

    #: the table queried (its definition, as services/router/tables.py answers it)
    table: TableDefinition
    #: what the partitions read belong to: the table, or a global index's IndexUnit
    unit: Unit
    #: whether a global secondary index is read (its own partitions)
    global_index: bool
    #: the hash key's value of the key condition
    hash_value: dict[str, Any]
    #: the range key condition as expr.key_condition_parts gives it (operator, values...), or None
    range_condition: list[Any] | None
    #: the key prefix of the entries read: the hash key value's (and, for a global index with a
    #: multi-attribute key, every partition key value's and the leading sort key equalities')
    prefix: bytes
    #: the partition hash of the partition key value(s): where the read goes
    route_hash: int
    #: ScanIndexForward
    forward: bool
    #: Limit, or None
    limit: int | None
    #: where the page starts (the encoded ExclusiveStartKey, base64), or None
    after: str | None
    #: Select, defaults applied
    select: str
    #: the key attribute names a LastEvaluatedKey holds (index keys first)
    key_names: list[str]
    #: ConsistentRead
    consistent: bool
    #: the storage node's arguments of a local secondary index read (ranges.local_read)
    local: dict[str, Any]
    #: the key condition, filter and projection, legacy parameters translated
    expressions: Expressions
    #: ReturnConsumedCapacity: NONE, TOTAL or INDEXES
    capacity: str


def _check_key_values(hash_av: dict[str, Any], range_cond: tuple[Any, ...] | None, hk: str, rk: str | None,
                      types: dict[str, str]) -> None:
    for v in [hash_av] + (list(range_cond[1:]) if range_cond else []):
        want = types[hk] if v is hash_av else types[rk or hk]
        if next(iter(v)) != want:
            raise errors.validation("One or more parameter values were invalid: Condition parameter type does "
                                    "not match schema type")
        if v[want] == "":
            raise errors.validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                f"contain an empty {'string' if want == 'S' else 'binary'} value. "
                f"Key: {hk if v is hash_av else rk}")


def _check_multi_values(values: list[tuple[str, Any]], types: dict[str, str]) -> None:
    """The values of a multi-attribute key condition: (attribute, value) pairs."""
    for name, v in values:
        want = types[name]
        if next(iter(v)) != want:
            raise errors.validation("One or more parameter values were invalid: Condition parameter type does "
                                    "not match schema type")
        if v[want] == "":
            raise errors.validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                f"contain an empty {'string' if want == 'S' else 'binary'} value. Key: {name}")


def _multi(p: dict[str, Any], table: TableDefinition, gsi: GlobalIndex, types: dict[str, str],
           table_keys: list[str], key_filters: bool) -> QueryRequest:
    """Query of a global index with a multi-attribute key (Developer Guide, "Multi-attribute keys
    pattern"): equality on every partition key attribute, sort key conditions left to right."""
    if p.get("KeyConditionExpression") is None and p.get("KeyConditions") is None:
        raise errors.validation("Either the KeyConditions or KeyConditionExpression parameter must be specified "
                                "in the request.")
    ex = Expressions(p, key_condition="KeyConditionExpression", filter="FilterExpression",
                     projection="ProjectionExpression")
    assert ex.key_condition is not None
    hash_values, eq_values, last = expr.multi_key_condition_parts(ex.key_condition, gsi.hash_keys, gsi.range_keys)
    given = list(zip(gsi.hash_keys, hash_values)) + list(zip(gsi.range_keys, eq_values))
    if last is not None:
        given += [(last[0], v) for v in last[1][1:]]
    _check_multi_values(given, types)
    index_keys = [*gsi.hash_keys, *gsi.range_keys]
    if not key_filters:
        _check_filter_keys(p, ex, index_keys)
    select = ranges.select(p, ex, gsi)
    after = None
    esk = p.get("ExclusiveStartKey")
    if esk is not None:
        after = ranges.index_start(esk, table, gsi, types)
        if any(esk.get(n) != v for n, v in zip(gsi.hash_keys, hash_values)):
            raise errors.validation("The provided starting key is invalid: The provided starting key does "
                                    "not match the range key predicate")
    return QueryRequest(
        table=table, unit=ranges.read_unit(table, gsi), global_index=True, hash_value=hash_values[0],
        range_condition=list(last[1]) if last is not None else None,
        prefix=composite_prefix(hash_values) + sort_prefix(eq_values), route_hash=composite_hash(hash_values),
        forward=p.get("ScanIndexForward", True) is not False, limit=limit(p), after=after, select=select,
        key_names=index_keys + [k for k in table_keys if k not in index_keys], consistent=False, local={},
        expressions=ex, capacity=capacity_mode(p))


def _check_filter_keys(p: dict[str, Any], ex: Expressions, *keys: Any) -> None:
    """A Query's filter may not name a key attribute of what it reads (Developer Guide, "Filter
    expressions for the Query operation": those belong in the key condition)."""
    if ex.filter is None:
        return
    names = {k for group in keys for k in ([group] if isinstance(group, str) or group is None else group)}
    for path in expr.expression_paths(ex.filter):
        top = path.elements[0] if path.elements else None
        if isinstance(top, str) and top in names:
            what = "Filter Expression" if p.get("FilterExpression") is not None else "QueryFilter"
            raise errors.validation(f"{what} can only contain non-primary key attributes: Primary key attribute: "
                                    f"{top}")


def parse(p: dict[str, Any], table: TableDefinition, *, key_filters: bool = False) -> QueryRequest:
    """Query: the index, the key condition against its key schema, Select, Limit, ExclusiveStartKey
    (``key_filters``: a filter may name key attributes, for PartiQL's translated statements)."""
    hk, rk = key_names(table)
    types = attribute_types(table)
    gsi = ranges.index(table, p)
    table_keys = [hk] + ([rk] if rk else [])
    if isinstance(gsi, GlobalIndex) and (gsi.more_hash_keys or gsi.more_range_keys):
        return _multi(p, table, gsi, types, table_keys, key_filters)
    if gsi is not None:  # a Query of a secondary index: its keys take the table's place
        hk, rk = index_key_names(table, gsi)
    if p.get("KeyConditionExpression") is None and p.get("KeyConditions") is None:
        raise errors.validation("Either the KeyConditions or KeyConditionExpression parameter must be specified "
                                "in the request.")
    ex = Expressions(p, key_condition="KeyConditionExpression", filter="FilterExpression",
                     projection="ProjectionExpression")
    assert ex.key_condition is not None
    hash_av, range_cond = expr.key_condition_parts(ex.key_condition, hk, rk)
    _check_key_values(hash_av, range_cond, hk, rk, types)
    if not key_filters:
        _check_filter_keys(p, ex, hk, rk)
    select = ranges.select(p, ex, gsi)
    page_limit = limit(p)
    consistent = bool(p.get("ConsistentRead"))
    after = None
    esk = p.get("ExclusiveStartKey")
    if esk is not None:
        if gsi is not None:
            after = ranges.index_start(esk, table, gsi, types)
            if esk.get(hk) != hash_av:
                raise errors.validation("The provided starting key is invalid: The provided starting key does "
                                        "not match the range key predicate")
        else:
            start = parse_key(esk, hk, rk, types, what="start")
            if start[hk] != hash_av:
                raise errors.validation("The provided starting key is invalid: The provided starting key does "
                                        "not match the range key predicate")
            after = ranges.b64(encode_item_key(start[hk], start.get(rk) if rk else None))
    key_names_out = [hk] + ([rk] if rk else [])
    if gsi is not None:
        key_names_out += [k for k in table_keys if k not in key_names_out]
    return QueryRequest(
        table=table, unit=ranges.read_unit(table, gsi), global_index=isinstance(gsi, GlobalIndex),
        hash_value=hash_av, range_condition=list(range_cond) if range_cond else None,
        prefix=hash_prefix(hash_av), route_hash=partition_hash(hash_av),
        forward=p.get("ScanIndexForward", True) is not False, limit=page_limit, after=after, select=select,
        key_names=key_names_out, consistent=consistent, local=ranges.local_read(gsi, table_keys, select, ex),
        expressions=ex, capacity=capacity_mode(p))
