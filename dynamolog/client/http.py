"""A tiny HTTP/1.1 client: ``POST`` over a small pool of keep-alive connections (asyncio streams).

Like :class:`dynamolog.testing.workload.HttpClient`, but with caller-supplied (signed) headers, ``https``,
and up to ``max_connections`` requests in flight at once.  Transport failures raise
:class:`OSError` / :class:`TimeoutError` / :class:`HttpProtocolError` after the connection is
dropped; a request that fails on a *reused* idle connection before any answer arrived is sent once
more on a fresh one (the server may have closed the idle connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["HttpPool", "HttpProtocolError", "Transport", "read_response"]


class HttpProtocolError(OSError):
    """The server's answer is not HTTP/1.x as this client reads it."""


class Transport(Protocol):
    """What :class:`~dynamolog.client.Client` needs from HTTP (tests substitute fakes)."""

    host_header: str

    async def request(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HttpPool:
    """``POST /`` to one endpoint over at most ``max_connections`` keep-alive connections."""

    def __init__(self, endpoint: str, timeout: float = 10.0, max_connections: int = 16) -> None:
        u = urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"endpoint must be http(s)://host[:port], got {endpoint!r}")
        self.host = u.hostname
        self.tls = u.scheme == "https"
        default_port = 443 if self.tls else 80
        self.port = u.port or default_port
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        if ":" in self.host:  # IPv6 literal
            self.host_header = f"[{self.host}]" + ("" if self.port == default_port else f":{self.port}")
        self.path = u.path or "/"
        self.timeout = timeout
        self._ssl = ssl.create_default_context() if self.tls else None
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def _open(self) -> _Conn:
        if self._ssl is not None:
            return await asyncio.open_connection(self.host, self.port, ssl=self._ssl, server_hostname=self.host)
        return await asyncio.open_connection(self.host, self.port)

    async def request(self, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """Sends ``POST`` with ``headers`` (Host and Content-Length are added): (status, body)."""
        if self._closed:
            raise RuntimeError("the client is closed")
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.host_header}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        async with self._slots:
            while True:
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else None
                try:
                    async with asyncio.timeout(self.timeout):
                        if conn is None:
                            conn = await self._open()
                        reader, writer = conn
                        writer.write(data)
                        await writer.drain()
                        status, answer, keep = await read_response(reader)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                    if conn is not None:
                        await _close(conn)
                    if reused and isinstance(e, ConnectionError):
                        continue  # an idle connection the server had closed: once more on a fresh one
                    if isinstance(e, (asyncio.IncompleteReadError, asyncio.LimitOverrunError)):
                        raise HttpProtocolError(str(e)) from e
                    raise
                if keep and not self._closed:
                    self._idle.append(conn)
                else:
                    await _close(conn)
                return status, answer

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: _Conn) -> None:
    w = conn[1]
    w.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await w.wait_closed()


class _NoAnswer(ConnectionError):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Reads one response: (status, body, whether the connection stays open)."""
    line = await reader.readline()
    if not line:
        raise _NoAnswer("connection closed by the server")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpProtocolError(f"bad status line {line[:80]!r}")
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise HttpProtocolError("connection closed in the response headers")
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpProtocolError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get(b"connection", b"").lower() != b"close" and parts[0] != b"HTTP/1.0"
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        chunks = []
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as e:
                raise HttpProtocolError(f"bad chunk size {size_line[:40]!r}") from e
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(chunks), keep
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise HttpProtocolError(f"bad Content-Length {length[:40]!r}")
        return status, await reader.readexactly(int(length)), keep
    return status, await reader.read(), False
