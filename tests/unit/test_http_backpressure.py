"""The router's HTTP server does not queue answers for a client that does not read them
(services/router/http.py): past ``write_buffer_bytes_max`` it stops reading the connection and
holds its answers, and after ``write_s_max`` without reading the client is disconnected. Real
sockets on 127.0.0.1, no broker."""

from __future__ import annotations

import asyncio
import re
import time

from services.router.http import HttpLimits, HttpServer

ANSWER_BYTES = 256 * 1024


class Counting:
    """A handler answering ``ANSWER_BYTES`` per request, counting the requests it got."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, method: str, path: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        self.calls += 1
        return 200, [("Content-Type", "application/x-amz-json-1.0")], b'"' + b"x" * ANSWER_BYTES + b'"'


def request() -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


async def test_a_client_that_never_reads_is_disconnected_and_gets_few_answers() -> None:
    # Every answer used to go into the send buffer at once: 2000 pipelined requests held 500 MB.
    handler = Counting()
    server = HttpServer(handler, "127.0.0.1", 0, HttpLimits(write_s_max=0.5))
    await server.start()
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # this client never blocks
        writer.write(request() * 2000)
        t0 = time.monotonic()
        while server.open_connections and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.1)
        assert server.open_connections == 0, "the server kept a client that reads nothing"
        # answered only what fits the socket buffers, the send buffer and the pipeline limit
        assert handler.calls < 200, handler.calls
        writer.close()
    finally:
        await server.close()


async def test_a_slow_reader_gets_every_answer_in_order() -> None:
    # Backpressure holds answers; it never drops one for a client that does read.
    handler = Counting()
    server = HttpServer(handler, "127.0.0.1", 0, HttpLimits(write_s_max=5.0, write_buffer_bytes_max=64 * 1024))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, limit=4 * ANSWER_BYTES)
        count = 100
        writer.write(request() * count)
        answers = 0
        while answers < count:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            match = re.search(rb"Content-Length: (\d+)", head)
            assert match is not None
            body = await reader.readexactly(int(match.group(1)))
            assert len(body) == ANSWER_BYTES + 2
            answers += 1
            if answers % 10 == 0:
                await asyncio.sleep(0.05)  # reads in bursts, slower than the server answers
        assert handler.calls == count
        assert server.open_connections == 1
        writer.close()
    finally:
        await server.close()
