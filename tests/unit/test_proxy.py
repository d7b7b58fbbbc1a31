"""The fault tests' TCP proxy (dynamolog.testing.proxy), with real sockets on 127.0.0.1.

The network-partition tests trust it to forward faithfully while healed and to cut for real
while cut; each test here checks one of those promises from a client's point of view.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from dynamolog.testing.proxy import BLACKHOLE, REFUSE, ProxyThread, TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    p = TcpProxy("127.0.0.1", server.sockets[0].getsockname()[1])
    await p.start()
    try:
        yield p
    finally:
        await p.close()
        server.close()


async def _roundtrip(port: int, payload: bytes, timeout_s: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            return await reader.readexactly(len(payload))
    finally:
        writer.close()


async def test_forwards_both_ways_byte_for_byte(proxy: TcpProxy) -> None:
    # 1 MiB crosses several chunks in both directions
    payload = bytes(range(256)) * 4096
    assert await _roundtrip(proxy.port, payload) == payload
    assert proxy.stats.accepted == 1


async def test_refuse_resets_open_connections_and_new_ones(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"hello")
    await writer.drain()
    assert await reader.readexactly(5) == b"hello"
    proxy.cut(REFUSE)
    # the open connection ends (reset or EOF) without waiting for any timeout
    async with asyncio.timeout(2.0):
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            writer.write(b"again")
            await writer.drain()
            await reader.readexactly(5)
    writer.close()
    # a new connection is accepted and reset at once
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(proxy.port, b"x")
    assert proxy.stats.refused >= 1
    proxy.heal()
    assert await _roundtrip(proxy.port, b"after heal") == b"after heal"


async def test_blackhole_delivers_nothing_and_heal_resets_the_broken_stream(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    proxy.cut(BLACKHOLE)
    writer.write(b"lost")
    await writer.drain()
    # nothing comes back and the connection stays open: only a timeout tells
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await reader.read(1)
    # new connections are accepted but never answered either
    with pytest.raises(TimeoutError):
        await _roundtrip(proxy.port, b"new", timeout_s=0.5)
    assert proxy.stats.dropped_bytes >= len(b"lost")
    proxy.heal()
    # the connection that lost bytes is reset on heal; a new one works
    async with asyncio.timeout(2.0):
        assert await reader.read(1) == b""
    writer.close()
    assert await _roundtrip(proxy.port, b"fresh") == b"fresh"


async def test_a_connection_the_target_refuses_is_closed() -> None:
    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    p = TcpProxy("127.0.0.1", dead_port)
    await p.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        async with asyncio.timeout(2.0):
            assert await reader.read(1) == b""
        writer.close()
        assert p.stats.open == 0
    finally:
        await p.close()


def test_proxy_thread_serves_synchronous_callers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        target_port = server.getsockname()[1]
        proxies = ProxyThread()
        proxies.start()
        try:
            p = proxies.add("127.0.0.1", target_port)
            with socket.create_connection(("127.0.0.1", p.port), timeout=2.0) as c:
                conn, _ = server.accept()
                with conn:
                    c.sendall(b"ping")
                    assert conn.recv(4) == b"ping"
                    proxies.cut(mode=REFUSE)
                    conn.settimeout(2.0)
                    try:  # the target side sees the connection end (EOF or reset), not a timeout
                        assert conn.recv(4) == b""
                    except ConnectionResetError:
                        pass
            assert proxies.stats(p).open == 0
            proxies.heal()
            with socket.create_connection(("127.0.0.1", p.port), timeout=2.0) as c:
                conn, _ = server.accept()
                with conn:
                    conn.sendall(b"pong")
                    assert c.recv(4) == b"pong"
        finally:
            proxies.close()
