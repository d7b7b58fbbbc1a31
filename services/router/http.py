"""A small HTTP/1.1 server for the DynamoDB JSON protocol (asyncio + httptools).

Only what DynamoDB clients use: ``POST /`` with a ``Content-Length`` body and keep-alive, and
``GET /`` for a health line.  Requests on one connection are answered in order.  Limits:
``BODY_BYTES_MAX`` per request body, ``HEADER_BYTES_MAX`` for the header block.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import httptools

log = logging.getLogger(__name__)

#: largest request body accepted (DynamoDB's own request limit is 16 MB)
BODY_BYTES_MAX = 16 * 1024 * 1024
HEADER_BYTES_MAX = 64 * 1024

#: (method, path, headers with lower-case names, body) -> (status, headers, body)
Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, list[tuple[str, str]], bytes]]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Request Entity Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._last: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            self._send_now(400, b"malformed HTTP request", close=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_bytes = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > HEADER_BYTES_MAX:
            self._send_now(400, b"request headers too large", close=True)
            return
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > BODY_BYTES_MAX:
            self._too_large = True
            self._body = []
        elif not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode()
        keep_alive = self._parser.should_keep_alive()
        path = self._url.decode("latin-1")
        headers, body = self._headers, b"".join(self._body)
        if self._too_large:
            fut = asyncio.ensure_future(self._answer_too_large(keep_alive))
        else:
            fut = asyncio.ensure_future(self._respond(method, path, headers, body, keep_alive, self._last))
        self._last = fut

    # -- answering -----------------------------------------------------------------------
    async def _answer_too_large(self, keep_alive: bool) -> None:
        self._send_now(413, b'{"__type":"com.amazon.coral.service#SerializationException",'
                       b'"message":"Request payload size exceeds the maximum allowed"}', close=True)

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool,
        previous: asyncio.Future[None] | None,
    ) -> None:
        try:
            status, extra, out = await self._handler(method, path, headers, body)
        except Exception:
            log.exception("http: handler failed")
            status, extra, out = 500, [], b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}'
        if previous is not None and not previous.done():
            await previous
        self._write(status, extra, out, keep_alive)

    def _write(self, status: int, extra: list[tuple[str, str]], body: bytes, keep_alive: bool) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        for name, value in extra:
            head += f"{name}: {value}\r\n"
        head += f"Content-Length: {len(body)}\r\nDate: {_http_date()}\r\n"
        if not keep_alive:
            head += "Connection: close\r\n"
        t.write(head.encode("latin-1") + b"\r\n" + body)
        if not keep_alive:
            t.close()

    def _send_now(self, status: int, body: bytes, close: bool) -> None:
        self._write(status, [("Content-Type", "application/x-amz-json-1.0")], body, keep_alive=not close)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpServer:
    """Serves ``handler`` on ``host:port``."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self._handler), self.host, self.port, backlog=1024, reuse_address=True
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
