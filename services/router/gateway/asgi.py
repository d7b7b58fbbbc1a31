"""Calls an ASGI application from the router's own HTTP server (services/router/http.py), so the
REST gateway and the console share the DynamoDB endpoint's port without a second server.

An answer whose body comes in one piece is returned as bytes; one that goes on (the console's
server-sent events) as an async iterator of chunks, which the HTTP server sends chunked until it
ends or the client goes away (then the application sees ``http.disconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
Answer = tuple[int, list[tuple[str, str]], bytes | AsyncIterator[bytes]]

#: headers the HTTP server writes itself
_OWN = frozenset({"content-length", "transfer-encoding", "connection", "date"})


async def call(app: App, method: str, target: str, headers: dict[str, str], body: bytes,
               server: tuple[str, int] | None = None) -> Answer:
    """Run ``app`` for one request; returns (status, headers, body bytes or chunk iterator)."""
    raw_path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": urllib.parse.unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"), "query_string": query.encode("latin-1"), "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": None, "server": server,
    }
    gone = asyncio.Event()
    sent_body = False
    start: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.set_result(message)
        elif message["type"] == "http.response.body":
            if message.get("body"):
                chunks.put_nowait(bytes(message["body"]))
            if not message.get("more_body", False):
                chunks.put_nowait(None)
        if gone.is_set():
            raise OSError("the client went away")

    task = asyncio.ensure_future(app(scope, receive, send))

    def ended(t: asyncio.Task[None]) -> None:  # an app that fails before it answers
        if not start.done():
            start.set_exception(t.exception() or RuntimeError("the application answered nothing"))
        chunks.put_nowait(None)

    task.add_done_callback(lambda t: None if t.cancelled() else ended(t))
    first = await start
    status = int(first["status"])
    out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in first.get("headers", [])
                   if k.decode("latin-1").lower() not in _OWN]
    streaming = any(k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in out_headers)
    if not streaming:
        parts = []
        while (chunk := await chunks.get()) is not None:
            parts.append(chunk)
        await task
        return status, out_headers, b"".join(parts)

    async def stream() -> AsyncIterator[bytes]:
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
        finally:
            gone.set()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return status, out_headers, stream()
