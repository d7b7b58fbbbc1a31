"""UpdateTimeToLive and DescribeTimeToLive.

The table definition records the TTL attribute; each partition's leader sweeps its items and
deletes the expired ones through the log (``services/storage/leader.py``, ``_sweep``), so the
deletions reach every replica and the stream like any delete, marked as the service's own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dynamolog import errors
from dynamolog.catalog import TableDefinition, in_use

from .tables import Tables
from .validate import raise_constraints, require_table_name


class TimeToLive:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def update_time_to_live(self, p: dict[str, Any]) -> dict[str, Any]:
        given = require_table_name(p)
        name = self.tables.resolve(given) or given
        spec = p.get("TimeToLiveSpecification")
        problems: list[str] = []
        if spec is None:
            problems.append("Value null at 'timeToLiveSpecification' failed to satisfy constraint: Member must not "
                            "be null")
        elif not isinstance(spec, dict):
            raise errors.serialization("Unexpected value type in payload")
        else:
            enabled, attr = spec.get("Enabled"), spec.get("AttributeName")
            if enabled is None:
                problems.append("Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: "
                                "Member must not be null")
            elif not isinstance(enabled, bool):
                raise errors.serialization("Unexpected value type in payload")
            if attr is None:
                problems.append("Value null at 'timeToLiveSpecification.attributeName' failed to satisfy "
                                "constraint: Member must not be null")
            elif not isinstance(attr, str):
                raise errors.serialization("Unexpected value type in payload")
            elif not 1 <= len(attr) <= 255:
                problems.append(f"Value '{attr}' at 'timeToLiveSpecification.attributeName' failed to satisfy "
                                "constraint: Member must have length "
                                + ("greater than or equal to 1" if not attr else "less than or equal to 255"))
        raise_constraints(problems)
        assert isinstance(spec, dict)
        enabled, attr = bool(spec["Enabled"]), str(spec["AttributeName"])

        def change(table: TableDefinition | None) -> TableDefinition | None:
            if table is None:
                raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
            if table.status != "ACTIVE":
                raise in_use(table)
            current = table.ttl_attribute
            if current is not None and current != attr:
                raise errors.validation(f"TimeToLive is active on a different AttributeName: current "
                                        f"AttributeName is {current}")
            if enabled and current is not None:
                raise errors.validation("TimeToLive is already enabled")
            if not enabled and current is None:
                raise errors.validation("TimeToLive is already disabled")
            return replace(table, ttl_attribute=attr if enabled else None)

        await self.tables.catalog.change(name, change)
        return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}

    async def describe_time_to_live(self, p: dict[str, Any]) -> dict[str, Any]:
        given = require_table_name(p)
        name = self.tables.resolve(given) or given
        table = self.tables.metadata.catalog.items.get(name)
        if table is None:
            raise errors.resource_not_found(f"Requested resource not found: Table: {name} not found")
        attr = table.ttl_attribute
        if attr:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": attr}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
