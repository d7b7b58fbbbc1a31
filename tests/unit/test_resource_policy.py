"""Resource-based policy documents: the rules and whom a statement names (decision 0041)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dynamolog.auth.resource_policy import ResourcePolicy
from dynamolog.errors import ApiError

ACCOUNT = "000000000000"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Music"
ME = f"arn:aws:iam::{ACCOUNT}:user/me"
YOU = f"arn:aws:iam::{ACCOUNT}:user/you"


def policy(*statements: dict[str, Any], resource: str = TABLE) -> ResourcePolicy:
    return ResourcePolicy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), resource, ACCOUNT)


def st(effect: str, principal: Any, action: str = "dynamodb:GetItem", resource: str = TABLE) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}


def test_principals() -> None:
    assert policy(st("Allow", {"AWS": ME})).decide(ME, ACCOUNT, "dynamodb:GetItem", TABLE) == (True, False)
    assert policy(st("Allow", {"AWS": ME})).decide(YOU, ACCOUNT, "dynamodb:GetItem", TABLE) == (False, False)
    assert policy(st("Allow", "*")).decide(YOU, ACCOUNT, "dynamodb:getitem", TABLE) == (True, False)
    assert policy(st("Allow", {"AWS": "*"})).decide(YOU, ACCOUNT, "dynamodb:GetItem", TABLE) == (True, False)
    # the account: delegation in an Allow, everyone in a Deny
    assert policy(st("Allow", {"AWS": ACCOUNT})).decide(ME, ACCOUNT, "dynamodb:GetItem", TABLE) == (False, False)
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert policy(st("Deny", {"AWS": [root]})).decide(ME, ACCOUNT, "dynamodb:GetItem", TABLE) == (False, True)


def test_deny_wins_and_actions_and_indexes() -> None:
    p = policy(st("Allow", "*", "dynamodb:*", TABLE), st("Allow", "*", "dynamodb:Query", TABLE + "/index/*"),
               st("Deny", {"AWS": ME}, "dynamodb:Delete*", TABLE))
    assert p.decide(ME, ACCOUNT, "dynamodb:DeleteItem", TABLE) == (False, True)
    assert p.decide(YOU, ACCOUNT, "dynamodb:DeleteItem", TABLE) == (True, False)
    assert p.decide(ME, ACCOUNT, "dynamodb:Query", TABLE + "/index/byX") == (True, False)
    assert p.decide(ME, ACCOUNT, "dynamodb:Scan", TABLE + "/index/byX") == (False, False)


@pytest.mark.parametrize("text, phrase", [
    ("[", "not valid JSON"),
    ("[]", "a policy is"),
    (json.dumps({"Statement": []}), "has no Statement"),
    (json.dumps({"Version": "2020-01-01", "Statement": [st("Allow", "*")]}), "Version"),
    (json.dumps({"Statement": [st("Allow", "*") | {"Condition": {}}]}), "Condition is not supported"),
    (json.dumps({"Statement": [st("Allow", {"Service": "x.amazonaws.com"})]}), "Principal of type Service"),
    (json.dumps({"Statement": [st("Allow", "*", resource=TABLE + "/stream/x")]}), "does not match"),
    (json.dumps({"Statement": [st("Permit", "*")]}), "Effect must be Allow or Deny"),
    (json.dumps({"Statement": [st("Allow", "*", action="s3:*")]}), "not a dynamodb: action"),
])
def test_document_rules(text: str, phrase: str) -> None:
    with pytest.raises(ApiError) as e:
        ResourcePolicy(text, TABLE, ACCOUNT)
    assert e.value.type_name == "ValidationException"
    assert phrase in e.value.message


def test_size_limit_is_20_kb_with_white_space() -> None:
    base = json.dumps({"Statement": [st("Allow", "*")]})
    ResourcePolicy(base + " " * (20 * 1024 - len(base)), TABLE, ACCOUNT)
    with pytest.raises(ApiError):
        ResourcePolicy(base + " " * (20 * 1024 - len(base) + 1), TABLE, ACCOUNT)


def test_a_stream_policy_names_only_the_stream() -> None:
    stream = TABLE + "/stream/2026-01-01T00:00:00.000"
    p = policy(st("Allow", {"AWS": ME}, "dynamodb:GetRecords", stream), resource=stream)
    assert p.decide(ME, ACCOUNT, "dynamodb:GetRecords", stream) == (True, False)
    with pytest.raises(ApiError):
        policy(st("Allow", "*", "dynamodb:GetRecords", TABLE), resource=stream)
