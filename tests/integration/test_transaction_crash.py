"""A transaction's coordinator (the router) killed with SIGKILL at every step of the protocol
(docs/transactions.md): afterwards every item of the transaction is either at its new value or
untouched (all of them alike), and no item stays locked.  Real processes, real Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from dynamolog.launcher import health
from tests.api.conftest import make_client, start_system, wait_active

pytestmark = pytest.mark.integration

#: participants resolve an orphaned lock this long after the prepare; longer than a router takes
#: to restart on a loaded machine (about 5 s), so that the test sees the locks before they go
TIMEOUT_MS = 8000
ITEMS = 8


def S(v: str) -> dict[str, str]:
    return {"S": v}


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sysm, url = start_system(kafka_bootstrap, Path(tmp_path_factory.mktemp("txn-crash")),
                             extra_env={"DYNAMOLOG_TXN_TIMEOUT_MS": str(TIMEOUT_MS)})
    try:
        yield sysm, url
    finally:
        sysm.down()


def restart_router(sysm: Any, fault: str | None) -> None:
    sysm.kill_service("router")
    sysm.start_service("router", module=["tests.integration.txn_fault_router", fault] if fault else None)
    port = sysm.state()["port"]
    deadline = time.monotonic() + 60
    while health(port) is None:
        assert time.monotonic() < deadline, "the router did not come back"
        time.sleep(0.1)


def lock_state(ddb: Any, table: str, k: str) -> str:
    """'locked' if a transaction holds the item, else 'free' (the write below never changes it:
    its condition fails on an existing item)."""
    try:
        ddb.update_item(TableName=table, Key={"pk": S(k)}, UpdateExpression="SET probe = :p",
                        ConditionExpression="attribute_not_exists(pk)", ExpressionAttributeValues={":p": S("x")})
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code == "TransactionConflictException":
            return "locked"
        assert code == "ConditionalCheckFailedException", e.response
        return "free"
    raise AssertionError("the probe write must not succeed")


def values(ddb: Any, table: str, keys: list[str]) -> list[str]:
    out = []
    for k in keys:
        item = ddb.get_item(TableName=table, Key={"pk": S(k)}, ConsistentRead=True)["Item"]
        assert "probe" not in item
        out.append(item["v"]["S"])
    return out


@pytest.mark.parametrize("step,committed", [
    ("after_prepare_one", False),
    ("after_prepare", False),
    ("after_decision", True),
    ("after_finish_one", True),
])
def test_coordinator_killed_at_a_step_leaves_all_or_nothing(system: Any, step: str, committed: bool) -> None:
    sysm, url = system
    ddb = make_client(url)
    table = f"crash_{step}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 3000, "WriteCapacityUnits": 3000})
    wait_active(ddb, table)
    keys = [f"{step}-{i}" for i in range(ITEMS)]
    for k in keys:
        ddb.put_item(TableName=table, Item={"pk": S(k), "v": S("old")})

    restart_router(sysm, step)
    once = make_client(url, retries=1, read_timeout=20)
    with pytest.raises((BotoCoreError, ClientError)):
        once.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"pk": S(k)}, "UpdateExpression": "SET v = :n",
                        "ExpressionAttributeValues": {":n": S("new")}}} for k in keys])
    restart_router(sysm, None)

    if not committed:
        # the prepared participants still hold their items: single-item writes meet a conflict,
        # reads see the committed (old) values
        assert "locked" in [lock_state(ddb, table, k) for k in keys]
        assert values(ddb, table, keys) == ["old"] * ITEMS
    if step == "after_prepare":
        # a participant killed while it holds locks rebuilds them from its log
        sysm.kill_service("storage-n1")
        sysm.start_service("storage-n1")

    deadline = time.monotonic() + 30
    while True:
        states = [lock_state(ddb, table, k) for k in keys]
        if states == ["free"] * ITEMS:
            break
        assert time.monotonic() < deadline, f"locks not resolved: {states}"
        time.sleep(0.3)
    assert values(ddb, table, keys) == (["new"] if committed else ["old"]) * ITEMS

    # the table works normally afterwards, transactions included
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": S(k), "v": S("after")}}} for k in keys])
    assert values(ddb, table, keys) == ["after"] * ITEMS


def test_coordinator_killed_after_a_one_phase_commit_a_retry_with_the_token_applies_nothing(system: Any) -> None:
    """A one-partition transaction is applied by its leader in one step, its ClientRequestToken
    with it in the partition's log.  The router killed right after: the client's retry with the
    same token is answered as done and the item is incremented once; the token with another
    request is refused (docs/transactions.md, "One partition: one step")."""
    sysm, url = system
    ddb = make_client(url)
    table = "crash_one_phase"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    wait_active(ddb, table)
    ddb.put_item(TableName=table, Item={"pk": S("k"), "n": {"N": "0"}})
    request = {"TransactItems": [{"Update": {"TableName": table, "Key": {"pk": S("k")},
                                             "UpdateExpression": "ADD n :one",
                                             "ExpressionAttributeValues": {":one": {"N": "1"}}}}],
               "ClientRequestToken": "one-phase-crash-token"}
    restart_router(sysm, "after_one_phase")
    once = make_client(url, retries=1, read_timeout=20)
    with pytest.raises((BotoCoreError, ClientError)):
        once.transact_write_items(**request)
    restart_router(sysm, None)
    ddb.transact_write_items(**request)  # the retry: answered as done
    item = ddb.get_item(TableName=table, Key={"pk": S("k")}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "1"}
    with pytest.raises(ClientError) as e:  # the token with another request
        ddb.transact_write_items(**{**request, "TransactItems": [
            {"Put": {"TableName": table, "Item": {"pk": S("k"), "n": {"N": "9"}}}}]})
    assert e.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
