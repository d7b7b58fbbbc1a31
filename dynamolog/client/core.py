"""The client: signed DynamoDB JSON 1.0 calls with retries, item helpers, and batched writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Mapping
from itertools import islice
from types import TracebackType
from typing import Any, Literal

import orjson

from . import sigv4
from .attributes import from_item, to_item
from .errors import ClientError
from .http import HttpPool, Transport
from .streams import Checkpoint, StreamReader

__all__ = ["STREAMS_OPERATIONS", "Client", "ClientError", "Writer", "WriterError"]

DYNAMODB_PREFIX = "DynamoDB_20120810"
STREAMS_PREFIX = "DynamoDBStreams_20120810"
#: Operations of the DynamoDB Streams API (sent with the ``DynamoDBStreams_20120810`` target).
STREAMS_OPERATIONS = frozenset({"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"})
CONTENT_TYPE = "application/x-amz-json-1.0"

#: Error codes retried with backoff (plus every 5xx answer and every transport failure).
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "ThrottlingError",
})
#: Retried for the Streams operations only (there it means "polling too fast").
RETRYABLE_STREAMS_CODES = frozenset({"LimitExceededException"})


class WriterError(Exception):
    """A :class:`Writer` batch still had unprocessed requests after every retry;
    ``requests`` are those (wire form, ``PutRequest``/``DeleteRequest``)."""

    def __init__(self, message: str, requests: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.requests = requests


def _error_from(status: int, body: bytes) -> ClientError:
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return ClientError(f"Http{status}", body[:200].decode("utf-8", "replace"), status,
                           {"raw": body.decode("utf-8", "replace")})
    code = str(data.get("__type") or f"Http{status}").rsplit("#", 1)[-1]
    message = str(data.get("message") or data.get("Message") or "")
    return ClientError(code, message, status, data)


class Client:
    """An async DynamoDB (and DynamoDB Streams) client for Dynamolog or DynamoDB itself.

    ``async with Client("http://127.0.0.1:8000") as c: await c.put("T", {"pk": "a", "n": 1})``

    Every request is signed with AWS Signature V4 (service ``dynamodb``, also for the Streams
    operations). Throttling errors, ``InternalServerError``/``ServiceUnavailable``, any 5xx and
    transport failures (connection errors, timeouts) are retried up to ``max_retries`` times
    with full-jitter exponential backoff: ``uniform(0, min(backoff_max, backoff_base * 2**n))``.
    Note that a retried transport failure may repeat a write that did take effect.
    Up to ``max_connections`` requests are in flight at once over keep-alive connections.
    """

    def __init__(self, endpoint: str, region: str = "us-east-1", access_key: str | None = None,
                 secret_key: str | None = None, timeout: float = 10.0, *, session_token: str | None = None,
                 max_connections: int = 16, max_retries: int = 5, backoff_base: float = 0.05,
                 backoff_max: float = 2.0, transport: Transport | None = None) -> None:
        self.endpoint = endpoint
        self.region = region
        # default: the usual AWS environment (e.g. after `set -a; . <data-dir>/credentials.env`)
        self.access_key = access_key or os.environ.get("AWS_ACCESS_KEY_ID") or "local"
        self.secret_key = secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY") or "local"
        if session_token is None and access_key is None:
            session_token = os.environ.get("AWS_SESSION_TOKEN") or None
        self.session_token = session_token
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._transport: Transport = transport or HttpPool(endpoint, timeout=timeout, max_connections=max_connections)
        self._readers: set[StreamReader] = set()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops every stream reader made by this client and closes the connections."""
        for reader in list(self._readers):
            await reader.aclose()
        await self._transport.close()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): full jitter."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * (2 ** attempt)))

    def _headers(self, target: str, body: bytes) -> dict[str, str]:
        stamp = sigv4.amz_date()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Date": stamp,
            "X-Amz-Target": target,
        }
        if self.session_token:
            headers["X-Amz-Security-Token"] = self.session_token
        signed = {"host": self._transport.host_header} | headers
        headers["Authorization"] = sigv4.sign(
            method="POST", path="/", headers=signed, body=body, access_key=self.access_key,
            secret_key=self.secret_key, region=self.region, service="dynamodb", timestamp=stamp)
        return headers

    async def call(self, operation: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Calls one operation with wire-form ``params``; returns the decoded answer.

        Raises :class:`ClientError` for an error answer (after the retries, when retryable), or
        the transport's ``OSError``/``TimeoutError`` once the retries are spent."""
        prefix = STREAMS_PREFIX if operation in STREAMS_OPERATIONS else DYNAMODB_PREFIX
        target = f"{prefix}.{operation}"
        body = orjson.dumps(params or {})
        attempt = 0
        while True:
            try:
                status, answer = await self._transport.request(self._headers(target, body), body)
            except (OSError, TimeoutError):
                if attempt >= self.max_retries:
                    raise
            else:
                if status == 200:
                    result = orjson.loads(answer) if answer else {}
                    if not isinstance(result, dict):
                        raise ClientError("SerializationException", "answer is not a JSON object", status,
                                          {"raw": answer.decode("utf-8", "replace")})
                    return result
                err = _error_from(status, answer)
                retryable = status >= 500 or err.code in RETRYABLE_CODES or (
                    prefix == STREAMS_PREFIX and err.code in RETRYABLE_STREAMS_CODES)
                if not retryable or attempt >= self.max_retries:
                    raise err
            await asyncio.sleep(self.backoff(attempt))
            attempt += 1

    # ---- items ---------------------------------------------------------------------------

    async def put(self, table: str, item: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        """PutItem of a plain-value item; extra wire ``params`` (e.g. ``ConditionExpression``)
        pass through. Returns the raw answer."""
        return await self.call("PutItem", {"TableName": table, "Item": to_item(item)} | params)

    async def get(self, table: str, key: Mapping[str, Any], consistent: bool = False,
                  **params: Any) -> dict[str, Any] | None:
        """GetItem: the item as plain values, or None when there is none."""
        answer = await self.call("GetItem", {"TableName": table, "Key": to_item(key),
                                             "ConsistentRead": consistent} | params)
        item = answer.get("Item")
        return from_item(item) if item is not None else None

    async def delete(self, table: str, key: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        """DeleteItem; returns the raw answer."""
        return await self.call("DeleteItem", {"TableName": table, "Key": to_item(key)} | params)

    async def query(self, table: str, key_condition: str, values: Mapping[str, Any] | None = None, *,
                    names: Mapping[str, str] | None = None, index: str | None = None,
                    filter: str | None = None, projection: str | None = None, consistent: bool = False,
                    forward: bool = True, page_size: int | None = None, limit: int | None = None,
                    **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Query, paging through ``LastEvaluatedKey``; yields items as plain values.

        ``values`` are the ``:placeholders`` as plain values; ``page_size`` is the request's
        ``Limit``; ``limit`` stops after that many items in all."""
        req: dict[str, Any] = {"TableName": table, "KeyConditionExpression": key_condition,
                               "ConsistentRead": consistent, "ScanIndexForward": forward}
        if values:
            req["ExpressionAttributeValues"] = to_item(values)
        if names:
            req["ExpressionAttributeNames"] = dict(names)
        if index:
            req["IndexName"] = index
        if filter:
            req["FilterExpression"] = filter
        if projection:
            req["ProjectionExpression"] = projection
        if page_size:
            req["Limit"] = page_size
        req |= params
        seen = 0
        while True:
            answer = await self.call("Query", req)
            for item in answer.get("Items") or []:
                yield from_item(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            req["ExclusiveStartKey"] = last

    def writer(self, table: str, max_batch: int = 25, flush_interval: float = 0.05, *,
               key_names: tuple[str, ...] | None = None, max_attempts: int = 10) -> Writer:
        """A batching :class:`Writer` for ``table`` (use it with ``async with``)."""
        return Writer(self, table, max_batch=max_batch, flush_interval=flush_interval,
                      key_names=key_names, max_attempts=max_attempts)

    # ---- streams -------------------------------------------------------------------------

    def stream(self, table: str, *, start: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON",
               checkpoint: Checkpoint | None = None, poll_interval: float = 0.1,
               describe_interval: float = 5.0) -> StreamReader:
        """The table's change stream as an async iterator of :class:`StreamRecord` (see
        :class:`~dynamolog.client.streams.StreamReader` for ordering and checkpoints)."""
        reader = StreamReader(self, table, start=start, checkpoint=checkpoint, poll_interval=poll_interval,
                              describe_interval=describe_interval)
        self._readers.add(reader)
        return reader

    def _forget(self, reader: StreamReader) -> None:
        self._readers.discard(reader)


class Writer:
    """Groups puts and deletes of one table into ``BatchWriteItem`` requests.

    A batch is sent when ``max_batch`` (at most 25) requests are pending, or ``flush_interval``
    seconds after the first pending one, or on :meth:`flush` and on leaving the ``async with``.
    Batches go out one at a time, in order. ``UnprocessedItems`` are resent with backoff up to
    ``max_attempts`` times, then :class:`WriterError` is raised.

    Duplicates: BatchWriteItem refuses two requests for the same key, so within one pending
    batch the *later* put or delete of a key replaces the earlier one (last write wins, as if
    both had been sent in order). The key schema comes from DescribeTable unless ``key_names``
    is given.

    Errors: an error of a batch sent in the background (interval flush) is raised by the next
    :meth:`put`, :meth:`delete`, :meth:`flush` or by leaving the ``async with``; that batch's
    requests are not retried further.
    """

    def __init__(self, client: Client, table: str, *, max_batch: int = 25, flush_interval: float = 0.05,
                 key_names: tuple[str, ...] | None = None, max_attempts: int = 10) -> None:
        if not 1 <= max_batch <= 25:
            raise ValueError("max_batch must be 1..25 (BatchWriteItem's limit)")
        self.client = client
        self.table = table
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.key_names = key_names
        self.batches_sent = 0
        self._pending: dict[tuple[bytes, ...], dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Writer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if et is None:
                await self.flush()
        finally:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _keys(self) -> tuple[str, ...]:
        if self.key_names is None:
            desc = await self.client.call("DescribeTable", {"TableName": self.table})
            self.key_names = tuple(k["AttributeName"] for k in desc["Table"]["KeySchema"])
        return self.key_names

    def _raise_error(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    async def _add(self, wire_key: Mapping[str, Any], request: dict[str, Any]) -> None:
        self._raise_error()
        names = await self._keys()
        try:
            key = tuple(orjson.dumps(wire_key[n], option=orjson.OPT_SORT_KEYS) for n in names)
        except KeyError as e:
            raise ValueError(f"key attribute {e.args[0]!r} missing") from None
        self._pending.pop(key, None)
        self._pending[key] = request
        if len(self._pending) >= self.max_batch:
            await self._flush(whole=False)
        else:
            self._wake.set()

    async def put(self, item: Mapping[str, Any]) -> None:
        """Queues a put of a plain-value item (may wait while a full batch is sent)."""
        wire = to_item(item)
        await self._add(wire, {"PutRequest": {"Item": wire}})

    async def delete(self, key: Mapping[str, Any]) -> None:
        """Queues a delete of ``key`` (plain values)."""
        wire = to_item(key)
        await self._add(wire, {"DeleteRequest": {"Key": wire}})

    async def flush(self) -> None:
        """Sends everything pending and waits for it; raises a pending background error."""
        self._raise_error()
        await self._flush(whole=True)

    async def _flush(self, whole: bool) -> None:
        async with self._lock:
            while len(self._pending) >= (1 if whole else self.max_batch):
                keys = list(islice(self._pending, self.max_batch))
                await self._send([self._pending.pop(k) for k in keys])

    async def _send(self, requests: list[dict[str, Any]]) -> None:
        for attempt in range(self.max_attempts):
            answer = await self.client.call("BatchWriteItem", {"RequestItems": {self.table: requests}})
            self.batches_sent += 1
            requests = (answer.get("UnprocessedItems") or {}).get(self.table) or []
            if not requests:
                return
            if attempt + 1 < self.max_attempts:
                await asyncio.sleep(self.client.backoff(attempt))
        raise WriterError(f"{len(requests)} request(s) still unprocessed after {self.max_attempts} attempts",
                          requests)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.flush_interval)
            try:
                await self._flush(whole=True)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - surfaced by the next call
                if self._error is None:
                    self._error = e
