"""Secondary indexes in the control plane: validation, description, UpdateTable changes.

Local secondary indexes (:func:`parse_local_indexes`) are fixed at CreateTable and kept by the
storage nodes with the items (:class:`dynamolog.indexes.LocalIndexes`).

An index is a set of partitions of its own (internal table id ``<table_id>#<index name>``), with
its own logs, replicas and leaders like a table's; the indexer (``services/indexer``) feeds them
from the table's logs, and Query / Scan with ``IndexName`` read them (eventually consistent
only, as DynamoDB).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dynamolog import errors
from dynamolog.catalog import AttributeDefinition, GlobalIndex, KeySchemaElement, LocalIndex, TableDefinition
from dynamolog.throughput import keep_warm

from . import throughput, warm
from .validate import check_enum, raise_constraints

INDEXES_MAX = 20
NON_KEY_ATTRIBUTES_MAX = 100
_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")


def _index_name_problems(problems: list[str], name: Any, field: str) -> None:
    if name is None:
        problems.append(f"Value null at '{field}' failed to satisfy constraint: Member must not be null")
    elif not isinstance(name, str):
        raise errors.serialization("Unexpected value type in payload")
    else:
        if not 3 <= len(name) <= 255:
            problems.append(f"Value '{name}' at '{field}' failed to satisfy constraint: Member must have length "
                            + ("greater than or equal to 3" if len(name) < 3 else "less than or equal to 255"))
        if not _NAME.match(name):
            problems.append(f"Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular "
                            "expression pattern: [a-zA-Z0-9_.-]+")


#: a global index's key may have up to this many partition key and this many sort key attributes
KEY_ATTRIBUTES_MAX = 4


def _key_shape(name: str, types: list[Any], names: list[Any], multi: bool) -> None:
    """The order and counts of an index's KeySchema elements: one HASH and at most one RANGE;
    a global index (``multi``): up to four HASH elements, then up to four RANGE elements."""
    if types[0] != "HASH":
        raise errors.validation(f"Invalid KeySchema: The first KeySchemaElement is not a HASH key type for index: "
                                f"{name}")
    if not multi:
        if len(types) == 2 and types[1] != "RANGE":
            raise errors.validation("Invalid KeySchema: Too many hash keys")
        return
    n_hash = next((i for i, t in enumerate(types) if t != "HASH"), len(types))
    if "HASH" in types[n_hash:]:
        raise errors.validation("Invalid KeySchema: Every HASH KeySchemaElement must come before the RANGE "
                                f"KeySchemaElements for index: {name}")
    if n_hash > KEY_ATTRIBUTES_MAX:
        raise errors.validation("Invalid KeySchema: Too many hash keys")
    if len(types) - n_hash > KEY_ATTRIBUTES_MAX:
        raise errors.validation("Invalid KeySchema: Too many range keys")


def parse_index(spec: Any, field: str, defined: dict[str, str], billing_mode: str, table_id: str,
                partitions: Sequence[str], *, status: str) -> GlobalIndex:
    """One GlobalSecondaryIndex of CreateTable (or UpdateTable's Create) as a catalog record (a
    local index's spec too: then one HASH and at most one RANGE element)."""
    multi = not field.startswith("local")
    most = 2 * KEY_ATTRIBUTES_MAX if multi else 2
    if not isinstance(spec, dict):
        raise errors.serialization("Unexpected value type in payload")
    problems: list[str] = []
    _index_name_problems(problems, spec.get("IndexName"), f"{field}.indexName")
    ks = spec.get("KeySchema")
    proj = spec.get("Projection")
    if ks is None:
        problems.append(f"Value null at '{field}.keySchema' failed to satisfy constraint: Member must not be null")
    elif not isinstance(ks, list):
        raise errors.serialization("Unexpected value type in payload")
    elif not 1 <= len(ks) <= most:
        problems.append(f"Value '{ks}' at '{field}.keySchema' failed to satisfy constraint: Member must have length "
                        + ("greater than or equal to 1" if not ks else f"less than or equal to {most}"))
    else:
        for i, k in enumerate(ks):
            if not isinstance(k, dict):
                raise errors.serialization("Unexpected value type in payload")
            check_enum(problems, k, "KeyType", f"{field}.keySchema.{i + 1}.member.keyType", ("HASH", "RANGE"))
    if proj is None:
        problems.append(f"Value null at '{field}.projection' failed to satisfy constraint: Member must not be null")
    elif not isinstance(proj, dict):
        raise errors.serialization("Unexpected value type in payload")
    else:
        check_enum(problems, proj, "ProjectionType", f"{field}.projection.projectionType",
                   ("ALL", "KEYS_ONLY", "INCLUDE"))
    raise_constraints(problems)
    assert isinstance(ks, list) and isinstance(proj, dict)
    name = str(spec["IndexName"])
    types = [k.get("KeyType") for k in ks]
    names = [k.get("AttributeName") for k in ks]
    _key_shape(name, types, names, multi)
    if not all(isinstance(n, str) for n in names):
        raise errors.validation("One or more parameter values were invalid: Invalid KeySchema")
    if len(names) == 2 and names[0] == names[1]:
        raise errors.validation("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise errors.validation("One or more parameter values were invalid: Duplicate attribute in KeySchema: "
                                f"{dup} for index: {name}")
    hash_names = [str(n) for n, t in zip(names, types) if t == "HASH"]
    range_names = [str(n) for n, t in zip(names, types) if t == "RANGE"]
    missing = [n for n in names if n not in defined]
    if missing:
        raise errors.validation(
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            f"AttributeDefinitions. Keys: [{', '.join(names)}], AttributeDefinitions: [{', '.join(defined)}]")
    ptype = proj.get("ProjectionType") or "ALL"
    nka = proj.get("NonKeyAttributes")
    if ptype == "INCLUDE":
        if not nka:
            raise errors.validation("One or more parameter values were invalid: NonKeyAttributes must be specified "
                                    "when ProjectionType is INCLUDE")
        if not isinstance(nka, list) or not all(isinstance(a, str) for a in nka):
            raise errors.serialization("Unexpected value type in payload")
        if len(set(nka)) != len(nka):
            raise errors.validation("One or more parameter values were invalid: Duplicate NonKeyAttributes")
    elif nka is not None:
        raise errors.validation("One or more parameter values were invalid: NonKeyAttributes cannot be specified "
                                f"when ProjectionType is {ptype}")
    pt = spec.get("ProvisionedThroughput")
    rcu = wcu = 0
    if billing_mode == "PROVISIONED":
        if not isinstance(pt, dict) or pt.get("ReadCapacityUnits") is None or pt.get("WriteCapacityUnits") is None:
            raise errors.validation("One or more parameter values were invalid: ProvisionedThroughput must be "
                                    f"specified for index: {name}")
        rcu, wcu = pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]
        if not all(isinstance(v, int) and v >= 1 for v in (rcu, wcu)):
            raise errors.validation("One or more parameter values were invalid: ProvisionedThroughput values must be "
                                    f"at least 1 for index: {name}")
    elif pt is not None:
        raise errors.validation("One or more parameter values were invalid: ProvisionedThroughput should not be "
                                f"specified for index: {name} when BillingMode is PAY_PER_REQUEST")
    short = table_id.replace("-", "")[:12]
    slug = _slug(name)
    on_demand = throughput.parse(spec.get("OnDemandThroughput"), billing_mode, update=False)
    warmed = warm.parse(spec.get("WarmThroughput"), index=name)
    return warm.at_creation(throughput.apply(GlobalIndex(
        index_name=name,
        index_id=f"{table_id}#{name}",
        hash_key=hash_names[0],
        range_key=range_names[0] if range_names else None,
        more_hash_keys=tuple(hash_names[1:]),
        more_range_keys=tuple(range_names[1:]),
        projection_type=str(ptype),
        non_key_attributes=tuple(nka or ()),
        status=status,
        partition_ids=tuple(f"{short}-{slug}-{i}" for i in range(len(partitions))),
        read_capacity_units=rcu,
        write_capacity_units=wcu,
        created_at_ms=int(time.time() * 1000),
    ), on_demand), warmed, billing_mode, index=name)


def _slug(name: str) -> str:
    """A short, topic-safe stand-in for one creation of an index inside its partition ids.  An
    index deleted and created again under the same name gets new partitions (new log topics, new
    replicas): nothing of the old one's partitions, still being dropped, can be taken for them."""
    return "g" + hashlib.sha1(f"{name}/{uuid.uuid4().hex}".encode()).hexdigest()[:8]


def parse_global_indexes(p: dict[str, Any], defined: dict[str, str], billing_mode: str, table_id: str,
                         partitions: Sequence[str]) -> list[GlobalIndex]:
    specs = p.get("GlobalSecondaryIndexes")
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise errors.serialization("Unexpected value type in payload")
    if not specs:
        raise errors.validation("One or more parameter values were invalid: List of GlobalSecondaryIndexes is empty")
    if len(specs) > INDEXES_MAX:
        raise errors.validation("One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the "
                                f"per-table limit of {INDEXES_MAX}")
    out = [parse_index(s, f"globalSecondaryIndexes.{i + 1}.member", defined, billing_mode, table_id, partitions,
                       status="ACTIVE") for i, s in enumerate(specs)]
    names = [i.index_name for i in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise errors.validation(f"One or more parameter values were invalid: Duplicate index name: {dup}")
    if sum(len(i.non_key_attributes) for i in out) > NON_KEY_ATTRIBUTES_MAX:
        raise errors.validation("One or more parameter values were invalid: The number of attributes in key schemas "
                                "and non-key attributes across all secondary indexes must not exceed 100")
    return out


LOCAL_INDEXES_MAX = 5


def parse_local_indexes(p: dict[str, Any], defined: dict[str, str], key_schema: Sequence[KeySchemaElement],
                        table_id: str, global_indexes: Sequence[GlobalIndex]) -> list[LocalIndex]:
    """CreateTable's LocalSecondaryIndexes as catalog records (checked against the table's key
    schema and its global indexes: names are unique across both, NonKeyAttributes limited)."""
    specs = p.get("LocalSecondaryIndexes")
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise errors.serialization("Unexpected value type in payload")
    if not specs:
        raise errors.validation("One or more parameter values were invalid: List of LocalSecondaryIndexes is empty")
    hk = next(k.attribute_name for k in key_schema if k.key_type == "HASH")
    if len(key_schema) < 2:
        raise errors.validation("One or more parameter values were invalid: Table KeySchema does not have a range "
                                "key, which is required when specifying a LocalSecondaryIndex")
    if len(specs) > LOCAL_INDEXES_MAX:
        raise errors.validation("One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds "
                                f"per-table limit of {LOCAL_INDEXES_MAX}")
    out: list[LocalIndex] = []
    for n, spec in enumerate(specs, 1):
        i = parse_index(spec, f"localSecondaryIndexes.{n}.member", defined, "PAY_PER_REQUEST", table_id, [],
                        status="ACTIVE")
        if i.hash_key != hk:
            raise errors.validation("One or more parameter values were invalid: Index KeySchema does not have the "
                                    f"same leading hash key as table KeySchema for index: {i.index_name}. index "
                                    f"hash key: {i.hash_key}, table hash key: {hk}")
        if i.range_key is None:
            raise errors.validation("One or more parameter values were invalid: Index KeySchema does not have a "
                                    f"range key for index: {i.index_name}")
        out.append(LocalIndex(index_name=i.index_name, range_key=i.range_key, projection_type=i.projection_type,
                              non_key_attributes=i.non_key_attributes))
    names = [i.index_name for i in out] + [g.index_name for g in global_indexes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise errors.validation(f"One or more parameter values were invalid: Duplicate index name: {dup}")
    if (sum(len(i.non_key_attributes) for i in out)
            + sum(len(g.non_key_attributes) for g in global_indexes)) > NON_KEY_ATTRIBUTES_MAX:
        raise errors.validation("One or more parameter values were invalid: The number of attributes in key schemas "
                                "and non-key attributes across all secondary indexes must not exceed 100")
    return out


def describe_local_indexes(table: TableDefinition, table_arn: str) -> list[dict[str, Any]]:
    out = []
    hk = table.key_names()[0]
    for i in table.local_indexes:
        proj: dict[str, Any] = {"ProjectionType": i.projection_type}
        if i.projection_type == "INCLUDE":
            proj["NonKeyAttributes"] = list(i.non_key_attributes)
        out.append({
            "IndexName": i.index_name,
            "KeySchema": [{"AttributeName": hk, "KeyType": "HASH"},
                          {"AttributeName": i.range_key, "KeyType": "RANGE"}],
            "Projection": proj, "IndexSizeBytes": 0, "ItemCount": 0,
            "IndexArn": f"{table_arn}/index/{i.index_name}",
        })
    return out


def index_key_names(indexes: Sequence[GlobalIndex]) -> list[str]:
    out: list[str] = []
    for i in indexes:
        out += [*i.hash_keys, *i.range_keys]
    return out


def describe_indexes(table: TableDefinition, table_arn: str) -> list[dict[str, Any]]:
    out = []
    provisioned = table.billing_mode == "PROVISIONED"
    for i in table.global_indexes:
        ks = i.key_schema()
        proj: dict[str, Any] = {"ProjectionType": i.projection_type}
        if i.projection_type == "INCLUDE":
            proj["NonKeyAttributes"] = list(i.non_key_attributes)
        d: dict[str, Any] = {
            "IndexName": i.index_name, "KeySchema": ks, "Projection": proj, "IndexStatus": i.status,
            "ProvisionedThroughput": {"NumberOfDecreasesToday": 0,
                                      "ReadCapacityUnits": i.read_capacity_units if provisioned else 0,
                                      "WriteCapacityUnits": i.write_capacity_units if provisioned else 0},
            "IndexSizeBytes": 0, "ItemCount": 0, "IndexArn": f"{table_arn}/index/{i.index_name}",
        }
        d.update(throughput.describe(i))
        d.update(warm.describe(i, table.billing_mode))
        if i.status == "CREATING":
            d["Backfilling"] = True
        out.append(d)
    return out


def find_index(table: TableDefinition, name: Any) -> GlobalIndex | LocalIndex:
    """The index ``name`` of a table, global or local (a local index is always ACTIVE)."""
    for g in table.global_indexes:
        if g.index_name == name:
            return g
    for loc in table.local_indexes:
        if loc.index_name == name:
            return loc
    raise errors.validation(f"The table does not have the specified index: {name}")


def apply_index_updates(updated: TableDefinition, table: TableDefinition, p: dict[str, Any]) -> TableDefinition:
    """``updated`` with UpdateTable's GlobalSecondaryIndexUpdates applied to ``table``'s indexes
    (one Create or Delete, or throughput Updates)."""
    updates = p["GlobalSecondaryIndexUpdates"]
    if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
        raise errors.serialization("Unexpected value type in payload")
    indexes = list(table.global_indexes)
    changes = [u for u in updates if u.get("Create") is not None or u.get("Delete") is not None]
    if len(changes) > 1:
        raise errors.limit_exceeded("Subscriber limit exceeded: Only 1 online index can be created or deleted "
                                    "simultaneously per table")
    if any(i.status != "ACTIVE" for i in indexes) and changes:
        raise errors.limit_exceeded("Subscriber limit exceeded: Only 1 online index can be created or deleted "
                                    "simultaneously per table")
    defined = table.attribute_types()
    new_defs = p.get("AttributeDefinitions") or []
    for u in updates:
        if u.get("Create") is not None:
            for a in new_defs:
                if not isinstance(a, dict) or not isinstance(a.get("AttributeName"), str):
                    raise errors.serialization("Unexpected value type in payload")
                have = defined.get(a["AttributeName"])
                if have is not None and have != a.get("AttributeType"):
                    raise errors.validation("One or more parameter values were invalid: Attribute "
                                            f"{a['AttributeName']} is already defined with another type")
                defined[a["AttributeName"]] = str(a.get("AttributeType"))
            spec = u["Create"]
            index = parse_index(spec, "globalSecondaryIndexUpdates.1.member.create", defined, table.billing_mode,
                                table.table_id, table.partition_ids, status="CREATING")
            if any(i.index_name == index.index_name for i in indexes):
                raise errors.validation("One or more parameter values were invalid: Index with name: "
                                        f"{index.index_name} already exists")
            if len(indexes) >= INDEXES_MAX:
                raise errors.limit_exceeded("Subscriber limit exceeded: The number of global secondary indexes "
                                            f"exceeds the limit of {INDEXES_MAX}")
            indexes.append(index)
        elif u.get("Delete") is not None:
            name = (u["Delete"] or {}).get("IndexName")
            at = next((n for n, i in enumerate(indexes) if i.index_name == name), None)
            if at is None:
                raise errors.resource_not_found(f"Requested resource not found: Index: {name} not found")
            indexes[at] = replace(indexes[at], status="DELETING")
        elif u.get("Update") is not None:
            name = (u["Update"] or {}).get("IndexName")
            at = next((n for n, i in enumerate(indexes) if i.index_name == name), None)
            if at is None:
                raise errors.resource_not_found(f"Requested resource not found: Index: {name} not found")
            found = indexes[at]
            pt = (u["Update"] or {}).get("ProvisionedThroughput") or {}
            warmed = warm.parse((u["Update"] or {}).get("WarmThroughput"), index=str(name), update=True)
            if pt:  # nothing lowers an index's warm throughput, a decrease of its capacity neither
                found = keep_warm(found, on_demand=table.billing_mode != "PROVISIONED")
            indexes[at] = warm.raised(throughput.apply(replace(
                found, read_capacity_units=int(pt.get("ReadCapacityUnits") or found.read_capacity_units),
                write_capacity_units=int(pt.get("WriteCapacityUnits") or found.write_capacity_units)),
                throughput.parse((u["Update"] or {}).get("OnDemandThroughput"), table.billing_mode, update=True)),
                warmed, table.billing_mode, index=str(name))
    used = {k.attribute_name for k in table.key_schema} | set(index_key_names(
        [i for i in indexes if i.status != "DELETING"]))
    return replace(updated, global_indexes=tuple(indexes), attribute_definitions=tuple(
        AttributeDefinition(n, t) for n, t in defined.items() if n in used))
