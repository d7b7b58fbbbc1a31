"""Request-shape rules found by DynamoDB conformance suites: a required member missing at any
depth of a request, and the ``N validation error(s) detected:`` form of constraint messages.

Which members are required is the API reference's ("Required: Yes" on each member of a request
structure: AttributeDefinition.AttributeType, GlobalSecondaryIndex.Projection,
KeysAndAttributes.Keys, Put.Item, GetItem.Key, Tag.Key); every such absence is one constraint
message in the form ``Value null at '<path>' failed to satisfy constraint: Member must not be
null``, paths spelt with list positions from 1 and ``.member``.  Requests go through a client
with boto3's own parameter validation off, so that they reach the server.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import wait_gone
from .helpers import S, assert_error, raw_ddb, unique, unique_table_name  # noqa: F401 (fixture)

pytestmark = pytest.mark.api

NOT_NULL = "failed to satisfy constraint: Member must not be null"


def refused(call: Any, path: str, **kw: Any) -> None:
    with pytest.raises(ClientError) as e:
        call(**kw)
    assert_error(e, "ValidationException", f"1 validation error detected: Value null at '{path}' {NOT_NULL}")


def test_create_table_attribute_definition_without_type(raw_ddb: Any, ddb: Any) -> None:
    """Found by a fuzzer: this answered HTTP 500.  The table must not appear either."""
    name = unique_table_name()
    refused(raw_ddb.create_table, "attributeDefinitions.1.member.attributeType", TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk"}], BillingMode="PAY_PER_REQUEST")
    wait_gone(ddb, name, timeout_s=1)


def test_create_table_attribute_definition_without_name(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "attributeDefinitions.2.member.attributeName", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")


def test_create_table_key_schema_element_without_key_type(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "keySchema.1.member.keyType", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk"}], AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")


def test_create_table_global_index_without_projection(raw_ddb: Any) -> None:
    refused(raw_ddb.create_table, "globalSecondaryIndexes.1.member.projection", TableName=unique_table_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexes=[{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
            BillingMode="PAY_PER_REQUEST")


def test_get_item_without_key(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.get_item, "key", TableName=hash_table)


def test_missing_members_are_counted_together(raw_ddb: Any) -> None:
    """Several problems are one message with the count and ``; `` between them."""
    with pytest.raises(ClientError) as e:
        raw_ddb.get_item(TableName="ab")
    assert_error(e, "ValidationException", "2 validation errors detected: Value 'ab' at 'tableName' failed to "
                 "satisfy constraint: Member must have length greater than or equal to 3; "
                 f"Value null at 'key' {NOT_NULL}")


def test_batch_get_without_keys(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.batch_get_item, f"requestItems.{hash_table}.member.keys", RequestItems={hash_table: {}})


def test_transact_put_without_item_writes_nothing(raw_ddb: Any, ddb: Any, hash_table: str) -> None:
    k = unique()
    refused(raw_ddb.transact_write_items, "transactItems.2.member.put.item", TransactItems=[
        {"Put": {"TableName": hash_table, "Item": {"pk": S(k)}}}, {"Put": {"TableName": hash_table}}])
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": S(k)}, ConsistentRead=True)


def test_tag_without_key(raw_ddb: Any, ddb: Any, hash_table: str) -> None:
    arn = ddb.describe_table(TableName=hash_table)["Table"]["TableArn"]
    refused(raw_ddb.tag_resource, "tags.1.member.key", ResourceArn=arn, Tags=[{"Value": "v"}])


def test_update_time_to_live_without_enabled(raw_ddb: Any, hash_table: str) -> None:
    refused(raw_ddb.update_time_to_live, "timeToLiveSpecification.enabled", TableName=hash_table,
            TimeToLiveSpecification={"AttributeName": "t"})
