"""Changing the catalog: every change goes to the auto-admin, the catalog's one writer.

Routers (CreateTable, UpdateTable, DeleteTable, tags, time to live) and the indexer (an index
ACTIVE after its backfill) never publish to ``<ns>.catalog`` themselves.  A change is a function
of the table's current definition (``None`` when there is none) that returns the new definition,
``None`` when nothing changes, or raises the DynamoDB error the request gets.  The client
applies it to its cached copy and sends the result to the auto-admin over the internal RPC
(op ``catalog_put``) with the catalog offset of the copy it started from.  The auto-admin
publishes it only if that is still the table's current record (a compare-and-set in the single
writer, which serialises every change); otherwise it answers the current record and the client
applies the change again on it.  So two routers racing on CreateTable end with one table (the
second finds it and answers ResourceInUseException), and no tag or TTL change is lost.

The auto-admin publishes its address in ``<ns>.nodes`` under :data:`~dynamolog.metadata.ADMIN_KEY`
when it starts.  A change that could not reach it (nothing sent) is sent again, to the address
found then, for up to ``wait_s``; one whose answer was lost is sent again unchanged: the same
request id (the admin answers a repeat from memory) and the same base offset (a change already
published moved the offset, so it cannot be published twice), and if the admin's current
record is exactly what was sent, it was published.  After ``wait_s`` the request fails with a
retriable InternalServerError, as DynamoDB's control plane does when it cannot answer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from . import errors
from .catalog import TableDefinition
from .metadata import ADMIN_KEY, Metadata, PublishedClient
from .rpc import RequestLost, RequestTimeout, RpcClient

log = logging.getLogger(__name__)

#: a change of one table: current definition (or None) -> new definition, or None for no change
Change = Callable[[TableDefinition | None], TableDefinition | None]

#: how long a change waits for an auto-admin that cannot be reached
WAIT_S = 30.0
#: answers awaited from the auto-admin per attempt
CALL_TIMEOUT_S = 10.0
#: times a change is applied again on a newer record before the request fails (each such
#: conflict means another change of the same table was published in between)
CONFLICTS_MAX = 64


class CatalogClient:
    """Sends catalog changes to the auto-admin (see the module docstring)."""

    def __init__(self, metadata: Metadata, *, wait_s: float = WAIT_S, call_timeout_s: float = CALL_TIMEOUT_S,
                 key: bytes | None = None) -> None:
        """``wait_s``: how long a change waits for an auto-admin it cannot reach;
        ``call_timeout_s``: how long one attempt waits for its answer."""
        self.metadata = metadata
        self.wait_s = wait_s
        self.call_timeout_s = call_timeout_s
        self._published = PublishedClient(metadata, ADMIN_KEY, "auto-admin", rpc_key=key)

    def _admin(self) -> RpcClient:
        return self._published.get()

    async def change(self, name: str, fn: Change) -> TableDefinition | None:
        """Apply ``fn`` to table ``name`` through the auto-admin; returns the table's definition
        after the change (or as it is, when ``fn`` changed nothing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        request_id = uuid.uuid4().hex
        base = self.metadata.catalog.items.get(name)
        version = self.metadata.version(name)
        sent: TableDefinition | None = None  # what was sent, while its outcome is unknown
        conflicts = 0
        attempt = 0
        while True:
            if sent is None:
                new = fn(base)  # frozen: the change cannot edit the cached copy
                if new is None:
                    return base
                if new.table_name != name:
                    raise AssertionError(f"a change of {name} returned a definition of {new.table_name}")
            else:
                new = sent
            attempt += 1
            try:
                answer = await self._admin().call("catalog_put", timeout_s=self.call_timeout_s, name=name,
                                                  base=-1 if base is None else version, table=new.to_record(),
                                                  request_id=request_id)
            except (RequestLost, RequestTimeout) as e:
                sent = new  # it may have been published: send exactly this again
                reason = f"outcome unknown ({type(e).__name__})"
            except (ConnectionError, TimeoutError) as e:  # not sent: nothing was published
                reason = str(e) or type(e).__name__
            else:
                record: dict[str, Any] | None = answer.get("table")
                current = None if record is None else TableDefinition.from_record(record)
                # read your own writes: the view takes the record at its offset (a newer one it
                # may already hold is kept)
                self.metadata.catalog.put_local(name, current, int(answer["version"]))
                if answer["applied"]:
                    return current
                if sent is not None and current == sent:
                    return current  # the lost attempt was published
                conflicts += 1
                if conflicts > CONFLICTS_MAX:
                    raise errors.internal("The table is changing too often; retry the request")
                base, version, sent = current, int(answer["version"]), None
                request_id = uuid.uuid4().hex  # a new change (on a newer record)
                continue
            if loop.time() >= deadline:
                log.warning("catalog: change of %s not confirmed after %d attempts: %s", name, attempt, reason)
                raise errors.internal("The control plane is unavailable; retry the request")
            await asyncio.sleep(min(0.05 * 2 ** min(attempt, 5), 1.0))

    async def admin_call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """Another request the auto-admin carries out (Application Auto Scaling's, op
        ``scaling``), sent to the address it published; one that could not be sent, or whose
        answer was lost, is sent again for up to ``wait_s`` (each such request is an upsert, a
        read, or a delete whose repeat at worst answers that the object is gone)."""
        answer: dict[str, Any] = await self._published.call(op, wait_s=self.wait_s, timeout_s=self.call_timeout_s,
                                                            **kwargs)
        return answer

    async def close(self) -> None:
        await self._published.close()

