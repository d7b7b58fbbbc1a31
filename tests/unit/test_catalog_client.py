"""How a router's catalog client behaves when the auto-admin's answer is lost or the admin is
away (docs/decisions/0019-catalog-single-writer.md).  A real internal RPC server stands in for
the auto-admin's catalog writer; the metadata views are not started (no broker needed)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from dynamolog import errors
from dynamolog.catalog import NodeInfo, TableDefinition
from dynamolog.catalog_client import CatalogClient
from dynamolog.config import Settings
from dynamolog.metadata import ADMIN_KEY, Metadata
from dynamolog.rpc import RpcServer

KEY = os.urandom(32)


def _table(**fields: Any) -> TableDefinition:
    """Table ``t`` as a new table has it, with ``fields`` changed."""
    return TableDefinition.from_record({
        "table_name": "t", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
        "status": "ACTIVE", "created_at_ms": 0, "partition_ids": ["p-0"], **fields})


def _metadata(port: int | None) -> Metadata:
    md = Metadata(Settings(namespace="unit"))
    if port is not None:
        md.nodes.put_local(ADMIN_KEY, NodeInfo(node_id=ADMIN_KEY, rpc_address=f"127.0.0.1:{port}", pid=1,
                                               started_at_ms=0), 0)
    return md


def test_admin_address_is_kept_apart_from_storage_nodes() -> None:
    # placement and the liveness loop iterate the storage nodes: the admin must not be one
    md = _metadata(1234)
    assert ADMIN_KEY not in md.nodes.items and md.nodes.reserved[ADMIN_KEY].rpc_address == "127.0.0.1:1234"


def test_a_lost_answer_is_resent_unchanged_and_not_applied_twice() -> None:
    # The first attempt is published but its answer never arrives (timeout).  The resend must
    # carry the same request id and base offset, and when the admin's record is what was sent
    # the change counts as done: the change function does not run again on the new record.
    seen: list[dict[str, Any]] = []
    published: dict[str, Any] = {}

    async def admin(req: dict[str, Any]) -> Any:
        seen.append(req)
        if len(seen) == 1:
            published.update(req["table"])
            await asyncio.sleep(1.0)  # the answer comes after the client stopped waiting
        return {"applied": False, "version": 7, "table": published}

    async def run() -> None:
        server = RpcServer(admin, "127.0.0.1", 0, key=KEY)
        await server.start()
        client = CatalogClient(_metadata(server.port), call_timeout_s=0.2, key=KEY)
        calls = []

        def tag(table: TableDefinition | None) -> TableDefinition | None:
            calls.append(table)
            assert table is None
            return _table(tags={"k": "v"})

        try:
            out = await client.change("t", tag)
        finally:
            await client.close()
            await server.close()
        assert out == _table(tags={"k": "v"})
        assert len(calls) == 1
        assert len(seen) == 2
        assert seen[0]["request_id"] == seen[1]["request_id"] and seen[0]["base"] == seen[1]["base"] == -1

    asyncio.run(run())


def test_a_stale_base_makes_the_change_again_on_the_current_record() -> None:
    # another router's change was published first: ours is made again on top of it
    async def admin(req: dict[str, Any]) -> Any:
        if req["base"] != 7:
            return {"applied": False, "version": 7, "table": _table(tags={"other": "1"}).to_record()}
        return {"applied": True, "version": 8, "table": req["table"]}

    async def run() -> None:
        server = RpcServer(admin, "127.0.0.1", 0, key=KEY)
        await server.start()
        md = _metadata(server.port)
        client = CatalogClient(md, key=KEY)
        try:
            out = await client.change("t", lambda t: _table(tags=dict(t.tags if t else {}, mine="2")))
        finally:
            await client.close()
            await server.close()
        assert out == _table(tags={"other": "1", "mine": "2"})
        assert md.catalog.items["t"] == out and md.version("t") == 8  # the router reads its own write

    asyncio.run(run())


def test_no_admin_waits_boundedly_then_internal_server_error() -> None:
    async def run() -> None:
        client = CatalogClient(_metadata(None), wait_s=0.5, key=KEY)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(errors.ApiError) as e:
            await client.change("t", lambda t: _table())
        assert e.value.type_name == "InternalServerError" and e.value.status == 500
        assert 0.5 <= loop.time() - t0 < 5

    asyncio.run(run())
