"""Resource-based policies (PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy) and their
enforcement together with the keys' own policies, black-box with boto3.

The operations' shapes and rules are DynamoDB's (API Reference: PutResourcePolicy,
GetResourcePolicy, DeleteResourcePolicy; Developer Guide: "Resource-based policy
considerations"); enforcement follows IAM's evaluation for requests within one account
(decision 0041). Keys are made with `dynamolog keys`, so the enforcement tests need a Dynamolog
the session starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, wait_active
from .helpers import assert_error, unique
from .test_auth import client_for, create_key, system  # noqa: F401 (the fixture)

pytestmark = pytest.mark.api

ACCOUNT = "000000000000"
REGION = "us-east-1"


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def user_arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stmt(effect: str, principal: Any, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": actions, "Resource": resources}


def eventually(check: Callable[[], Any], timeout_s: float = 10) -> Any:
    """``check()`` once it stops raising (a policy reaches every router like any catalog change;
    DynamoDB documents resource policies as eventually consistent too)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except (ClientError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def key_client(system: Any, endpoint: str, user: str, *allow: str, service: str = "dynamodb") -> Any:
    """A client signing with a new key of ``user`` allowed ``allow``, once the router knows it."""
    args = [a for spec in allow for a in ("--allow", spec)]
    creds = create_key(system, user, *args)
    wait_known(client_for(endpoint, creds))
    return client_for(endpoint, creds, service)


def wait_known(c: Any) -> None:
    """Until the router has seen the new key: any answer but UnrecognizedClientException."""
    def call() -> None:
        try:
            c.describe_limits()
        except ClientError as e:
            if e.response["Error"]["Code"] == "UnrecognizedClientException":
                raise
    eventually(call)


def refused(call: Callable[[], Any], code: str, phrase: str = "") -> Callable[[], None]:
    """A check for :func:`eventually`: ``call()`` fails with ``code`` and ``phrase``."""
    def check() -> None:
        try:
            call()
        except ClientError as e:
            got = e.response["Error"]
            assert got["Code"] == code and phrase in got.get("Message", ""), got
            return
        raise AssertionError(f"no {code}")
    return check


# -- the operations -----------------------------------------------------------------------------
def test_put_get_delete_and_revision_ids(ddb: Any, create_table: TableFactory) -> None:
    # RevisionId comes back from Put, Get and Delete; the same document again keeps its revision
    # (PutResourcePolicy is idempotent); ExpectedRevisionId makes Put and Delete conditional.
    name = create_table()
    arn = table_arn(name)
    first = doc(stmt("Allow", {"AWS": user_arn("nobody")}, ["dynamodb:GetItem"], [arn]))
    rev1 = ddb.put_resource_policy(ResourceArn=arn, Policy=first)["RevisionId"]
    got = ddb.get_resource_policy(ResourceArn=arn)
    assert (got["Policy"], got["RevisionId"]) == (first, rev1)
    assert ddb.put_resource_policy(ResourceArn=arn, Policy=first)["RevisionId"] == rev1

    second = doc(stmt("Allow", {"AWS": user_arn("nobody")}, ["dynamodb:Query"], [arn, arn + "/index/*"]))
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=arn, Policy=second, ExpectedRevisionId="1")
    assert_error(e, "PolicyNotFoundException", "Resource-based policy not found for the provided ResourceArn")
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=arn, Policy=second, ExpectedRevisionId="NO_POLICY")
    assert_error(e, "PolicyNotFoundException")
    assert ddb.get_resource_policy(ResourceArn=arn)["Policy"] == first  # refused: nothing changed
    rev2 = ddb.put_resource_policy(ResourceArn=arn, Policy=second, ExpectedRevisionId=rev1)["RevisionId"]
    assert rev2 != rev1
    got = ddb.get_resource_policy(ResourceArn=arn)
    assert (got["Policy"], got["RevisionId"]) == (second, rev2)

    with pytest.raises(ClientError) as e:
        ddb.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=rev1)
    assert_error(e, "PolicyNotFoundException")
    assert ddb.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=rev2)["RevisionId"] == rev2
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn=arn)
    assert_error(e, "PolicyNotFoundException", f"Resource-based policy not found for the provided ResourceArn: {arn}")
    ddb.delete_resource_policy(ResourceArn=arn)  # idempotent without ExpectedRevisionId
    with pytest.raises(ClientError) as e:
        ddb.delete_resource_policy(ResourceArn=arn, ExpectedRevisionId=rev2)
    assert_error(e, "PolicyNotFoundException")
    # NO_POLICY: attach only if there is none
    assert ddb.put_resource_policy(ResourceArn=arn, Policy=first, ExpectedRevisionId="NO_POLICY")["RevisionId"]


@pytest.mark.parametrize("policy,phrase", [
    ("{not json", "not valid JSON"),
    (doc({"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": ["ARN"]}), "has no Principal"),
    (doc({"Principal": "*", "Action": ["dynamodb:GetItem"], "Resource": ["ARN"]}), "Effect"),
    (doc({"Effect": "Allow", "Principal": "*", "Resource": ["ARN"]}), "has no Action"),
    (doc({"Effect": "Allow", "Principal": "*", "Action": ["dynamodb:GetItem"]}), "has no Resource"),
    (doc(stmt("Allow", "*", ["s3:GetObject"], ["ARN"])), "not a dynamodb: action"),
    (doc(stmt("Allow", {"AWS": "someone"}, ["dynamodb:GetItem"], ["ARN"])), "Invalid principal someone"),
    (doc(stmt("Allow", "*", ["dynamodb:GetItem"], [table_arn("SomeOtherTable")])), "does not match the resource"),
    (doc(stmt("Allow", "*", ["dynamodb:GetItem"], ["*"])), "does not match the resource"),
])
def test_document_rules(ddb: Any, hash_table: str, policy: str, phrase: str) -> None:
    # A document that breaks a rule is refused with a message naming the rule, and changes nothing.
    arn = table_arn(hash_table)
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=arn, Policy=policy.replace('"ARN"', json.dumps(arn)))
    assert_error(e, "ValidationException", phrase)
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn=arn)
    assert_error(e, "PolicyNotFoundException")


def test_policy_size_limit_counts_white_space(ddb: Any, create_table: TableFactory) -> None:
    # 20 KB at most, white space included (Developer Guide, "Resource-based policy considerations").
    arn = table_arn(create_table())
    base = doc(stmt("Allow", "*", ["dynamodb:GetItem"], [arn]))
    fits = base[:-1] + " " * (20 * 1024 - len(base)) + "}"
    assert len(fits) == 20 * 1024
    ddb.put_resource_policy(ResourceArn=arn, Policy=fits)
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=arn, Policy=fits[:-1] + " }")
    assert_error(e, "ValidationException", "exceeds the maximum")
    assert ddb.get_resource_policy(ResourceArn=arn)["Policy"] == fits


def test_unknown_and_malformed_resource_arns(ddb: Any) -> None:
    missing = table_arn(unique("missing"))
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn=missing)
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=missing, Policy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [missing])))
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn="not-an-arn")
    assert_error(e, "ValidationException", "Invalid ResourceArn provided as input not-an-arn")


def test_create_table_with_a_resource_policy_and_gone_with_the_table(ddb: Any) -> None:
    # CreateTable's ResourcePolicy is attached from the start; a policy naming another resource
    # refuses the CreateTable (no table is made); DeleteTable takes the policy with it.
    name = unique("test_rp")
    arn = table_arn(name)
    spec = {"TableName": name, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"}
    with pytest.raises(ClientError) as e:
        ddb.create_table(**spec, ResourcePolicy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [table_arn("Other")])))
    assert_error(e, "ValidationException", "does not match the resource")
    assert name not in ddb.list_tables()["TableNames"]
    policy = doc(stmt("Allow", {"AWS": user_arn("reader")}, ["dynamodb:GetItem"], [arn]))
    ddb.create_table(**spec, ResourcePolicy=policy)
    wait_active(ddb, name)
    assert ddb.get_resource_policy(ResourceArn=arn)["Policy"] == policy
    ddb.delete_table(TableName=name)
    eventually(lambda: _gone(ddb, name), 60)
    ddb.create_table(**spec)
    try:
        with pytest.raises(ClientError) as e:
            ddb.get_resource_policy(ResourceArn=arn)
        assert_error(e, "PolicyNotFoundException")
    finally:
        wait_active(ddb, name)
        ddb.delete_table(TableName=name)


def _gone(ddb: Any, name: str) -> None:
    assert name not in ddb.list_tables()["TableNames"]


def test_stream_policy(ddb: Any, create_table: TableFactory) -> None:
    # A stream has its own policy (its ARN is the resource); a stream policy may only name the
    # stream; the table's policy and the stream's are apart.
    name = create_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    stream = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    with pytest.raises(ClientError) as e:
        ddb.put_resource_policy(ResourceArn=stream,
                                Policy=doc(stmt("Allow", "*", ["dynamodb:GetRecords"], [table_arn(name)])))
    assert_error(e, "ValidationException", "does not match the resource")
    policy = doc(stmt("Allow", {"AWS": user_arn("reader")}, ["dynamodb:DescribeStream", "dynamodb:GetRecords",
                                                           "dynamodb:GetShardIterator"], [stream]))
    rev = ddb.put_resource_policy(ResourceArn=stream, Policy=policy)["RevisionId"]
    got = ddb.get_resource_policy(ResourceArn=stream)
    assert (got["Policy"], got["RevisionId"]) == (policy, rev)
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn=table_arn(name))
    assert_error(e, "PolicyNotFoundException")
    unknown = stream.rsplit("/", 1)[0] + "/2000-01-01T00:00:00.000"
    with pytest.raises(ClientError) as e:
        ddb.get_resource_policy(ResourceArn=unknown)
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


# -- enforcement ----------------------------------------------------------------------------------
def test_resource_policy_allows_a_key_of_the_same_account(system: Any, endpoint: str, ddb: Any,
                                                          create_table: TableFactory) -> None:
    # A key whose own policy allows nothing on the table may do what the table's policy allows
    # its principal (IAM: within one account an Allow in either policy grants), and nothing more;
    # a key the policy does not name gains nothing.
    name = create_table(range=("sk", "N"))
    ddb.update_table(TableName=name, AttributeDefinitions=[{"AttributeName": "v", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "byV", "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "ALL"}}}])
    eventually(lambda: _index_active(ddb, name), 60)
    arn = table_arn(name)
    item = {"pk": {"S": "p"}, "sk": {"N": "1"}, "v": {"S": "x"}}
    ddb.put_item(TableName=name, Item=item)
    user, other = unique("rp_reader"), unique("rp_other")
    c = key_client(system, endpoint, user, "dynamodb:ListTables")
    o = key_client(system, endpoint, other, "dynamodb:ListTables")
    key = {"pk": item["pk"], "sk": item["sk"]}
    with pytest.raises(ClientError) as e:
        c.get_item(TableName=name, Key=key)
    assert_error(e, "AccessDeniedException", f"User: {user_arn(user)} is not authorized to perform: "
                 f"dynamodb:GetItem on resource: {arn} because no identity-based policy allows")
    ddb.put_resource_policy(ResourceArn=arn, Policy=doc(
        stmt("Allow", {"AWS": [user_arn(user)]}, ["dynamodb:GetItem", "dynamodb:Query"], [arn, arn + "/index/*"])))
    assert eventually(lambda: c.get_item(TableName=name, Key=key))["Item"] == item
    got = c.query(TableName=name, IndexName="byV", KeyConditionExpression="v = :v",
                  ExpressionAttributeValues={":v": {"S": "x"}})
    assert got["Items"] == [item]
    with pytest.raises(ClientError) as e:
        c.put_item(TableName=name, Item={**item, "v": {"S": "changed"}})
    assert_error(e, "AccessDeniedException", "dynamodb:PutItem")
    with pytest.raises(ClientError) as e:
        o.get_item(TableName=name, Key=key)
    assert_error(e, "AccessDeniedException", f"User: {user_arn(other)} is not authorized")
    assert ddb.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"] == item

    # Principal "*": every key of the account
    ddb.put_resource_policy(ResourceArn=arn, Policy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [arn])))
    assert eventually(lambda: o.get_item(TableName=name, Key=key))["Item"] == item
    # the account as principal delegates to the keys' own policies: it grants nothing by itself
    ddb.put_resource_policy(ResourceArn=arn, Policy=doc(stmt("Allow", {"AWS": ACCOUNT}, ["dynamodb:GetItem"], [arn])))

    eventually(refused(lambda: o.get_item(TableName=name, Key=key), "AccessDeniedException"))


def _index_active(ddb: Any, name: str) -> None:
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert [i["IndexStatus"] for i in table.get("GlobalSecondaryIndexes", [])] == ["ACTIVE"]


def test_explicit_deny_in_the_resource_policy_wins(system: Any, endpoint: str, ddb: Any,
                                                   create_table: TableFactory) -> None:
    # A key allowed everything by its own policy is refused what the table's policy denies it,
    # with IAM's wording for a resource-based deny; the table's other keys are not affected.
    name = create_table()
    arn = table_arn(name)
    user, other = unique("rp_denied"), unique("rp_free")
    c = key_client(system, endpoint, user, "dynamodb:*")
    o = key_client(system, endpoint, other, "dynamodb:*")
    ddb.put_resource_policy(ResourceArn=arn, Policy=doc(
        stmt("Deny", {"AWS": user_arn(user)}, ["dynamodb:PutItem", "dynamodb:Delete*"], [arn])))
    item = {"pk": {"S": "p"}, "v": {"S": "x"}}

    eventually(refused(lambda: c.put_item(TableName=name, Item=item), "AccessDeniedException",
                       f"User: {user_arn(user)} is not authorized to perform: dynamodb:PutItem on resource: {arn} "
                       "with an explicit deny in a resource-based policy"))
    with pytest.raises(ClientError) as e:
        c.transact_write_items(TransactItems=[{"Delete": {"TableName": name, "Key": {"pk": item["pk"]}}}])
    assert_error(e, "AccessDeniedException", "explicit deny in a resource-based policy")
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": item["pk"]}, ConsistentRead=True)
    c.get_item(TableName=name, Key={"pk": item["pk"]})  # not denied: allowed by the key's own policy
    o.put_item(TableName=name, Item=item)


def test_stream_policy_is_enforced(system: Any, endpoint: str, ddb: Any, create_table: TableFactory) -> None:
    name = create_table(StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    stream = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    user = unique("rp_stream")
    s = key_client(system, endpoint, user, "dynamodb:ListTables", service="dynamodbstreams")
    with pytest.raises(ClientError) as e:
        s.describe_stream(StreamArn=stream)
    assert_error(e, "AccessDeniedException", "dynamodb:DescribeStream")
    ddb.put_resource_policy(ResourceArn=stream, Policy=doc(stmt(
        "Allow", {"AWS": user_arn(user)}, ["dynamodb:DescribeStream", "dynamodb:GetShardIterator",
                                           "dynamodb:GetRecords"], [stream])))
    shards = eventually(lambda: s.describe_stream(StreamArn=stream))["StreamDescription"]["Shards"]
    it = s.get_shard_iterator(StreamArn=stream, ShardId=shards[0]["ShardId"],
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert "Records" in s.get_records(ShardIterator=it)


def test_lock_out_needs_confirmation_and_delete_stays_possible(system: Any, endpoint: str, ddb: Any,
                                                               create_table: TableFactory) -> None:
    # A policy that would deny its own author PutResourcePolicy needs ConfirmRemoveSelfResourceAccess;
    # once attached, the author may no longer change it, but a key its own policy lets delete
    # resource policies still may delete it (DynamoDB keeps the account root able to).
    name = create_table()
    arn = table_arn(name)
    user = unique("rp_owner")
    c = key_client(system, endpoint, user, "dynamodb:*")
    locking = doc(stmt("Deny", {"AWS": user_arn(user)}, ["dynamodb:PutResourcePolicy"], [arn]))
    with pytest.raises(ClientError) as e:
        c.put_resource_policy(ResourceArn=arn, Policy=locking)
    assert_error(e, "ValidationException", "ConfirmRemoveSelfResourceAccess")
    with pytest.raises(ClientError) as e:
        c.get_resource_policy(ResourceArn=arn)
    assert_error(e, "PolicyNotFoundException")
    c.put_resource_policy(ResourceArn=arn, Policy=locking, ConfirmRemoveSelfResourceAccess=True)

    eventually(refused(lambda: c.put_resource_policy(
        ResourceArn=arn, Policy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [arn])),
        ConfirmRemoveSelfResourceAccess=True), "AccessDeniedException",
        f"dynamodb:PutResourcePolicy on resource: {arn} with an explicit deny in a resource-based policy"))
    c.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(ClientError) as e:
        c.get_resource_policy(ResourceArn=arn)
    assert_error(e, "PolicyNotFoundException")


def test_operations_need_their_own_permissions(system: Any, endpoint: str, ddb: Any,
                                               create_table: TableFactory) -> None:
    # Put/Get/DeleteResourcePolicy are actions of their own; CreateTable with a ResourcePolicy
    # also needs dynamodb:PutResourcePolicy (as DynamoDB requires).
    name = create_table()
    arn = table_arn(name)
    user = unique("rp_creator")
    c = key_client(system, endpoint, user, "dynamodb:CreateTable,dynamodb:GetResourcePolicy")
    with pytest.raises(ClientError) as e:
        c.put_resource_policy(ResourceArn=arn, Policy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [arn])))
    assert_error(e, "AccessDeniedException", f"dynamodb:PutResourcePolicy on resource: {arn}")
    with pytest.raises(ClientError) as e:
        c.get_resource_policy(ResourceArn=arn)
    assert_error(e, "PolicyNotFoundException")
    new = unique("test_rpc")
    with pytest.raises(ClientError) as e:
        c.create_table(TableName=new, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       BillingMode="PAY_PER_REQUEST",
                       ResourcePolicy=doc(stmt("Allow", "*", ["dynamodb:GetItem"], [table_arn(new)])))
    assert_error(e, "AccessDeniedException", f"dynamodb:PutResourcePolicy on resource: {table_arn(new)}")
    assert new not in ddb.list_tables()["TableNames"]




def test_explicit_deny_in_the_key_policy_wins_over_a_resource_allow(system: Any, endpoint: str, ddb: Any,
                                                                    create_table: TableFactory,
                                                                    tmp_path: Any) -> None:
    # The other half of "an explicit Deny in either wins": the table's policy allows the key,
    # the key's own policy denies it.
    name = create_table()
    arn = table_arn(name)
    user = unique("rp_self_denied")
    (tmp_path / "p.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:DescribeLimits", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": arn}]}))
    creds = create_key(system, user, "--policy", str(tmp_path / "p.json"))
    c = client_for(endpoint, creds)
    wait_known(c)
    ddb.put_resource_policy(ResourceArn=arn, Policy=doc(
        stmt("Allow", {"AWS": user_arn(user)}, ["dynamodb:GetItem", "dynamodb:Scan"], [arn])))
    eventually(lambda: c.scan(TableName=name))  # the resource policy is in force
    with pytest.raises(ClientError) as e:
        c.get_item(TableName=name, Key={"pk": {"S": "p"}})
    assert_error(e, "AccessDeniedException", f"dynamodb:GetItem on resource: {arn} with an explicit deny in an "
                 "identity-based policy")
