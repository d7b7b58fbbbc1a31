"""The router's front gate: who is calling (SigV4) and may they do this (IAM-like policies).

:meth:`Authenticator.authenticate` runs on every request before anything else looks at it;
:meth:`Authenticator.authorize` runs once the operation and its parameters are known and
before any validation or I/O, so a refused request changes nothing.  Keys come from the
compacted credentials topic, which every router follows (revocation reaches every router within
about a second).  With authentication off (``--no-auth``) both are no-ops.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

import orjson

from dynamolog import errors
from dynamolog.auth import credentials, sigv4
from dynamolog.auth.credentials import Credential
from dynamolog.auth.resource_policy import ResourcePolicy
from dynamolog.catalog import ACCOUNT, parse_arn
from dynamolog.config import Settings
from dynamolog.metadata import TopicView

from .autoscaling import OPERATIONS as SCALING_OPERATIONS
from .autoscaling import TARGET_PREFIX as SCALING_TARGET

log = logging.getLogger(__name__)

_CACHE_ENTRIES_MAX = 10_000

#: operations whose resource is the table named by ``TableName`` (Query and Scan: its index
#: when ``IndexName`` is given)
_TABLE_OPS = frozenset({
    "CreateTable", "DescribeTable", "DeleteTable", "UpdateTable", "PutItem", "GetItem", "DeleteItem",
    "UpdateItem", "Query", "Scan", "UpdateTimeToLive", "DescribeTimeToLive",
})
_ACTIONS = {op: f"dynamodb:{op}" for op in _TABLE_OPS}
#: the service name Application Auto Scaling's requests are signed for
SCALING_SERVICE = "application-autoscaling"
#: operations on a resource named by ``ResourceArn`` (a table or a stream)
_ARN_OPS = frozenset({"TagResource", "UntagResource", "ListTagsOfResource", "PutResourcePolicy",
                      "GetResourcePolicy", "DeleteResourcePolicy"})
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


#: the key of the request being answered (set by the router's dispatch), for operations whose
#: answer depends on who asks (PutResourcePolicy's lock-out check)
caller: ContextVar[Credential | None] = ContextVar("dynamolog_caller", default=None)


class _Fast(NamedTuple):
    """What a verified Authorization header leaves for the next request with the same header."""

    cred: Credential
    #: the credential scope's day (YYYYMMDD); the request's X-Amz-Date must be of that day
    day: str
    scope: str
    signed: tuple[str, ...]
    #: SHA-256 states after the HMAC inner and outer pads of the signing key
    inner: Any
    outer: Any


def access_denied(user_arn: str, action: str, resource: str, explicit: bool,
                  kind: str = "identity-based") -> errors.ApiError:
    """AccessDeniedException as IAM words it; ``kind`` "resource-based" for a resource of another
    account, which only a resource-based policy could open."""
    article = "an" if kind[0] in "aeiou" else "a"
    why = (f"with an explicit deny in {article} {kind} policy" if explicit
           else f"because no {kind} policy allows the {action} action")
    return errors.ApiError("AccessDeniedException",
                           f"User: {user_arn} is not authorized to perform: {action} on resource: {resource} {why}")


class Authenticator:
    """Verifies signatures against the credentials topic and checks policies."""

    def __init__(self, settings: Settings, master: bytes | None, enabled: bool = True) -> None:
        self.settings = settings
        self.enabled = enabled
        self._view: TopicView[Any] | None = None
        if enabled:
            if master is None:
                raise ValueError("authentication needs the system key")
            self._view = TopicView(settings, credentials.topic(settings), credentials.decoder(master))
            self._view.listen(self._changed)
        self._table_prefix = f"arn:aws:dynamodb:{settings.region}:{ACCOUNT}:table/"
        self._signing_keys: dict[tuple[str, str, str, str, str], bytes] = {}
        self._decisions: dict[tuple[str, str, str], tuple[bool, bool]] = {}
        #: Authorization header up to ", Signature=" -> what verifying it needs (see _fast_ok)
        self._fast: dict[str, _Fast] = {}
        #: the resource-based policy of a table or stream ARN (services/router/policies.py; set by
        #: the router once its catalog exists); None: no resource policies
        self.resource_policy: Callable[[str], ResourcePolicy | None] | None = None

    async def start(self) -> None:
        if self._view is not None:
            await credentials.ensure_topic(self.settings)
            await self._view.start()

    async def close(self) -> None:
        if self._view is not None:
            await self._view.close()

    def _changed(self, key: str, value: Any) -> None:
        self._decisions.clear()
        self._signing_keys.clear()
        self._fast.clear()

    def live_key(self, access_key_id: str) -> Credential | None:
        """The key with this id unless it is unknown or revoked (the web side's sign-in and
        session checks, services/router/gateway/webauth.py); None with authentication off."""
        cred = self._view.items.get(access_key_id) if self._view is not None else None
        return cred if cred is not None and cred.revoked_ms is None else None

    # -- authentication --------------------------------------------------------------------
    def authenticate(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Credential | None:
        """The caller's key, or ApiError; None when authentication is off."""
        if self._view is None:
            return None
        auth = headers.get("authorization")
        if auth is not None:
            cut = auth.rfind(", Signature=")
            fast = self._fast.get(auth[:cut]) if cut > 0 else None
            if fast is not None and self._fast_ok(fast, auth[cut + 12:], method, target, headers, body):
                return fast.cred
        return self._authenticate(method, target, headers, body)

    def _fast_ok(self, fast: _Fast, signature: str, method: str, target: str, headers: dict[str, str],
                 body: bytes) -> bool:
        """The same checks as the full path for a request whose Authorization header, but for its
        signature, equals one that verified before (what every SDK sends, request after request):
        same key object (not revoked or changed since), same day, within the clock skew, no
        session token; then the canonical request, string to sign and HMAC. False: take the full
        path, which also makes the error answer."""
        assert self._view is not None
        amz_date = headers.get("x-amz-date")
        if (self._view.items.get(fast.cred.access_key_id) is not fast.cred or amz_date is None
                or amz_date[:8] != fast.day or "x-amz-security-token" in headers):
            return False
        when = sigv4.epoch_of(amz_date)
        if when is None or abs(when - time.time()) > sigv4.SKEW_S:
            return False
        canonical = sigv4.canonical_request(method, target, headers, fast.signed, body)
        sts = f"{sigv4.ALGORITHM}\n{amz_date}\n{fast.scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        inner = fast.inner.copy()
        inner.update(sts.encode())
        outer = fast.outer.copy()
        outer.update(inner.digest())
        return signature.isascii() and hmac.compare_digest(outer.hexdigest(), signature)

    def _authenticate(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Credential:
        assert self._view is not None
        service = SCALING_SERVICE if headers.get("x-amz-target", "").startswith(SCALING_TARGET) else sigv4.SERVICE
        parsed = sigv4.parse(headers, self.settings.region, service)
        cred: Credential | None = self._view.items.get(parsed.access_key_id)
        if cred is None or cred.revoked_ms is not None:
            raise sigv4.unrecognized_client()
        token = headers.get("x-amz-security-token")
        if cred.session_token_sha256 is not None or token is not None:
            given = hashlib.sha256(token.encode()).hexdigest() if token is not None else ""
            if cred.session_token_sha256 is None or not hmac.compare_digest(given, cred.session_token_sha256):
                raise sigv4.unrecognized_client()
        ck = (cred.access_key_id, cred.secret, parsed.scope_date, parsed.region, service)
        key = self._signing_keys.get(ck)
        if key is None:
            if len(self._signing_keys) > _CACHE_ENTRIES_MAX:
                self._signing_keys.clear()
            key = self._signing_keys[ck] = sigv4.derive_signing_key(cred.secret, parsed.scope_date, parsed.region,
                                                                    service)
        sigv4.verify(parsed, key, method, target, headers, body)
        auth = headers["authorization"]
        cut = auth.rfind(", Signature=")
        if (cut > 0 and cred.session_token_sha256 is None and "x-amz-date" in parsed.signed_headers
                and "x-amz-target" in parsed.signed_headers):
            if len(self._fast) > _CACHE_ENTRIES_MAX:
                self._fast.clear()
            padded = key.ljust(64, b"\0")
            self._fast[auth[:cut]] = _Fast(cred, parsed.scope_date, parsed.scope, parsed.signed_headers,
                                           hashlib.sha256(bytes(b ^ 0x36 for b in padded)),
                                           hashlib.sha256(bytes(b ^ 0x5C for b in padded)))
        return cred

    # -- authorization ---------------------------------------------------------------------
    def authorize(self, cred: Credential | None, operation: str, params: dict[str, Any]) -> None:
        """AccessDeniedException unless the key's policy allows every action the request makes."""
        if cred is None:
            return
        if operation == "CreateTable" and params.get("ResourcePolicy") is not None:
            self._check(cred, "dynamodb:PutResourcePolicy", self._table(params.get("TableName")))
        if operation in _TABLE_OPS and "IndexName" not in params:  # the common case: one action, one table
            name = params.get("TableName")
            if isinstance(name, str) and name:
                self._check(cred, _ACTIONS[operation], self._table(name))
                return
        for action, resource in self.requirements(operation, params):
            self._check(cred, action, resource)
            if operation in _ARN_OPS:
                self._same_account(cred, action, resource.split("/stream/")[0])

    @staticmethod
    def _same_account(cred: Credential, action: str, arn: str) -> None:
        """A table ARN of another account is refused as IAM refuses it: no resource-based policy
        of that account lets this system's keys in (a malformed ARN is the operation's error)."""
        try:
            _, account, _ = parse_arn(arn)
        except errors.ApiError:
            return
        if account != ACCOUNT:
            raise access_denied(f"arn:aws:iam::{ACCOUNT}:user/{cred.user_name}", action, arn, False,
                                "resource-based")

    def _check(self, cred: Credential, action: str, resource: str) -> None:
        dk = (cred.access_key_id, action, resource)
        decision = self._decisions.get(dk)
        if decision is None:
            if len(self._decisions) > _CACHE_ENTRIES_MAX:
                self._decisions.clear()
            decision = self._decisions[dk] = cred.policy.decide(action, resource)
        allowed, denied = decision
        principal = f"arn:aws:iam::{ACCOUNT}:user/{cred.user_name}"
        policy = self.resource_policy(resource) if self.resource_policy is not None and resource != "*" else None
        if policy is None:
            if not allowed:
                raise access_denied(principal, action, resource, denied)
            return
        # decision 0041, as IAM evaluates a request within one account: an explicit Deny in the
        # key's policy or in the resource's wins; otherwise an Allow in either grants
        if denied:
            raise access_denied(principal, action, resource, True)
        r_allowed, r_denied = policy.decide(principal, ACCOUNT, action, resource)
        if r_denied and not (allowed and action == "dynamodb:DeleteResourcePolicy"):
            # (a key its own policy lets delete a resource policy always may: the way back from a
            # policy that locks everyone out, as DynamoDB's account root always may)
            raise access_denied(principal, action, resource, True, "resource-based")
        if not (allowed or r_allowed):
            raise access_denied(principal, action, resource, False)

    def would_lock_out(self, policy: ResourcePolicy, arn: str) -> bool:
        """Whether ``policy`` explicitly denies the caller dynamodb:PutResourcePolicy on ``arn``
        (PutResourcePolicy then asks for ConfirmRemoveSelfResourceAccess)."""
        cred = caller.get()
        if cred is None:
            return False
        principal = f"arn:aws:iam::{ACCOUNT}:user/{cred.user_name}"
        return policy.decide(principal, ACCOUNT, "dynamodb:PutResourcePolicy", arn)[1]

    def _table(self, name: Any) -> str:
        """The resource a table name or a table ARN names."""
        if not isinstance(name, str) or not name:
            return "*"
        return name if name.startswith("arn:") else self._table_prefix + name

    def requirements(self, op: str, p: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """(action, resource ARN) pairs the request needs; ``*`` when it names no table."""
        if op in SCALING_OPERATIONS:
            yield f"{SCALING_SERVICE}:{op}", "*"
        elif op in _TABLE_OPS:
            resource = self._table(p.get("TableName"))
            index = p.get("IndexName")
            if op in ("Query", "Scan") and isinstance(index, str) and resource != "*":
                resource += f"/index/{index}"
            yield f"dynamodb:{op}", resource
        elif op in ("BatchGetItem", "BatchWriteItem"):
            items = p.get("RequestItems")
            names = list(items) if isinstance(items, dict) and items else [None]
            for name in names[:100]:
                yield f"dynamodb:{op}", self._table(name)
        elif op in ("TransactWriteItems", "TransactGetItems"):
            entries = p.get("TransactItems")
            yield from self._transact(entries if isinstance(entries, list) else [])
        elif op in _ARN_OPS:
            arn = p.get("ResourceArn")
            yield f"dynamodb:{op}", arn if isinstance(arn, str) and arn else "*"
        elif op == "ExecuteStatement":
            yield self._partiql(p.get("Statement"))
        elif op == "BatchExecuteStatement":
            stmts = p.get("Statements")
            for s in (stmts if isinstance(stmts, list) else [None])[:100]:
                yield self._partiql(s.get("Statement") if isinstance(s, dict) else None)
        elif op == "ExecuteTransaction":
            stmts = p.get("TransactStatements")
            for s in (stmts if isinstance(stmts, list) else [None])[:100]:
                yield self._partiql(s.get("Statement") if isinstance(s, dict) else None)
        elif op == "ListStreams":
            table = p.get("TableName")
            yield "dynamodb:ListStreams", self._table(table) + "/stream/*" if isinstance(table, str) else "*"
        elif op in ("DescribeStream", "GetShardIterator"):
            arn = p.get("StreamArn")
            yield f"dynamodb:{op}", arn if isinstance(arn, str) and arn else "*"
        elif op == "GetRecords":
            yield "dynamodb:GetRecords", self._iterator_resource(p.get("ShardIterator"))
        else:  # ListTables, DescribeLimits, DescribeEndpoints: no table
            yield f"dynamodb:{op}", "*"

    def _transact(self, entries: list[Any]) -> Iterator[tuple[str, str]]:
        if not entries:
            yield "dynamodb:TransactWriteItems", "*"
        for e in entries[:100]:
            if not isinstance(e, dict) or len(e) != 1:
                yield "dynamodb:TransactWriteItems", "*"
                continue
            kind, body = next(iter(e.items()))
            action = _TRANSACT_ACTIONS.get(kind, "TransactWriteItems")
            yield f"dynamodb:{action}", self._table(body.get("TableName") if isinstance(body, dict) else None)

    def _partiql(self, statement: Any) -> tuple[str, str]:
        from .partiql_parser import Delete, Insert, Select, Update, parse

        if not isinstance(statement, str):
            return "dynamodb:PartiQLSelect", "*"
        try:
            st = parse(statement)
        except errors.ApiError:
            return "dynamodb:PartiQLSelect", "*"
        action = {Select: "PartiQLSelect", Insert: "PartiQLInsert", Update: "PartiQLUpdate",
                  Delete: "PartiQLDelete"}.get(type(st), "PartiQLSelect")
        table = getattr(st, "table", None)
        resource = self._table(table)
        index = getattr(st, "index", None)
        if isinstance(index, str) and index and resource != "*":
            resource += f"/index/{index}"
        return f"dynamodb:{action}", resource

    def _iterator_resource(self, token: Any) -> str:
        if not isinstance(token, str):
            return "*"
        try:
            d = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            return f"{self._table(d['t'])}/stream/{d['l']}"
        except (binascii.Error, ValueError, KeyError, TypeError):
            return "*"
