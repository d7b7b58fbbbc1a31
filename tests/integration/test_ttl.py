"""Time to live: expired items are deleted through the log by the partition leader, and the
stream shows that the service deleted them.  Its own system, with a one-second sweep."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_client, start_system, wait_active
from tests.api.test_streams import read_all

pytestmark = pytest.mark.integration


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


@pytest.fixture(scope="module")
def endpoint(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("ttl")),
                             extra_env={"DYNAMOLOG_TTL_SWEEP_S": "1"})
    try:
        yield url
    finally:
        sysm.down()


def test_expired_items_are_deleted_and_the_stream_shows_the_service_did_it(endpoint: str) -> None:
    ddb, streams = make_client(endpoint), make_client(endpoint, "dynamodbstreams")
    table = "ttl_table"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    wait_active(ddb, table)
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    now = int(time.time())
    gone, later, kept, no_ttl, ancient = "gone", "later", "kept", "plain", "ancient"
    ddb.put_item(TableName=table, Item={"pk": S(gone), "exp": N(now - 10)})
    ddb.put_item(TableName=table, Item={"pk": S(later), "exp": N(now + 3)})
    ddb.put_item(TableName=table, Item={"pk": S(kept), "exp": N(now + 3600)})
    ddb.put_item(TableName=table, Item={"pk": S(no_ttl), "exp": S("not a number")})
    ddb.put_item(TableName=table, Item={"pk": S(ancient), "exp": N(now - 6 * 365 * 86400)})  # ignored: > 5 years
    deadline = time.monotonic() + 30
    for k in (gone, later):
        while "Item" in ddb.get_item(TableName=table, Key={"pk": S(k)}, ConsistentRead=True):
            assert time.monotonic() < deadline, f"the expired item {k} was not deleted"
            time.sleep(0.3)
    for k in (kept, no_ttl, ancient):
        assert "Item" in ddb.get_item(TableName=table, Key={"pk": S(k)}, ConsistentRead=True)
    recs = read_all(streams, ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"], 7)
    removes = sorted((r for r in recs if r["eventName"] == "REMOVE"), key=lambda r: r["dynamodb"]["Keys"]["pk"]["S"])
    assert [r["dynamodb"]["Keys"] for r in removes] == [{"pk": S(gone)}, {"pk": S(later)}]
    for r in removes:
        assert r["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
        assert "exp" in r["dynamodb"]["OldImage"]
    assert all("userIdentity" not in r for r in recs if r["eventName"] != "REMOVE")
    # a user's delete is not marked
    ddb.delete_item(TableName=table, Key={"pk": S(kept)})
    recs = read_all(streams, ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"], 8)
    mine = [r for r in recs if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"] == {"pk": S(kept)}]
    assert len(mine) == 1 and "userIdentity" not in mine[0]
