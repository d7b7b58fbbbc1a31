"""The HTTP server's quick handler (services/router/http.py, decision 0051): a request it takes is
answered without a task, and answers still leave in the order their requests came, whether the
quick handler answers at once, later, or hands the request back to the ordinary handler. Real
sockets on 127.0.0.1, no broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from services.router.http import Answer, HttpServer

_JSON = [("Content-Type", "application/x-amz-json-1.0")]


class Server:
    """An HttpServer whose quick handler takes bodies starting with ``quick``: ``quick-now`` is
    answered at once, ``quick-later`` when the test releases it, ``quick-back`` is handed back to
    the ordinary handler when released; the ordinary handler echoes ``handler:<body>``."""

    def __init__(self) -> None:
        self.held: list[Callable[[], None]] = []
        self.handled: list[bytes] = []
        self.http = HttpServer(self.handler, "127.0.0.1", 0, quick=self.quick)

    async def handler(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        self.handled.append(body)
        return 200, _JSON, b"handler:" + body

    def quick(self, method: str, path: str, headers: dict[str, str], body: bytes,
              reply: Callable[[Answer | None], None]) -> bool:
        if body == b"quick-now":
            reply((200, _JSON, b"quick:" + body))
        elif body == b"quick-later":
            self.held.append(lambda: reply((200, _JSON, b"quick:" + body)))
        elif body == b"quick-back":
            self.held.append(lambda: reply(None))
        else:
            return False
        return True


async def until(cond: Callable[[], bool]) -> None:
    """Wait (at most 0.5 s) until ``cond`` holds."""
    for _ in range(50):
        if cond():
            return
        await asyncio.sleep(0.01)


def request(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


async def answers(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    """The bodies of the next ``n`` answers, in the order they arrive."""
    out = []
    for _ in range(n):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 OK")
        size = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        out.append(await reader.readexactly(size))
    return out


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[tuple[Server, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A started :class:`Server` and one client connection to it; both closed at the end."""
    s = Server()
    await s.http.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.http.port)
        yield s, reader, writer
        writer.close()
    finally:
        await s.http.close()


async def test_quick_answers_and_handler_answers_keep_request_order() -> None:
    async with connected() as (s, reader, writer):
        writer.write(request(b"quick-now"))
        assert await answers(reader, 1) == [b"quick:quick-now"]
        # a quick request answered later, and two pipelined behind it: they wait for it
        writer.write(request(b"quick-later") + request(b"a") + request(b"b"))
        await until(lambda: s.handled == [b"a", b"b"])
        assert s.handled == [b"a", b"b"]  # the ordinary handler ran, its answers are held
        assert len(s.held) == 1
        await asyncio.sleep(0.1)
        s.held.pop()()
        assert await answers(reader, 3) == [b"quick:quick-later", b"handler:a", b"handler:b"]


async def test_a_request_handed_back_is_answered_by_the_handler_in_its_place() -> None:
    async with connected() as (s, reader, writer):
        writer.write(request(b"quick-back"))
        await until(lambda: bool(s.held))
        s.held.pop()()
        assert await answers(reader, 1) == [b"handler:quick-back"]
        # again, with a request pipelined behind it: the handler's answer comes first
        writer.write(request(b"quick-back") + request(b"c"))
        await until(lambda: bool(s.held) and s.handled[-1:] == [b"c"])
        s.held.pop()()
        assert await answers(reader, 2) == [b"handler:quick-back", b"handler:c"]
        assert s.handled == [b"quick-back", b"c", b"quick-back"]
        # the connection goes on serving both kinds
        writer.write(request(b"quick-now") + request(b"d"))
        assert await answers(reader, 2) == [b"quick:quick-now", b"handler:d"]


async def test_only_a_request_with_nothing_before_it_is_offered() -> None:
    # while an answer is outstanding, a request goes to the ordinary handler, even one the quick
    # handler would take
    async with connected() as (s, reader, writer):
        writer.write(request(b"quick-later") + request(b"quick-now"))
        await until(lambda: bool(s.handled))
        assert s.handled == [b"quick-now"]
        s.held.pop()()
        assert await answers(reader, 2) == [b"quick:quick-later", b"handler:quick-now"]
