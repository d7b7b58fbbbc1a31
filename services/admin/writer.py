"""The catalog's one writer: applies the changes routers and the indexer send, in order.

Op ``catalog_put`` (internal RPC, :mod:`dynamolog.catalog_client`): ``name``, ``table`` (the new
definition), ``base`` (the catalog offset of the record the sender changed, -1 when it found no
table) and ``request_id``.  Under the table's lock, the change is published only if ``base`` is
still the table's current record; the answer is ``{"applied": true, "version": offset, "table":
table}``, or ``{"applied": false, ...}`` with the current record and its offset, on which the
sender applies its change again.  The last :data:`ANSWERS_MAX` answers are kept by request id,
so a request sent again after a lost answer gets the same answer.  Provisioning takes the same
locks, so every write of a table definition in the system is ordered here.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from dynamolog import errors
from dynamolog.catalog import TableDefinition
from dynamolog.metadata import Metadata, MetadataWriter

#: answers kept for requests that may be sent again
ANSWERS_MAX = 10_000


class CatalogWriter:
    """Applies catalog changes (see the module docstring)."""

    def __init__(self, metadata: Metadata, writer: MetadataWriter) -> None:
        self.metadata = metadata
        self.writer = writer
        self._locks: dict[str, asyncio.Lock] = {}
        self._answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: changes published and refused as stale, for status and tests
        self.applied = 0
        self.conflicts = 0

    def lock(self, name: str) -> asyncio.Lock:
        """Held while a table's definition is read and rewritten."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def put(self, name: str, base: int, table: dict[str, Any], request_id: str) -> dict[str, Any]:
        done = self._answers.get(request_id)
        if done is not None:
            return done
        if not isinstance(table, dict) or table.get("table_name") != name:
            raise errors.validation("catalog_put: the definition does not name the table")
        try:  # every field the schema has, and no other
            new = TableDefinition.from_record(table)
        except (TypeError, KeyError) as e:
            raise errors.validation(f"catalog_put: not a TableDefinition: {e}") from None
        async with self.lock(name):
            current = self.metadata.catalog.items.get(name)
            version = self.metadata.version(name)
            fresh = base == -1 if current is None else base == version
            if not fresh:
                self.conflicts += 1
                return {"applied": False, "version": version,
                        "table": None if current is None else current.to_record()}
            await self.writer.put_table(new)
            answer = {"applied": True, "version": self.metadata.version(name), "table": new.to_record()}
            self.applied += 1
        self._answers[request_id] = answer
        while len(self._answers) > ANSWERS_MAX:
            self._answers.popitem(last=False)
        return answer

    async def handle(self, req: dict[str, Any]) -> Any:
        """The internal RPC handler of the auto-admin."""
        op = req.get("op")
        if op == "catalog_put":
            return await self.put(str(req["name"]), int(req["base"]), req["table"], str(req["request_id"]))
        if op == "ping":
            return {"ok": True}
        raise errors.validation(f"unknown op {op!r}")
