"""The router's authenticator (services/router/auth.py) without Kafka: the fast path for a repeated
Authorization header must refuse exactly what the full path refuses."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from dynamolog.auth import credentials, policy
from dynamolog.client import sigv4 as signer
from dynamolog.config import Settings
from dynamolog.errors import ApiError
from services.router.auth import Authenticator


def make() -> tuple[Authenticator, Any]:
    cred, _ = credentials.new("u", policy.document([policy.parse_allow("dynamodb:GetItem=T")]))
    auth = Authenticator(Settings(), b"k" * 32, enabled=True)
    assert auth._view is not None
    auth._view.items[cred.access_key_id] = cred
    return auth, cred


def signed(cred: Any, body: bytes, target: str = "DynamoDB_20120810.GetItem", when: Any = None) -> dict[str, str]:
    ts = signer.amz_date(when)
    h = {"host": "127.0.0.1:8000", "content-type": "application/x-amz-json-1.0", "x-amz-date": ts,
         "x-amz-target": target}
    h["authorization"] = signer.sign(method="POST", path="/", headers=h, body=body, access_key=cred.access_key_id,
                                     secret_key=cred.secret, region="us-east-1", service="dynamodb", timestamp=ts)
    return h


def code(fn: Any) -> str:
    with pytest.raises(ApiError) as e:
        fn()
    return e.value.type_name


def test_fast_path_refuses_what_the_full_path_refuses() -> None:
    auth, cred = make()
    body = json.dumps({"TableName": "T", "Key": {"pk": {"S": "a"}}}).encode()
    h = signed(cred, body)
    for _ in range(3):  # the first request takes the full path, the next ones the fast one
        assert auth.authenticate("POST", "/", h, body) is cred
    assert len(auth._fast) == 1
    assert code(lambda: auth.authenticate("POST", "/", h, body + b" ")) == "InvalidSignatureException"
    assert code(lambda: auth.authenticate("POST", "/", h | {"x-amz-target": "DynamoDB_20120810.DeleteTable"},
                                          body)) == "InvalidSignatureException"
    assert code(lambda: auth.authenticate("POST", "/?x=1", h, body)) == "InvalidSignatureException"
    assert code(lambda: auth.authenticate("POST", "/", h | {"x-amz-security-token": "t"}, body)) == \
        "InvalidSignatureException"  # an unsigned token
    bad_sig = h["authorization"][:-64] + "é" * 64
    assert code(lambda: auth.authenticate("POST", "/", h | {"authorization": bad_sig}, body)) == \
        "InvalidSignatureException"
    # revoked: the view holds a new object for the key
    assert auth._view is not None
    auth._view.items[cred.access_key_id] = dataclasses.replace(cred, revoked_ms=1)
    assert code(lambda: auth.authenticate("POST", "/", h, body)) == "UnrecognizedClientException"


def test_fast_path_keeps_the_clock_window() -> None:
    from datetime import UTC, datetime, timedelta

    auth, cred = make()
    old = datetime.now(UTC) - timedelta(minutes=16)
    h = signed(cred, b"{}", when=old)
    assert code(lambda: auth.authenticate("POST", "/", h, b"{}")) == "InvalidSignatureException"
    auth.authenticate("POST", "/", signed(cred, b"{}"), b"{}")  # now the header prefix has a fast entry
    if old.day == datetime.now(UTC).day:  # same day: the same prefix, so the fast path sees it first
        assert code(lambda: auth.authenticate("POST", "/", h, b"{}")) == "InvalidSignatureException"


def test_authorize() -> None:
    auth, cred = make()
    auth.authorize(cred, "GetItem", {"TableName": "T"})
    assert code(lambda: auth.authorize(cred, "GetItem", {"TableName": "U"})) == "AccessDeniedException"
    assert code(lambda: auth.authorize(cred, "PutItem", {"TableName": "T"})) == "AccessDeniedException"
    assert code(lambda: auth.authorize(cred, "BatchGetItem", {"RequestItems": {"T": {}}})) == "AccessDeniedException"
    assert code(lambda: auth.authorize(cred, "TransactGetItems", {"TransactItems": [
        {"Get": {"TableName": "T"}}, {"Get": {"TableName": "U"}}]})) == "AccessDeniedException"
    auth.authorize(cred, "TransactGetItems", {"TransactItems": [{"Get": {"TableName": "T"}}]})
    assert code(lambda: auth.authorize(cred, "ExecuteStatement", {"Statement": 'SELECT * FROM "U"'})) == \
        "AccessDeniedException"
