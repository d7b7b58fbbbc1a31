"""Resource-based policies: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy.

A policy is kept in its table's TableDefinition (field ``resource_policies``: ``""`` for the
table's, the stream label for a stream's), so it changes through the catalog's one writer like
the table's tags, is seen by every router within the catalog's propagation time, and is gone
with the table.  The document rules are in :mod:`dynamolog.auth.resource_policy`; how a policy
takes part in every request's authorization is ``services/router/auth.py`` (decision 0041).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from dynamolog import errors
from dynamolog.auth.resource_policy import ResourcePolicy
from dynamolog.catalog import ACCOUNT, TableDefinition, parse_arn, table_arn

from .validate import raise_constraints

if TYPE_CHECKING:
    from .auth import Authenticator
    from .tables import Tables

#: ExpectedRevisionId that asks for "only if the resource has no policy yet"
NO_POLICY = "NO_POLICY"
ARN_LENGTH_MAX = 1283


def policy_not_found(arn: str) -> errors.ApiError:
    return errors.ApiError("PolicyNotFoundException", f"Resource-based policy not found for the provided ResourceArn: "
                                                      f"{arn}")


def revision_mismatch(arn: str, expected: str, current: str | None) -> errors.ApiError:
    have = f"has revision id {current}" if current is not None else "has no policy"
    return errors.ApiError("PolicyNotFoundException",
                           f"Resource-based policy not found for the provided ResourceArn: Requested update for "
                           f"policy with revision id {expected}, but the policy associated to target resource "
                           f"{arn} {have}.")


def stored(table: TableDefinition, slot: str) -> tuple[str, str] | None:
    """(document text, RevisionId) of the policy in ``slot`` (``""``: the table's), or None."""
    raw = table.resource_policies.get(slot)
    if raw is None:
        return None
    d = orjson.loads(raw)
    return str(d["policy"]), str(d["revision"])


def _entry(text: str, revision: str) -> str:
    return orjson.dumps({"policy": text, "revision": revision}).decode()


def new_revision(previous: str | None) -> str:
    """A RevisionId: the time in ms, above the previous one (compared as strings by clients, so
    always 13 digits until the year 2286)."""
    now = int(time.time() * 1000)
    if previous is not None and previous.isdigit():
        now = max(now, int(previous) + 1)
    return str(now)


def with_create_policy(table: TableDefinition, text: Any, region: str) -> TableDefinition:
    """CreateTable's ``ResourcePolicy``: checked against the new table's ARN, kept from the start."""
    ResourcePolicy(text, table_arn(region, table.table_name), ACCOUNT)
    return replace(table, resource_policies={"": _entry(text, new_revision(None))})


class PolicyLookup:
    """The resource-based policy that governs a request's resource ARN, from the catalog: the
    table's for the table and its indexes, the stream's for a stream.  Parsed once per document."""

    def __init__(self, tables: Tables) -> None:
        self.catalog = tables.metadata.catalog
        self.prefix = f"arn:aws:dynamodb:{tables.settings.region}:{ACCOUNT}:table/"
        self._parsed: dict[tuple[str, str], ResourcePolicy | None] = {}

    def __call__(self, resource: str) -> ResourcePolicy | None:
        if not resource.startswith(self.prefix):
            return None
        name, _, rest = resource[len(self.prefix):].partition("/")
        table = self.catalog.items.get(name)
        if table is None or not table.resource_policies:
            return None
        slot = rest[len("stream/"):] if rest.startswith("stream/") else ""
        raw = table.resource_policies.get(slot)
        if raw is None:
            return None
        owner = self.prefix + name + (f"/stream/{slot}" if slot else "")
        key = (owner, raw)
        policy = self._parsed.get(key, False)
        if policy is False:
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            try:
                policy = ResourcePolicy(orjson.loads(raw)["policy"], owner, ACCOUNT)
            except errors.ApiError:  # accepted once, so valid; a rule made stricter since does not lock it
                policy = None
            self._parsed[key] = policy
        return policy if isinstance(policy, ResourcePolicy) else None


class ResourcePolicies:
    """The three operations of a router."""

    def __init__(self, tables: Tables, auth: Authenticator) -> None:
        self.tables = tables
        self.auth = auth
        self.region = tables.settings.region

    def _target(self, arn: Any) -> tuple[str, str, str]:
        """(ResourceArn, table name, slot) of a table or stream ARN of this region and account."""
        if arn is None:
            raise_constraints(["Value null at 'resourceArn' failed to satisfy constraint: Member must not be null"])
        if not isinstance(arn, str):
            raise errors.serialization("Unexpected value type in payload")
        if not 1 <= len(arn) <= ARN_LENGTH_MAX:
            raise_constraints([f"Value '{arn}' at 'resourceArn' failed to satisfy constraint: Member must have "
                               + ("length greater than or equal to 1" if not arn
                                  else f"length less than or equal to {ARN_LENGTH_MAX}")])
        table_part, sep, label = arn.partition("/stream/")
        try:
            region, account, name = parse_arn(table_part)
        except errors.ApiError:
            raise errors.validation(f"Invalid ResourceArn provided as input {arn}") from None
        if sep and not label:
            raise errors.validation(f"Invalid ResourceArn provided as input {arn}")
        if region != self.region or account != ACCOUNT:
            raise errors.resource_not_found(f"Requested resource not found: ResourceArn: {arn} not found")
        return arn, name, label

    def _table(self, arn: str, name: str, slot: str, current: TableDefinition | None) -> TableDefinition:
        if current is None or current.status == "DELETING":
            if slot:
                raise errors.resource_not_found(f"Requested resource not found: Stream: {arn} not found")
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        if slot and current.stream_label != slot:
            raise errors.resource_not_found(f"Requested resource not found: Stream: {arn} not found")
        return current

    async def put_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, name, slot = self._target(p.get("ResourceArn"))
        text = p.get("Policy")
        if text is None:
            raise_constraints(["Value null at 'policy' failed to satisfy constraint: Member must not be null"])
        expected = p.get("ExpectedRevisionId")
        if expected is not None and (not isinstance(expected, str) or not 1 <= len(expected) <= 255):
            raise_constraints([f"Value '{expected}' at 'expectedRevisionId' failed to satisfy constraint: "
                               "Member must have length between 1 and 255"])
        confirm = p.get("ConfirmRemoveSelfResourceAccess", False)
        if not isinstance(confirm, bool):
            raise errors.serialization("Unexpected value type in payload")
        self._table(arn, name, slot, self.tables.metadata.catalog.items.get(name))
        policy = ResourcePolicy(text, arn, ACCOUNT)
        if not confirm and self.auth.would_lock_out(policy, arn):
            raise errors.validation("The policy would remove your own permission to change the policy of this "
                                    "resource (an explicit Deny of dynamodb:PutResourcePolicy for your principal): "
                                    "set ConfirmRemoveSelfResourceAccess to true to confirm")
        answer: dict[str, str] = {}

        def put(current: TableDefinition | None) -> TableDefinition | None:
            table = self._table(arn, name, slot, current)
            now = stored(table, slot)
            if expected is not None:
                if expected == NO_POLICY:
                    if now is not None:
                        raise revision_mismatch(arn, expected, now[1])
                elif now is None or now[1] != expected:
                    raise revision_mismatch(arn, expected, now[1] if now else None)
            if now is not None and now[0] == text:
                answer["RevisionId"] = now[1]  # the same document again: the same revision
                return None
            revision = new_revision(now[1] if now else None)
            answer["RevisionId"] = revision
            return replace(table, resource_policies={**table.resource_policies, slot: _entry(str(text), revision)})

        await self.tables.catalog.change(name, put)
        return {"RevisionId": answer["RevisionId"]}

    async def get_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, name, slot = self._target(p.get("ResourceArn"))
        table = self._table(arn, name, slot, self.tables.metadata.catalog.items.get(name))
        now = stored(table, slot)
        if now is None:
            raise policy_not_found(arn)
        return {"Policy": now[0], "RevisionId": now[1]}

    async def delete_resource_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        arn, name, slot = self._target(p.get("ResourceArn"))
        expected = p.get("ExpectedRevisionId")
        if expected is not None and not isinstance(expected, str):
            raise errors.serialization("Unexpected value type in payload")
        self._table(arn, name, slot, self.tables.metadata.catalog.items.get(name))
        answer: dict[str, str] = {}

        def delete(current: TableDefinition | None) -> TableDefinition | None:
            table = self._table(arn, name, slot, current)
            now = stored(table, slot)
            if expected is not None and (now is None or now[1] != expected):
                raise revision_mismatch(arn, expected, now[1] if now else None)
            if now is None:
                return None  # idempotent: nothing to delete is no error (API Reference)
            answer["RevisionId"] = now[1]
            return replace(table, resource_policies={k: v for k, v in table.resource_policies.items() if k != slot})

        await self.tables.catalog.change(name, delete)
        return dict(answer)
