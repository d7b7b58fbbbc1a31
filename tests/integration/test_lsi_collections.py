"""Local secondary indexes on a replicated partition: the item-collection size limit, and index
entries and collection sizes that survive a leader's death (real processes, kill -9).

Three storage nodes hold the one partition of a table with two local indexes; the system runs
with a small item-collection limit (``DYNAMOLOG_ITEM_COLLECTION_MAX_BYTES``) so that tests reach
it with a few items.  Every replica folds the same log into the same items, index entries and
collection sizes (one digest covers all three).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import make_client, start_system, wait_active
from tests.integration.faults import converged, eventually, leader, replicas

pytestmark = pytest.mark.integration

LIMIT = 20_000
PAD = "x" * 1500


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(
        kafka_bootstrap, Path(tmp_path_factory.mktemp("lsi")), storage_nodes=3, initial_partitions=1,
        extra_env={"DYNAMOLOG_ITEM_COLLECTION_MAX_BYTES": str(LIMIT), "DYNAMOLOG_DEAD_AFTER_S": "2",
                   "DYNAMOLOG_ADMIN_CHECK_S": "0.2"})
    try:
        yield sysm, url
    finally:
        sysm.down()


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


def make_table(url: str, name: str) -> Any:
    ddb = make_client(url)
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                              (("pk", "S"), ("sk", "N"), ("ts", "N"), ("tag", "S"))],
        LocalSecondaryIndexes=[
            {"IndexName": "byTs", "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}]},
            {"IndexName": "byTag", "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "tag", "KeyType": "RANGE"}]},
        ])
    wait_active(ddb, name)
    return ddb


def item(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": S(pk), "sk": N(sk), "ts": N(1000 - sk), "tag": S(f"t{sk:03d}"), "padding": S(PAD)}


def index_sks(ddb: Any, table: str, pk: str, index: str) -> list[int]:
    res = ddb.query(TableName=table, IndexName=index, KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": S(pk)}, ConsistentRead=True)
    return [int(i["sk"]["N"]) for i in res["Items"]]  # in index order


def fill(ddb: Any, table: str, pk: str, start: int = 0) -> list[int]:
    """Put items into one collection until the limit refuses one; the accepted sort keys."""
    accepted: list[int] = []
    for sk in range(start, start + 100):
        try:
            ddb.put_item(TableName=table, Item=item(pk, sk))
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ItemCollectionSizeLimitExceededException", e.response
            assert e.response["Error"]["Message"] == "Collection size exceeded."
            # the refused write changed nothing
            assert "Item" not in ddb.get_item(TableName=table, Key={"pk": S(pk), "sk": N(sk)}, ConsistentRead=True)
            return accepted
        accepted.append(sk)
    raise AssertionError(f"no write refused after {len(accepted)} items of ~1.5 KB (limit {LIMIT} bytes)")


def test_the_item_collection_limit_refuses_growth_and_allows_shrinking(system: Any) -> None:
    _, url = system
    ddb = make_table(url, "lsi_limit")
    accepted = fill(ddb, "lsi_limit", "big")
    # each item counts its size and its two index entries (about 3.3 KB): a handful fit
    assert 4 <= len(accepted) <= 8, accepted
    assert index_sks(ddb, "lsi_limit", "big", "byTs") == accepted[::-1]  # ts falls as sk grows
    assert index_sks(ddb, "lsi_limit", "big", "byTag") == accepted
    # another collection of the same table is not affected
    ddb.put_item(TableName="lsi_limit", Item=item("small", 1))
    # growing an item of the full collection is refused too; shrinking and deleting are not
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName="lsi_limit", Key={"pk": S("big"), "sk": N(accepted[0])},
                        UpdateExpression="SET more = :m", ExpressionAttributeValues={":m": S(PAD)})
    assert e.value.response["Error"]["Code"] == "ItemCollectionSizeLimitExceededException"
    ddb.update_item(TableName="lsi_limit", Key={"pk": S("big"), "sk": N(accepted[0])}, UpdateExpression="REMOVE padding")
    ddb.delete_item(TableName="lsi_limit", Key={"pk": S("big"), "sk": N(accepted[1])})
    # the room freed takes full-size items again, until the collection is full again
    assert 1 <= len(fill(ddb, "lsi_limit", "big", start=500)) <= 3
    # a transaction that would grow the full collection is cancelled with that reason
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "lsi_limit", "Item": item("small", 2)}},
            {"Put": {"TableName": "lsi_limit", "Item": item("big", 600)}},
        ])
    assert e.value.response["Error"]["Code"] == "TransactionCanceledException"
    codes = [r["Code"] for r in e.value.response["CancellationReasons"]]
    assert codes == ["None", "ItemCollectionSizeLimitExceeded"], codes
    assert "Item" not in ddb.get_item(TableName="lsi_limit", Key={"pk": S("small"), "sk": N(2)}, ConsistentRead=True)
    converged(system[0], "lsi_limit")


def test_index_and_collection_sizes_survive_the_leader_being_killed(system: Any) -> None:
    sysm, url = system
    table = "lsi_failover"
    ddb = make_table(url, table)
    accepted = fill(ddb, table, "big")
    for sk in range(5):
        ddb.put_item(TableName=table, Item=item("other", sk))
    ddb.update_item(TableName=table, Key={"pk": S("other"), "sk": N(0)}, UpdateExpression="SET tag = :t",
                    ExpressionAttributeValues={":t": S("zzz")})
    before = converged(sysm, table)
    old, epoch = leader(sysm, table)
    sysm.kill_service(f"storage-{old}")
    eventually(lambda: leader(sysm, table)[0] != old, 30, "a new leader")
    # the new leader's replica holds the same entries, and knows the collection is full
    assert index_sks(ddb, table, "big", "byTs") == accepted[::-1]
    assert index_sks(ddb, table, "other", "byTag") == [1, 2, 3, 4, 0]
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item=item("big", 999))
    assert e.value.response["Error"]["Code"] == "ItemCollectionSizeLimitExceededException"
    ddb.delete_item(TableName=table, Key={"pk": S("big"), "sk": N(accepted[-1])})
    sysm.start_service(f"storage-{old}")
    after = converged(sysm, table)
    assert leader(sysm, table)[1] > epoch
    assert after != before  # the delete reached every replica, the old leader's too
    assert replicas(sysm, table)[1][old]["role"] == "follower"
    assert index_sks(ddb, table, "big", "byTs") == accepted[:-1][::-1]
