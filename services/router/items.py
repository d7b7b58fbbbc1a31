"""Data plane: PutItem, GetItem, DeleteItem, UpdateItem, Query, Scan.

Each operation validates the whole request first (parameters, key schema, every expression
parsed and resolved, unused names and values rejected), then finds the partition and calls
its leader (writes, consistent reads) or any replica (eventually consistent reads).  The
storage node re-parses the expression strings from a memo, so only strings travel.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from dynamolog import errors, expr
from dynamolog.attrs import MAX_ITEM_BYTES, item_size
from dynamolog.catalog import attribute_types, key_names
from dynamolog.indexes import check_index_key_values, index_key_attributes
from dynamolog.keys import encode_item_key, hash_prefix, partition_hash
from dynamolog.routing import Routing

from . import legacy
from .tables import Tables
from .validate import (
    item_keys,
    parse_item,
    parse_key,
    parse_values,
    raise_constraints,
    require_table_name,
    return_values,
)

HASH_SPACE = 1 << 64
#: DynamoDB's page size: a Scan or Query page stops once it has read this many bytes of items
PAGE_BYTES = 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Expressions:
    """The expressions of one request, parsed and resolved once, unused names/values rejected."""

    def __init__(self, p: dict[str, Any], **kinds: str) -> None:
        if not any(k in p for k in _EXPRESSION_KEYS) and not any(param in p for param in kinds.values()):
            # the common case of a request without any expression: nothing to parse or check
            self.names = self.values = None
            self.texts: dict[str, Any] = {}
            self.condition = self.filter = self.key_condition = None
            self.update = None
            self.projection = None
            return
        names = p.get("ExpressionAttributeNames")
        values = parse_values(p.get("ExpressionAttributeValues"))
        texts = {kind: p.get(param) for kind, param in kinds.items() if p.get(param) is not None}
        if names is not None and not isinstance(names, dict):
            raise errors.serialization("Unexpected value type in payload")
        if any(not isinstance(t, str) for t in texts.values()) or (
                names is not None and any(not isinstance(v, str) for v in names.values())):
            raise errors.serialization("Unexpected value type in payload")  # found by tests/fuzz
        if names == {}:
            raise errors.validation("ExpressionAttributeNames must not be empty")
        if values == {}:
            raise errors.validation("ExpressionAttributeValues must not be empty")
        if not texts:
            if names is not None:
                raise errors.validation("ExpressionAttributeNames can only be specified when using expressions")
            if values is not None:
                raise errors.validation("ExpressionAttributeValues can only be specified when using expressions")
        texts, names, values = legacy.translate(p, kinds, texts, names, values)
        self.names = names
        self.values = values
        self.texts = texts
        r = expr.Resolver(names, values)
        self.condition = self.filter = self.key_condition = None
        self.update = None
        self.projection = None
        if "condition" in texts:
            self.condition = r.condition(expr.parse_condition(texts["condition"]), "ConditionExpression")
        if "key_condition" in texts:
            self.key_condition = r.condition(expr.parse_key_condition(texts["key_condition"]), "KeyConditionExpression")
        if "filter" in texts:
            self.filter = r.condition(expr.parse_condition(texts["filter"], "FilterExpression"), "FilterExpression")
        if "update" in texts:
            self.update = r.update(expr.parse_update(texts["update"]))
        if "projection" in texts:
            self.projection = r.projection(expr.parse_projection(texts["projection"]))
        r.finish()

    def wire(self) -> dict[str, Any]:
        """What the storage node needs to evaluate them again."""
        return {
            "cond": self.texts.get("condition"),
            "update": self.texts.get("update"),
            "filter": self.texts.get("filter"),
            "proj": self.texts.get("projection"),
            "names": self.names,
            "values": self.values,
        }


#: request parameters that make Expressions do any work (besides the expression parameters)
_EXPRESSION_KEYS = ("ExpressionAttributeNames", "ExpressionAttributeValues", "Expected", "AttributeUpdates",
                    "AttributesToGet", "KeyConditions", "QueryFilter", "ScanFilter", "ConditionalOperator")


def _wants_capacity(p: dict[str, Any]) -> bool:
    return p.get("ReturnConsumedCapacity") not in (None, "NONE")


def _capacity(p: dict[str, Any], table: str, units: float, kind: str = "Read") -> dict[str, Any]:
    """ConsumedCapacity as DynamoDB answers it: the units also under ``ReadCapacityUnits`` or
    ``WriteCapacityUnits``, and with INDEXES the table's own share under ``Table``."""
    mode = p.get("ReturnConsumedCapacity") or "NONE"
    if mode == "NONE":
        return {}
    if mode not in ("TOTAL", "INDEXES"):
        raise_constraints([f"Value '{mode}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must "
                           "satisfy enum value set: [INDEXES, TOTAL, NONE]"])
    cc: dict[str, Any] = {"TableName": table, "CapacityUnits": units, f"{kind}CapacityUnits": units}
    if mode == "INDEXES":
        cc["Table"] = {"CapacityUnits": units, f"{kind}CapacityUnits": units}
    return {"ConsumedCapacity": cc}


def _icm(p: dict[str, Any], table: dict[str, Any]) -> bool:
    """Whether ReturnItemCollectionMetrics asks for the item collection's size (only tables with
    local secondary indexes have item collections, as DynamoDB); refuses an unknown value."""
    v = p.get("ReturnItemCollectionMetrics")
    if v is not None and v not in ("SIZE", "NONE"):
        raise_constraints([f"Value '{v}' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must "
                           "satisfy enum value set: [SIZE, NONE]"])
    return v == "SIZE" and bool(table.get("local_indexes"))


def check_index_keys(table: dict[str, Any], item: dict[str, Any]) -> None:
    """Refuse an item whose secondary index key attributes have the wrong type or are empty, before
    anything is written (the storage node checks again, for UpdateItem's results)."""
    if table.get("global_indexes") or table.get("local_indexes"):
        check_index_key_values(item, index_key_attributes(table))


def item_collection_metrics(hash_name: str, hash_av: dict[str, Any], size: int) -> dict[str, Any]:
    """ItemCollectionMetrics of one write: the collection's key and its size estimate in GB, a
    1 GB wide range as DynamoDB gives it (the exact size is what the limit is checked against)."""
    low = float(math.floor(size / 1024**3))
    return {"ItemCollectionKey": {hash_name: hash_av}, "SizeEstimateRangeGB": [low, low + 1.0]}


def _check_capacity_mode(p: dict[str, Any]) -> bool:
    """Whether capacity is asked for; refuses an unknown ReturnConsumedCapacity before any I/O."""
    if _wants_capacity(p):
        _capacity(p, "", 0.0)
        return True
    return False


def _write_units(size: int) -> float:
    return float(max(1, math.ceil(size / 1024)))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)


def _limit(p: dict[str, Any]) -> int | None:
    limit = p.get("Limit")
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise errors.serialization("NUMBER_VALUE cannot be converted to Integer")
    if limit < 1:
        raise_constraints([f"Value '{limit}' at 'limit' failed to satisfy constraint: "
                           "Member must have value greater than or equal to 1"])
    return limit


def _select(p: dict[str, Any], ex: Expressions, gsi: dict[str, Any] | None = None) -> str:
    select = p.get("Select")
    allowed = ("ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT")
    if select is None:
        if ex.projection is not None:
            return "SPECIFIC_ATTRIBUTES"
        return "ALL_PROJECTED_ATTRIBUTES" if gsi is not None else "ALL_ATTRIBUTES"
    if select not in allowed:
        raise_constraints([f"Value '{select}' at 'select' failed to satisfy constraint: Member must satisfy enum "
                           f"value set: [{', '.join(allowed)}]"])
    if select == "ALL_PROJECTED_ATTRIBUTES" and gsi is None:
        raise errors.validation("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
    if select == "ALL_ATTRIBUTES" and gsi is not None and gsi["projection_type"] != "ALL" and not gsi.get("local"):
        raise errors.validation("One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
                                f"supported for global secondary index {gsi['index_name']} because its projection "
                                "type is not ALL")
    if select == "SPECIFIC_ATTRIBUTES" and ex.projection is None:
        raise errors.validation("SPECIFIC_ATTRIBUTES requires either ProjectionExpression or AttributesToGet")
    if select != "SPECIFIC_ATTRIBUTES" and ex.projection is not None:
        raise errors.validation("Cannot specify the ProjectionExpression when choosing to get " + str(select))
    return str(select)


class Items:
    """The data-plane operations of a router."""

    def __init__(self, tables: Tables, routing: Routing) -> None:
        self.tables = tables
        self.routing = routing

    def _index(self, table: dict[str, Any], p: dict[str, Any]) -> dict[str, Any] | None:
        """The secondary index a Query or Scan names, or None; checks what it allows (a local
        index: strongly consistent reads too)."""
        name = p.get("IndexName")
        if name is None:
            return None
        from .gsi import find_index

        gsi = find_index(table, name)
        if gsi["status"] != "ACTIVE":
            raise errors.validation(f"Cannot read from backfilling global secondary index: {name}")
        if p.get("ConsistentRead") and not gsi.get("local"):
            raise errors.validation("Consistent reads are not supported on global secondary indexes")
        return gsi

    def _index_start(self, esk: Any, table: dict[str, Any], gsi: dict[str, Any], types: dict[str, str]) -> str:
        """The index entry an ExclusiveStartKey of an index read names (index and table keys)."""
        from dynamolog.indexes import entry_key

        hk, rk = key_names(table)
        base = parse_key({k: v for k, v in esk.items() if k in (hk, rk)} if isinstance(esk, dict) else esk,
                         hk, rk, types, what="start")
        ih, ir = gsi["hash_key"], gsi.get("range_key")
        if not isinstance(esk, dict) or ih not in esk or (ir and ir not in esk):
            raise errors.validation("The provided starting key is invalid: The provided key element does not match "
                                    "the schema")
        base_key = encode_item_key(base[hk], base.get(rk) if rk else None)
        return _b64(entry_key(esk[ih], esk.get(ir) if ir else None, base_key))

    async def _table(self, p: dict[str, Any]) -> tuple[dict[str, Any], str, str | None, dict[str, str]]:
        name = require_table_name(p)
        table = await self.tables.get_active(name)
        hk, rk = key_names(table)
        return table, hk, rk, attribute_types(table)

    async def _write(self, table: dict[str, Any], key_attrs: dict[str, Any], hash_av: dict[str, Any],
                     range_av: dict[str, Any] | None, **args: Any) -> dict[str, Any]:
        item_key = encode_item_key(hash_av, range_av)
        part = self.routing.partition_for_item_key(table, item_key)
        res: dict[str, Any] = await self.routing.call(
            table, part, "write", leader=True, idempotent=False, key=_b64(item_key), keyattrs=key_attrs, **args
        )
        return res

    async def put_item(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        item = parse_item(p.get("Item"))
        hash_av, range_av = item_keys(item, hk, rk, types)
        check_index_keys(table, item)
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise errors.validation("Item size has exceeded the maximum allowed size")
        rv = return_values(p, ("NONE", "ALL_OLD"))
        ex = Expressions(p, condition="ConditionExpression")
        key_attrs = {hk: hash_av} | ({rk: range_av} if rk else {})
        cap = _check_capacity_mode(p)
        icm = _icm(p, table)
        res = await self._write(table, key_attrs, hash_av, range_av, kind="put", item=item, rv=rv,
                                rvf=p.get("ReturnValuesOnConditionCheckFailure"), cap=cap, icm=icm, **ex.wire())
        if "coll" in res:
            res["ItemCollectionMetrics"] = item_collection_metrics(hk, hash_av, res.pop("coll"))
        if cap:  # the larger of the old and the new item (the storage node knows the old one)
            size = max(size, res.pop("size", 0))
            res.update(_capacity(p, table["table_name"], _write_units(size), "Write"))
        return res

    async def delete_item(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        key = parse_key(p.get("Key"), hk, rk, types)
        rv = return_values(p, ("NONE", "ALL_OLD"))
        ex = Expressions(p, condition="ConditionExpression")
        cap = _check_capacity_mode(p)
        icm = _icm(p, table)
        res = await self._write(table, key, key[hk], key.get(rk) if rk else None, kind="delete", rv=rv,
                                rvf=p.get("ReturnValuesOnConditionCheckFailure"), cap=cap, icm=icm, **ex.wire())
        if "coll" in res:
            res["ItemCollectionMetrics"] = item_collection_metrics(hk, key[hk], res.pop("coll"))
        if cap:  # the size of the deleted item
            res.update(_capacity(p, table["table_name"], _write_units(res.pop("size", 0)), "Write"))
        return res

    async def update_item(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        key = parse_key(p.get("Key"), hk, rk, types)
        rv = return_values(p, ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
        ex = Expressions(p, condition="ConditionExpression", update="UpdateExpression")
        if ex.update is not None:
            for name in expr.updated_paths(ex.update):
                if name in key:
                    raise errors.validation(
                        f"One or more parameter values were invalid: Cannot update attribute {name}. "
                        "This attribute is part of the key"
                    )
        cap = _check_capacity_mode(p)
        icm = _icm(p, table)
        res = await self._write(table, key, key[hk], key.get(rk) if rk else None, kind="update", rv=rv,
                                rvf=p.get("ReturnValuesOnConditionCheckFailure"), cap=cap, icm=icm, **ex.wire())
        if "coll" in res:
            res["ItemCollectionMetrics"] = item_collection_metrics(hk, key[hk], res.pop("coll"))
        if cap:  # the larger of the old and the new item
            res.update(_capacity(p, table["table_name"], _write_units(res.pop("size", 0)), "Write"))
        return res

    async def get_item(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        key = parse_key(p.get("Key"), hk, rk, types)
        ex = Expressions(p, projection="ProjectionExpression")
        consistent = bool(p.get("ConsistentRead"))
        item_key = encode_item_key(key[hk], key.get(rk) if rk else None)
        part = self.routing.partition_for_item_key(table, item_key)
        cap = _check_capacity_mode(p)
        res: dict[str, Any] = await self.routing.call(
            table, part, "get", leader=consistent, consistent=consistent,
            key=_b64(item_key), proj=ex.texts.get("projection"), names=ex.names, cap=cap,
        )
        if cap:  # charged on the whole item read, whatever the projection returns
            size = res.pop("size", None)
            if size is None:
                size = item_size(res["Item"]) if "Item" in res else 0
            res.update(_capacity(p, table["table_name"], _read_units(size, consistent)))
        return res

    async def query(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        gsi = self._index(table, p)
        table_keys = [hk] + ([rk] if rk else [])
        if gsi is not None:  # a Query of a secondary index: its keys take the table's place
            hk, rk = gsi["hash_key"], gsi.get("range_key")
        if p.get("KeyConditionExpression") is None and p.get("KeyConditions") is None:
            raise errors.validation("Either the KeyConditions or KeyConditionExpression parameter must be specified "
                                    "in the request.")
        ex = Expressions(p, key_condition="KeyConditionExpression", filter="FilterExpression",
                         projection="ProjectionExpression")
        assert ex.key_condition is not None
        hash_av, range_cond = expr.key_condition_parts(ex.key_condition, hk, rk)
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
        select = _select(p, ex, gsi)
        limit = _limit(p)
        consistent = bool(p.get("ConsistentRead"))
        after = None
        if p.get("ExclusiveStartKey") is not None:
            if gsi is not None:
                after = self._index_start(p["ExclusiveStartKey"], table, gsi, types)
                if p["ExclusiveStartKey"].get(hk) != hash_av:
                    raise errors.validation("The provided starting key is invalid: The provided starting key does "
                                            "not match the range key predicate")
            else:
                esk = parse_key(p["ExclusiveStartKey"], hk, rk, types, what="start")
                if esk[hk] != hash_av:
                    raise errors.validation("The provided starting key is invalid: The provided starting key does "
                                            "not match the range key predicate")
                after = _b64(encode_item_key(esk[hk], esk.get(rk) if rk else None))
        local = gsi is not None and gsi.get("local")
        unit = table if gsi is None or local else {"table_id": gsi["index_id"]}
        part = self.routing.partition_for(unit, hash_av)
        key_names_out = [hk] + ([rk] if rk else [])
        if gsi is not None:
            key_names_out += [k for k in table_keys if k not in key_names_out]
        res = await self.routing.call(
            unit, part, "range", leader=consistent, consistent=consistent, prefix=_b64(hash_prefix(hash_av)),
            range=list(range_cond) if range_cond else None, forward=p.get("ScanIndexForward", True) is not False,
            limit=limit, after=after, select=select, key_names=key_names_out, index=gsi is not None and not local,
            cap=_check_capacity_mode(p), **_local_read(gsi, table_keys, select, ex), **ex.wire(),
        )
        return self._page(p, table, res, consistent)

    async def scan(self, p: dict[str, Any]) -> dict[str, Any]:
        table, hk, rk, types = await self._table(p)
        gsi = self._index(table, p)
        ex = Expressions(p, filter="FilterExpression", projection="ProjectionExpression")
        select = _select(p, ex, gsi)
        key_names_out = [hk] + ([rk] if rk else [])
        unit = table
        local_args = _local_read(gsi, key_names_out, select, ex)
        if gsi is not None:
            if not gsi.get("local"):
                unit = {"table_id": gsi["index_id"]}
            key_names_out = [gsi["hash_key"]] + ([gsi["range_key"]] if gsi.get("range_key") else []) + [
                k for k in key_names_out if k not in (gsi["hash_key"], gsi.get("range_key"))]
        limit = _limit(p)
        consistent = bool(p.get("ConsistentRead"))
        seg_lo, seg_hi = _segment(p)
        parts = self.routing.partitions(unit)
        after: str | None = None
        index = 0
        while index < len(parts) and parts[index]["hash_end"] < seg_lo:
            index += 1
        if p.get("ExclusiveStartKey") is not None:
            if gsi is not None:
                after = self._index_start(p["ExclusiveStartKey"], table, gsi, types)
                start_hash: dict[str, Any] = p["ExclusiveStartKey"][gsi["hash_key"]]
            else:
                esk = parse_key(p["ExclusiveStartKey"], hk, rk, types, what="start")
                start_hash = esk[hk]
                after = _b64(encode_item_key(esk[hk], esk.get(rk) if rk else None))
            h = partition_hash(start_hash)
            if not seg_lo <= h < seg_hi:
                raise errors.validation("The provided starting key is invalid: Exclusive start key is not in the "
                                        "segment range")
            index = self.routing.partition_index_for(unit, start_hash)
        cap = _check_capacity_mode(p)
        total: dict[str, Any] = {"Count": 0, "ScannedCount": 0, "bytes": 0, "size": 0}
        if select != "COUNT":
            total["Items"] = []
        remaining = limit
        while index < len(parts) and parts[index]["hash_start"] < seg_hi:
            part = parts[index]
            lo = max(seg_lo, part["hash_start"])
            hi = min(seg_hi, part["hash_end"] + 1)
            res = await self.routing.call(
                unit, part, "range", leader=consistent, consistent=consistent,
                lo=_b64(lo.to_bytes(8, "big")), hi=_b64(hi.to_bytes(8, "big")) if hi < HASH_SPACE else None,
                limit=remaining, after=after, select=select, key_names=key_names_out,
                bytes_max=PAGE_BYTES - total["bytes"], always_last=True, cap=cap, **local_args, **ex.wire(),
            )
            total["Count"] += res["Count"]
            total["size"] += res.get("size", res["bytes"])
            total["ScannedCount"] += res["ScannedCount"]
            total["bytes"] += res["bytes"]
            if "Items" in total:
                total["Items"].extend(res.get("Items", []))
            index += 1
            after = None
            more = index < len(parts) and parts[index]["hash_start"] < seg_hi
            # the page ends inside this partition (Limit or 1 MB reached there), or exactly at its
            # end with the 1 MB used up while partitions remain: resume after the last key read
            if "last" in res and (res["cut"] or (more and total["bytes"] >= PAGE_BYTES)):
                total["last"], total["last_item_keys"] = res["last"], res["last_item_keys"]
                break
            if remaining is not None:
                remaining -= res["ScannedCount"]
        return self._page(p, table, total, consistent)

    def _page(self, p: dict[str, Any], table: dict[str, Any], res: dict[str, Any], consistent: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "Items" in res:
            out["Items"] = res["Items"]
        out["Count"] = res["Count"]
        out["ScannedCount"] = res["ScannedCount"]
        if "last" in res:
            out["LastEvaluatedKey"] = res["last_item_keys"]
        if _wants_capacity(p):  # the summed size of the items read (not returned), rounded up to 4 KB
            size = res.get("size", res.get("bytes", 0))
            out.update(_capacity(p, table["table_name"], _read_units(size, consistent)))
        return out


def _local_read(index: dict[str, Any] | None, table_keys: list[str], select: str, ex: Expressions) -> dict[str, Any]:
    """The storage node's arguments of a read of a local secondary index: its name, and when the
    entries do not hold every attribute the request needs, ``fetch`` (the table's key names: read
    each entry's item from the table) and ``keep`` (what ALL_PROJECTED_ATTRIBUTES returns then).
    A local index may return attributes it does not project, as DynamoDB (which fetches them
    from the table too)."""
    if index is None or not index.get("local"):
        return {}
    out: dict[str, Any] = {"lsi": index["index_name"]}
    if index["projection_type"] == "ALL":
        return out
    if select in ("ALL_ATTRIBUTES", "SPECIFIC_ATTRIBUTES") or ex.filter is not None:
        out["fetch"] = table_keys
        if select == "ALL_PROJECTED_ATTRIBUTES":
            out["keep"] = sorted(set(table_keys) | {index["range_key"]} | set(index.get("non_key_attributes") or []))
    return out


def _segment(p: dict[str, Any]) -> tuple[int, int]:
    seg, total = p.get("Segment"), p.get("TotalSegments")
    if seg is None and total is None:
        return 0, HASH_SPACE
    if seg is None or total is None:
        missing = "Segment" if seg is None else "TotalSegments"
        other = "TotalSegments" if seg is None else "Segment"
        raise errors.validation(f"The {missing} parameter is required but was not present in the request when "
                                f"parameter {other} is present")
    problems = []
    if not isinstance(total, int) or not 1 <= total <= 1000000:
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
