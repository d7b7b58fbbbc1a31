"""An RPC client takes its answers from the bytes as they arrive (dynamolog/rpc.py, ``_Answers``):
whatever way the stream is cut, every call gets its own answer, and a connection that ends or
sends garbage ends every call waiting on it. Real sockets on 127.0.0.1, a raw server that speaks
the wire format and cuts its answers as the test says, no broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from dynamolog import errors, rpc

KEY = b"k" * 32

#: (the answer frames of one batch of requests, the server's writer) -> writes them, cut its way
Cutter = Callable[[list[bytes], asyncio.StreamWriter], "asyncio.Future[None] | object"]


def answer(rid: int, **body: object) -> bytes:
    data = orjson.dumps({"id": rid, **body})
    return struct.pack(">I", len(data)) + data


class RawServer:
    """Passes the handshake, then reads ``batch`` request frames at a time and answers each with
    its ``x`` argument (an error for ``fail``), handing the answers to ``cut`` to write."""

    def __init__(self, batch: int, cut: Callable[[list[bytes], asyncio.StreamWriter], object]) -> None:
        self.batch = batch
        self.cut = cut
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonce = os.urandom(16)
        writer.write(b"DLR1" + nonce)
        proof = await reader.readexactly(16 + 32)
        writer.write(rpc._mac(KEY, b"server", nonce, proof[:16]))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                frames = []
                for _ in range(self.batch):
                    (size,) = struct.unpack(">I", await reader.readexactly(4))
                    req = orjson.loads(await reader.readexactly(size))
                    if req["op"] == "fail":
                        frames.append(answer(req["id"], e=errors.validation(f"no {req['x']}").to_wire()))
                    else:
                        frames.append(answer(req["id"], r=req["x"]))
                result = self.cut(frames, writer)
                if asyncio.iscoroutine(result):
                    await result

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def raw(batch: int, cut: Callable[[list[bytes], asyncio.StreamWriter], object]) -> AsyncIterator[rpc.RpcClient]:
    srv = RawServer(batch, cut)
    srv.server = await asyncio.start_server(srv.serve, "127.0.0.1", 0)
    client = rpc.RpcClient("127.0.0.1", srv.port, key=KEY)
    try:
        yield client
    finally:
        await client.close()
        srv.server.close()


async def in_pieces(frames: list[bytes], writer: asyncio.StreamWriter, sizes: list[int]) -> None:
    """The frames in reverse order as one stream, written in pieces of ``sizes`` (cycled), each
    piece sent before the next is written."""
    data = b"".join(reversed(frames))
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        writer.write(data[pos:pos + n])
        await writer.drain()
        await asyncio.sleep(0.001)
        pos, i = pos + n, i + 1


@pytest.mark.parametrize("sizes", [[1], [3, 7, 2], [4], [5000]], ids=["bytes", "odd-cuts", "heads", "all-at-once"])
async def test_every_call_gets_its_own_answer_however_the_stream_is_cut(sizes: list[int]) -> None:
    async with raw(8, lambda frames, w: in_pieces(frames, w, sizes)) as client:
        calls = [client.call("echo", x=f"value-{i}" * (i + 1)) for i in range(7)]
        calls.append(client.call("fail", x="such table"))
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[:7] == [f"value-{i}" * (i + 1) for i in range(7)]
    assert isinstance(results[7], errors.ApiError) and results[7].message == "no such table"


async def test_a_large_answer_in_many_reads() -> None:
    big = "".join(random.Random(1).choice("abcdef") for _ in range(3 * 1024 * 1024))

    def whole(frames: list[bytes], w: asyncio.StreamWriter) -> None:
        w.write(b"".join(frames))

    async with raw(2, whole) as client:
        got = await asyncio.gather(client.call("echo", x=big), client.call("echo", x="small"))
    assert got == [big, "small"]


async def test_a_connection_that_ends_in_a_frame_ends_every_waiting_call() -> None:
    def half_then_close(frames: list[bytes], w: asyncio.StreamWriter) -> None:
        w.write(frames[0] + frames[1][:6])
        w.close()

    async with raw(3, half_then_close) as client:
        results = await asyncio.gather(*(client.call("echo", x=i) for i in range(3)), return_exceptions=True)
        assert results[0] == 0
        assert all(isinstance(r, rpc.RequestLost) for r in results[1:])
        # the client connects again for the next call
        later = await asyncio.gather(*(client.call("echo", x=i) for i in range(3)), return_exceptions=True)
        assert later[0] == 0


async def test_a_malformed_answer_ends_every_waiting_call() -> None:
    def garbage(frames: list[bytes], w: asyncio.StreamWriter) -> None:
        w.write(frames[0] + struct.pack(">I", 5) + b"{nope")

    async with raw(2, garbage) as client:
        results = await asyncio.wait_for(
            asyncio.gather(client.call("echo", x="a"), client.call("echo", x="b"), return_exceptions=True), 10)
    assert results[0] == "a"
    assert isinstance(results[1], rpc.RequestLost)
