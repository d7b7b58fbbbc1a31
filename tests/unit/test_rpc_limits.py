"""The internal RPC server bounds what one peer can make it hold (dynamolog/rpc.py): frames in
flight per connection (reading pauses), and answers the peer leaves unread (it is disconnected).
Real sockets on 127.0.0.1, a raw peer that speaks the wire format, no broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from dynamolog import errors, rpc

KEY = b"k" * 32


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that passed the handshake (the server's proof is read and dropped)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hello = await reader.readexactly(4 + 16)
    nonce = os.urandom(16)
    writer.write(nonce + rpc._mac(KEY, b"client", hello[4:], nonce))
    await reader.readexactly(32)
    return reader, writer


def frame(rid: int, op: str, **args: Any) -> bytes:
    data = orjson.dumps({"id": rid, "op": op, **args})
    return struct.pack(">I", len(data)) + data


class Probe:
    """A handler that counts calls and how many run at once; "hold" waits for ``release``."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.running_max = 0
        self.release = asyncio.Event()

    async def __call__(self, req: dict[str, Any]) -> Any:
        self.calls += 1
        self.running += 1
        self.running_max = max(self.running_max, self.running)
        try:
            if req["op"] == "hold":
                await self.release.wait()
            if req["op"] == "big":
                return "x" * 256 * 1024
            return req["id"]
        finally:
            self.running -= 1


@contextlib.asynccontextmanager
async def probed(quick: rpc.Quick | None = None) -> AsyncIterator[tuple[Probe, rpc.RpcServer, rpc.RpcClient]]:
    """A server with a :class:`Probe` handler (and ``quick``) and a client of it; at the end the
    held requests are released and both are closed."""
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, quick=quick)
    await server.start()
    client = rpc.RpcClient("127.0.0.1", server.port, key=KEY)
    try:
        yield probe, server, client
    finally:
        probe.release.set()
        await client.close()
        await server.close()


async def flood_without_reading(server: rpc.RpcServer) -> int:
    """Send 2,000 "big" requests (500 MB of answers if all were made) and read none of the
    answers; once the server has let the connection go (within 10 s, or the test fails), the
    bytes that had reached the peer."""
    reader, writer = await connect(server.port)
    writer.transport.set_write_buffer_limits(high=256 * 1024 * 1024)  # the peer never blocks
    for i in range(2000):
        writer.write(frame(i, "big"))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        await asyncio.sleep(0.2)
        if server._tasks == set():  # the connection's serving task ended: disconnected
            break
    assert server._tasks == set(), "the server kept a peer that reads nothing"
    received = 0
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
            received += len(chunk)
    except ConnectionError:
        pass
    writer.close()
    return received


async def test_a_peer_gets_at_most_inflight_max_requests_handled_at_once() -> None:
    # Without a limit, each frame started a task at once: a peer could start any number.
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, inflight_max=8)
    await server.start()
    try:
        reader, writer = await connect(server.port)
        writer.write(b"".join(frame(i, "hold") for i in range(200)))
        await asyncio.sleep(0.5)
        assert probe.running_max == 8
        assert probe.calls == 8  # the other frames wait in the socket, unread
        probe.release.set()
        got = set()
        while len(got) < 200:
            (size,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
            got.add(orjson.loads(await reader.readexactly(size))["r"])
        assert got == set(range(200))  # every request answered once the handler lets go
        assert probe.running_max == 8
        writer.close()
    finally:
        await server.close()


async def test_bytes_in_flight_are_bounded_too() -> None:
    # Large frames count by their size: two 300 KB frames do not fit a 500 KB budget together.
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, inflight_max=100, inflight_bytes_max=500_000)
    await server.start()
    try:
        _reader, writer = await connect(server.port)
        pad = "p" * 300_000
        writer.write(frame(1, "hold", pad=pad) + frame(2, "hold", pad=pad) + frame(3, "hold"))
        await asyncio.sleep(0.5)
        assert probe.calls == 1
        probe.release.set()
        await asyncio.sleep(0.5)
        assert probe.calls == 3
        writer.close()
    finally:
        await server.close()


async def test_a_peer_that_never_reads_its_answers_is_disconnected() -> None:
    # Answers used to pile up in the server's write buffer for as long as the peer kept sending.
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, inflight_max=16, drain_s_max=0.5)
    await server.start()
    try:
        received = await flood_without_reading(server)
        # it answered only what fits in the socket buffers plus the frames in flight
        assert probe.calls < 400, probe.calls
        assert received < probe.calls * (256 * 1024 + 64)
    finally:
        await server.close()


async def test_a_burst_of_frames_leaves_in_groups_before_the_turn_ends() -> None:
    # Every frame used to wait for the end of the event loop's turn: a turn that handled sixteen
    # requests sent none of them until it had handled the last, and the peer sat idle meanwhile.
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    _, writer = await asyncio.open_connection(sock=ours)
    out = rpc._Coalescer(writer)
    frames = [frame(i, "get", key="k") for i in range(10)]
    for f in frames:  # one turn of the loop: nothing here yields to it
        out.write(f)
    sent_in_turn = theirs.recv(1 << 16)
    groups = len(frames) // rpc.COALESCE_FRAMES_MAX * rpc.COALESCE_FRAMES_MAX
    assert sent_in_turn == b"".join(frames[:groups])
    await out.flushed()  # the turn ends: the rest follows at once
    rest = b""
    while len(rest) < sum(map(len, frames[groups:])):
        await asyncio.sleep(0.01)
        rest += theirs.recv(1 << 16)
    assert rest == b"".join(frames[groups:])
    writer.close()
    theirs.close()


async def test_a_call_the_server_never_answers_times_out() -> None:
    # Short timeouts have a timer each; long ones are expired by the client's sweep, at most
    # rpc.SWEEP_S late. Both must end with RequestTimeout, and the client must stay usable.
    async with probed() as (_probe, _server, client):
        for timeout_s in (0.3, rpc.SWEPT_TIMEOUT_S_MIN):
            t0 = time.monotonic()
            with pytest.raises(rpc.RequestTimeout):
                await client.call("hold", timeout_s=timeout_s)
            took = time.monotonic() - t0
            assert timeout_s <= took < timeout_s + rpc.SWEEP_S + 0.5
        assert await client.call("echo", timeout_s=rpc.SWEPT_TIMEOUT_S_MIN) is not None
        assert not client._due  # nothing left for the sweep


async def test_send_now_sends_on_an_open_connection_only_and_ends_every_request() -> None:
    # send_now (a router's GetItem without a task, decision 0051): None until a connection is
    # open; then the future holds the answer or its error, a lost connection fails it, and an
    # unanswered request is expired by the sweep; none stays pending.
    async with probed() as (_probe, server, client):
        assert client.send_now("echo") is None  # not connected yet: call() connects
        assert await client.call("echo") is not None
        fut = client.send_now("echo")
        assert fut is not None and await fut == fut_id(client)
        assert not client._pending and not client._due
        held = client.send_now("hold")
        assert held is not None
        await asyncio.sleep(0.05)
        # the sweep ends it once it is due (here: made due now)
        client._due = {rid: 0.0 for rid in client._due}
        with pytest.raises(rpc.RequestTimeout):
            await asyncio.wait_for(held, rpc.SWEEP_S + 1.0)
        assert not client._pending and not client._due
        held = client.send_now("hold")
        assert held is not None
        await asyncio.sleep(0.05)
        await server.close()  # the connection is lost
        with pytest.raises(rpc.RequestLost):
            await asyncio.wait_for(held, 5.0)
        assert not client._pending


def fut_id(client: rpc.RpcClient) -> int:
    """The id of the client's latest request (what Probe answers)."""
    return client._next_id


def quick_gets(req: dict[str, Any]) -> Any:
    """A quick handler: answers "get" at once (a refusal for key "bad"), "big" with 256 KB,
    anything else later (the handler)."""
    if req["op"] == "big":
        return "x" * 256 * 1024
    if req["op"] != "get":
        return rpc.LATER
    if req["key"] == "bad":
        raise errors.validation("no such key here")
    return {"got": req["key"]}


async def test_quick_answers_pass_requests_that_wait() -> None:
    # A storage node answers a GetItem in the connection's own task; what the quick handler
    # leaves goes to the handler, and a request still waiting there holds up no quick answer.
    async with probed(quick=quick_gets) as (probe, _server, client):
        held = asyncio.ensure_future(client.call("hold"))
        await asyncio.sleep(0.1)
        assert probe.running == 1
        assert await client.call("get", key="k1") == {"got": "k1"}
        with pytest.raises(errors.ApiError) as refused:
            await client.call("get", key="bad")
        assert (refused.value.type_name, refused.value.message) == ("ValidationException", "no such key here")
        assert probe.calls == 1 and not held.done()  # the quick ones never reached the handler
        probe.release.set()
        assert await asyncio.wait_for(held, 5) is not None
        assert await client.call("echo") is not None  # the handler still serves the rest
        assert probe.calls == 2


async def test_a_peer_that_never_reads_its_quick_answers_is_disconnected() -> None:
    # Quick answers have no task that waits for the socket: the connection's reading must.
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, inflight_max=16, drain_s_max=0.5, quick=quick_gets)
    await server.start()
    try:
        received = await flood_without_reading(server)
        assert received < 400 * (256 * 1024 + 64), received
        assert probe.calls == 0
    finally:
        await server.close()


class Queued:
    """A quick handler that queues "put" (a storage node's write): the future of its answer,
    resolved by :meth:`commit` (in arrival order, or a refusal for key "bad")."""

    def __init__(self) -> None:
        self.waiting: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []

    def __call__(self, req: dict[str, Any]) -> Any:
        if req["op"] != "put":
            return rpc.LATER
        f: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((req, f))
        return f

    def commit(self) -> None:
        for req, f in self.waiting:
            if req["key"] == "bad":
                f.set_exception(errors.conditional_check_failed(None))
            else:
                f.set_result({"put": req["key"]})
        self.waiting.clear()


async def test_a_quick_future_is_answered_when_done_and_counts_as_in_flight() -> None:
    # A write is queued on its sequencer without a task: its answer comes from the future's
    # callback once the group commits, and until then it counts against the connection's bound.
    queued = Queued()
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY, inflight_max=8, quick=queued)
    await server.start()
    try:
        reader, writer = await connect(server.port)
        writer.write(b"".join(frame(i, "put", key="bad" if i == 3 else f"k{i}") for i in range(20)))
        await asyncio.sleep(0.3)
        assert len(queued.waiting) == 8  # the other 12 frames wait, unread, for room
        assert probe.calls == 0
        answers: dict[int, Any] = {}
        while len(answers) < 20:
            queued.commit()
            (size,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
            a = orjson.loads(await reader.readexactly(size))
            answers[a["id"]] = a.get("r", a.get("e"))
            await asyncio.sleep(0.01)
        assert answers[3]["t"] == "ConditionalCheckFailedException"
        assert all(answers[i] == {"put": f"k{i}"} for i in range(20) if i != 3)
        assert probe.calls == 0  # none went through the handler
        writer.close()
    finally:
        await server.close()


async def test_a_port_nobody_listens_on_is_refused_and_says_so() -> None:
    """The auto-admin takes a refused connection as a node whose process is gone, at once
    (services/admin/admin.py); the client says it by the exception's class, compiled or not."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connecting is refused
        client = rpc.RpcClient("127.0.0.1", port, key=KEY, connect_timeout_s=0.5)
        with pytest.raises(rpc.ConnectRefused, match=f"cannot reach 127.0.0.1:{port}"):
            await client.call("ping", timeout_s=1)
        await client.close()


async def test_closing_a_server_with_open_connections_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """A server closed while peers are connected ends their connections quietly: a stopping
    storage node's log shows no error for them."""
    probe = Probe()
    server = rpc.RpcServer(probe, "127.0.0.1", 0, key=KEY)
    await server.start()
    clients = [rpc.RpcClient("127.0.0.1", server.port, key=KEY) for _ in range(3)]
    try:
        assert [await c.call("ping") for c in clients] == [1, 1, 1]  # each connected, first request id 1
        with caplog.at_level("DEBUG"):
            await server.close()
            await asyncio.sleep(0.1)  # the connections' ends run their callbacks
        errors_logged = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
        assert not errors_logged, [r.getMessage() for r in errors_logged]
    finally:
        for c in clients:
            await c.close()
