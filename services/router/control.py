"""Control plane beyond tables: tags (TagResource, UntagResource, ListTagsOfResource),
DescribeLimits and DescribeEndpoints.

Tags live in the table's TableDefinition (field ``tags``), so they are changed through the
catalog's one writer like every other change of a table (:mod:`dynamolog.catalog_client`) and
are gone with the table.
"""

from __future__ import annotations

import base64
import binascii
import re
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dynamolog import errors
from dynamolog.catalog import ACCOUNT, TableDefinition, parse_arn

from .validate import raise_constraints

if TYPE_CHECKING:
    from .tables import Tables

TAGS_MAX = 50
#: the characters of a tag key (Developer Guide, "Tagging restrictions in DynamoDB"): letters,
#: white space, numbers and + - = . _ : /
_TAG_KEY = re.compile(r"[\w\s+\-=.:/]*")
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
#: tags per ListTagsOfResource page
TAGS_PAGE = 10
ENDPOINT_CACHE_MINUTES = 1440
LIMITS = {
    "AccountMaxReadCapacityUnits": 80000,
    "AccountMaxWriteCapacityUnits": 80000,
    "TableMaxReadCapacityUnits": 40000,
    "TableMaxWriteCapacityUnits": 40000,
}

#: the Host header of the request being answered (set by the router's dispatch); DescribeEndpoints
#: answers it as the address to use
request_host: ContextVar[str | None] = ContextVar("dynamolog_request_host", default=None)


def _length_problems(value: Any, field: str, low: int, high: int) -> list[str]:
    if value is None:
        return [f"Value null at '{field}' failed to satisfy constraint: Member must not be null"]
    if not isinstance(value, str):
        raise errors.serialization("Unexpected value type in payload")
    if len(value) < low:
        return [f"Value '{value}' at '{field}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {low}"]
    if len(value) > high:
        return [f"Value '{value}' at '{field}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {high}"]
    return []


def parse_tags(tags: Any) -> dict[str, str]:
    """A ``Tags`` list (TagResource, CreateTable) checked against DynamoDB's constraints, as a
    dict (a key given twice keeps its last value)."""
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise errors.serialization("Unexpected value type in payload")
    problems: list[str] = []
    for i, t in enumerate(tags, 1):
        problems += _length_problems(t.get("Key"), f"tags.{i}.member.key", 1, TAG_KEY_MAX)
        problems += _length_problems(t.get("Value"), f"tags.{i}.member.value", 0, TAG_VALUE_MAX)
    raise_constraints(problems)
    out = {str(t["Key"]): str(t["Value"]) for t in tags}
    bad = next((k for k in out if not _TAG_KEY.fullmatch(k)), None)
    if bad is not None:
        raise errors.validation(f"One or more parameter values were invalid: The tag key {bad} holds a character "
                                "other than letters, numbers, white space and + - = . _ : /")
    reserved = sorted(k for k in out if k.lower().startswith("aws:"))
    if reserved:
        raise errors.validation("One or more parameter values were invalid: Tag keys starting with the prefix "
                                f"aws: are reserved for AWS use: {reserved[0]}")
    check_tag_count(len(out))
    return out


def check_tag_count(n: int) -> None:
    if n > TAGS_MAX:
        raise errors.validation(f"One or more parameter values were invalid: Too many tags: a resource can have at "
                                f"most {TAGS_MAX} tags, this request would leave {n}")


class Control:
    """The tag, limits and endpoints operations of a router (tables come from ``tables``)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def _table_of(self, arn: str, message: str) -> TableDefinition:
        region, account, name = parse_arn(arn)
        table = self.tables.metadata.catalog.items.get(name)
        return _found(table if region == self.tables.settings.region and account == ACCOUNT else None, message)

    def _changeable(self, arn: str, message: str) -> TableDefinition:
        return _changeable(self._table_of(arn, message), message)

    async def tag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn")
        if arn is None:
            raise errors.validation("Invalid TableArn")
        if p.get("Tags") is None:
            raise_constraints(["Value null at 'tags' failed to satisfy constraint: Member must not be null"])
        parse_arn(arn)
        if not p["Tags"]:
            raise errors.validation("Atleast one Tag needs to be provided as Input.")
        tags = parse_tags(p["Tags"])
        not_found = f"Requested resource not found: ResourcArn: {arn} not found"
        name = self._changeable(arn, not_found).table_name

        def tag(current: TableDefinition | None) -> TableDefinition | None:
            table = _changeable(_found(current, not_found), not_found)
            merged = dict(table.tags or {}) | tags
            check_tag_count(len(merged))
            return None if merged == table.tags else replace(table, tags=merged)

        await self.tables.catalog.change(name, tag)
        return {}

    async def untag_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn")
        if arn is None:
            raise errors.validation("Invalid TableArn")
        keys = p.get("TagKeys")
        if keys is None:
            raise_constraints(["Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"])
        parse_arn(arn)
        if not isinstance(keys, list):
            raise errors.serialization("Unexpected value type in payload")
        if not keys:
            raise errors.validation("Atleast one Tag Key needs to be provided as Input.")
        problems: list[str] = []
        for i, k in enumerate(keys, 1):
            problems += _length_problems(k, f"tagKeys.{i}.member", 1, TAG_KEY_MAX)
        raise_constraints(problems)
        not_found = "Requested resource not found"
        name = self._changeable(arn, not_found).table_name

        def untag(current: TableDefinition | None) -> TableDefinition | None:
            table = _changeable(_found(current, not_found), not_found)
            tags = dict(table.tags or {})
            if not any(k in tags for k in keys):
                return None
            for k in keys:
                tags.pop(k, None)
            return replace(table, tags=tags)

        await self.tables.catalog.change(name, untag)
        return {}

    async def list_tags_of_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p.get("ResourceArn")
        if arn is None:
            raise errors.validation("Invalid TableArn")
        token = p.get("NextToken")
        after = None
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(str(token).encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise errors.validation(f"Invalid NextToken: {token}") from None
        table = self._table_of(arn, f"Requested resource not found: ResourcArn: {arn} not found")
        tags = table.tags or {}
        keys = sorted(k for k in tags if after is None or k > after)
        page = keys[:TAGS_PAGE]
        out: dict[str, Any] = {"Tags": [{"Key": k, "Value": tags[k]} for k in page]}
        if len(keys) > TAGS_PAGE:
            out["NextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return out

    async def describe_limits(self, p: dict[str, Any]) -> dict[str, Any]:
        return dict(LIMITS)

    async def describe_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        address = request_host.get() or f"dynamodb.{self.tables.settings.region}.amazonaws.com"
        return {"Endpoints": [{"Address": address, "CachePeriodInMinutes": ENDPOINT_CACHE_MINUTES}]}


def _found(table: TableDefinition | None, message: str) -> TableDefinition:
    if table is None or table.status == "DELETING":
        raise errors.resource_not_found(message)
    return table


def _changeable(table: TableDefinition, message: str) -> TableDefinition:
    if table.status == "CREATING":
        # as DynamoDB: a table still being created cannot be tagged yet
        raise errors.resource_not_found(message)
    return table
