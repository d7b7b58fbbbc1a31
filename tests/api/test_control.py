"""UpdateTable, tags, DescribeLimits and DescribeEndpoints as a DynamoDB client sees them."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import TableFactory, wait_active
from .helpers import assert_error, raw_ddb, unique, unique_table_name  # noqa: F401 (fixture)

pytestmark = pytest.mark.api

HASH = [{"AttributeName": "pk", "KeyType": "HASH"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}]


def pt(r: int, w: int) -> dict[str, int]:
    return {"ReadCapacityUnits": r, "WriteCapacityUnits": w}


def provisioned(create_table: TableFactory, r: int = 5, w: int = 5) -> str:
    return create_table(BillingMode="PROVISIONED", ProvisionedThroughput=pt(r, w))


@pytest.fixture(scope="module")
def fixed(create_table: TableFactory) -> str:
    """A PROVISIONED 5/5 table whose billing no test changes (tag tests use it too)."""
    return provisioned(create_table)


@pytest.fixture(scope="module")
def changing(create_table: TableFactory) -> str:
    """A table whose throughput and billing mode the tests change; each test sets the mode it needs."""
    return provisioned(create_table)


@pytest.fixture(scope="module")
def on_demand(create_table: TableFactory) -> str:
    return create_table()


class Fresh:
    def __init__(self, name: str, created: dict[str, Any], early_update: pytest.ExceptionInfo[ClientError]) -> None:
        self.name = name
        self.created = created
        #: UpdateTable sent right after CreateTable answered, while the table was CREATING
        self.early_update = early_update


@pytest.fixture(scope="module")
def fresh(ddb: Any) -> Iterator[Fresh]:
    """A PROVISIONED 10/10 table created with Tags and updated at once, before it is ACTIVE."""
    name = unique_table_name()
    created = ddb.create_table(TableName=name, KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PROVISIONED",
                               ProvisionedThroughput=pt(10, 10),
                               Tags=[{"Key": "team", "Value": "storage"}, {"Key": "empty", "Value": ""}])
    try:
        with pytest.raises(ClientError) as e:
            ddb.update_table(TableName=name, ProvisionedThroughput=pt(11, 11))
        wait_active(ddb, name)
        yield Fresh(name, created["TableDescription"], e)
    finally:
        try:
            ddb.delete_table(TableName=name)
        except ClientError:
            pass


def describe(ddb: Any, name: str) -> dict[str, Any]:
    return ddb.describe_table(TableName=name)["Table"]  # type: ignore[no-any-return]


def update(ddb: Any, name: str, **kw: Any) -> dict[str, Any]:
    """UpdateTable, then wait until the table is ACTIVE again; returns the answered description."""
    out = ddb.update_table(TableName=name, **kw)["TableDescription"]
    wait_active(ddb, name)
    return out  # type: ignore[no-any-return]


def make_provisioned(ddb: Any, name: str) -> dict[str, Any]:
    """Bring ``name`` to PROVISIONED mode (if it is not) and return its description."""
    desc = describe(ddb, name)
    if desc.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") != "PROVISIONED":
        update(ddb, name, BillingMode="PROVISIONED", ProvisionedThroughput=pt(5, 5))
        desc = describe(ddb, name)
    return desc


def recent(t: Any, within_s: float = 120) -> bool:
    return abs(t.timestamp() - time.time()) < within_s


def arn(ddb: Any, name: str) -> str:
    return describe(ddb, name)["TableArn"]  # type: ignore[no-any-return]


# -- UpdateTable: changes -------------------------------------------------------------------
def test_update_throughput_increase(ddb: Any, changing: str) -> None:
    # Raising capacity answers UPDATING with the new values, then the table is ACTIVE again and
    # reports when the last increase happened.
    before = make_provisioned(ddb, changing)["ProvisionedThroughput"]
    r, w = before["ReadCapacityUnits"] + 1, before["WriteCapacityUnits"] + 2
    answered = update(ddb, changing, ProvisionedThroughput=pt(r, w))
    assert answered["TableStatus"] == "UPDATING"
    after = describe(ddb, changing)
    assert after["TableStatus"] == "ACTIVE"
    assert after["ProvisionedThroughput"]["ReadCapacityUnits"] == r
    assert after["ProvisionedThroughput"]["WriteCapacityUnits"] == w
    assert recent(after["ProvisionedThroughput"]["LastIncreaseDateTime"])


def test_update_throughput_decrease(ddb: Any, changing: str) -> None:
    # Lowering capacity is counted in NumberOfDecreasesToday and dated in LastDecreaseDateTime.
    before = make_provisioned(ddb, changing)["ProvisionedThroughput"]
    if before["ReadCapacityUnits"] < 2:
        update(ddb, changing, ProvisionedThroughput=pt(4, before["WriteCapacityUnits"]))
        before = describe(ddb, changing)["ProvisionedThroughput"]
    update(ddb, changing, ProvisionedThroughput=pt(before["ReadCapacityUnits"] - 1, before["WriteCapacityUnits"]))
    after = describe(ddb, changing)["ProvisionedThroughput"]
    assert after["ReadCapacityUnits"] == before["ReadCapacityUnits"] - 1
    assert after["NumberOfDecreasesToday"] == before["NumberOfDecreasesToday"] + 1
    assert recent(after["LastDecreaseDateTime"])


def test_switch_provisioned_to_on_demand(ddb: Any, changing: str) -> None:
    # PROVISIONED -> PAY_PER_REQUEST: capacity reads 0 and the summary dates the switch.
    make_provisioned(ddb, changing)
    answered = update(ddb, changing, BillingMode="PAY_PER_REQUEST")
    assert answered["TableStatus"] == "UPDATING"
    desc = describe(ddb, changing)
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert recent(desc["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"])
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 0


def test_switch_on_demand_to_provisioned(ddb: Any, create_table: TableFactory) -> None:
    # PAY_PER_REQUEST -> PROVISIONED: the capacity given is kept, and the summary (which a table
    # created PROVISIONED does not have) keeps saying when the table was last on demand.
    name = create_table()
    created_on_demand = describe(ddb, name)["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"]
    answered = update(ddb, name, BillingMode="PROVISIONED", ProvisionedThroughput=pt(7, 3))
    assert answered["TableStatus"] == "UPDATING"
    desc = describe(ddb, name)
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 3
    assert desc["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert desc["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] == created_on_demand
    # and the table still serves data
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    assert ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"] == {"pk": {"S": "a"}}


def test_created_provisioned_table_has_no_billing_summary(ddb: Any, fixed: str) -> None:
    desc = describe(ddb, fixed)
    assert "BillingModeSummary" not in desc
    assert desc["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 5,
                                             "WriteCapacityUnits": 5}


def test_update_table_by_arn(ddb: Any, changing: str) -> None:
    # TableName may be the table's ARN.
    before = make_provisioned(ddb, changing)["ProvisionedThroughput"]
    r = before["ReadCapacityUnits"] + 1
    answered = ddb.update_table(TableName=arn(ddb, changing),
                                ProvisionedThroughput=pt(r, before["WriteCapacityUnits"]))["TableDescription"]
    assert answered["TableName"] == changing
    wait_active(ddb, changing)
    assert describe(ddb, changing)["ProvisionedThroughput"]["ReadCapacityUnits"] == r


def test_decrease_limit(ddb: Any, fresh: Fresh) -> None:
    # Four decreases are allowed at any time of a UTC day; the next one within the hour is refused.
    r = describe(ddb, fresh.name)["ProvisionedThroughput"]["ReadCapacityUnits"]
    for _ in range(4):
        r -= 1
        update(ddb, fresh.name, ProvisionedThroughput=pt(r, 10))
    assert describe(ddb, fresh.name)["ProvisionedThroughput"]["NumberOfDecreasesToday"] == 4
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fresh.name, ProvisionedThroughput=pt(r - 1, 10))
    assert_error(e, "LimitExceededException", "Provisioned throughput decreases are limited within a given UTC day")
    assert "Number of decreases today: 4" in e.value.response["Error"]["Message"]


# -- UpdateTable: refused -------------------------------------------------------------------
def test_update_unknown_table(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=unique_table_name(), ProvisionedThroughput=pt(1, 1))
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_update_nothing(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed)
    assert_error(e, "ValidationException", "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
                 "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")


def test_update_same_throughput(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed, ProvisionedThroughput=pt(5, 5))
    assert_error(e, "ValidationException",
                 "The provisioned throughput for the table will not change. The requested value equals the current "
                 "value. Current ReadCapacityUnits provisioned for the table: 5. Requested ReadCapacityUnits: 5. "
                 "Current WriteCapacityUnits provisioned for the table: 5. Requested WriteCapacityUnits: 5. Refer to "
                 "the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.")


def test_update_same_throughput_with_billing_mode(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed, BillingMode="PROVISIONED", ProvisionedThroughput=pt(5, 5))
    assert_error(e, "ValidationException", "The provisioned throughput for the table will not change")


def test_update_throughput_of_on_demand_table(ddb: Any, on_demand: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=on_demand, ProvisionedThroughput=pt(5, 5))
    assert_error(e, "ValidationException",
                 "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
    assert describe(ddb, on_demand)["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_switch_to_on_demand_with_throughput(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed, BillingMode="PAY_PER_REQUEST", ProvisionedThroughput=pt(6, 6))
    assert_error(e, "ValidationException",
                 "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")


def test_switch_to_provisioned_needs_throughput(ddb: Any, on_demand: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=on_demand, BillingMode="PROVISIONED")
    assert_error(e, "ValidationException",
                 "ProvisionedThroughput must be specified when BillingMode is PROVISIONED")


def test_update_while_creating(fresh: Fresh) -> None:
    assert_error(fresh.early_update, "ResourceInUseException",
                 f"Attempt to change a resource which is still in use: Table is being created: {fresh.name}")


def test_update_bad_billing_mode(raw_ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.update_table(TableName=fixed, BillingMode="FREE")
    assert_error(e, "ValidationException", "Value 'FREE' at 'billingMode' failed to satisfy constraint: Member must "
                 "satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]")


def test_update_zero_capacity(raw_ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.update_table(TableName=fixed, ProvisionedThroughput=pt(0, 5))
    assert_error(e, "ValidationException", "Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 1")


def test_deleting_an_unknown_global_secondary_index_is_refused(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed, AttributeDefinitions=DEFS, GlobalSecondaryIndexUpdates=[
            {"Delete": {"IndexName": "no_such_index"}}])
    assert_error(e, "ResourceNotFoundException", "Index: no_such_index not found")


def test_disabling_a_stream_that_is_not_enabled_is_refused(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=fixed, StreamSpecification={"StreamEnabled": False})
    assert_error(e, "ValidationException", "Table does not have an enabled stream")


# -- tags ---------------------------------------------------------------------------------------
def tags_of(ddb: Any, resource: str) -> dict[str, str]:
    out: dict[str, str] = {}
    kw: dict[str, Any] = {"ResourceArn": resource}
    while True:
        page = ddb.list_tags_of_resource(**kw)
        out.update({t["Key"]: t["Value"] for t in page["Tags"]})
        if "NextToken" not in page:
            return out
        kw["NextToken"] = page["NextToken"]


def test_tag_list_untag(ddb: Any, fixed: str) -> None:
    resource = arn(ddb, fixed)
    a, b = unique("a"), unique("b")
    ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": a, "Value": "1"}, {"Key": b, "Value": ""}])
    tags = tags_of(ddb, resource)
    assert tags[a] == "1" and tags[b] == ""
    ddb.untag_resource(ResourceArn=resource, TagKeys=[a, unique("never_set")])
    tags = tags_of(ddb, resource)
    assert a not in tags and tags[b] == ""
    ddb.untag_resource(ResourceArn=resource, TagKeys=[b])


def test_tag_again_replaces_value(ddb: Any, fixed: str) -> None:
    resource = arn(ddb, fixed)
    k = unique("k")
    ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": k, "Value": "old"}])
    ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": k, "Value": "new"}])
    assert tags_of(ddb, resource)[k] == "new"
    ddb.untag_resource(ResourceArn=resource, TagKeys=[k])


def test_list_tags_pages(ddb: Any, on_demand: str) -> None:
    # Many tags come back in pages linked by NextToken, each tag once.
    resource = arn(ddb, on_demand)
    wanted = {f"page{i:02d}": str(i) for i in range(30)}
    ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])
    try:
        first = ddb.list_tags_of_resource(ResourceArn=resource)
        assert "NextToken" in first and len(first["Tags"]) < 30
        seen: list[str] = []
        kw: dict[str, Any] = {"ResourceArn": resource}
        while True:
            page = ddb.list_tags_of_resource(**kw)
            seen += [t["Key"] for t in page["Tags"]]
            if "NextToken" not in page:
                break
            kw["NextToken"] = page["NextToken"]
        assert sorted(seen) == sorted(wanted)
    finally:
        ddb.untag_resource(ResourceArn=resource, TagKeys=list(wanted))
    assert ddb.list_tags_of_resource(ResourceArn=resource)["Tags"] == []


def test_tags_of_untagged_table(ddb: Any, changing: str) -> None:
    answer = ddb.list_tags_of_resource(ResourceArn=arn(ddb, changing))
    assert answer["Tags"] == [] and "NextToken" not in answer


def test_too_many_tags(ddb: Any, fixed: str) -> None:
    # A table holds at most 50 tags; a request that would make it 51 changes nothing.
    resource = arn(ddb, fixed)
    have = tags_of(ddb, resource)
    added = [f"many{i:02d}" for i in range(50 - len(have))]
    if added:
        ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": k, "Value": "x"} for k in added])
    try:
        with pytest.raises(ClientError) as e:
            ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": unique("one_more"), "Value": "x"}])
        assert_error(e, "ValidationException", "Too many tags")
        assert len(tags_of(ddb, resource)) == 50
        # replacing the value of a tag the table has is still allowed
        if added:
            ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": added[0], "Value": "y"}])
    finally:
        if added:
            ddb.untag_resource(ResourceArn=resource, TagKeys=added)


def test_tag_unknown_table(ddb: Any, fixed: str) -> None:
    resource = arn(ddb, fixed).rsplit("/", 1)[0] + "/" + unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=resource, Tags=[{"Key": "k", "Value": "v"}])
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_untag_unknown_table(ddb: Any, fixed: str) -> None:
    resource = arn(ddb, fixed).rsplit("/", 1)[0] + "/" + unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.untag_resource(ResourceArn=resource, TagKeys=["k"])
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_list_tags_unknown_table(ddb: Any, fixed: str) -> None:
    resource = arn(ddb, fixed).rsplit("/", 1)[0] + "/" + unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.list_tags_of_resource(ResourceArn=resource)
    assert_error(e, "ResourceNotFoundException", "Requested resource not found")


def test_tag_malformed_arn(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn="arn:aws:dynamodb:us-east-1:000000000000:bucket/x1/y", Tags=[
            {"Key": "k", "Value": "v"}])
    assert_error(e, "ValidationException", "Invalid TableArn")


def test_list_tags_malformed_arn(ddb: Any) -> None:
    with pytest.raises(ClientError) as e:
        ddb.list_tags_of_resource(ResourceArn="arn:aws:dynamodb:us-east-1:000000000000:table")
    assert_error(e, "ValidationException", "Invalid TableArn")


def test_tag_key_too_long(raw_ddb: Any, ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.tag_resource(ResourceArn=arn(ddb, fixed), Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert_error(e, "ValidationException", "at 'tags.1.member.key' failed to satisfy constraint: Member must have "
                 "length less than or equal to 128")


def test_tag_key_empty(raw_ddb: Any, ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.tag_resource(ResourceArn=arn(ddb, fixed), Tags=[{"Key": "", "Value": "v"}])
    assert_error(e, "ValidationException", "Member must have length greater than or equal to 1")


def test_tag_value_too_long(raw_ddb: Any, ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        raw_ddb.tag_resource(ResourceArn=arn(ddb, fixed), Tags=[{"Key": "k", "Value": "v" * 257}])
    assert_error(e, "ValidationException", "at 'tags.1.member.value' failed to satisfy constraint: Member must have "
                 "length less than or equal to 256")


def test_tag_nothing(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn(ddb, fixed), Tags=[])
    assert_error(e, "ValidationException", "Atleast one Tag needs to be provided as Input.")


def test_untag_nothing(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.untag_resource(ResourceArn=arn(ddb, fixed), TagKeys=[])
    assert_error(e, "ValidationException", "Atleast one Tag Key needs to be provided as Input.")


def test_tag_reserved_prefix(ddb: Any, fixed: str) -> None:
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn(ddb, fixed), Tags=[{"Key": "aws:owner", "Value": "me"}])
    assert_error(e, "ValidationException", "aws:")


def test_create_table_with_tags(ddb: Any, fresh: Fresh) -> None:
    assert tags_of(ddb, fresh.created["TableArn"]) == {"team": "storage", "empty": ""}


def test_create_table_with_too_many_tags(ddb: Any) -> None:
    name = unique_table_name()
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=name, KeySchema=HASH, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST",
                         Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert_error(e, "ValidationException", "Too many tags")
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert_error(e, "ResourceNotFoundException")


def test_create_table_with_bad_tag(raw_ddb: Any, ddb: Any) -> None:
    name = unique_table_name()
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(TableName=name, KeySchema=HASH, AttributeDefinitions=DEFS,
                             BillingMode="PAY_PER_REQUEST", Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert_error(e, "ValidationException", "Member must have length less than or equal to 128")
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert_error(e, "ResourceNotFoundException")


# -- DescribeLimits, DescribeEndpoints -------------------------------------------------------------
def test_describe_limits(ddb: Any) -> None:
    limits = ddb.describe_limits()
    assert {k: limits[k] for k in ("AccountMaxReadCapacityUnits", "AccountMaxWriteCapacityUnits",
                                   "TableMaxReadCapacityUnits", "TableMaxWriteCapacityUnits")} == {
        "AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}


def test_describe_endpoints(ddb: Any, endpoint: str) -> None:
    # The address answered is the one the request was sent to.
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert endpoints == [{"Address": urllib.parse.urlsplit(endpoint).netloc, "CachePeriodInMinutes": 1440}]
