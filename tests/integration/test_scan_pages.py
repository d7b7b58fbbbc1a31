"""Scan pages that end at a partition boundary (regression test).

A Scan walks the partitions in hash order and stops a page once it has read 1 MB. When the item
that uses up the 1 MB is the last one of a partition, the page must end there with a
LastEvaluatedKey; before the fix the next partition was asked with no budget left, answered
nothing, and was skipped — its items never came back.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from dynamolog.keys import partition_hash
from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

HALF = 1 << 63  # the test system makes two partitions per table: [0, 2**63) and [2**63, 2**64)


def _keys(n: int, low: bool) -> list[str]:
    out = []
    while len(out) < n:
        k = uuid.uuid4().hex
        if (partition_hash({"S": k}) < HALF) == low:
            out.append(k)
    return out


def test_page_ending_at_a_partition_end_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    system, endpoint = start_system(kafka_bootstrap, tmp_path / "sys")
    try:
        ddb = make_client(endpoint)
        ddb.create_table(TableName="pages", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        wait_active(ddb, "pages")
        big = _keys(3, low=True)      # 3 x 350 KB in the first partition: the 3rd crosses 1 MB
        small = _keys(4, low=False)   # small items in the second partition
        for k in big:
            ddb.put_item(TableName="pages", Item={"pk": {"S": k}, "v": {"S": "x" * 350_000}})
        for k in small:
            ddb.put_item(TableName="pages", Item={"pk": {"S": k}})
        seen: list[str] = []
        kwargs: dict[str, Any] = {"TableName": "pages", "ProjectionExpression": "pk"}
        pages = 0
        while True:
            page = ddb.scan(**kwargs)
            pages += 1
            seen += [i["pk"]["S"] for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        assert sorted(seen) == sorted(big + small), "a Scan lost or repeated items"
        assert pages >= 2, "1 MB of items read should end the first page"
    finally:
        system.down()
