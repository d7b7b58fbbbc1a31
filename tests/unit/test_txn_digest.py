"""The digest that tells a retried TransactWriteItems (same ClientRequestToken) from a different
request: stable, sensitive to content, and defined for any depth the request parser accepts."""

from __future__ import annotations

from typing import Any

from dynamolog.txnlog import _canonical, request_digest


def _deep(levels: int) -> dict[str, Any]:
    v: dict[str, Any] = {}
    for _ in range(levels):
        v = {"M": v}
    return v


def test_a_request_nested_deeper_than_orjson_writes_has_a_digest() -> None:
    # an unknown member is not checked, so it may be nested up to the parser's own limit; a
    # fuzzed TransactWriteItems with 300 levels answered InternalServerError before
    entries = [{"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "a"}}, "Extra": _deep(1000)}}]
    assert request_digest(entries) == request_digest(entries)
    other = [{"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "b"}}, "Extra": _deep(1000)}}]
    assert request_digest(entries) != request_digest(other)


def test_the_canonical_form_sorts_keys_and_separates_values() -> None:
    assert _canonical({"b": [1, 2], "a": "x"}) == _canonical({"a": "x", "b": [1, 2]})
    assert _canonical([1, 2]) != _canonical([12])
    assert _canonical({"a": ["b"]}) != _canonical({"a": "b"})
    assert _canonical([{}]) != _canonical([[]])


def test_digests_of_shallow_requests_are_unchanged() -> None:
    # digests are kept in dyn.txn: a retry after an upgrade must still match
    import hashlib

    import orjson

    entries = [{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}]
    assert request_digest(entries) == hashlib.sha256(orjson.dumps(entries, option=orjson.OPT_SORT_KEYS)).hexdigest()
