"""The router's HTTP server bounds what a client can make it hold (services/router/http.py):
slow clients, idle connections, connection count, pipelined requests, body and header size, and
it answers garbage with DynamoDB JSON errors. Real sockets on 127.0.0.1, no broker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from services.router.http import BODY_BYTES_MAX, HttpLimits, HttpServer


async def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    if body == b"slow":
        await asyncio.sleep(0.2)
    return 200, [("Content-Type", "application/x-amz-json-1.0")], b'{"echo":' + str(len(body)).encode() + b"}"


async def serve(**limits: float) -> HttpServer:
    server = HttpServer(handler, "127.0.0.1", 0, HttpLimits(**limits))  # type: ignore[arg-type]
    await server.start()
    return server


def request(body: bytes = b"{}") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


async def read_all(reader: asyncio.StreamReader, timeout_s: float = 5.0) -> bytes:
    """Everything until the server closes; what arrived before a reset counts too."""
    out = b""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
        except ConnectionResetError:
            return out or b"<reset>"
        if not chunk:
            return out
        out += chunk


async def test_slow_client_is_disconnected() -> None:
    # A request whose bytes trickle in is cut off request_s_max after its first byte.
    server = await serve(request_s_max=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        t0 = time.monotonic()
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert await read_all(reader) == b""
        assert 0.4 < time.monotonic() - t0 < 3
        writer.close()
    finally:
        await server.close()


async def test_idle_keep_alive_connection_is_closed() -> None:
    server = await serve(idle_s_max=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request())
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b'{"echo":2}')
        writer.close()
    finally:
        await server.close()


async def test_connections_beyond_the_limit_get_503() -> None:
    server = await serve(connections_max=3)
    try:
        conns = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 503")
        assert json.loads(data.split(b"\r\n\r\n", 1)[1])["__type"] == "com.amazon.coral.availability#ServiceUnavailable"
        for _, w in conns:
            w.close()
        await asyncio.sleep(0.1)
        assert server.open_connections == 0
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # room again
        writer.write(request())
        assert (await reader.readuntil(b'{"echo":2}')).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await server.close()


async def test_pipelined_requests_are_answered_in_order_and_bounded() -> None:
    server = await serve(pipelined_max=4)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        bodies = [b"slow" if i % 3 == 0 else b"x" * i for i in range(20)]
        writer.write(b"".join(request(b) for b in bodies))
        got = []
        for _ in bodies:
            await reader.readuntil(b"\r\n\r\n")
            got.append(await reader.readuntil(b"}"))
        assert got == [b'{"echo":' + str(len(b)).encode() + b"}" for b in bodies]
        writer.close()
    finally:
        await server.close()


@pytest.mark.parametrize("raw", [
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(BODY_BYTES_MAX + 1).encode() + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"100000\r\n" + b"a" * 0x100000 + b"\r\n") * 17,
])
async def test_oversized_body_gets_413_at_once(raw: bytes) -> None:
    # Declared or streamed, more than 16 MB is refused without reading (or keeping) the rest.
    server = await serve()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        data = await read_all(reader)
        if data == b"<reset>":  # the server closed while the client was still sending: refused too
            assert b"chunked" in raw
        else:
            assert data.startswith(b"HTTP/1.1 413")
            assert b"Request payload size exceeds the maximum allowed" in data
        writer.close()
    finally:
        await server.close()


@pytest.mark.parametrize("raw", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
])
async def test_garbage_gets_a_json_error(raw: bytes) -> None:
    server = await serve()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 400")
        doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
        assert doc["__type"] == "com.amazon.coral.service#SerializationException"
        writer.close()
    finally:
        await server.close()
