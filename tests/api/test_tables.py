"""CreateTable, DescribeTable, ListTables, DeleteTable as a DynamoDB client sees them."""

from __future__ import annotations

import datetime
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_active, wait_gone
from .helpers import assert_error, raw_ddb, unique, unique_table_name  # noqa: F401 (fixture)

pytestmark = pytest.mark.api

HASH = [{"AttributeName": "pk", "KeyType": "HASH"}]
HASH_RANGE = HASH + [{"AttributeName": "sk", "KeyType": "RANGE"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}]
DEFS_RANGE = DEFS + [{"AttributeName": "sk", "AttributeType": "N"}]
ACTIVE_WITHIN_S = 10.0
VALID_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")


class Made(NamedTuple):
    name: str
    #: the TableDescription CreateTable answered
    created: dict[str, Any]
    #: seconds from sending CreateTable until DescribeTable said ACTIVE
    active_s: float


@pytest.fixture(scope="module")
def trio(ddb: Any) -> Iterator[dict[str, Made]]:
    """Three tables with one random name prefix, one per CreateTable flavour; shared by the
    creation, description and listing tests so that the module creates only three tables."""
    prefix = unique("test_ls")
    flavours: dict[str, dict[str, Any]] = {
        "hash": dict(KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST"),
        "range": dict(KeySchema=HASH_RANGE, AttributeDefinitions=DEFS_RANGE, BillingMode="PAY_PER_REQUEST"),
        "prov": dict(KeySchema=HASH_RANGE, AttributeDefinitions=DEFS_RANGE, BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 2}),
    }
    made: dict[str, Made] = {}
    try:
        for flavour, args in flavours.items():
            name = f"{prefix}_{flavour}"
            t0 = time.monotonic()
            created = ddb.create_table(TableName=name, **args)["TableDescription"]
            wait_active(ddb, name, timeout_s=120)
            made[flavour] = Made(name, created, time.monotonic() - t0)
        yield made
    finally:
        for m in made.values():
            try:
                ddb.delete_table(TableName=m.name)
            except ClientError:
                pass


def assert_no_table(ddb: Any, name: str) -> None:
    """A refused CreateTable left nothing behind."""
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert_error(e, "ResourceNotFoundException")


def create_refused(client: Any, ddb: Any, code: str, phrase: str, **args: Any) -> str:
    """CreateTable with ``args`` must fail with ``code`` and ``phrase`` and create nothing;
    returns the message."""
    args.setdefault("TableName", unique_table_name())
    try:
        with pytest.raises(ClientError) as e:
            client.create_table(**args)
    except BaseException:
        try:  # accepted by mistake: do not leave the table behind
            ddb.delete_table(TableName=args["TableName"])
        except Exception:
            pass
        raise
    assert_error(e, code, phrase)
    if VALID_NAME.fullmatch(args["TableName"]):
        assert_no_table(ddb, args["TableName"])
    return str(e.value.response["Error"]["Message"])


# -- CreateTable ----------------------------------------------------------------------------
def test_create_hash_only_table(trio: dict[str, Made]) -> None:
    # The simplest table: a partition key only, on demand.
    created = trio["hash"].created
    assert created["TableName"] == trio["hash"].name
    assert created["KeySchema"] == HASH
    assert created["AttributeDefinitions"] == DEFS
    assert created["TableStatus"] in ("CREATING", "ACTIVE")


def test_create_hash_range_table(trio: dict[str, Made]) -> None:
    # A composite primary key: partition key plus sort key.
    created = trio["range"].created
    assert created["KeySchema"] == HASH_RANGE
    assert sorted(created["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == DEFS_RANGE
    assert created["TableStatus"] in ("CREATING", "ACTIVE")
    assert created["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_create_provisioned_table(ddb: Any, trio: dict[str, Made]) -> None:
    # PROVISIONED mode keeps the requested capacity and reports it back.
    created = trio["prov"].created
    assert created["TableStatus"] in ("CREATING", "ACTIVE")
    assert created["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert created["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    desc = ddb.describe_table(TableName=trio["prov"].name)["Table"]
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    assert desc.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"


def test_table_becomes_active_soon(trio: dict[str, Made]) -> None:
    # Clients poll DescribeTable after CreateTable (boto3's table_exists waiter); the table must
    # get ACTIVE quickly (about 1-2 s on Dynamolog).
    for flavour, m in trio.items():
        print(f"{flavour}: ACTIVE {m.active_s:.2f} s after CreateTable")
        assert m.active_s < ACTIVE_WITHIN_S, (flavour, m.active_s)


def test_create_existing_table(ddb: Any, hash_table: str) -> None:
    # A name is taken once; a second CreateTable fails and leaves the first table as it was.
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=hash_table, KeySchema=[{"AttributeName": "other", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "N"}],
                         BillingMode="PAY_PER_REQUEST")
    assert_error(e, "ResourceInUseException", "Table already exists")
    desc = ddb.describe_table(TableName=hash_table)["Table"]
    assert desc["KeySchema"] == HASH
    assert desc["TableStatus"] == "ACTIVE"


def test_create_name_too_short(raw_ddb: Any, ddb: Any) -> None:
    # Table names have 3 to 255 characters; DynamoDB answers with its generic constraint message.
    create_refused(raw_ddb, ddb, "ValidationException",
                   "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
                   "Member must have length greater than or equal to 3",
                   TableName="ab", KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")


def test_create_name_bad_characters(raw_ddb: Any, ddb: Any) -> None:
    # Only [a-zA-Z0-9_.-] may appear in a table name.
    name = "bad name!" + uuid.uuid4().hex[:4]
    create_refused(raw_ddb, ddb, "ValidationException",
                   f"Value '{name}' at 'tableName' failed to satisfy constraint: "
                   "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                   TableName=name, KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")


def test_create_without_key_schema(raw_ddb: Any, ddb: Any) -> None:
    # A table needs a key schema.
    message = create_refused(raw_ddb, ddb, "ValidationException", "",
                             AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")
    assert "keyschema" in message.lower()


def test_create_without_attribute_definitions(raw_ddb: Any, ddb: Any) -> None:
    # Key attributes need their types in AttributeDefinitions.
    message = create_refused(raw_ddb, ddb, "ValidationException", "", KeySchema=HASH, BillingMode="PAY_PER_REQUEST")
    assert "attributedefinitions" in message.lower()


def test_create_two_hash_keys(ddb: Any) -> None:
    # A key schema has exactly one HASH element.
    message = create_refused(
        ddb, ddb, "ValidationException", "",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "HASH"}],
        AttributeDefinitions=DEFS_RANGE, BillingMode="PAY_PER_REQUEST")
    assert "too many hash keys" in message.lower()


def test_create_key_not_defined(ddb: Any) -> None:
    # Every key attribute must appear in AttributeDefinitions.
    create_refused(ddb, ddb, "ValidationException",
                   "One or more parameter values were invalid: Some index key attributes are not defined in "
                   "AttributeDefinitions",
                   KeySchema=HASH, AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}],
                   BillingMode="PAY_PER_REQUEST")


def test_create_extra_attribute_definition(ddb: Any) -> None:
    # AttributeDefinitions may define key attributes only (no indexes here).
    create_refused(ddb, ddb, "ValidationException",
                   "One or more parameter values were invalid: Number of attributes in KeySchema does not "
                   "exactly match number of attributes defined in AttributeDefinitions",
                   KeySchema=HASH, AttributeDefinitions=DEFS + [{"AttributeName": "x", "AttributeType": "S"}],
                   BillingMode="PAY_PER_REQUEST")


def test_create_provisioned_without_throughput(ddb: Any) -> None:
    # PROVISIONED (also the default mode) needs ProvisionedThroughput.
    create_refused(ddb, ddb, "ValidationException",
                   "ReadCapacityUnits and WriteCapacityUnits must both be specified",
                   KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PROVISIONED")


def test_create_default_mode_without_throughput(ddb: Any) -> None:
    # Without BillingMode the table is PROVISIONED, so throughput is required as well (DynamoDB
    # has worded this case differently over time; both wordings name provisioning).
    message = create_refused(ddb, ddb, "ValidationException", "", KeySchema=HASH, AttributeDefinitions=DEFS)
    assert "provisioned" in message.lower()


def test_create_on_demand_with_throughput(ddb: Any) -> None:
    # PAY_PER_REQUEST and ProvisionedThroughput contradict each other.
    create_refused(ddb, ddb, "ValidationException",
                   "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is "
                   "PAY_PER_REQUEST",
                   KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST",
                   ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})


# -- DescribeTable --------------------------------------------------------------------------
def test_describe_table_fields(ddb: Any, trio: dict[str, Made]) -> None:
    # The fields SDKs and tools read from DescribeTable.
    name = trio["range"].name
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["TableName"] == name
    assert desc["KeySchema"] == HASH_RANGE
    assert sorted(desc["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == DEFS_RANGE
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["TableArn"].startswith("arn:aws:dynamodb:")
    assert desc["TableArn"].endswith(f":table/{name}")
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    created = desc["CreationDateTime"]
    assert isinstance(created, datetime.datetime)
    age = datetime.datetime.now(datetime.UTC) - created
    assert datetime.timedelta(minutes=-10) < age < datetime.timedelta(hours=1), created


def test_describe_unknown_table(ddb: Any) -> None:
    # DescribeTable of a name that was never created.
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=unique_table_name())
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


# -- ListTables -----------------------------------------------------------------------------
def test_list_tables_paginated(ddb: Any, trio: dict[str, Made]) -> None:
    # Limit + ExclusiveStartTableName page through the names in order, each exactly once.
    names = sorted(m.name for m in trio.values())
    prefix = names[0].rsplit("_", 1)[0]
    seen: list[str] = []
    start = prefix
    for _ in range(20):
        page = ddb.list_tables(Limit=1, ExclusiveStartTableName=start)
        assert len(page["TableNames"]) <= 1
        seen += page["TableNames"]
        if "LastEvaluatedTableName" not in page or not page["TableNames"][0].startswith(prefix):
            break
        assert page["LastEvaluatedTableName"] == page["TableNames"][-1]
        start = page["LastEvaluatedTableName"]
    assert [n for n in seen if n.startswith(prefix)] == names


def test_list_tables_includes_new_tables(ddb: Any, trio: dict[str, Made]) -> None:
    # A plain ListTables (all pages) shows every table just created.
    listed: list[str] = []
    kw: dict[str, Any] = {}
    while True:
        page = ddb.list_tables(**kw)
        listed += page["TableNames"]
        if "LastEvaluatedTableName" not in page:
            break
        kw["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]
    assert listed == sorted(listed)
    for m in trio.values():
        assert listed.count(m.name) == 1


# -- DeleteTable ----------------------------------------------------------------------------
def test_delete_table(ddb: Any) -> None:
    # DeleteTable answers DELETING, then the table disappears and its data with it.
    name = unique_table_name()
    ddb.create_table(TableName=name, KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST")
    try:
        wait_active(ddb, name, timeout_s=120)
        ddb.put_item(TableName=name, Item={"pk": {"S": "x"}})
    finally:
        desc = ddb.delete_table(TableName=name)["TableDescription"]
    assert desc["TableName"] == name
    assert desc["TableStatus"] == "DELETING"
    wait_gone(ddb, name, timeout_s=120)
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert_error(e, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=name, Key={"pk": {"S": "x"}})
    assert_error(e, "ResourceNotFoundException")
    assert name not in ddb.list_tables(ExclusiveStartTableName=name[:-1], Limit=5)["TableNames"]


def test_delete_unknown_table(ddb: Any) -> None:
    # Deleting a table that does not exist.
    with pytest.raises(ClientError) as e:
        ddb.delete_table(TableName=unique_table_name())
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")
