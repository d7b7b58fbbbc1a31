"""Parameter checks shared by every operation (table names, enums, the constraint message) and
CreateTable's validation, with DynamoDB's wording, done before any I/O.  The data-plane
operations' own rules are in services/router/requests/.

Two kinds of messages exist in DynamoDB: the generic constraint form (``1 validation error
detected: Value 'x' at 'tableName' failed to satisfy constraint: ...``) for parameter shapes,
and specific sentences (``One or more parameter values were invalid: ...``) for semantics.
"""

from __future__ import annotations

import re
from typing import Any

from dynamolog import errors

_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")


def _show(value: Any) -> str:
    return "null" if value is None else f"'{value}'"


def raise_constraints(problems: list[str]) -> None:
    if problems:
        raise errors.counted(*problems)


def constraint_errors(field: str, name: Any, *, required: bool = True) -> list[str]:
    """Constraint messages for a table name parameter (``tableName`` and friends)."""
    if name is None:
        return [f"Value null at '{field}' failed to satisfy constraint: Member must not be null"] if required else []
    if not isinstance(name, str):
        raise errors.serialization("NUMBER_VALUE cannot be converted to String" if isinstance(name, (int, float))
                                   else "Unexpected value type in payload")
    out = []
    if not _TABLE_NAME.match(name):
        out.append(f"Value '{name}' at '{field}' failed to satisfy constraint: "
                   "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if len(name) < 3:
        out.append(f"Value '{name}' at '{field}' failed to satisfy constraint: "
                   "Member must have length greater than or equal to 3")
    if len(name) > 255:
        out.append(f"Value '{name}' at '{field}' failed to satisfy constraint: "
                   "Member must have length less than or equal to 255")
    return out


#: table names already found valid: every data-plane request names one, and most name the same few
_VALID_NAMES: set[str] = set()


def require_table_name(p: dict[str, Any]) -> str:
    """A data-plane request's TableName: a table name, or a table ARN (resolved by the tables)."""
    name = p.get("TableName")
    if isinstance(name, str):
        if name in _VALID_NAMES:
            return name
        if name.startswith("arn:") and len(name) <= 1024:
            return name
    raise_constraints(constraint_errors("tableName", name))
    if len(_VALID_NAMES) < 4096:  # bounded: a client naming ever new tables is not remembered
        _VALID_NAMES.add(str(name))
    return str(name)


def check_enum(problems: list[str], p: dict[str, Any], param: str, field: str, allowed: tuple[str, ...]) -> None:
    v = p.get(param)
    if v is not None and v not in allowed:
        problems.append(f"Value '{v}' at '{field}' failed to satisfy constraint: "
                        f"Member must satisfy enum value set: [{', '.join(allowed)}]")


#: the longest name of a key attribute (of a table or an index), in characters
KEY_NAME_MAX = 255


def check_key_name_length(problems: list[str], element: dict[str, Any], field: str) -> None:
    """A key attribute's name (KeySchema, AttributeDefinitions) is 1 to 255 characters long."""
    name = element.get("AttributeName")
    if isinstance(name, str) and not 1 <= len(name) <= KEY_NAME_MAX:
        problems.append(f"Value '{name}' at '{field}' failed to satisfy constraint: Member must have length "
                        + ("greater than or equal to 1" if not name else f"less than or equal to {KEY_NAME_MAX}"))


def validate_create_table(p: dict[str, Any]) -> dict[str, Any]:
    """Check a CreateTable request; returns the TableDefinition fields it sets."""
    problems = constraint_errors("tableName", p.get("TableName"))
    ks = p.get("KeySchema")
    ad = p.get("AttributeDefinitions")
    if ks is None:
        problems.append("Value null at 'keySchema' failed to satisfy constraint: Member must not be null")
    elif isinstance(ks, list) and not 1 <= len(ks) <= 2:
        problems.append(f"Value '{ks}' at 'keySchema' failed to satisfy constraint: Member must have length "
                        + ("greater than or equal to 1" if not ks else "less than or equal to 2"))
    if ad is None:
        problems.append("Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null")
    check_enum(problems, p, "BillingMode", "billingMode", ("PROVISIONED", "PAY_PER_REQUEST"))
    if isinstance(ks, list):
        for i, k in enumerate(ks):
            if isinstance(k, dict):
                check_key_name_length(problems, k, f"keySchema.{i + 1}.member.attributeName")
                check_enum(problems, k, "KeyType", f"keySchema.{i + 1}.member.keyType", ("HASH", "RANGE"))
    if isinstance(ad, list):
        for i, a in enumerate(ad):
            if isinstance(a, dict):
                check_key_name_length(problems, a, f"attributeDefinitions.{i + 1}.member.attributeName")
                check_enum(problems, a, "AttributeType", f"attributeDefinitions.{i + 1}.member.attributeType",
                           ("B", "N", "S"))
    raise_constraints(problems)
    if not isinstance(ks, list) or not isinstance(ad, list):
        raise errors.serialization("Unexpected value type in payload")
    if not all(isinstance(k, dict) and isinstance(k.get("AttributeName"), str) for k in ks) or not all(
        isinstance(a, dict) and isinstance(a.get("AttributeName"), str) for a in ad
    ):
        raise errors.validation("One or more parameter values were invalid: Invalid KeySchema or AttributeDefinitions")

    types = [k.get("KeyType") for k in ks]
    if types[0] != "HASH" or (len(types) == 2 and types[1] != "RANGE"):
        if len(types) == 2 and types[0] == types[1] == "HASH":
            raise errors.validation("Invalid KeySchema: Too many hash keys")
        if len(types) == 2 and types == ["RANGE", "HASH"]:
            raise errors.validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
        if types[0] == "RANGE":
            raise errors.validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
        raise errors.validation("Invalid KeySchema: Some index key attribute have no definition")
    names = [k["AttributeName"] for k in ks]
    if len(names) == 2 and names[0] == names[1]:
        raise errors.validation("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    defined: dict[str, Any] = {}
    for a in ad:
        if a["AttributeName"] in defined:
            raise errors.validation(f"Attribute Name is duplicated: {a['AttributeName']}")
        defined[a["AttributeName"]] = a.get("AttributeType")
    missing = [n for n in names if n not in defined]
    if missing:
        raise errors.validation(
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            f"AttributeDefinitions. Keys: [{', '.join(names)}], AttributeDefinitions: [{', '.join(defined)}]"
        )
    used = set(names)
    gsis = p.get("GlobalSecondaryIndexes")
    lsis = p.get("LocalSecondaryIndexes")
    indexes = (gsis if isinstance(gsis, list) else []) + (lsis if isinstance(lsis, list) else [])
    if indexes:  # validated in detail by services/router/gsi.py
        for g in indexes:
            index_ks = g.get("KeySchema") if isinstance(g, dict) else None
            if index_ks is not None and not isinstance(index_ks, list):  # e.g. true: not a list at all
                raise errors.serialization("Unexpected value type in payload")
            for k in index_ks or []:
                if isinstance(k, dict) and isinstance(k.get("AttributeName"), str):
                    used.add(k["AttributeName"])
    if set(defined) - used:
        if not indexes:
            raise errors.validation(
                "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly "
                "match number of attributes defined in AttributeDefinitions"
            )
        raise errors.validation(
            "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: "
            f"[{', '.join(defined)}], keys used: [{', '.join(sorted(used))}]")
    mode = p.get("BillingMode") or "PROVISIONED"
    pt = p.get("ProvisionedThroughput")
    rcu = wcu = 0
    if mode == "PROVISIONED":
        if not isinstance(pt, dict) or pt.get("ReadCapacityUnits") is None or pt.get("WriteCapacityUnits") is None:
            raise errors.validation("One or more parameter values were invalid: ReadCapacityUnits and "
                                    "WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
        rcu, wcu = pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]
        bad = [f"Value '{v}' at 'provisionedThroughput.{f}' failed to satisfy constraint: Member must have value "
               "greater than or equal to 1" for f, v in (("readCapacityUnits", rcu), ("writeCapacityUnits", wcu))
               if not isinstance(v, int) or v < 1]
        raise_constraints(bad)
    elif pt is not None:
        raise errors.validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor "
                                "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
    return {
        "table_name": p["TableName"],
        "key_schema": [{"attribute_name": k["AttributeName"], "key_type": k["KeyType"]} for k in ks],
        "attribute_definitions": [{"attribute_name": a["AttributeName"], "attribute_type": a["AttributeType"]}
                                  for a in ad],
        "billing_mode": mode,
        "read_capacity_units": rcu,
        "write_capacity_units": wcu,
    }
