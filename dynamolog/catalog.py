"""The catalog's records and the lookups every service makes on them.

A table is a TableDefinition record in ``<ns>.catalog`` (``schemas/TableDefinition.avsc``) and
its partitions are PartitionInfo records in ``<ns>.partitions`` (``schemas/PartitionInfo.avsc``);
the codec (:mod:`dynamolog.codec`) hands them over as dicts with the schemas' field names.  The
helpers here are the one place that reads a table's key names, attribute types and ARN, so no
service re-writes them.
"""

from __future__ import annotations

import re
from typing import Any

from . import errors

#: the account id in every ARN this system answers
ACCOUNT = "000000000000"
#: statuses during which the auto-admin is still carrying out a change of the table
PENDING_STATUSES = ("CREATING", "UPDATING", "DELETING")
_TABLE_ARN = re.compile(r"^arn:aws:dynamodb:([^:/]+):(\d+):table/([^/]{3,})$")


def hash_key(table: dict[str, Any]) -> str:
    """The name of the table's partition (HASH) key."""
    for k in table["key_schema"]:
        if k["key_type"] == "HASH":
            return str(k["attribute_name"])
    raise AssertionError(f"table {table.get('table_name')} has no HASH key")


def key_names(table: dict[str, Any]) -> tuple[str, str | None]:
    """(hash key name, range key name or None) of a table."""
    range_key = next((str(k["attribute_name"]) for k in table["key_schema"] if k["key_type"] == "RANGE"), None)
    return hash_key(table), range_key


def index_key_names(table: dict[str, Any], index: dict[str, Any]) -> tuple[str, str | None]:
    """(hash key name, range key name or None) of one of the table's indexes: a global index
    names both; a local index has the table's hash key and its own range key."""
    return str(index.get("hash_key") or hash_key(table)), index.get("range_key")


def attribute_types(table: dict[str, Any]) -> dict[str, str]:
    """Attribute name -> S, N or B, for every attribute the table defines."""
    return {a["attribute_name"]: a["attribute_type"] for a in table["attribute_definitions"]}


def table_arn(region: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"


def parse_arn(arn: Any) -> tuple[str, str, str]:
    """(region, account, table name) of a table ARN, or ValidationException ``Invalid TableArn``."""
    if arn is None:
        raise errors.validation("Invalid TableArn")
    if not isinstance(arn, str):
        raise errors.serialization("Unexpected value type in payload")
    m = _TABLE_ARN.match(arn)
    if m is None:
        raise errors.validation(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    return m.group(1), m.group(2), m.group(3)


def in_use(table: dict[str, Any]) -> errors.ApiError:
    """ResourceInUseException for a change of a table that is being created, updated or deleted."""
    doing = {"CREATING": "created", "UPDATING": "updated", "DELETING": "deleted"}.get(table["status"], "updated")
    return errors.resource_in_use(
        f"Attempt to change a resource which is still in use: Table is being {doing}: {table['table_name']}")
