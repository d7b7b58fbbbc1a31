"""Round-trip tests for the Avro codecs (dynamolog.codec)."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamolog.codec import (
    decode_log_record,
    decode_partition,
    decode_table,
    encode_log_record,
    encode_partition,
    encode_table,
)

_b64 = st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())
_num = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9).map(
    lambda d: (
        format(d.normalize(), "f").rstrip("0").rstrip(".")
        if "." in format(d.normalize(), "f")
        else format(d.normalize(), "f")
    )
)
_scalar = st.one_of(
    st.text(max_size=10).map(lambda s: {"S": s}),
    _num.map(lambda n: {"N": n}),
    _b64.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True).map(lambda x: {"SS": x}),
    st.lists(_num, min_size=1, max_size=4, unique=True).map(lambda x: {"NS": x}),
    st.lists(_b64, min_size=1, max_size=4, unique=True).map(lambda x: {"BS": x}),
)
_values = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda x: {"L": x}),
        st.dictionaries(st.text(max_size=5), inner, max_size=4).map(lambda x: {"M": x}),
    ),
    max_leaves=20,
)
_items = st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6)


def _log(new: Any, old: Any) -> dict[str, Any]:
    return {
        "op": "PUT",
        "key": b"\x00\x01key",
        "new_image": new,
        "old_image": old,
        "timestamp_ms": 1700000000000,
        "origin_region": "us-east-1",
        "transaction_id": None,
        "leader_epoch": 7,
        "request_id": "r-1",
        "txn_action": None,
        "txn_deadline_ms": None,
        "system_principal": None,
        "fence_offset": 41,
    }


@settings(max_examples=200)
@given(_items, st.one_of(st.none(), _items))
def test_log_record_round_trip(new: dict, old: dict | None) -> None:
    rec = _log(new, old)
    assert decode_log_record(encode_log_record(rec)) == rec


def test_deep_nesting_and_sets() -> None:
    av: dict[str, Any] = {"SS": ["a", "b"]}
    for i in range(32):
        av = (
            {"M": {"x": av, "n": {"N": str(i)}}}
            if i % 2
            else {"L": [av, {"BS": ["AAE=", ""]}, {"NS": ["-1.5"]}]}
        )
    item = {"deep": av, "b": {"B": ""}, "z": {"NULL": True}, "t": {"BOOL": False}}
    rec = _log(item, item) | {"op": "DELETE", "new_image": None, "transaction_id": "tx"}
    assert decode_log_record(encode_log_record(rec)) == rec


def test_table_round_trip() -> None:
    d = {
        "table_name": "T",
        "table_id": "2f1c0a3e-0000-4000-8000-000000000000",
        "key_schema": [
            {"attribute_name": "pk", "key_type": "HASH"},
            {"attribute_name": "sk", "key_type": "RANGE"},
        ],
        "attribute_definitions": [
            {"attribute_name": "pk", "attribute_type": "S"},
            {"attribute_name": "sk", "attribute_type": "N"},
        ],
        "billing_mode": "PAY_PER_REQUEST",
        "read_capacity_units": 0,
        "write_capacity_units": 0,
        "status": "ACTIVE",
        "created_at_ms": 1700000000000,
        "partition_ids": ["p0", "p1"],
        "tags": {"k": "v"},
        "deleted": False,
    }
    added = {"last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0,
             "pay_per_request_since_ms": None, **STREAM_TTL_DEFAULTS}
    assert decode_table(encode_table(d)) == d | added
    full = d | {"last_increase_ms": 1, "last_decrease_ms": 2, "decreases_today": 3, "pay_per_request_since_ms": 4,
                "stream_enabled": True, "stream_view_type": "NEW_IMAGE", "stream_label": "2026-11-27T14:00:00.000",
                "stream_created_ms": 5, "stream_disabled_ms": None, "ttl_attribute": "expires",
                "global_indexes": [{"index_name": "byX", "index_id": "id#byX", "hash_key": "x", "range_key": None,
                                    "projection_type": "INCLUDE", "non_key_attributes": ["a"], "status": "ACTIVE",
                                    "partition_ids": ["p9"], "read_capacity_units": 0, "write_capacity_units": 0,
                                    "created_at_ms": 7, "max_read_request_units": 30,
                                    "max_write_request_units": None, "more_hash_keys": ["x2", "x3"],
                                    "more_range_keys": ["r1"], "warm_read_units": None,
                                    "warm_write_units": 9000}],
                "local_indexes": [{"index_name": "byY", "range_key": "y", "projection_type": "KEYS_ONLY",
                                   "non_key_attributes": []}],
                "max_read_request_units": None, "max_write_request_units": 40,
                "pitr_enabled": True, "pitr_recovery_days": 3, "pitr_enabled_ms": 8, "restoring": True,
                "restore_summary": '{"SourceBackupArn": "arn"}',
                "resource_policies": {"": '{"policy": "{}", "revision": "1"}'},
                "warm_read_units": 20000, "warm_write_units": None}
    assert decode_table(encode_table(full)) == full
    minimal = {k: v for k, v in d.items() if k not in ("tags", "deleted")}
    assert decode_table(encode_table(minimal)) == minimal | {"tags": {}, "deleted": False} | added


def test_table_written_by_an_earlier_schema_version_still_decodes() -> None:
    # Records stay in Kafka for as long as the table lives: bytes written with version 1 of
    # TableDefinition (before the UpdateTable fields) must decode, with the added fields' defaults.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    v1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v1.avsc").read_text()))
    d = {
        "table_name": "Old", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PROVISIONED", "read_capacity_units": 5, "write_capacity_units": 5,
        "status": "ACTIVE", "created_at_ms": 1, "partition_ids": ["p"], "tags": {"a": "b"}, "deleted": False,
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, d)
    assert decode_table(buf.getvalue()) == d | {
        "last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0, "pay_per_request_since_ms": None,
        **STREAM_TTL_DEFAULTS}


def test_table_v6_bytes_decode_with_the_backup_fields_defaults() -> None:
    # Tables written before point-in-time recovery and restores (v6) must decode: recovery off,
    # not restoring.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    v6 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v6.avsc").read_text()))
    d = {
        "table_name": "Old", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
        "status": "ACTIVE", "created_at_ms": 1, "partition_ids": ["p"], "tags": {}, "deleted": False,
        "last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0, "pay_per_request_since_ms": None,
        "stream_enabled": False, "stream_view_type": None, "stream_label": None, "stream_created_ms": None,
        "stream_disabled_ms": None, "ttl_attribute": None, "global_indexes": [], "local_indexes": [],
        "max_read_request_units": None, "max_write_request_units": None,
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v6, d)
    decoded = decode_table(buf.getvalue())
    assert decoded == d | STREAM_TTL_DEFAULTS | {k: v for k, v in d.items() if k in STREAM_TTL_DEFAULTS}
    assert (decoded["pitr_enabled"], decoded["restoring"], decoded["restore_summary"]) == (False, False, None)
    new = d | {"pitr_enabled": True, "pitr_recovery_days": 7, "pitr_enabled_ms": 5, "restoring": True,
               "restore_summary": "{}"}
    assert decode_table(encode_table(new)) == new | {"resource_policies": {}} | WARM_NONE


def test_table_v7_bytes_decode_without_resource_policies() -> None:
    # Tables written before resource-based policies (v7) must decode with none.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    v7 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v7.avsc").read_text()))
    d = {
        "table_name": "Old", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
        "status": "ACTIVE", "created_at_ms": 1, "partition_ids": ["p"], "tags": {}, "deleted": False,
        "last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0, "pay_per_request_since_ms": None,
        **{k: v for k, v in STREAM_TTL_DEFAULTS.items() if k != "resource_policies"},
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v7, d)
    assert decode_table(buf.getvalue()) == d | {"resource_policies": {}}
    new = d | {"resource_policies": {"": '{"policy": "{}", "revision": "5"}'}}
    assert decode_table(encode_table(new)) == new


def test_log_record_v1_bytes_decode_and_transaction_records_round_trip() -> None:
    # LogRecord v1 (before transactions) must decode, with the transaction fields' defaults.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    named: dict[str, Any] = {}
    fastavro.parse_schema(json.loads((SCHEMA_DIR / "AttributeValue.avsc").read_text()), named_schemas=named)
    v1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "LogRecord.v1.avsc").read_text()),
                               named_schemas=named)
    old = {k: v for k, v in _log(None, None).items() if not k.startswith("txn_")} | {"op": "DELETE"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, old)
    assert decode_log_record(buf.getvalue()) == old | {"txn_action": None, "txn_deadline_ms": None,
                                                       "system_principal": None, "fence_offset": -1}
    item = {"pk": {"S": "a"}, "n": {"N": "1"}}
    for op, action in (("PREPARE", "PUT"), ("TXN_COMMIT", "DELETE"), ("TXN_ABORT", "CHECK")):
        rec = _log(item, None) | {"op": op, "transaction_id": "a" * 32, "txn_action": action,
                                  "txn_deadline_ms": 1700000001000}
        assert decode_log_record(encode_log_record(rec)) == rec


def test_log_record_v3_bytes_decode_as_written_before_terms_and_fence_records_round_trip() -> None:
    # LogRecord v3 (written under Kafka transactions) decodes with fence_offset -1: the term
    # rule counts it before any FENCE of its epoch (dynamolog/fencing.py)
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    named: dict[str, Any] = {}
    fastavro.parse_schema(json.loads((SCHEMA_DIR / "AttributeValue.avsc").read_text()), named_schemas=named)
    v3 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "LogRecord.v3.avsc").read_text()),
                               named_schemas=named)
    old = {k: v for k, v in _log(None, None).items() if k != "fence_offset"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v3, old)
    assert decode_log_record(buf.getvalue()) == old | {"fence_offset": -1}
    for op in ("FENCE", "BARRIER"):
        rec = _log(None, None) | {"op": op, "key": b""}
        assert decode_log_record(encode_log_record(rec)) == rec


def test_log_record_v4_bytes_decode_and_seal_records_round_trip() -> None:
    # LogRecord v5 only adds the SEAL symbol at the end of the op enum: records written by v4
    # decode unchanged, and a SEAL record (the end of a split partition's log) round-trips
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    named: dict[str, Any] = {}
    fastavro.parse_schema(json.loads((SCHEMA_DIR / "AttributeValue.avsc").read_text()), named_schemas=named)
    v4 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "LogRecord.v4.avsc").read_text()),
                               named_schemas=named)
    old = _log(None, None) | {"op": "BARRIER", "key": b""}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v4, old)
    assert decode_log_record(buf.getvalue()) == old
    seal = _log(None, None) | {"op": "SEAL", "key": b""}
    assert decode_log_record(encode_log_record(seal)) == seal


@settings(max_examples=100)
@given(_items, st.one_of(st.none(), _items))
def test_log_record_v5_bytes_with_avro_map_images_still_decode(new: dict, old: dict | None) -> None:
    # LogRecord v6 writes an image as the item's DynamoDB JSON (decision 0052); records written by
    # v5 hold each image as a map of AttributeValue, and read back as the same wire-form items
    import io
    import json

    import fastavro
    import orjson

    from dynamolog.codec import SCHEMA_DIR, image_to_avro

    named: dict[str, Any] = {}
    fastavro.parse_schema(json.loads((SCHEMA_DIR / "AttributeValue.avsc").read_text()), named_schemas=named)
    v5 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "LogRecord.v5.avsc").read_text()),
                               named_schemas=named)
    rec = _log(new, old)
    written = rec | {"new_image": ("map", image_to_avro(new)),
                     "old_image": None if old is None else ("map", image_to_avro(old))}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v5, written)
    assert decode_log_record(buf.getvalue()) == rec
    # what v6 writes: the images' JSON, byte for byte what orjson makes of them
    now = encode_log_record(rec)
    assert orjson.dumps(new) in now
    assert buf.getvalue() != now


def test_txn_state_round_trip() -> None:
    from dynamolog.codec import decode_txn_state, encode_txn_state

    d = {"txn_id": "f" * 32, "state": "COMMITTED", "client_token": "tok", "request_digest": "ab",
         "participants": ["p1", "p2"], "written_ms": 1, "writer": "coordinator:router-8000"}
    assert decode_txn_state(encode_txn_state(d)) == d


#: the fields TableDefinition v10 added, on the table and on each global index, as an older record decodes
WARM_NONE = {"warm_read_units": None, "warm_write_units": None}
STREAM_TTL_DEFAULTS = {"stream_enabled": False, "stream_view_type": None, "stream_label": None,
                       "stream_created_ms": None, "stream_disabled_ms": None, "ttl_attribute": None,
                       "global_indexes": [], "local_indexes": [], "max_read_request_units": None,
                       "max_write_request_units": None,
                       "pitr_enabled": False, "pitr_recovery_days": 35, "pitr_enabled_ms": None,
                       "restoring": False, "restore_summary": None, "resource_policies": {}, **WARM_NONE}


def test_partition_round_trip_unsigned_bounds() -> None:
    d = {
        "partition_id": "p0",
        "table_name": "T",
        "table_id": "id",
        "hash_start": 0,
        "hash_end": 2**64 - 1,
        "log_topic": "dyn.t.T.p0",
        "replicas": ["n1", "n2", "n3"],
        "leader": None,
        "leader_epoch": 0,
        "state": "ACTIVE",
        "parent": None,
        "children": [],
    }
    assert decode_partition(encode_partition(d)) == d
    d2 = d | {"hash_start": 2**63, "leader": "n2", "parent": "px", "children": ["a", "b"]}
    assert decode_partition(encode_partition(d2)) == d2


def test_node_info_v1_bytes_decode_and_zone_round_trips() -> None:
    # Storage nodes registered before zones existed (NodeInfo v1) must still be read, without a
    # zone; a zone written by a newer node must come back as written.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR, decode_node, encode_node

    v1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "NodeInfo.v1.avsc").read_text()))
    old = {"node_id": "n1", "rpc_address": "127.0.0.1:7001", "pid": 42, "started_at_ms": 1}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, old)
    assert decode_node(buf.getvalue()) == old | {"zone": None}
    assert decode_node(encode_node(old | {"zone": "b"})) == old | {"zone": "b"}


def test_table_v5_bytes_with_a_global_index_decode_with_the_on_demand_defaults() -> None:
    # TableDefinition v6 added OnDemandThroughput's maxima to the table and to each global index:
    # a v5 record (a table with an index) must still decode, the new fields None.
    import io
    import json

    import fastavro

    from dynamolog.codec import SCHEMA_DIR

    v5 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v5.avsc").read_text()))
    index = {"index_name": "byX", "index_id": "id#byX", "hash_key": "x", "range_key": None,
             "projection_type": "ALL", "non_key_attributes": [], "status": "ACTIVE", "partition_ids": ["p9"],
             "read_capacity_units": 5, "write_capacity_units": 5, "created_at_ms": 7}
    d = {
        "table_name": "Old", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PROVISIONED", "read_capacity_units": 5, "write_capacity_units": 5,
        "status": "ACTIVE", "created_at_ms": 1, "partition_ids": ["p"], "tags": {}, "deleted": False,
        "last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0, "pay_per_request_since_ms": None,
        **STREAM_TTL_DEFAULTS, "global_indexes": [index],
    }
    d = {k: v for k, v in d.items() if not k.startswith("max_")}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v5, d)
    got = decode_table(buf.getvalue())
    assert got["global_indexes"] == [index | {"max_read_request_units": None, "max_write_request_units": None,
                                              "more_hash_keys": [], "more_range_keys": []} | WARM_NONE]
    assert got["max_read_request_units"] is None and got["max_write_request_units"] is None
    assert got["read_capacity_units"] == 5


def _on_demand_record(index: dict[str, object]) -> dict[str, object]:
    """An on-demand table of TableDefinition v7's fields with one global index ``index``, as
    the version tests write it with an older schema."""
    return {
        "table_name": "Old", "table_id": "id", "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}],
        "attribute_definitions": [{"attribute_name": "pk", "attribute_type": "S"}],
        "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0, "write_capacity_units": 0,
        "status": "ACTIVE", "created_at_ms": 1, "partition_ids": ["p"], "tags": {}, "deleted": False,
        "last_increase_ms": None, "last_decrease_ms": None, "decreases_today": 0, "pay_per_request_since_ms": None,
        **STREAM_TTL_DEFAULTS, "global_indexes": [index], "local_indexes": [],
        "max_read_request_units": None, "max_write_request_units": None, "pitr_enabled": False,
        "pitr_recovery_days": 35, "pitr_enabled_ms": None, "restoring": False, "restore_summary": None,
    }


def test_table_v7_bytes_with_a_global_index_decode_as_single_attribute_keys() -> None:
    # TableDefinition v9 added a global index's further key attributes (multi-attribute keys): a
    # v7 record's index must decode with none, and a v9 index with four and four round-trips.
    import io
    import json

    import fastavro

    from dynamolog.catalog import GlobalIndex
    from dynamolog.codec import SCHEMA_DIR

    v7 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v7.avsc").read_text()))
    index = {"index_name": "byX", "index_id": "id#byX", "hash_key": "x", "range_key": "y",
             "projection_type": "ALL", "non_key_attributes": [], "status": "ACTIVE", "partition_ids": ["p9"],
             "read_capacity_units": 0, "write_capacity_units": 0, "created_at_ms": 7,
             "max_read_request_units": None, "max_write_request_units": None}
    d = _on_demand_record(index)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v7, d)
    got = decode_table(buf.getvalue())
    assert got == d | WARM_NONE | {"global_indexes": [index | {"more_hash_keys": [], "more_range_keys": []} | WARM_NONE]}
    g = GlobalIndex.from_record(got["global_indexes"][0])
    assert (g.hash_keys, g.range_keys) == (("x",), ("y",))
    multi = index | {"more_hash_keys": ["x2", "x3", "x4"], "more_range_keys": ["y2", "y3", "y4"]}
    back = decode_table(encode_table(d | {"global_indexes": [multi]}))
    g = GlobalIndex.from_record(back["global_indexes"][0])
    assert (g.hash_keys, g.range_keys) == (("x", "x2", "x3", "x4"), ("y", "y2", "y3", "y4"))
    assert GlobalIndex.from_record(g.to_record()) == g


def test_table_v8_bytes_keep_their_policies_and_single_attribute_index_keys() -> None:
    # v8 (resource-based policies) came before v9 (multi-attribute index keys): a v8 record keeps
    # its policy and its index decodes with one partition and one sort key attribute.
    import io
    import json

    import fastavro

    from dynamolog.catalog import GlobalIndex
    from dynamolog.codec import SCHEMA_DIR

    v8 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v8.avsc").read_text()))
    index = {"index_name": "byX", "index_id": "id#byX", "hash_key": "x", "range_key": None,
             "projection_type": "KEYS_ONLY", "non_key_attributes": [], "status": "ACTIVE", "partition_ids": ["p9"],
             "read_capacity_units": 0, "write_capacity_units": 0, "created_at_ms": 7,
             "max_read_request_units": None, "max_write_request_units": None}
    d = _on_demand_record(index) | {"resource_policies": {"": '{"policy": "{}", "revision": "5"}'}}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v8, d)
    got = decode_table(buf.getvalue())
    assert got == d | WARM_NONE | {"global_indexes": [index | {"more_hash_keys": [], "more_range_keys": []} | WARM_NONE]}
    g = GlobalIndex.from_record(got["global_indexes"][0])
    assert (g.hash_keys, g.range_keys) == (("x",), ())


def test_table_v9_bytes_decode_unwarmed_and_warm_throughput_round_trips() -> None:
    # v10 added WarmThroughput to the table and to each global index: a v9 record (a table with
    # an index) decodes with none recorded, and the raised values round-trip.
    import io
    import json

    import fastavro

    from dynamolog.catalog import TableDefinition
    from dynamolog.codec import SCHEMA_DIR

    v9 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "TableDefinition.v9.avsc").read_text()))
    index = {"index_name": "byX", "index_id": "id#byX", "hash_key": "x", "range_key": None,
             "projection_type": "ALL", "non_key_attributes": [], "status": "ACTIVE", "partition_ids": ["p9"],
             "read_capacity_units": 0, "write_capacity_units": 0, "created_at_ms": 7,
             "max_read_request_units": None, "max_write_request_units": None,
             "more_hash_keys": [], "more_range_keys": []}
    d = _on_demand_record(index) | {"resource_policies": {}}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v9, d)
    got = decode_table(buf.getvalue())
    assert got == d | WARM_NONE | {"global_indexes": [index | WARM_NONE]}
    warmed = d | {"warm_read_units": 20_000, "warm_write_units": 40_000,
                  "global_indexes": [index | {"warm_read_units": None, "warm_write_units": 8_000}]}
    t = TableDefinition.from_record(decode_table(encode_table(warmed)))
    assert (t.warm_read_units, t.warm_write_units) == (20_000, 40_000)
    assert (t.global_indexes[0].warm_read_units, t.global_indexes[0].warm_write_units) == (None, 8_000)
