"""The typed catalog model matches the Avro schemas, and the lookups every service shares."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dynamolog import codec, errors
from dynamolog.catalog import (
    NodeInfo,
    PartitionInfo,
    TableDefinition,
    attribute_types,
    hash_key,
    index_key_names,
    key_names,
    parse_arn,
    partition_index_for_hash,
    table_arn,
)


def _table() -> dict[str, Any]:
    return {
        "table_name": "Music", "table_id": "0b6c7d2e-1111-2222-3333-444455556666",
        "key_schema": [{"attribute_name": "Artist", "key_type": "HASH"},
                       {"attribute_name": "Song", "key_type": "RANGE"}],
        "attribute_definitions": [{"attribute_name": "Artist", "attribute_type": "S"},
                                  {"attribute_name": "Song", "attribute_type": "S"},
                                  {"attribute_name": "Year", "attribute_type": "N"}],
        "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
        "status": "ACTIVE", "created_at_ms": 1_700_000_000_000, "partition_ids": ["0b6c7d2e1111-0"],
        "tags": {"team": "audio"}, "deleted": False, "last_increase_ms": None, "last_decrease_ms": None,
        "decreases_today": 0, "pay_per_request_since_ms": None, "stream_enabled": True,
        "stream_view_type": "NEW_IMAGE", "stream_label": "2023-11-14T22:13:20.000", "stream_created_ms": 1,
        "stream_disabled_ms": None, "ttl_attribute": "expires",
        "global_indexes": [{"index_name": "byYear", "index_id": "0b6c7d2e-1111-2222-3333-444455556666#byYear",
                            "hash_key": "Year", "range_key": None, "projection_type": "INCLUDE",
                            "non_key_attributes": ["Album"], "status": "ACTIVE",
                            "partition_ids": ["0b6c7d2e1111-g1-0"], "read_capacity_units": 0,
                            "write_capacity_units": 0, "created_at_ms": 5}],
        "local_indexes": [{"index_name": "bySong", "range_key": "Year", "projection_type": "ALL",
                           "non_key_attributes": []}],
    }


def test_table_definition_round_trips_through_the_codec() -> None:
    # the typed model and the Avro schema name the same fields: a record survives both ways
    record = codec.decode_table(codec.encode_table(_table()))
    typed = TableDefinition.from_record(record)
    assert typed.to_record() == record
    assert codec.decode_table(codec.encode_table(typed.to_record())) == record
    assert typed.global_indexes[0].non_key_attributes == ("Album",)
    assert typed.key_names() == key_names(typed) == ("Artist", "Song")
    assert typed.attribute_types() == attribute_types(typed) == {"Artist": "S", "Song": "S", "Year": "N"}
    assert typed.arn("eu-west-1") == "arn:aws:dynamodb:eu-west-1:000000000000:table/Music"


def test_partition_info_round_trips_through_the_codec() -> None:
    part = {"partition_id": "p-0", "table_name": "Music", "table_id": "t", "hash_start": 0,
            "hash_end": (1 << 64) - 1, "log_topic": "dyn.t.Music.p-0", "replicas": ["n1", "n2"],
            "leader": "n1", "leader_epoch": 3, "state": "ACTIVE", "parent": None, "children": []}
    record = codec.decode_partition(codec.encode_partition(part))
    assert PartitionInfo.from_record(record).to_record() == record == part


def test_node_info_round_trips_through_the_codec() -> None:
    node = {"node_id": "n1", "rpc_address": "10.0.0.7:7100", "pid": 42, "started_at_ms": 5, "zone": "b"}
    record = codec.decode_node(codec.encode_node(node))
    typed = NodeInfo.from_record(record)
    assert typed.to_record() == record == node
    assert typed.host_port() == ("10.0.0.7", 7100)


def test_key_names_of_tables_and_indexes() -> None:
    t = TableDefinition.from_record(_table())
    assert hash_key(t) == "Artist"
    assert key_names(replace(t, key_schema=t.key_schema[:1])) == ("Artist", None)
    assert index_key_names(t, t.global_indexes[0]) == ("Year", None)
    assert index_key_names(t, t.local_indexes[0]) == ("Artist", "Year")


def test_arn_round_trip_and_errors() -> None:
    assert parse_arn(table_arn("us-east-1", "Music")) == ("us-east-1", "000000000000", "Music")
    with pytest.raises(errors.ApiError) as e:
        parse_arn("arn:aws:dynamodb:us-east-1:000000000000:stream/x")
    assert e.value.type_name == "ValidationException" and "Invalid TableArn" in e.value.message


def test_partition_for_a_hash() -> None:
    starts = [0, 100, 200]
    assert [partition_index_for_hash(starts, h) for h in (0, 99, 100, 199, 200, 2**64 - 1)] == [0, 0, 1, 1, 2, 2]
