"""What Query and Scan share: the index read, Select, ExclusiveStartKey of an index, and the
storage node's arguments of a local secondary index read."""

from __future__ import annotations

import base64
from typing import Any

from dynamolog import errors
from dynamolog.catalog import GlobalIndex, IndexUnit, LocalIndex, TableDefinition, Unit, index_key_names, key_names
from dynamolog.keys import encode_item_key

from ..validate import raise_constraints
from .expressions import Expressions
from .keys import parse_key

#: Select's values, in the order DynamoDB's enum message lists them
SELECTS = ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def index(table: TableDefinition, p: dict[str, Any]) -> GlobalIndex | LocalIndex | None:
    """The secondary index a Query or Scan names, or None; checks what it allows (a local
    index: strongly consistent reads too)."""
    name = p.get("IndexName")
    if name is None:
        return None
    from ..gsi import find_index

    gsi = find_index(table, name)
    if isinstance(gsi, GlobalIndex) and gsi.status != "ACTIVE":
        raise errors.validation(f"Cannot read from backfilling global secondary index: {name}")
    if p.get("ConsistentRead") and not isinstance(gsi, LocalIndex):
        raise errors.validation("Consistent reads are not supported on global secondary indexes")
    return gsi


def index_keys(table: TableDefinition, gsi: GlobalIndex | LocalIndex) -> list[str]:
    """An index's key attributes: its partition key attribute(s), then its sort key attribute(s)."""
    if isinstance(gsi, GlobalIndex):
        return [*gsi.hash_keys, *gsi.range_keys]
    ih, ir = index_key_names(table, gsi)
    return [ih] + ([ir] if ir else [])


def index_start(esk: Any, table: TableDefinition, gsi: GlobalIndex | LocalIndex,
                types: dict[str, str]) -> str:
    """The index entry an ExclusiveStartKey of an index read names (index and table keys; of a
    multi-attribute key, every one of its attributes)."""
    from dynamolog.indexes import entry_key

    hk, rk = key_names(table)
    base = parse_key({k: v for k, v in esk.items() if k in (hk, rk)} if isinstance(esk, dict) else esk,
                     hk, rk, types, what="start")
    if isinstance(gsi, GlobalIndex):
        hash_names, range_names = list(gsi.hash_keys), list(gsi.range_keys)
    else:
        ih, ir = index_key_names(table, gsi)
        hash_names, range_names = [ih], [ir] if ir else []
    if not isinstance(esk, dict) or any(n not in esk for n in hash_names + range_names):
        raise errors.validation("The provided starting key is invalid: The provided key element does not match "
                                "the schema")
    base_key = encode_item_key(base[hk], base.get(rk) if rk else None)
    return b64(entry_key([esk[n] for n in hash_names], [esk[n] for n in range_names], base_key))


def select(p: dict[str, Any], ex: Expressions, gsi: GlobalIndex | LocalIndex | None = None) -> str:
    """Select, or its default (the projection's, the index's or all attributes)."""
    value = p.get("Select")
    if value is None:
        if ex.projection is not None:
            return "SPECIFIC_ATTRIBUTES"
        return "ALL_PROJECTED_ATTRIBUTES" if gsi is not None else "ALL_ATTRIBUTES"
    if value not in SELECTS:
        raise_constraints([f"Value '{value}' at 'select' failed to satisfy constraint: Member must satisfy enum "
                           f"value set: [{', '.join(SELECTS)}]"])
    if value == "ALL_PROJECTED_ATTRIBUTES" and gsi is None:
        raise errors.counted("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
    if value == "ALL_ATTRIBUTES" and isinstance(gsi, GlobalIndex) and gsi.projection_type != "ALL":
        raise errors.validation("One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
                                f"supported for global secondary index {gsi.index_name} because its projection "
                                "type is not ALL")
    if value == "SPECIFIC_ATTRIBUTES" and ex.projection is None:
        raise errors.counted("Must specify the AttributesToGet or ProjectionExpression when choosing to get "
                             "SPECIFIC_ATTRIBUTES")
    if value != "SPECIFIC_ATTRIBUTES" and ex.projection is not None:
        what = "AttributesToGet" if p.get("AttributesToGet") is not None else "ProjectionExpression"
        raise errors.counted(f"Cannot specify the {what} when choosing to get "
                             + ("only the Count" if value == "COUNT" else str(value)))
    return str(value)


def local_read(gsi: GlobalIndex | LocalIndex | None, table_keys: list[str], select: str,
               ex: Expressions) -> dict[str, Any]:
    """The storage node's arguments of a read of a local secondary index: its name, and when the
    entries do not hold every attribute the request needs, ``fetch`` (the table's key names: read
    each entry's item from the table) and ``keep`` (what ALL_PROJECTED_ATTRIBUTES returns then).
    A local index may return attributes it does not project, as DynamoDB (which fetches them
    from the table too)."""
    if not isinstance(gsi, LocalIndex):
        return {}
    out: dict[str, Any] = {"lsi": gsi.index_name}
    if gsi.projection_type == "ALL":
        return out
    if select in ("ALL_ATTRIBUTES", "SPECIFIC_ATTRIBUTES") or ex.filter is not None:
        out["fetch"] = table_keys
        if select == "ALL_PROJECTED_ATTRIBUTES":
            out["keep"] = sorted(set(table_keys) | {gsi.range_key} | set(gsi.non_key_attributes))
    return out


def read_unit(table: TableDefinition, gsi: GlobalIndex | LocalIndex | None) -> Unit:
    """What the read's partitions belong to: the table (and its local indexes) or a global index."""
    if gsi is None or isinstance(gsi, LocalIndex):
        return table
    return IndexUnit(gsi.index_id)
