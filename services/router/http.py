"""A small HTTP/1.1 server for the DynamoDB JSON protocol (asyncio + httptools).

Only what DynamoDB clients use: ``POST /`` with a ``Content-Length`` body and keep-alive, ``GET /``
for a health line and ``OPTIONS`` for CORS preflights (services/router/edge.py).  Requests on one
connection are answered in order.  Limits (no
input from the network can make the server hold unbounded memory or connections):
``BODY_BYTES_MAX`` per request body, ``HEADER_BYTES_MAX`` for the header block, and the
:class:`HttpLimits`: open connections, requests waiting for their answer on one connection,
the time a client may take to send one request (slow clients), the idle time of a
keep-alive connection, and answers a client leaves unread: when a connection's send buffer
passes ``write_buffer_bytes_max`` the server stops reading it and holds further answers until
the client reads, and a client that reads nothing for ``write_s_max`` is disconnected.  Every answer the server makes itself is a DynamoDB JSON error, never a
stack trace.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import httptools

from dynamolog.aio import closing
from dynamolog.sendgate import SendGate

log = logging.getLogger(__name__)

#: largest request body accepted (DynamoDB's own request limit is 16 MB)
BODY_BYTES_MAX = 16 * 1024 * 1024
HEADER_BYTES_MAX = 64 * 1024

#: an answer's headers: (name, value) pairs, or the header lines already made
#: (``b"Name: value\r\n"`` each; what the DynamoDB operations answer, made from a constant part)
Headers = list[tuple[str, str]] | bytes
#: (method, path, headers with lower-case names, body) -> (status, headers, body); a body that is an
#: async iterator is sent chunked as it comes (the console's server-sent events)
Handler = Callable[[str, str, dict[str, str], bytes],
                   Awaitable[tuple[int, Headers, bytes | AsyncIterator[bytes]]]]
#: an answer a :data:`Quick` handler gives: (status, headers, body)
Answer = tuple[int, Headers, bytes]
#: (method, path, headers, body, reply) -> whether it took the request, without a task of its own:
#: then it calls ``reply`` once, with the answer, or with None for the ``Handler`` to answer it
Quick = Callable[[str, str, dict[str, str], bytes, Callable[[Answer | None], None]], bool]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Request Entity Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
_JSON = [("Content-Type", "application/x-amz-json-1.0")]
_MALFORMED = (b'{"__type":"com.amazon.coral.service#SerializationException",'
              b'"message":"Malformed HTTP request"}')
_BUSY = (b'{"__type":"com.amazon.coral.availability#ServiceUnavailable",'
         b'"message":"The service is currently unavailable or busy."}')
_TOO_LARGE = (b'{"__type":"com.amazon.coral.service#SerializationException",'
              b'"message":"Request payload size exceeds the maximum allowed"}')
_INTERNAL = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}'


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on what clients can make the server hold."""

    #: open client connections at most; one more is answered 503 and closed
    connections_max: int = 1024
    #: requests received on one connection and not yet answered; reading pauses beyond this
    pipelined_max: int = 32
    #: seconds from a request's first byte to its last (slow clients are disconnected)
    request_s_max: float = 60.0
    #: seconds a keep-alive connection may sit idle between requests
    idle_s_max: float = 120.0
    #: bytes of answers waiting in a connection's send buffer before the server stops reading it
    #: and holds further answers (the client is not reading)
    write_buffer_bytes_max: int = 1024 * 1024
    #: seconds a client may leave a full send buffer unread before it is disconnected
    write_s_max: float = 30.0


_date_cache: tuple[int, bytes] = (0, b"")
#: status -> its status line, made once
_STATUS_LINES: dict[int, bytes] = {}


def _http_date() -> bytes:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("latin-1"))
    return _date_cache[1]


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n".encode("latin-1")
    return line


def header_lines(headers: Headers) -> bytes:
    """``headers`` as the lines of an answer's header block."""
    if isinstance(headers, bytes):
        return headers
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler, server: HttpServer) -> None:
        self._handler = handler
        self._server = server
        self._limits = server.limits
        self._timer: asyncio.TimerHandle | None = None
        #: when the connection is closed unless something moves it (None: while a request is handled)
        self._deadline: float | None = None
        #: when ``_timer`` fires (at or before ``_deadline``)
        self._timer_at = 0.0
        #: the send buffer below its high-water mark (answers may be written), and the "client
        #: reads nothing" timer while it is not
        self._send = SendGate(self._limits.write_s_max, self._abort_stalled)
        self._writable = self._send.open
        self._waiting = 0
        self._paused = False
        self._counted = False
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._last: asyncio.Future[None] | None = None
        #: a request taken by the quick handler is not answered yet
        self._quick_open = False
        #: done once that answer is written (made when a request arrives behind it)
        self._after_quick: asyncio.Future[None] | None = None
        #: the answers of the last ``pipelined_max`` requests, oldest first: a request's handler
        #: runs once the answer ``pipelined_max`` requests before it is written, so at most that
        #: many answers are ever held, however many requests one read brought in
        self._recent: collections.deque[asyncio.Future[None]] = collections.deque()

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._server.open_connections >= self._limits.connections_max:
            self._send_now(503, _BUSY, close=True)
            return
        self._server.open_connections += 1
        self._counted = True
        transport.set_write_buffer_limits(high=self._limits.write_buffer_bytes_max)  # type: ignore[attr-defined]
        self._arm(self._limits.idle_s_max)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            self._send_now(400, _MALFORMED, close=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._send.ended()  # answers still waiting find the transport gone and drop themselves
        if self._counted:
            self._counted = False
            self._server.open_connections -= 1

    def pause_writing(self) -> None:
        """The send buffer passed ``write_buffer_bytes_max``: the client is not reading."""
        self._send.paused()
        self._update_reading()

    def resume_writing(self) -> None:
        self._send.resumed()
        self._update_reading()

    def _abort_stalled(self) -> None:
        if self._transport is not None:
            log.info("http: %s read none of its answers for %.1f s; disconnecting it",
                     self._transport.get_extra_info("peername"), self._limits.write_s_max)
            self._transport.abort()  # close() would wait to send the buffer the client never reads

    def _update_reading(self) -> None:
        """Read while fewer than ``pipelined_max`` requests wait and the client reads its answers."""
        t = self._transport
        if t is None or t.is_closing():
            return
        pause = self._waiting >= self._limits.pipelined_max or not self._writable.is_set()
        if pause and not self._paused:
            self._paused = True
            t.pause_reading()
        elif not pause and self._paused:
            self._paused = False
            t.resume_reading()

    # -- timers: one deadline per connection, either "idle" or "request in progress" -------
    # A request moves the deadline twice (its start, its answer); the timer is not remade each
    # time: one stays armed at or before the deadline, and when it fires early it re-arms for
    # the deadline as it is then.  (Making and cancelling two timers per request was 3 % of the
    # router's CPU under a GetItem load.)
    def _arm(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + seconds
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = loop.call_at(deadline, self._expire)

    def _disarm(self) -> None:
        self._deadline = None

    def _expire(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer_at = self._deadline
            self._timer = loop.call_at(self._deadline, self._expire)
        else:
            self._close()

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._arm(self._limits.request_s_max)
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
            self._send_now(400, b'{"__type":"com.amazon.coral.service#SerializationException",'
                           b'"message":"Request headers too large"}', close=True)
            return
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > BODY_BYTES_MAX and not self._too_large:
            self._too_large = True
            self._send_now(413, _TOO_LARGE, close=True)

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_bytes += len(body)
        if self._body_bytes > BODY_BYTES_MAX:
            if not self._too_large:  # answer at once and close: the rest of the body is never read
                self._too_large = True
                self._body = []
                self._send_now(413, _TOO_LARGE, close=True)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if self._transport is None or self._transport.is_closing():
            return
        self._waiting += 1
        self._update_reading()
        method = self._parser.get_method().decode("latin-1")
        keep_alive = self._parser.should_keep_alive()
        path = self._url.decode("latin-1")
        headers, body = self._headers, b"".join(self._body)
        quick = self._server.quick
        if (quick is not None and self._waiting == 1 and (self._last is None or self._last.done())
                and self._writable.is_set()):
            # nothing before it is still to be answered: the quick handler may answer it
            self._quick_open = True
            self._last = None
            if quick(method, path, headers, body,
                     lambda answer: self._quick_reply(method, path, headers, body, keep_alive, answer)):
                return
            self._quick_open = False
        previous = self._last
        if previous is None and self._quick_open:  # it follows the quick handler's answer
            previous = self._after_quick = asyncio.get_running_loop().create_future()
        gate = self._recent.popleft() if len(self._recent) >= self._limits.pipelined_max else None
        self._last = asyncio.ensure_future(self._respond(method, path, headers, body, keep_alive, previous, gate))
        self._recent.append(self._last)

    def _quick_reply(self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool,
                     answer: Answer | None) -> None:
        """Write the quick handler's answer, or hand the request to the handler (``answer`` None)."""
        self._quick_open = False
        after, self._after_quick = self._after_quick, None
        if answer is None:
            task = asyncio.ensure_future(self._respond(method, path, headers, body, keep_alive, None, None))
            if after is None:
                self._last = task
            else:
                task.add_done_callback(lambda _t: after.set_result(None))
            return
        self._waiting -= 1
        self._write(*answer, keep_alive)
        self._answered()
        if after is not None:
            after.set_result(None)

    def _answered(self) -> None:
        """An answer was written: read on if there is room, and count idle time once none waits."""
        t = self._transport
        if t is not None and not t.is_closing():
            self._update_reading()
            if self._waiting == 0 and self._deadline is None:
                self._arm(self._limits.idle_s_max)

    # -- answering -----------------------------------------------------------------------

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool,
        previous: asyncio.Future[None] | None, gate: asyncio.Future[None] | None,
    ) -> None:
        if gate is not None and not gate.done():
            try:
                await gate
            except Exception:  # noqa: BLE001 - that answer's failure is already logged
                pass
        if self._transport is None:
            self._waiting -= 1
            return  # disconnected meanwhile: nobody will read the answer
        try:
            status, extra, out = await self._handler(method, path, headers, body)
        except Exception:
            log.exception("http: handler failed")
            status, extra, out = 500, _JSON, _INTERNAL
        if previous is not None and not previous.done():
            try:
                await previous
            except Exception:  # noqa: BLE001 - the previous answer's failure is already logged
                pass
        # the client is not reading its answers: hold this one until it does (or is disconnected)
        if not self._writable.is_set():
            await self._writable.wait()
        self._waiting -= 1
        if not isinstance(out, bytes):
            await self._stream(status, extra, out)
            return
        self._write(status, extra, out, keep_alive)
        self._answered()

    async def _stream(self, status: int, extra: Headers, chunks: AsyncIterator[bytes]) -> None:
        """Send an answer chunk by chunk as it is made, then close the connection (a stream is the
        last answer on its connection).  (Ended by a helper: no await in a finally block of a
        compiled module, dynamolog/aio.py.)"""
        await closing(self._send_chunks(status, extra, chunks), lambda: self._end_stream(chunks))

    async def _send_chunks(self, status: int, extra: Headers, chunks: AsyncIterator[bytes]) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        t.write(b"%b%bTransfer-Encoding: chunked\r\nDate: %b\r\nConnection: close\r\n\r\n"
                % (_status_line(status), header_lines(extra), _http_date()))
        async for chunk in chunks:
            await self._writable.wait()
            t = self._transport
            if t is None or t.is_closing():
                return
            if chunk:
                t.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        t = self._transport
        if t is not None and not t.is_closing():
            t.write(b"0\r\n\r\n")

    async def _end_stream(self, chunks: AsyncIterator[bytes]) -> None:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._transport is not None:
            self._transport.close()

    def _write(self, status: int, extra: Headers, body: bytes, keep_alive: bool) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        t.write(b"%b%bContent-Length: %d\r\nDate: %b\r\n%b\r\n%b"
                % (_status_line(status), header_lines(extra), len(body), _http_date(),
                   b"" if keep_alive else b"Connection: close\r\n", body))
        if not keep_alive:
            t.close()

    def _send_now(self, status: int, body: bytes, close: bool) -> None:
        self._write(status, _JSON, body, keep_alive=not close)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpServer:
    """Serves ``handler`` on ``host:port``."""

    def __init__(self, handler: Handler, host: str, port: int, limits: HttpLimits | None = None,
                 quick: Quick | None = None) -> None:
        """``quick``: offered each request that arrives while its connection waits for no answer;
        what it takes is answered without a task (the router's GetItem: decision 0051)."""
        self._handler = handler
        self.quick = quick
        self.limits = limits or HttpLimits()
        #: client connections open now (at most ``limits.connections_max``)
        self.open_connections = 0
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self._handler, self), self.host, self.port, backlog=1024, reuse_address=True
        )
        if self.port == 0:
            # typed a tuple, but uvloop's server gives a list (and a compiled module checks the type)
            sockets: list[Any] = list(getattr(self._server, "sockets"))  # noqa: B009
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
