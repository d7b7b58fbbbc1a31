"""TransactWriteItems, TransactGetItems and ExecuteTransaction, black box (DynamoDB Developer
Guide, "Amazon DynamoDB Transactions"; API Reference TransactWriteItems / TransactGetItems /
ExecuteTransaction)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import S, assert_error, get, raw_ddb, unique  # noqa: F401 - raw_ddb is a fixture

#: a table provisioned for 3,000 writes/s spans several partitions (DynamoDB: 1,000 WCU each)
WIDE = {"BillingMode": "PROVISIONED", "ProvisionedThroughput": {"ReadCapacityUnits": 3000, "WriteCapacityUnits": 3000}}


@pytest.fixture(scope="module")
def wide_table(create_table: Any) -> str:
    return str(create_table(**WIDE))


@pytest.fixture(scope="module")
def other_table(create_table: Any) -> str:
    return str(create_table(range=("sk", "N")))


def N(v: int) -> dict[str, str]:
    return {"N": str(v)}


def reasons(e: pytest.ExceptionInfo[ClientError]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = e.value.response["CancellationReasons"]
    return out


def test_write_across_partitions_and_tables_commits_every_action(ddb: Any, wide_table: str, other_table: str) -> None:
    keys = [unique() for _ in range(8)]
    for k in keys[4:]:
        ddb.put_item(TableName=wide_table, Item={"pk": S(k), "n": N(1)})
    other = unique()
    ddb.put_item(TableName=other_table, Item={"pk": S(other), "sk": N(1), "gate": S("open")})
    actions: list[dict[str, Any]] = [{"Put": {"TableName": wide_table, "Item": {"pk": S(k), "v": S("new")}}}
                                     for k in keys[:4]]
    actions += [{"Update": {"TableName": wide_table, "Key": {"pk": S(keys[4])}, "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": N(1)}}},
                {"Delete": {"TableName": wide_table, "Key": {"pk": S(keys[5])},
                            "ConditionExpression": "attribute_exists(pk)"}},
                {"ConditionCheck": {"TableName": other_table, "Key": {"pk": S(other), "sk": N(1)},
                                    "ConditionExpression": "gate = :o", "ExpressionAttributeValues": {":o": S("open")}}}]
    assert ddb.transact_write_items(TransactItems=actions)["ResponseMetadata"]["HTTPStatusCode"] == 200
    for k in keys[:4]:
        assert get(ddb, wide_table, {"pk": S(k)}) == {"pk": S(k), "v": S("new")}
    assert get(ddb, wide_table, {"pk": S(keys[4])}) == {"pk": S(keys[4]), "n": N(2)}
    assert get(ddb, wide_table, {"pk": S(keys[5])}) is None
    assert get(ddb, wide_table, {"pk": S(keys[6])}) == {"pk": S(keys[6]), "n": N(1)}
    # the items are free again: single-item writes succeed at once
    for k in keys[:6]:
        ddb.put_item(TableName=wide_table, Item={"pk": S(k), "after": S("yes")})


def test_a_failed_condition_cancels_every_action_with_one_reason_per_item(ddb: Any, wide_table: str) -> None:
    a, b, c = unique(), unique(), unique()
    ddb.put_item(TableName=wide_table, Item={"pk": S(b), "n": N(5)})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": wide_table, "Item": {"pk": S(a), "v": S("x")}}},
            {"Update": {"TableName": wide_table, "Key": {"pk": S(b)}, "UpdateExpression": "SET n = :z",
                        "ConditionExpression": "n > :ten", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeValues": {":z": N(0), ":ten": N(10)}}},
            {"Delete": {"TableName": wide_table, "Key": {"pk": S(c)}}},
        ])
    assert_error(e, "TransactionCanceledException",
                 "Transaction cancelled, please refer cancellation reasons for specific reasons "
                 "[None, ConditionalCheckFailed, None]")
    got = reasons(e)
    assert [r["Code"] for r in got] == ["None", "ConditionalCheckFailed", "None"]
    assert got[1]["Message"] == "The conditional request failed"
    assert got[1]["Item"] == {"pk": S(b), "n": N(5)}
    assert get(ddb, wide_table, {"pk": S(a)}) is None
    assert get(ddb, wide_table, {"pk": S(b)}) == {"pk": S(b), "n": N(5)}
    # nothing stays locked after a cancellation
    ddb.put_item(TableName=wide_table, Item={"pk": S(a)})
    ddb.put_item(TableName=wide_table, Item={"pk": S(b), "n": N(6)})


def test_condition_check_failure_without_return_values_has_no_item(ddb: Any, wide_table: str) -> None:
    k = unique()
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": wide_table, "Key": {"pk": S(k)},
                                "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": wide_table, "Item": {"pk": S(unique())}}},
        ])
    got = reasons(e)
    assert got[0]["Code"] == "ConditionalCheckFailed" and "Item" not in got[0]
    assert got[1] == {"Code": "None"}


def test_an_update_operand_of_the_wrong_type_is_a_validation_reason(ddb: Any, wide_table: str) -> None:
    k = unique()
    ddb.put_item(TableName=wide_table, Item={"pk": S(k), "s": S("text")})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": wide_table, "Key": {"pk": S(k)}, "UpdateExpression": "SET s = s + :one",
                        "ExpressionAttributeValues": {":one": N(1)}}},
        ])
    got = reasons(e)
    assert got[0]["Code"] == "ValidationError"
    assert "An operand in the update expression has an incorrect data type" in got[0]["Message"]
    assert get(ddb, wide_table, {"pk": S(k)}) == {"pk": S(k), "s": S("text")}


def test_two_operations_on_one_item_are_refused(ddb: Any, wide_table: str) -> None:
    k = unique()
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": wide_table, "Item": {"pk": S(k)}}},
            {"Delete": {"TableName": wide_table, "Key": {"pk": S(k)}}},
        ])
    assert_error(e, "ValidationException", "Transaction request cannot include multiple operations on one item")
    assert get(ddb, wide_table, {"pk": S(k)}) is None


def test_item_count_limits(raw_ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": wide_table, "Item": {"pk": S(unique())}}} for _ in range(101)])
    assert_error(e, "ValidationException", "Member must have length less than or equal to 100")
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_write_items(TransactItems=[])
    assert_error(e, "ValidationException", "Member must have length greater than or equal to 1")
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_get_items(TransactItems=[
            {"Get": {"TableName": wide_table, "Key": {"pk": S(unique())}}} for _ in range(101)])
    assert_error(e, "ValidationException", "Member must have length less than or equal to 100")


def test_one_hundred_items_commit(ddb: Any, wide_table: str) -> None:
    keys = [unique() for _ in range(100)]
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": wide_table, "Item": {"pk": S(k), "i": N(i)}}} for i, k in enumerate(keys)])
    got = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": wide_table, "Key": {"pk": S(k)}}} for k in keys])["Responses"]
    assert [r["Item"]["i"]["N"] for r in got] == [str(i) for i in range(100)]


def test_an_entry_must_hold_exactly_one_action(raw_ddb: Any, wide_table: str) -> None:
    k = unique()
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": wide_table, "Item": {"pk": S(k)}},
             "Delete": {"TableName": wide_table, "Key": {"pk": S(unique())}}}])
    assert_error(e, "ValidationException", "TransactItems can only contain one of Check, Put, Update or Delete")


def test_condition_check_needs_a_condition_and_update_an_expression(raw_ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": wide_table, "Key": {"pk": S(unique())}}}])
    assert_error(e, "ValidationException", "conditionCheck.conditionExpression' failed to satisfy constraint: "
                                           "Member must not be null")


def test_a_missing_table_is_resource_not_found(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": unique("missing_"), "Item": {"pk": S("a")}}}])
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_an_update_of_a_key_attribute_is_refused(ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": wide_table, "Key": {"pk": S(unique())}, "UpdateExpression": "SET pk = :v",
                        "ExpressionAttributeValues": {":v": S("x")}}}])
    assert_error(e, "ValidationException", "Cannot update attribute pk. This attribute is part of the key")


def test_client_request_token_makes_a_retry_a_no_op(ddb: Any, wide_table: str) -> None:
    k = unique()
    token = str(uuid.uuid4())
    request = {"TransactItems": [{"Update": {"TableName": wide_table, "Key": {"pk": S(k)},
                                             "UpdateExpression": "ADD n :one",
                                             "ExpressionAttributeValues": {":one": N(1)}}}],
               "ClientRequestToken": token}
    ddb.transact_write_items(**request)
    ddb.transact_write_items(**request)
    assert get(ddb, wide_table, {"pk": S(k)}) == {"pk": S(k), "n": N(1)}
    changed = dict(request)
    changed["TransactItems"] = [{"Update": {"TableName": wide_table, "Key": {"pk": S(k)},
                                            "UpdateExpression": "ADD n :two",
                                            "ExpressionAttributeValues": {":two": N(2)}}}]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(**changed)
    assert_error(e, "IdempotentParameterMismatchException")
    assert get(ddb, wide_table, {"pk": S(k)}) == {"pk": S(k), "n": N(1)}


def test_client_request_token_length(raw_ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.transact_write_items(ClientRequestToken="x" * 37, TransactItems=[
            {"Put": {"TableName": wide_table, "Item": {"pk": S(unique())}}}])
    assert_error(e, "ValidationException", "Member must have length less than or equal to 36")


def test_consumed_capacity_is_two_units_per_kb_per_item(ddb: Any, wide_table: str, other_table: str) -> None:
    res = ddb.transact_write_items(ReturnConsumedCapacity="TOTAL", TransactItems=[
        {"Put": {"TableName": wide_table, "Item": {"pk": S(unique()), "blob": S("x" * 1500)}}},
        {"Put": {"TableName": other_table, "Item": {"pk": S(unique()), "sk": N(1)}}},
    ])
    by_table = {c["TableName"]: c for c in res["ConsumedCapacity"]}
    assert by_table[wide_table]["CapacityUnits"] == 4.0
    assert by_table[wide_table]["WriteCapacityUnits"] == 4.0
    assert by_table[other_table]["CapacityUnits"] == 2.0


def test_transact_get_items_returns_items_in_request_order(ddb: Any, wide_table: str, other_table: str) -> None:
    a, b, missing = unique(), unique(), unique()
    ddb.put_item(TableName=wide_table, Item={"pk": S(a), "x": S("1"), "y": S("2")})
    ddb.put_item(TableName=other_table, Item={"pk": S(b), "sk": N(3), "z": S("3")})
    res = ddb.transact_get_items(ReturnConsumedCapacity="TOTAL", TransactItems=[
        {"Get": {"TableName": other_table, "Key": {"pk": S(b), "sk": N(3)}}},
        {"Get": {"TableName": wide_table, "Key": {"pk": S(missing)}}},
        {"Get": {"TableName": wide_table, "Key": {"pk": S(a)}, "ProjectionExpression": "#y",
                 "ExpressionAttributeNames": {"#y": "y"}}},
    ])
    assert res["Responses"] == [{"Item": {"pk": S(b), "sk": N(3), "z": S("3")}}, {}, {"Item": {"y": S("2")}}]
    units = {c["TableName"]: c["CapacityUnits"] for c in res["ConsumedCapacity"]}
    assert units == {other_table: 2.0, wide_table: 4.0}


def test_transact_get_items_validates_keys(ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": wide_table, "Key": {"pk": N(1)}}}])
    assert_error(e, "ValidationException", "The provided key element does not match the schema")


def test_execute_transaction_writes_all_or_nothing(ddb: Any, wide_table: str) -> None:
    a, b = unique(), unique()
    ddb.execute_transaction(TransactStatements=[
        {"Statement": f'INSERT INTO "{wide_table}" VALUE {{\'pk\': ?, \'n\': 1}}', "Parameters": [S(a)]},
        {"Statement": f'INSERT INTO "{wide_table}" VALUE {{\'pk\': ?, \'n\': 2}}', "Parameters": [S(b)]},
    ])
    assert get(ddb, wide_table, {"pk": S(a)}) == {"pk": S(a), "n": N(1)}
    c = unique()
    with pytest.raises(ClientError) as e:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": f'UPDATE "{wide_table}" SET n = 10 WHERE pk = ?', "Parameters": [S(b)]},
            {"Statement": f'INSERT INTO "{wide_table}" VALUE {{\'pk\': ?}}', "Parameters": [S(a)]},
            {"Statement": f'INSERT INTO "{wide_table}" VALUE {{\'pk\': ?}}', "Parameters": [S(c)]},
        ])
    assert_error(e, "TransactionCanceledException", "[None, DuplicateItem, None]")
    assert [r["Code"] for r in reasons(e)] == ["None", "DuplicateItem", "None"]
    assert get(ddb, wide_table, {"pk": S(b)}) == {"pk": S(b), "n": N(2)}
    assert get(ddb, wide_table, {"pk": S(c)}) is None


def test_execute_transaction_reads(ddb: Any, wide_table: str) -> None:
    a = unique()
    ddb.put_item(TableName=wide_table, Item={"pk": S(a), "n": N(7)})
    res = ddb.execute_transaction(TransactStatements=[
        {"Statement": f'SELECT n FROM "{wide_table}" WHERE pk = ?', "Parameters": [S(a)]},
        {"Statement": f'SELECT * FROM "{wide_table}" WHERE pk = ?', "Parameters": [S(unique())]},
    ])
    assert res["Responses"] == [{"Item": {"n": N(7)}}, {}]


def test_execute_transaction_refuses_reads_mixed_with_writes(ddb: Any, wide_table: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": f'SELECT * FROM "{wide_table}" WHERE pk = ?', "Parameters": [S(unique())]},
            {"Statement": f'DELETE FROM "{wide_table}" WHERE pk = ?', "Parameters": [S(unique())]},
        ])
    assert_error(e, "ValidationException")


def test_concurrent_transfers_keep_the_total_and_reads_see_whole_transactions(endpoint: str, wide_table: str) -> None:
    """Bank transfers between accounts as transactions, from several clients at once, with
    TransactGetItems reading all accounts meanwhile: every read sees the same total (no transfer
    half-applied) and the total is kept at the end."""
    import random
    import threading
    import time

    from .conftest import make_client

    accounts = [unique("acct") for _ in range(4)]
    setup = make_client(endpoint)
    for a in accounts:
        setup.put_item(TableName=wide_table, Item={"pk": S(a), "bal": N(100)})
    totals: list[int] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            outcomes[what] = outcomes.get(what, 0) + 1

    def transfers(seed: int) -> None:
        ddb = make_client(endpoint)
        rnd = random.Random(seed)
        for _ in range(12):
            src, dst = rnd.sample(accounts, 2)
            amount = rnd.randint(1, 60)
            try:
                ddb.transact_write_items(TransactItems=[
                    {"Update": {"TableName": wide_table, "Key": {"pk": S(src)}, "UpdateExpression": "ADD bal :m",
                                "ConditionExpression": "bal >= :a",
                                "ExpressionAttributeValues": {":m": N(-amount), ":a": N(amount)}}},
                    {"Update": {"TableName": wide_table, "Key": {"pk": S(dst)}, "UpdateExpression": "ADD bal :a",
                                "ExpressionAttributeValues": {":a": N(amount)}}}])
                note("committed")
            except ClientError as e:
                note(e.response["Error"]["Code"])

    def reader() -> None:
        ddb = make_client(endpoint)
        for _ in range(300):
            if len(totals) >= 10 or (len(totals) >= 3 and not any(t.is_alive() for t in threads[:4])):
                return
            try:
                got = ddb.transact_get_items(TransactItems=[
                    {"Get": {"TableName": wide_table, "Key": {"pk": S(a)}}} for a in accounts])["Responses"]
            except ClientError as e:
                assert e.response["Error"]["Code"] == "TransactionCanceledException"
                continue
            with lock:
                totals.append(sum(int(r["Item"]["bal"]["N"]) for r in got))
            time.sleep(0.01)

    threads = [threading.Thread(target=transfers, args=(i,)) for i in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert outcomes.get("committed", 0) > 0, outcomes
    assert set(outcomes) <= {"committed", "TransactionCanceledException"}, outcomes
    assert totals and set(totals) == {400}, totals
    final = [int(setup.get_item(TableName=wide_table, Key={"pk": S(a)}, ConsistentRead=True)["Item"]["bal"]["N"])
             for a in accounts]
    assert sum(final) == 400 and min(final) >= 0, final
