"""The router's bookkeeping of batch requests that a partition could not take.

Unit tests of services/router/batch.py with a storage layer that fails for some partitions: they
check that retriable failures land in UnprocessedItems / UnprocessedKeys, exactly as sent, and
that the rest is done. (The real failure — a partition without a reachable leader — is a fault
test of the integration tier.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from dynamolog.catalog import PartitionInfo, TableDefinition
from dynamolog.routing import Routing


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: str) -> dict[str, str]:
    return {"N": v}


def put(item: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": item}}


def delete(key: dict[str, Any]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": key}}


class _FakeTables:
    def __init__(self) -> None:
        self.table = TableDefinition.from_record({
            "table_name": "t_fake", "table_id": "id", "status": "ACTIVE",
            "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
            "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
            "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
            "created_at_ms": 0, "partition_ids": ["p-0"]})

    async def get_active(self, name: Any) -> TableDefinition:
        from dynamolog import errors

        if name != "t_fake":
            raise errors.resource_not_found()
        return self.table


class _FakeRouting(Routing):
    """Keys starting with "down" are on a partition whose leader cannot be reached."""

    def __init__(self) -> None:  # no metadata: every method the batch calls is below
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @staticmethod
    def _part(pid: str) -> PartitionInfo:
        return PartitionInfo(partition_id=pid, table_name="t_fake", table_id="id", hash_start=0,
                             hash_end=2**64 - 1, log_topic="log-" + pid, replicas=("n1",), leader="n1",
                             leader_epoch=1, state="ACTIVE")

    def partition_for(self, table: Any, hash_av: dict[str, Any]) -> PartitionInfo:
        return self._part("down" if hash_av["S"].startswith("down") else "up")

    def partition_for_item_key(self, table: Any, item_key: bytes) -> PartitionInfo:
        # an item key is the 8-byte partition hash, then the partition key's bytes
        return self._part("down" if item_key[8:].startswith(b"down") else "up")

    async def call(self, table: Any, part: Any, op: str, **args: Any) -> Any:  # type: ignore[override]
        from dynamolog import errors

        await asyncio.sleep(0)
        if part.partition_id == "down":
            raise errors.internal("The partition is unavailable; retry the request")
        self.calls.append((op, args))
        return {"Item": {"pk": {"S": "up"}}} if op == "get" else {}


def _batch() -> tuple[Any, _FakeRouting]:
    from services.router.batch import Batch
    from services.router.items import Items

    routing = _FakeRouting()
    return Batch(Items(_FakeTables(), routing)), routing  # type: ignore[arg-type]  # (the tables)


def test_write_retriable_failure_goes_to_unprocessed_items() -> None:
    batch, routing = _batch()
    requests = [put({"pk": S("up1"), "v": N("1")}), put({"pk": S("down1")}), delete({"pk": S("down2")}),
                delete({"pk": S("up2")})]
    resp = asyncio.run(batch.batch_write_item({"RequestItems": {"t_fake": requests},
                                               "ReturnConsumedCapacity": "TOTAL"}))
    assert resp["UnprocessedItems"] == {"t_fake": requests[1:3]}
    assert resp["ConsumedCapacity"] == [{"TableName": "t_fake", "CapacityUnits": 2.0}]
    assert sorted(args["kind"] for _, args in routing.calls) == ["delete", "put"]


def test_get_retriable_failure_goes_to_unprocessed_keys() -> None:
    batch, _ = _batch()
    spec = {"Keys": [{"pk": S("up")}, {"pk": S("down1")}], "ProjectionExpression": "pk", "ConsistentRead": True}
    resp = asyncio.run(batch.batch_get_item({"RequestItems": {"t_fake": spec}}))
    assert resp["Responses"] == {"t_fake": [{"pk": S("up")}]}
    assert resp["UnprocessedKeys"] == {"t_fake": spec | {"Keys": [{"pk": S("down1")}]}}
