"""Regions' records, the replication key's permissions, signed batches and what the stream
reader hands to RepOut (dynamolog/regions.py, services/streams/reader.py)."""

from __future__ import annotations

import secrets

from dynamolog import regions
from dynamolog.auth.policy import Policy
from services.streams.reader import Position, change_of


def test_the_replication_key_permits_replication_only() -> None:
    p = Policy(regions.replication_policy())
    for action in regions.REPLICATION_ACTIONS:
        assert p.decide(action, "*") == (True, False)
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:CreateTable", "dynamodb:UpdateTable",
                   "dynamodb:DescribeTable", "dynamodb:ListTables"):
        assert p.decide(action, "*")[0] is False
        assert p.decide(action, "arn:aws:dynamodb:us-east-1:000000000000:table/T")[0] is False


def test_a_region_record_keeps_its_secret_encrypted() -> None:
    master = secrets.token_bytes(32)
    r = regions.Region("us-west-2", "http://127.0.0.1:8001", "DKIAABCDEFGHIJKLMNOP", "s3cr3t-" * 5, 123)
    raw = regions.encode_region(r, master)
    assert r.secret.encode() not in raw
    assert regions.decoder(master)(raw) == r
    # without the system key (or with another one) the secret stays unknown, the rest is read
    assert regions.decoder(None)(raw) == regions.Region(r.name, r.endpoint, r.key_id, "", 123)
    assert regions.decoder(secrets.token_bytes(32))(raw).secret == ""  # type: ignore[union-attr]


def test_replica_sets_and_figures_decode() -> None:
    rep = regions.Replicas("Music", {"us-east-1": "ACTIVE", "us-west-2": "CREATING"}, "2019.11.21", 5)
    assert regions.decoder(None)(regions.encode_replicas(rep)) == rep
    assert rep.regions == ["us-east-1", "us-west-2"]
    fig = regions.decoder(None)(regions.encode_figures({"shipped": 3}))
    assert fig == regions.Figures({"shipped": 3})


def test_a_batch_verifies_only_with_the_key_and_source_it_was_signed_with() -> None:
    payload = b'[{"t": "Music", "k": "AAA=", "i": null, "ts": 1, "r": "us-east-1"}]'
    sig = regions.sign_batch("secret", "us-east-1", payload)
    assert regions.batch_signed("secret", "us-east-1", payload, sig)
    assert not regions.batch_signed("other", "us-east-1", payload, sig)
    assert not regions.batch_signed("secret", "us-west-2", payload, sig)
    assert not regions.batch_signed("secret", "us-east-1", payload.replace(b"null", b"{}"), sig)
    assert not regions.batch_signed("", "us-east-1", payload, sig)  # a key that could not be read


def _rec(op: str, **kw: object) -> dict[str, object]:
    return {"op": op, "key": b"\x01k", "new_image": {"pk": {"S": "k"}}, "old_image": None, "timestamp_ms": 7,
            "origin_region": "us-east-1", "txn_action": None, **kw}


def test_the_reader_hands_on_item_changes_only() -> None:
    assert change_of(_rec("PUT"), "T") == {"t": "T", "k": "AWs=", "i": {"pk": {"S": "k"}}, "ts": 7, "r": "us-east-1"}
    assert change_of(_rec("DELETE"), "T")["i"] is None  # type: ignore[index]
    assert change_of(_rec("TXN_COMMIT", txn_action="PUT"), "T")["i"] == {"pk": {"S": "k"}}  # type: ignore[index]
    assert change_of(_rec("TXN_COMMIT", txn_action="DELETE"), "T")["i"] is None  # type: ignore[index]
    for skipped in (_rec("TXN_COMMIT", txn_action="CHECK"), _rec("PREPARE", txn_action="PUT"), _rec("TXN_ABORT"),
                    _rec("FENCE"), _rec("BARRIER")):
        assert change_of(skipped, "T") is None


def test_a_position_keeps_the_term_rule_state() -> None:
    p = Position.decode(Position(41, None).encode())
    assert p.offset == 41
    from dynamolog.fencing import Term

    q = Position.decode(Position(9, Term(3, 5)).encode())
    assert (q.offset, q.term) == (9, Term(3, 5))
