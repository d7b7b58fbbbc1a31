"""IAM-like permissions: which actions a key may perform on which resources.

A policy is a document of the same shape as an AWS identity-based policy::

    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                    "Resource": ["arn:aws:dynamodb:*:*:table/Music", "arn:aws:dynamodb:*:*:table/Music/*"]}]}

``Action`` and ``Resource`` patterns use IAM's wildcards (``*`` any run of characters, ``?``
one character); actions compare case-insensitively, resources case-sensitively.  A request is
allowed when some Allow statement matches its action and resource and no Deny statement does
(an explicit deny wins), as in IAM.  Resources are ARNs: ``arn:aws:dynamodb:REGION:ACCOUNT:
table/NAME`` (plus ``/index/INDEX`` for a Query or Scan of an index, ``/stream/LABEL`` for a
stream), or ``*`` for actions on no table (ListTables, DescribeLimits, ListStreams without a
table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

VERSION = "2012-10-17"
#: statements a policy may hold, and patterns a statement may list (bounded like everything else)
STATEMENTS_MAX = 100
PATTERNS_MAX = 100


class PolicyError(ValueError):
    """A policy document that is not of the accepted form (the message says what to fix)."""


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def table_resource(pattern: str) -> str:
    """The resource pattern for a table name pattern (``Music*`` -> every table and its indexes
    and streams whose name starts with Music); ``*`` stays ``*``."""
    if pattern == "*":
        return "*"
    if pattern.startswith("arn:"):
        return pattern
    return f"arn:aws:dynamodb:*:*:table/{pattern}"


@dataclass(frozen=True)
class _Statement:
    allow: bool
    actions: tuple[re.Pattern[str], ...]
    resources: tuple[re.Pattern[str], ...]

    def matches(self, action: str, resource: str) -> bool:
        return (any(a.match(action) for a in self.actions)
                and any(r.match(resource) for r in self.resources))


def _strings(stmt: dict[str, Any], field: str, i: int) -> list[str]:
    v = stmt.get(field)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise PolicyError(f"Statement {i}: '{field}' must be a string or a non-empty list of strings")
    if len(v) > PATTERNS_MAX:
        raise PolicyError(f"Statement {i}: at most {PATTERNS_MAX} entries in '{field}'")
    return list(v)


class Policy:
    """A parsed policy; :meth:`allows` answers (allowed, explicitly denied)."""

    def __init__(self, document: dict[str, Any]) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("Statement"), list):
            raise PolicyError('a policy is {"Version": "2012-10-17", "Statement": [...]}')
        stmts = document["Statement"]
        if len(stmts) > STATEMENTS_MAX:
            raise PolicyError(f"at most {STATEMENTS_MAX} statements in a policy")
        self.document = document
        self._statements: list[_Statement] = []
        for i, st in enumerate(stmts):
            if not isinstance(st, dict):
                raise PolicyError(f"Statement {i} must be an object")
            effect = st.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise PolicyError(f"Statement {i}: 'Effect' must be 'Allow' or 'Deny'")
            unknown = set(st) - {"Sid", "Effect", "Action", "Resource"}
            if unknown:
                raise PolicyError(f"Statement {i}: unsupported field(s) {sorted(unknown)} "
                                  "(Sid, Effect, Action and Resource are supported)")
            actions = _strings(st, "Action", i)
            for a in actions:
                if a != "*" and not a.lower().startswith(SERVICES):
                    raise PolicyError(f"Statement {i}: action {a!r} is not a dynamodb: or application-autoscaling: "
                                      "action")
            self._statements.append(_Statement(
                effect == "Allow",
                tuple(_wildcard(a, True) for a in actions),
                tuple(_wildcard(r, False) for r in _strings(st, "Resource", i))))

    def decide(self, action: str, resource: str) -> tuple[bool, bool]:
        """(allowed, explicitly denied) for ``action`` (``dynamodb:GetItem``) on ``resource``."""
        allowed = False
        for st in self._statements:
            if st.matches(action, resource):
                if not st.allow:
                    return False, True
                allowed = True
        return allowed, False


def statement(actions: list[str], tables: list[str], effect: str = "Allow") -> dict[str, Any]:
    """One statement for ``actions`` on tables matching ``tables`` (name patterns or ARNs); a
    table pattern also covers the table's indexes and stream."""
    resources: list[str] = []
    for t in tables:
        r = table_resource(t)
        resources.append(r)
        if r != "*" and not r.endswith("*"):
            resources.append(r + "/*")
    return {"Effect": effect, "Action": actions, "Resource": resources}


def document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": statements}


#: the services whose actions a policy may name (Application Auto Scaling: on DynamoDB tables)
SERVICES = ("dynamodb:", "application-autoscaling:")

ADMIN = document([statement(["dynamodb:*", "application-autoscaling:*"], ["*"])])


def parse_allow(spec: str) -> dict[str, Any]:
    """``ACTION[,ACTION...][=TABLE[,TABLE...]]`` -> an Allow statement (tables default to ``*``).

    ``dynamodb:GetItem,dynamodb:Query=Music*`` allows GetItem and Query on every table whose
    name starts with Music; ``read`` and ``write`` name the usual groups of actions.
    """
    actions_part, _, tables_part = spec.partition("=")
    actions: list[str] = []
    for a in actions_part.split(","):
        a = a.strip()
        if not a:
            continue
        if a in GROUPS:
            actions.extend(GROUPS[a])
        elif a.lower().startswith("dynamodb:") or a == "*":
            actions.append(a)
        else:
            raise PolicyError(f"{a!r} is not an action: write e.g. dynamodb:GetItem, dynamodb:* or one of "
                              f"{', '.join(sorted(GROUPS))}")
    if not actions:
        raise PolicyError(f"no action in {spec!r}: write ACTION[,ACTION...][=TABLE[,TABLE...]]")
    tables = [t.strip() for t in tables_part.split(",") if t.strip()] or ["*"]
    return statement(actions, tables)


#: shorthands accepted by ``dynamolog keys create --allow``
GROUPS: dict[str, list[str]] = {
    "read": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
             "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem", "dynamodb:PartiQLSelect",
             "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource", "dynamodb:DescribeStream",
             "dynamodb:GetShardIterator", "dynamodb:GetRecords", "dynamodb:ListStreams"],
    "write": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
              "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"],
}
