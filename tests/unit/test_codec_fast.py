"""A LogRecord's direct encoding (dynamolog/codec.py) writes exactly the bytes fastavro writes
for the same record, for every kind of field and value the log holds, and leaves to fastavro
what it does not expect."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dynamolog import codec

OPS = ["PUT", "DELETE", "PREPARE", "TXN_COMMIT", "TXN_ABORT", "FENCE", "BARRIER", "SEAL"]
LONGS = [0, 1, -1, 63, 64, -64, -65, 127, 128, 300, 2**31 - 1, -2**31, 2**32, 2**62, 2**63 - 1, -2**63,
         1_733_500_000_000]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(["a", "Z", "0", "é", "ß", "中", "😀", " ", "\n", "\x00"]) for _ in range(rng.randint(0, 40)))


def item(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    return {f"f{i}": rng.choice([{"S": text(rng)}, {"N": str(rng.choice(LONGS))}, {"BOOL": True}])
            for i in range(rng.randint(0, 12))}


def record(rng: random.Random) -> dict[str, Any]:
    def maybe(make: Any) -> Any:
        return None if rng.random() < 0.5 else make()

    rec: dict[str, Any] = {
        "op": rng.choice(OPS),
        "key": rng.randbytes(rng.randint(0, 300)),
        "new_image": item(rng),
        "old_image": item(rng),
        "timestamp_ms": rng.choice(LONGS),
        "origin_region": text(rng),
        "transaction_id": maybe(lambda: text(rng)),
        "leader_epoch": rng.choice([0, 1, 7, 2**31 - 1]),
        "request_id": maybe(lambda: text(rng)),
        "txn_action": maybe(lambda: rng.choice(["Put", "Update", "Delete", "ConditionCheck"])),
        "txn_deadline_ms": maybe(lambda: rng.choice(LONGS)),
        "system_principal": maybe(lambda: text(rng)),
        "fence_offset": rng.choice(LONGS),
    }
    for name in ("transaction_id", "request_id", "txn_action", "txn_deadline_ms", "system_principal",
                 "fence_offset"):
        if rng.random() < 0.1:
            del rec[name]  # a field with a default may be left out, as fastavro allows
    return rec


def avro_form(rec: dict[str, Any]) -> dict[str, Any]:
    """The record as encode_log_record hands it to the writers (images as the bytes branch)."""
    import orjson

    out = dict(rec)
    for name in ("new_image", "old_image"):
        out[name] = None if rec[name] is None else ("bytes", orjson.dumps(rec[name]))
    return out


def test_the_direct_encoding_writes_fastavros_bytes() -> None:
    rng = random.Random(20261206)
    for _ in range(3000):
        rec = avro_form(record(rng))
        direct = codec._encode_planned(codec._LOG_PLAN, rec)
        assert direct is not None
        assert direct == codec._write(codec._LOG, rec), rec


def test_encoded_records_decode_to_what_was_written() -> None:
    rng = random.Random(7)
    for _ in range(500):
        rec = record(rng)
        back = codec.decode_log_record(codec.encode_log_record(rec))
        for name, value in rec.items():
            assert back[name] == value, name
        for name in set(back) - set(rec):
            assert back[name] == (-1 if name == "fence_offset" else None)  # a left-out field reads as its default


@pytest.mark.parametrize("change", [
    {"op": "NOT_AN_OP"},
    {"leader_epoch": "1"},
    {"leader_epoch": True},
    {"timestamp_ms": 2**63},
    {"key": "text, not bytes"},
    {"origin_region": b"bytes, not text"},
    {"origin_region": "\ud800"},
    {"new_image": {"a": {"S": "an Avro map, the branch before v6"}}},
])
def test_what_the_plan_does_not_expect_goes_to_fastavro(change: dict[str, Any]) -> None:
    rec = avro_form(record(random.Random(1)))
    rec.update(change)
    assert codec._encode_planned(codec._LOG_PLAN, rec) is None


def test_a_field_without_a_default_left_out_goes_to_fastavro_which_refuses_it() -> None:
    rec = avro_form(record(random.Random(2)))
    del rec["leader_epoch"]
    assert codec._encode_planned(codec._LOG_PLAN, rec) is None
    with pytest.raises((ValueError, TypeError)):
        codec.encode_log_record({k: v for k, v in record(random.Random(2)).items() if k != "leader_epoch"})


def test_the_direct_reading_gives_what_fastavro_reads() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        data = codec._write(codec._LOG, avro_form(record(rng)))
        direct = codec._decode_planned(codec._LOG_PLAN, codec._LOG_SYMBOLS, data)
        assert direct is not None
        assert direct == codec._read_versioned(codec._LOG, codec._LOG_HISTORY, data)


def test_records_of_every_earlier_schema_version_are_still_read() -> None:
    # an older version wrote fewer fields: the plan does not read it to its end, fastavro's
    # versioned reader does, and fills the added fields with their defaults
    rng = random.Random(3)
    assert codec._LOG_HISTORY
    for writer in codec._LOG_HISTORY:
        names = {f["name"] for f in writer["fields"]}
        for _ in range(50):
            rec = {k: v for k, v in record(rng).items() if k in names}
            ops = next(f["type"]["symbols"] for f in writer["fields"] if f["name"] == "op")
            rec["op"] = rng.choice(ops)  # the operations that version knew
            for name in ("new_image", "old_image"):
                if name in rec:
                    rec[name] = None if rec[name] is None else codec.image_to_avro(rec[name])
            for f in writer["fields"]:
                rec.setdefault(f["name"], f.get("default"))
            data = codec._write(writer, rec)
            back = codec.decode_log_record(data)
            assert back["op"] == rec["op"] and back["key"] == rec["key"]
            assert back["fence_offset"] == rec.get("fence_offset", -1)


def test_an_image_in_the_map_branch_goes_to_fastavro() -> None:
    rec = avro_form(record(random.Random(5)))
    image = {"a": {"S": "x"}, "n": {"N": "12"}}
    rec["new_image"] = codec.image_to_avro(image)
    data = codec._write(codec._LOG, rec)
    assert codec._decode_planned(codec._LOG_PLAN, codec._LOG_SYMBOLS, data) is None
    assert codec.decode_log_record(data)["new_image"] == image


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_cut_or_padded_bytes_are_not_read_as_a_record_by_the_plan(cut: int) -> None:
    data = codec._write(codec._LOG, avro_form(record(random.Random(cut))))
    assert codec._decode_planned(codec._LOG_PLAN, codec._LOG_SYMBOLS, data[:-cut]) is None
    assert codec._decode_planned(codec._LOG_PLAN, codec._LOG_SYMBOLS, data + b"\x00" * cut) is None
