"""Answers that go on (the console's server-sent events): the router's HTTP server sends a body
that is an async iterator chunked as it comes, and stops it when the client goes away.  Real
sockets on 127.0.0.1, no broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.router.http import HttpServer


class Ticker:
    """A handler whose answer is an endless stream of numbered events."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()

    async def __call__(self, method: str, path: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, list[tuple[str, str]], bytes | AsyncIterator[bytes]]:
        if path == "/plain":
            return 200, [("Content-Type", "text/plain")], b"plain"

        async def events() -> AsyncIterator[bytes]:
            n = 0
            try:
                while True:
                    yield f"data: {n}\n\n".encode()
                    n += 1
                    await asyncio.sleep(0.01)
            finally:
                self.stopped.set()

        return 200, [("Content-Type", "text/event-stream")], events()


async def test_a_stream_is_sent_chunked_as_it_comes_and_stops_when_the_client_leaves() -> None:
    handler = Ticker()
    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
        seen = b""
        while b"data: 3\n\n" not in seen:  # events arrive one by one, before the answer ends
            seen += await asyncio.wait_for(reader.read(4096), 5)
        assert seen.startswith(b"9\r\ndata: 0\n\n\r\n9\r\ndata: 1")  # chunk size in hex, the event, CRLF
        writer.close()
        await asyncio.wait_for(handler.stopped.wait(), 5)  # the stream's generator was closed
        assert server.open_connections == 0 or await _drops_to_zero(server)
        # other requests are answered as before, with a length
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nplain"), 5)
        assert b"Content-Length: 5" in answer
        writer.close()
    finally:
        await server.close()


async def _drops_to_zero(server: HttpServer) -> bool:
    for _ in range(100):
        if server.open_connections == 0:
            return True
        await asyncio.sleep(0.05)
    return False
