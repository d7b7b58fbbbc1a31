"""Resource-based policies of tables and streams: the document rules and who they let in.

A resource-based policy is attached to one table (it covers the table's indexes too) or to one
stream, and names who may do what with a ``Principal`` (decision 0041)::

    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::000000000000:user/reporting"},
                    "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                    "Resource": ["arn:aws:dynamodb:us-east-1:000000000000:table/Music",
                                 "arn:aws:dynamodb:us-east-1:000000000000:table/Music/index/*"]}]}

A key's principal is ``arn:aws:iam::<account>:user/<key's user name>``.  A statement's principal
matches a key when it is ``*`` (or ``{"AWS": "*"}``) or that exact user ARN; the account
(``000000000000`` or ``arn:aws:iam::000000000000:root``) matches every key of the account in a
Deny and grants nothing by itself in an Allow (as in IAM, naming the account delegates to the
account's own identity-based policies).  How the two kinds of policy combine is
``services/router/auth.py``'s: an explicit Deny in either wins, else an Allow in either grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from dynamolog import errors

#: DynamoDB's limit, counted with the white space (Developer Guide, "Resource-based policy considerations")
POLICY_BYTES_MAX = 20 * 1024
STATEMENTS_MAX = 100
VERSIONS = ("2012-10-17", "2008-10-17")
_FIELDS = {"Sid", "Effect", "Principal", "Action", "Resource"}
_UNSUPPORTED = {"NotPrincipal", "NotAction", "NotResource", "Condition"}
_USER_ARN = re.compile(r"arn:aws:iam::(\d{12}):user/([\w+=,.@/-]+)")
_ROOT_ARN = re.compile(r"arn:aws:iam::(\d{12}):root")


def _invalid(why: str) -> errors.ApiError:
    return errors.validation(f"Invalid policy document: {why}")


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _strings(st: dict[str, Any], field: str, i: int) -> list[str]:
    v = st.get(field)
    if v is None:
        raise _invalid(f"Statement {i} has no {field}")
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _invalid(f"Statement {i}: {field} must be a string or a non-empty list of strings")
    return list(v)


@dataclass(frozen=True)
class _Principals:
    anyone: bool
    users: frozenset[str]
    accounts: frozenset[str]


@dataclass(frozen=True)
class _Statement:
    allow: bool
    principals: _Principals
    actions: tuple[re.Pattern[str], ...]
    resources: tuple[re.Pattern[str], ...]

    def names(self, principal: str, account: str) -> bool:
        p = self.principals
        if p.anyone or principal in p.users:
            return True
        return not self.allow and account in p.accounts

    def matches(self, action: str, resource: str) -> bool:
        return any(a.match(action) for a in self.actions) and any(r.match(resource) for r in self.resources)


def _principals(value: Any, i: int, account: str) -> _Principals:
    if value == "*":
        return _Principals(True, frozenset(), frozenset())
    if not isinstance(value, dict) or not value:
        raise _invalid(f'Statement {i}: Principal must be "*" or {{"AWS": ...}}')
    other = sorted(set(value) - {"AWS"})
    if other:
        raise _invalid(f"Statement {i}: Principal of type {other[0]} is not supported (AWS principals only)")
    aws = value["AWS"]
    entries = [aws] if isinstance(aws, str) else aws
    if not isinstance(entries, list) or not entries or not all(isinstance(x, str) for x in entries):
        raise _invalid(f"Statement {i}: Principal AWS must be a string or a non-empty list of strings")
    anyone, users, accounts = False, set(), set()
    for e in entries:
        user, root = _USER_ARN.fullmatch(e), _ROOT_ARN.fullmatch(e)
        if e == "*":
            anyone = True
        elif user is not None:
            users.add(e)
        elif root is not None:
            accounts.add(root.group(1))
        elif re.fullmatch(r"\d{12}", e):
            accounts.add(e)
        else:
            raise _invalid(f"Statement {i}: Invalid principal {e} (write *, an account id, "
                           f"arn:aws:iam::{account}:root or arn:aws:iam::{account}:user/NAME)")
    return _Principals(anyone, frozenset(users), frozenset(accounts))


def _resource_fits(pattern: str, resource_arn: str, stream: bool) -> bool:
    """Whether a statement's Resource names the policy's own resource: the stream's ARN for a
    stream; for a table its ARN, or its indexes' (``<table ARN>/index/...``)."""
    if pattern == resource_arn:
        return True
    return not stream and pattern.startswith(resource_arn + "/index/")


class ResourcePolicy:
    """A validated resource-based policy of the resource ``resource_arn``."""

    def __init__(self, text: Any, resource_arn: str, account: str) -> None:
        """Parses and checks ``text`` (ValidationException naming what to fix)."""
        if not isinstance(text, str):
            raise errors.serialization("Unexpected value type in payload")
        size = len(text.encode())
        if size > POLICY_BYTES_MAX:
            raise errors.validation(f"Policy document size {size} bytes exceeds the maximum of {POLICY_BYTES_MAX} "
                                    "bytes (20 KB, white space included)")
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _invalid("the policy is not valid JSON") from None
        if not isinstance(doc, dict):
            raise _invalid('a policy is {"Version": "2012-10-17", "Statement": [...]}')
        version = doc.get("Version")
        if version is not None and version not in VERSIONS:
            raise _invalid(f"Version {version} is not one of {', '.join(VERSIONS)}")
        unknown = sorted(set(doc) - {"Version", "Id", "Statement"})
        if unknown:
            raise _invalid(f"unknown field {unknown[0]}")
        stmts = doc.get("Statement")
        if isinstance(stmts, dict):
            stmts = [stmts]
        if not isinstance(stmts, list) or not stmts:
            raise _invalid("the policy has no Statement")
        if len(stmts) > STATEMENTS_MAX:
            raise _invalid(f"at most {STATEMENTS_MAX} statements in a policy")
        stream = "/stream/" in resource_arn
        self.text = text
        self.statements: list[_Statement] = []
        for i, st in enumerate(stmts):
            if not isinstance(st, dict):
                raise _invalid(f"Statement {i} must be an object")
            bad = sorted(set(st) & _UNSUPPORTED)
            if bad:
                raise _invalid(f"Statement {i}: {bad[0]} is not supported")
            extra = sorted(set(st) - _FIELDS)
            if extra:
                raise _invalid(f"Statement {i}: unknown field {extra[0]}")
            effect = st.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise _invalid(f"Statement {i}: Effect must be Allow or Deny")
            if "Principal" not in st:
                raise _invalid(f"Statement {i} has no Principal")
            principals = _principals(st["Principal"], i, account)
            actions = _strings(st, "Action", i)
            for a in actions:
                if a != "*" and not a.lower().startswith("dynamodb:"):
                    raise _invalid(f"Statement {i}: action {a} is not a dynamodb: action")
            resources = _strings(st, "Resource", i)
            for r in resources:
                if not _resource_fits(r, resource_arn, stream):
                    raise _invalid(f"Statement {i}: Resource {r} does not match the resource the policy is "
                                   f"attached to: {resource_arn}")
            self.statements.append(_Statement(effect == "Allow", principals,
                                              tuple(_wildcard(a, True) for a in actions),
                                              tuple(_wildcard(r, False) for r in resources)))

    def decide(self, principal: str, account: str, action: str, resource: str) -> tuple[bool, bool]:
        """(allowed, explicitly denied) for the key whose principal ARN is ``principal``."""
        allowed = False
        for st in self.statements:
            if st.names(principal, account) and st.matches(action, resource):
                if not st.allow:
                    return False, True
                allowed = True
        return allowed, False
