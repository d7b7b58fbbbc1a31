"""An asyncio load client for fault tests: concurrent register operations, recorded for the checker.

:func:`run_workload` starts ``clients`` concurrent clients against one table whose hash key is
``pk`` (type S).  Each client owns one keep-alive HTTP/1.1 connection and loops: it picks a random
key and one of

* ``write``: unconditional PutItem ``{pk, v}`` of a fresh value unique to the run;
* ``cas``: PutItem of a fresh value with ``ConditionExpression: v = :expected``, where ``:expected``
  is the value this client last read or wrote for the key, or ``attribute_not_exists(pk)`` when
  it knows of none;
* ``read``: GetItem with ``ConsistentRead: true``,

and records it in a :class:`~dynamolog.testing.checker.History`: ``invoke`` just before the request is
sent, ``complete`` once the answer is classified (:func:`classify`):

=====================================================  ============  =============================
answer                                                  outcome       meaning for the checker
=====================================================  ============  =============================
HTTP 200                                                ``ok``        took effect
400 ConditionalCheckFailedException                     ``fail``      condition was evaluated, false
400 TransactionConflict / Throttling / ProvisionedThr…  ``rejected``  did not take effect, no info
400 ValidationException / SerializationException        ``rejected``  same; counted as unexpected
any other 4xx, any 5xx, unreadable answer               ``unknown``   may or may not have happened
timeout, connection error (then reconnect)              ``unknown``   may or may not have happened
=====================================================  ============  =============================

A throttled or conflicting conditional write is ``rejected`` rather than ``fail`` because its
condition was never evaluated: recording it as ``fail`` would tell the checker the expected value
was not current, which it may well have been.

After the run, :func:`read_all` reads every key consistently and :func:`acknowledged_final_check`
checks those final values against the history; :func:`ok_rate` gives the acknowledged operations
per second in a time window, on which the fault tests assert availability floors.

The HTTP client is deliberately tiny: asyncio streams, ``POST /`` with ``Content-Length``,
keep-alive, responses with ``Content-Length``, chunked or close-delimited bodies.  The server
speaks DynamoDB JSON 1.0; every request is signed (AWS Signature V4) with ``credentials`` or
else ``$AWS_ACCESS_KEY_ID`` / ``$AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from dynamolog.client.http import read_response
from dynamolog.testing.checker import (
    CAS,
    DEFAULT_MAX_STEPS,
    FAIL,
    OK,
    READ,
    REJECTED,
    UNKNOWN,
    WRITE,
    History,
    Op,
    Value,
    check_key,
)

CONDITIONAL_CHECK_FAILED: Final = "ConditionalCheckFailedException"
#: 400 error types that mean the request was refused before it did anything
REJECTED_TYPES: Final = frozenset({
    "TransactionConflictException",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
})
#: 400 error types for a malformed request: it did nothing, but the workload should never send one
VALIDATION_TYPES: Final = frozenset({"ValidationException", "SerializationException"})

DEFAULT_TIMEOUT: Final = 10.0
_TARGET_PREFIX: Final = "DynamoDB_20120810."


# --------------------------------------------------------------------------------------------
# Classification (no I/O)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    """What an HTTP answer means for the history: ``outcome`` is a :mod:`dynamolog.testing.checker` outcome,
    ``error`` the DynamoDB error type (short name) or ``HTTP<status>``, ``unexpected`` marks
    answers the workload should never get (they are counted as errors in the stats)."""

    outcome: str
    error: str | None = None
    unexpected: bool = False


def error_type(body: bytes | Mapping[str, Any] | None) -> str:
    """The short ``__type`` of an error body (after the last ``#``), or ``""``."""
    doc = _as_doc(body)
    t = doc.get("__type") if doc is not None else None
    return t.rsplit("#", 1)[-1] if isinstance(t, str) else ""


def _as_doc(body: bytes | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None or isinstance(body, Mapping):
        return body
    try:
        doc = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def classify(status: int, body: bytes | Mapping[str, Any] | None) -> Classification:
    """Classifies one answer (see the table in the module doc)."""
    doc = _as_doc(body)
    if status == 200:
        if doc is None:
            return Classification(UNKNOWN, "BadResponseBody", unexpected=True)
        return Classification(OK)
    if 400 <= status < 500:
        t = error_type(doc)
        if t == CONDITIONAL_CHECK_FAILED:
            return Classification(FAIL, t)
        if t in REJECTED_TYPES:
            return Classification(REJECTED, t)
        if t in VALIDATION_TYPES:
            return Classification(REJECTED, t, unexpected=True)
        return Classification(UNKNOWN, t or f"HTTP{status}", unexpected=True)
    return Classification(UNKNOWN, error_type(doc) or f"HTTP{status}")


def item_value(doc: Mapping[str, Any]) -> tuple[bool, Value]:
    """The ``v`` of a GetItem answer: ``(True, value)``, ``(True, None)`` when there is no item,
    ``(False, None)`` when the answer has an item whose ``v`` is not a string."""
    item = doc.get("Item")
    if not item:
        return True, None
    v = item.get("v") if isinstance(item, Mapping) else None
    s = v.get("S") if isinstance(v, Mapping) else None
    return (True, s) if isinstance(s, str) else (False, None)


def put_request(table: str, key: str, value: str, expected: Value = None, conditional: bool = False) -> dict[str, Any]:
    """The PutItem body; ``conditional`` adds ``v = :expected`` or ``attribute_not_exists(pk)``."""
    body: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": key}, "v": {"S": value}}}
    if conditional:
        if expected is None:
            body["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            body["ConditionExpression"] = "v = :expected"
            body["ExpressionAttributeValues"] = {":expected": {"S": str(expected)}}
    return body


def get_request(table: str, key: str) -> dict[str, Any]:
    return {"TableName": table, "Key": {"pk": {"S": key}}, "ConsistentRead": True}


# --------------------------------------------------------------------------------------------
# A tiny HTTP/1.1 client
# --------------------------------------------------------------------------------------------


class HttpProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.1 as expected."""


class HttpClient:
    """One keep-alive connection to a DynamoDB JSON 1.0 endpoint, one request at a time.

    :meth:`call` raises :class:`TimeoutError` or :class:`OSError` (``ConnectionError`` included)
    when the outcome is unknown, after closing the connection; the next call reconnects.
    """

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT,
                 credentials: tuple[str, str] | None = None) -> None:
        """``credentials``: (access key id, secret); default ``$AWS_ACCESS_KEY_ID`` and
        ``$AWS_SECRET_ACCESS_KEY``."""
        import os

        self.access_key, self.secret_key = credentials or (os.environ.get("AWS_ACCESS_KEY_ID", ""),
                                                           os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
        u = urlsplit(endpoint)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"endpoint must be http://host:port, got {endpoint!r}")
        self.host = u.hostname
        self.port = u.port or 80
        self.hostport = u.netloc
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._heads: dict[str, bytes] = {}

    def _head(self, target: str, body: bytes) -> bytes:
        from dynamolog.client import sigv4

        ts = sigv4.amz_date()
        headers = {"host": self.hostport, "content-type": "application/x-amz-json-1.0",
                   "x-amz-target": f"{_TARGET_PREFIX}{target}", "x-amz-date": ts}
        auth = sigv4.sign(method="POST", path="/", headers=headers, body=body, access_key=self.access_key,
                          secret_key=self.secret_key, region="us-east-1", service="dynamodb", timestamp=ts)
        return (
            f"POST / HTTP/1.1\r\n"
            f"Host: {self.hostport}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\n"
            f"X-Amz-Target: {_TARGET_PREFIX}{target}\r\n"
            f"X-Amz-Date: {ts}\r\n"
            f"Authorization: {auth}\r\n"
        ).encode()

    async def call(self, target: str, payload: Mapping[str, Any]) -> tuple[int, bytes]:
        """Sends ``payload`` to operation ``target`` (e.g. ``"PutItem"``): (status, body)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        data = b"".join((self._head(target, body), b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))
        try:
            async with asyncio.timeout(self.timeout):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                assert self._reader is not None
                self._writer.write(data)
                await self._writer.drain()
                status, answer, keep = await read_response(self._reader)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            await self.close()
            if isinstance(e, (asyncio.IncompleteReadError, asyncio.LimitOverrunError)):
                raise HttpProtocolError(str(e)) from e
            raise
        if not keep:
            await self.close()
        return status, answer

    async def close(self) -> None:
        w, self._writer, self._reader = self._writer, None, None
        if w is not None:
            w.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await w.wait_closed()


@dataclass
class WorkloadStats:
    """Counts of one run.  ``unexpected`` counts answers that should never happen (validation
    errors, other 4xx, unreadable bodies); ``errors`` counts every error type and exception."""

    outcomes: Counter[str] = field(default_factory=Counter)
    by_op: dict[str, Counter[str]] = field(default_factory=lambda: {WRITE: Counter(), CAS: Counter(), READ: Counter()})
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: int = 0
    elapsed: float = 0.0

    def record(self, kind: str, outcome: str, error: str | None, unexpected: bool) -> None:
        self.outcomes[outcome] += 1
        self.by_op.setdefault(kind, Counter())[outcome] += 1
        if error:
            self.errors[error] += 1
        if unexpected:
            self.unexpected += 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "elapsed": round(self.elapsed, 3),
            "outcomes": dict(self.outcomes),
            "by_op": {k: dict(v) for k, v in self.by_op.items()},
            "errors": dict(self.errors),
            "unexpected": self.unexpected,
        }


@dataclass
class WorkloadResult:
    history: History
    stats: WorkloadStats


async def run_workload(
    endpoint: str,
    table: str,
    keys: Sequence[str],
    clients: int = 4,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int | None = None,
    history: History | None = None,
    run_id: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> WorkloadResult:
    """Runs ``clients`` concurrent clients until ``duration`` seconds pass or ``stop`` is set.

    ``weights`` are the relative frequencies of (write, cas, read).  Requests in flight when the
    run ends are finished (each within ``timeout``), so no op is left pending.  Values are
    ``<run_id>-c<client>-<n>``, unique to the run (``run_id`` is random unless given).  Pass a
    ``history`` whose ``initial`` holds the keys' states before the run if they are not absent.
    """
    if duration is None and stop is None:
        raise ValueError("give a duration, a stop event, or both")
    if not keys:
        raise ValueError("no keys")
    hist = history if history is not None else History()
    stats = WorkloadStats()
    rid = run_id or secrets.token_hex(4)
    master = random.Random(seed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration is not None else None

    def stopped() -> bool:
        return (stop is not None and stop.is_set()) or (deadline is not None and loop.time() >= deadline)

    async def client(ci: int, rnd: random.Random) -> None:
        name = f"c{ci}"
        http = HttpClient(endpoint, timeout, credentials)
        known: dict[str, Value] = {}
        n = 0
        try:
            while not stopped():
                key = rnd.choice(keys)
                kind = rnd.choices((WRITE, CAS, READ), weights)[0]
                if kind == READ:
                    target, payload = "GetItem", get_request(table, key)
                    handle = hist.invoke(name, key, READ)
                else:
                    n += 1
                    value = f"{rid}-{name}-{n}"
                    expected = known.get(key) if kind == CAS else None
                    target = "PutItem"
                    payload = put_request(table, key, value, expected, conditional=kind == CAS)
                    handle = hist.invoke(name, key, kind, value=value, expected=expected)
                try:
                    status, body = await http.call(target, payload)
                except (TimeoutError, OSError) as e:
                    err = type(e).__name__
                    hist.complete(handle, UNKNOWN, error=err)
                    stats.record(kind, UNKNOWN, err, False)
                    continue
                c = classify(status, body)
                outcome, observed = c.outcome, None
                if outcome == OK and kind == READ:
                    doc = _as_doc(body)
                    good, observed = item_value(doc) if doc is not None else (False, None)
                    if not good:
                        c = Classification(UNKNOWN, "check:BadItem", unexpected=True)
                        outcome, observed = UNKNOWN, None
                hist.complete(handle, outcome, observed, error=c.error)
                stats.record(kind, outcome, c.error, c.unexpected)
                if outcome == UNKNOWN:
                    await http.close()  # start afresh after anything odd
                elif outcome == OK:
                    known[key] = observed if kind == READ else value
        finally:
            await http.close()

    t0 = time.monotonic()
    await asyncio.gather(*(client(i, random.Random(master.random())) for i in range(clients)))
    stats.elapsed = time.monotonic() - t0
    return WorkloadResult(hist, stats)


async def read_all(
    endpoint: str, table: str, keys: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT, deadline: float = 60.0,
    credentials: tuple[str, str] | None = None,
) -> dict[str, Value]:
    """Reads every key with ``ConsistentRead``; retries a key whose read does not come back ok
    until ``deadline`` seconds have passed, then raises :class:`TimeoutError`."""
    http = HttpClient(endpoint, timeout, credentials)
    end = time.monotonic() + deadline
    out: dict[str, Value] = {}
    try:
        for key in keys:
            delay = 0.05
            while True:
                last: str
                try:
                    status, body = await http.call("GetItem", get_request(table, key))
                except (TimeoutError, OSError) as e:
                    last = f"{type(e).__name__}: {e}"
                else:
                    c = classify(status, body)
                    doc = _as_doc(body)
                    if c.outcome == OK and doc is not None:
                        good, value = item_value(doc)
                        if good:
                            out[key] = value
                            break
                        last = f"item without a string v: {body[:200]!r}"
                    else:
                        last = f"HTTP {status} {c.error}"
                        if c.outcome == UNKNOWN:
                            await http.close()
                if time.monotonic() + delay > end:
                    raise TimeoutError(f"could not read key {key!r} of {table!r}: {last}")
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
    finally:
        await http.close()
    return out


def acknowledged_final_check(
    history: History | Iterable[Op],
    final_values: Mapping[str, Value],
    initial: Mapping[str, Value] | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> list[str]:
    """Problems with the final values read after the run (empty: all good).

    For each key of ``final_values``: the value must be ``None``, the key's initial value, or a
    value written by an op that may have taken effect (``ok`` or ``unknown``); and the key's
    history plus a read of that value, invoked after every op completed, must be linearizable,
    which says that no acknowledged write was lost or undone.  ``initial`` defaults to the
    history's.  A search that runs out of steps is reported as "undecided".
    """
    if isinstance(history, History):
        ops = history.ops()
        init = dict(history.initial if initial is None else initial)
    else:
        ops = list(history)
        init = dict(initial or {})
    times = [t for op in ops for t in (op.invoke, op.complete) if t is not None]
    after = max(times, default=0.0) + 1.0
    next_id = max((op.id for op in ops), default=-1) + 1
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)

    problems: list[str] = []
    for key, final in sorted(final_values.items()):
        key_ops = by_key.get(key, [])
        start = init.get(key)
        possible: set[Value] = {None, start}
        possible.update(op.value for op in key_ops if op.kind != READ and op.outcome in (OK, UNKNOWN))
        if final not in possible:
            problems.append(f"key {key!r}: final value {final!r} was written by no op that may have taken effect")
            continue
        read = Op(client="final-read", key=key, kind=READ, invoke=after, complete=after, outcome=OK,
                  observed=final, id=next_id)
        r = check_key([*key_ops, read], start, max_steps=max_steps)
        if r.linearizable is False:
            before = check_key(key_ops, start, max_steps=max_steps, explain=False).linearizable
            if before is False:
                problems.append(f"key {key!r}: not linearizable even before the final read: {r.explanation}")
            else:
                problems.append(f"key {key!r}: final value {final!r} does not fit the history: {r.explanation}")
        elif r.linearizable is None:
            problems.append(f"key {key!r}: undecided: {r.explanation}")
    return problems


def ok_rate(ops: Iterable[Op], start: float, end: float) -> float:
    """Acknowledged operations per second over ``[start, end)``: the ``ok`` operations that
    completed in that window, divided by its length (0.0 for an empty window).  The fault tests
    assert floors on it before, during and after a fault."""
    if end <= start:
        return 0.0
    n = sum(1 for op in ops if op.outcome == OK and op.complete is not None and start <= op.complete < end)
    return n / (end - start)
