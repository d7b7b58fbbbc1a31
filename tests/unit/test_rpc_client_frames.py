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


def raw_answer(rid: int, result: object) -> bytes:
    """A raw answer frame (decision 0054): the length word's top bit, the id, the result's JSON."""
    data = struct.pack(">Q", rid) + orjson.dumps(result)
    return struct.pack(">I", len(data) | 0x8000_0000) + data


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
                    elif req.get("raw"):
                        frames.append(raw_answer(req["id"], req["x"]))
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


@pytest.mark.parametrize("sizes", [[1], [3, 7, 2], [4], [9], [5000]],
                         ids=["bytes", "odd-cuts", "heads", "head-and-a-byte", "all-at-once"])
async def test_raw_answers_are_the_results_json_however_the_stream_is_cut(sizes: list[int]) -> None:
    # Raw and parsed answers mixed on one connection, cut anywhere (in the length word, in the id).
    values = [{"Item": {"k": {"S": "v" * i}}} if i % 2 else f"value-{i}" for i in range(7)]
    async with raw(8, lambda frames, w: in_pieces(frames, w, sizes)) as client:
        calls = [client.call("echo", x=v, raw=i % 3 != 0) for i, v in enumerate(values)]
        calls.append(client.call("fail", x="such table", raw=True))
        results = await asyncio.gather(*calls, return_exceptions=True)
    for i, (v, got) in enumerate(zip(values, results[:7], strict=True)):
        if i % 3 != 0:
            assert isinstance(got, rpc.Raw) and got.json == orjson.dumps(v)
        else:
            assert got == v
    assert isinstance(results[7], errors.ApiError) and results[7].message == "no such table"


async def test_a_raw_frame_too_short_for_its_id_ends_every_waiting_call() -> None:
    def short(frames: list[bytes], w: asyncio.StreamWriter) -> None:
        w.write(frames[0] + struct.pack(">I", 3 | 0x8000_0000) + b"abc")

    async with raw(2, short) as client:
        results = await asyncio.wait_for(
            asyncio.gather(client.call("echo", x="a", raw=True), client.call("echo", x="b"), return_exceptions=True),
            10)
    assert isinstance(results[0], rpc.Raw) and results[0].json == b'"a"'
    assert isinstance(results[1], rpc.RequestLost)


async def test_a_server_answers_raw_only_what_asks_for_it() -> None:
    # The real server: a request with ``raw`` gets its result's JSON, from the quick handler or a
    # task; an error stays an error; a request without it gets the parsed result as before.
    async def handler(req: dict[str, object]) -> object:
        if req["op"] == "fail":
            raise errors.validation("no such thing")
        return {"Item": {"n": {"N": str(req["n"])}}, "later": True}

    def quick(req: dict[str, object]) -> object:
        return {"Item": {"n": {"N": str(req["n"])}}} if req["op"] == "now" else rpc.LATER

    server = rpc.RpcServer(handler, "127.0.0.1", 0, key=KEY, quick=quick)
    await server.start()
    client = rpc.RpcClient("127.0.0.1", server.port, key=KEY)
    try:
        now, later, plain = await asyncio.gather(client.call("now", n=1, raw=True), client.call("task", n=2, raw=True),
                                                 client.call("now", n=3))
        assert isinstance(now, rpc.Raw) and orjson.loads(now.json) == {"Item": {"n": {"N": "1"}}}
        assert isinstance(later, rpc.Raw) and orjson.loads(later.json) == {"Item": {"n": {"N": "2"}}, "later": True}
        assert plain == {"Item": {"n": {"N": "3"}}}
        with pytest.raises(errors.ApiError, match="no such thing"):
            await client.call("fail", raw=True)
    finally:
        await client.close()
        await server.close()


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
