"""IAM-like policies (dynamolog.auth.policy): wildcards, explicit deny, the --allow shorthand."""

from __future__ import annotations

import pytest

from dynamolog.auth.policy import ADMIN, Policy, PolicyError, document, parse_allow

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/"


def test_allow_shorthand_covers_table_index_and_stream() -> None:
    p = Policy(document([parse_allow("dynamodb:GetItem,dynamodb:Query=Music")]))
    assert p.decide("dynamodb:GetItem", ARN + "Music") == (True, False)
    assert p.decide("dynamodb:getitem", ARN + "Music") == (True, False)  # actions ignore case
    assert p.decide("dynamodb:Query", ARN + "Music/index/ByYear") == (True, False)
    assert p.decide("dynamodb:PutItem", ARN + "Music") == (False, False)
    assert p.decide("dynamodb:GetItem", ARN + "Musical") == (False, False)
    assert p.decide("dynamodb:GetItem", ARN + "music") == (False, False)  # resources do not
    assert p.decide("dynamodb:ListTables", "*") == (False, False)


def test_wildcards_and_groups() -> None:
    p = Policy(document([parse_allow("read=Or?ers*"), parse_allow("dynamodb:ListTables")]))
    assert p.decide("dynamodb:Scan", ARN + "Orders2024") == (True, False)
    assert p.decide("dynamodb:GetRecords", ARN + "Orders/stream/2024") == (True, False)
    assert p.decide("dynamodb:PutItem", ARN + "Orders") == (False, False)
    assert p.decide("dynamodb:ListTables", "*") == (True, False)
    assert Policy(ADMIN).decide("dynamodb:DeleteTable", ARN + "x") == (True, False)


def test_regex_characters_in_patterns_are_literal() -> None:
    p = Policy(document([parse_allow("dynamodb:GetItem=a.b")]))
    assert p.decide("dynamodb:GetItem", ARN + "a.b") == (True, False)
    assert p.decide("dynamodb:GetItem", ARN + "axb") == (False, False)


def test_explicit_deny_wins() -> None:
    p = Policy({"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
                              {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": ARN + "Keep"}]})
    assert p.decide("dynamodb:DeleteItem", ARN + "Keep") == (False, True)
    assert p.decide("dynamodb:DeleteItem", ARN + "Other") == (True, False)


@pytest.mark.parametrize(("doc", "phrase"), [
    ({}, "a policy is"),
    ({"Statement": [{"Effect": "Maybe", "Action": "dynamodb:*", "Resource": "*"}]}, "'Effect' must be"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "is not a dynamodb: or application-autoscaling: action"),
    ({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}, "'Action' must be"),
    ({"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*", "Condition": {}}]},
     "unsupported field"),
])
def test_bad_documents_say_what_to_fix(doc: dict, phrase: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PolicyError, match=phrase):
        Policy(doc)


def test_bad_allow_spec() -> None:
    with pytest.raises(PolicyError, match="is not an action"):
        parse_allow("GetItem=T")
    with pytest.raises(PolicyError, match="no action"):
        parse_allow("=T")
