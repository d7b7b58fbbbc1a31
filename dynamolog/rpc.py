"""Internal RPC between Dynamolog services: length-prefixed JSON frames over TCP.

A frame is a 4-byte big-endian length followed by an orjson document.  Requests carry an
``id`` and an ``op``; the answer carries the same ``id`` and either ``r`` (the result) or
``e`` (an :class:`~dynamolog.errors.ApiError` in wire form).  A request with ``raw`` set may be
answered by a raw frame instead: its length word has the top bit set, and its body is the
request's ``id`` (8 bytes, big-endian) and then the result as JSON, which the client hands on as
:class:`Raw` without parsing it (decision 0054: a GetItem's answer goes to the HTTP client as
the storage node made it).  One connection multiplexes many requests.  Both ends read a
connection with a protocol of their own (decision 0053): the bytes that arrive are split into
frames in the callback that receives them; a client ends each answer's request there, a server
answers there what its quick handler can and gives each other request a task of its own.

Limits: a frame is at most ``FRAME_BYTES_MAX``; a client has at most ``PENDING_MAX``
requests in flight per connection. A server handles at most ``INFLIGHT_MAX`` frames of one
connection at once, holding at most ``INFLIGHT_BYTES_MAX`` of their bodies (one frame of any
allowed size is always let through alone); beyond that it stops reading the connection until a
request's answer is sent, and the frame waits unread. An answer counts as sent when the peer has taken it: a peer that leaves
the server's answers unread for ``DRAIN_S_MAX`` (its socket's buffer full) is disconnected, so it
cannot make the server hold answers without bound (docs/security.md).

Authentication (docs/decisions/0014-authentication.md): every connection starts with a mutual
challenge-response over the system's internal key (derived from the system key, see
:mod:`dynamolog.auth.systemkey`), before any frame is read::

    server -> client   "DLR1" + 16-byte server nonce
    client -> server   16-byte client nonce + HMAC-SHA256(key, "client" + server nonce + client nonce)
    server -> client   HMAC-SHA256(key, "server" + server nonce + client nonce)

A server closes a connection whose proof is wrong or late (``HANDSHAKE_S_MAX``) without reading
anything else from it; a client refuses a server that cannot prove it holds the key.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from mypy_extensions import mypyc_attr

from .errors import ApiError, internal, unavailable
from .sendgate import SendGate

log = logging.getLogger(__name__)

#: largest frame either side accepts (an indexer's write_batch carries up to 500 index items)
FRAME_BYTES_MAX = 64 * 1024 * 1024
#: requests a client keeps in flight on one connection
PENDING_MAX = 4096
#: requests a server handles at once for one connection; it stops reading the connection beyond
INFLIGHT_MAX = 1024
#: request bytes a server holds at once for one connection (a single larger frame goes alone)
INFLIGHT_BYTES_MAX = 64 * 1024 * 1024
#: seconds a peer may leave the server's answers unread before the server disconnects it
DRAIN_S_MAX = 30.0
_LEN = struct.Struct(">I")
#: the length word's bit that marks a raw answer frame, and the request id that starts its body
_RAW_BIT = 0x8000_0000
_RAW_ID = struct.Struct(">Q")
_MAGIC = b"DLR1"
_NONCE_BYTES = 16
_MAC_BYTES = 32
#: frames a connection holds back for the end of the event loop's turn; the next one sends them.
#: Coalescing saves a send per frame, but a turn that handles many requests (one from each of 16
#: clients) would hold every frame to its end, and the peer would start on none of them until
#: then: the processes of a request's path take turns instead of working at once.  Four lets the
#: peer start after four (workload C on the default topology: 8,500 ops/s holding them all, 9,700
#: with four; docs/benchmarks.md).
COALESCE_FRAMES_MAX = 4
#: a call whose timeout is at least this long is expired by its client's sweep, once every
#: ``SWEEP_S`` (so up to that much late), not by a timer of its own: making and cancelling a
#: timer per call was about 2 % of a router's CPU under a GetItem load
SWEPT_TIMEOUT_S_MIN = 5.0
SWEEP_S = 1.0
#: seconds a call waits for its answer unless it says otherwise
CALL_TIMEOUT_S = 30.0
#: seconds a peer has to complete the handshake
HANDSHAKE_S_MAX = 5.0


def _mac(key: bytes, label: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(key, label + server_nonce + client_nonce, hashlib.sha256).digest()


def default_key() -> bytes:
    """The internal RPC key of this process's system (``$DYNAMOLOG_SYSTEM_KEY_FILE``)."""
    from .auth import systemkey

    return systemkey.internal_rpc_key(systemkey.from_env())


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of this builtin exception
class HandshakeRefused(ConnectionError):
    """The peer did not prove it holds the system's internal key."""

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
#: a server's answer-at-once handler: the result; or an asyncio.Future of it, answered when it is
#: done (a write queued on its partition's sequencer), still without a task; or :data:`LATER` (the
#: request goes to the ordinary handler in a task of its own); raises ApiError like any handler
Quick = Callable[[dict[str, Any]], Any]
#: what a :data:`Quick` handler returns for a request it cannot answer without waiting
LATER: Any = object()


class Raw:
    """A result a server sent as raw JSON (a request with ``raw`` set): ``json``, unparsed."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json

    def __repr__(self) -> str:
        return f"Raw({self.json!r})"


class _Coalescer:
    """Collects frames written during one event-loop iteration and writes them at once, or every
    ``COALESCE_FRAMES_MAX`` frames when the iteration writes more."""

    __slots__ = ("_flushed", "_frames", "_scheduled", "_writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._frames: list[bytes] = []
        self._scheduled = False
        self._flushed: asyncio.Future[None] | None = None

    def write(self, frame: bytes) -> None:
        self._frames.append(frame)
        if len(self._frames) >= COALESCE_FRAMES_MAX:
            self._send()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _send(self) -> None:
        frames, self._frames = self._frames, []
        if frames and not self._writer.is_closing():
            self._writer.write(b"".join(frames) if len(frames) > 1 else frames[0])

    def _flush(self) -> None:
        self._scheduled = False
        self._send()
        if self._flushed is not None:
            self._flushed.set_result(None)
            self._flushed = None

    async def flushed(self) -> None:
        """Wait until what was written is handed to the socket."""
        if self._scheduled:
            if self._flushed is None:
                self._flushed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._flushed)


class RpcServer:
    """Serves ``handler(request) -> result`` on a TCP port; errors travel as ApiError."""

    def __init__(self, handler: Handler, host: str, port: int, *, key: bytes | None = None,
                 inflight_max: int = INFLIGHT_MAX, inflight_bytes_max: int = INFLIGHT_BYTES_MAX,
                 drain_s_max: float = DRAIN_S_MAX, quick: Quick | None = None) -> None:
        """``key``: the internal RPC key (default: :func:`default_key`); the limits default to
        the module's ``INFLIGHT_MAX``, ``INFLIGHT_BYTES_MAX`` and ``DRAIN_S_MAX``.

        ``quick``: tried first on every request, where the connection's bytes are read; what it answers
        is written at once, without a task, a coroutine or a wait per request (a storage node's
        GetItem: decision 0049).  A future it returns is answered from its done callback (a storage
        node's write, once its group is committed), and counts against the connection's bounds
        until then.  What it returns :data:`LATER` for goes to ``handler``."""
        self._quick = quick
        self._key = key if key is not None else default_key()
        self._inflight_max = inflight_max
        self._inflight_bytes_max = inflight_bytes_max
        self._drain_s_max = drain_s_max
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: close() has begun: a connection's task cancelled by it ends quietly
        self._closing = False

    @property
    def port(self) -> int:
        assert self._server is not None
        # typed a tuple, but uvloop's server gives a list (and a compiled module checks the type)
        sockets: list[Any] = list(getattr(self._server, "sockets"))  # noqa: B009
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=2**20)

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: the handshake, then :class:`_Serving` reads its frames until it ends."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if not await self._handshake(reader, writer):
                return
            ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            leftover = bytes(getattr(reader, "_buffer", b""))  # frames sent right behind the proof
            writer.transport.set_protocol(_Serving(self, writer, leftover, ended))
            await ended
        except asyncio.CancelledError:
            # cancelled by close(): the connection's end, not a failure (asyncio's stream server,
            # Python 3.11, asks a cancelled connection task for its exception and logs the
            # CancelledError as "Exception in callback")
            if not self._closing:
                raise
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        server_nonce = os.urandom(_NONCE_BYTES)
        writer.write(_MAGIC + server_nonce)
        try:
            proof = await asyncio.wait_for(reader.readexactly(_NONCE_BYTES + _MAC_BYTES), HANDSHAKE_S_MAX)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            log.warning("rpc: refused a connection from %s: no handshake", writer.get_extra_info("peername"))
            return False
        client_nonce, mac = proof[:_NONCE_BYTES], proof[_NONCE_BYTES:]
        if not hmac.compare_digest(mac, _mac(self._key, b"client", server_nonce, client_nonce)):
            log.warning("rpc: refused a connection from %s: wrong internal key", writer.get_extra_info("peername"))
            return False
        writer.write(_mac(self._key, b"server", server_nonce, client_nonce))
        return True

    def _answer_now(self, req: dict[str, Any], out: _Coalescer) -> Any:
        """Answer ``req`` with the quick handler, if it can: True when answered, :data:`LATER`
        when it needs the handler, or the future whose result is the answer."""
        assert self._quick is not None
        try:
            result = self._quick(req)
        except Exception as e:  # noqa: BLE001 - every failure is answered (a bug as InternalServerError)
            self._write_answer(out, req, error=e)
            return True
        if result is LATER or isinstance(result, asyncio.Future):
            return result
        self._write_answer(out, req, result)
        return True

    @staticmethod
    def _write_answer(out: _Coalescer, req: dict[str, Any], result: Any = None,
                      error: Exception | None = None) -> None:
        """The answer frame of ``req``: its result, or its error (a bug is logged and answered
        InternalServerError)."""
        rid = req.get("id")
        if error is None:
            if req.get("raw") and type(rid) is int and 0 <= rid < 1 << 64:
                data = orjson.dumps(result)
                out.write(_LEN.pack((_RAW_ID.size + len(data)) | _RAW_BIT) + _RAW_ID.pack(rid) + data)
                return
            answer = {"id": rid, "r": result}
        elif isinstance(error, ApiError):
            answer = {"id": rid, "e": error.to_wire()}
        else:
            log.error("rpc: %s failed", req.get("op"), exc_info=error)
            answer = {"id": rid, "e": internal().to_wire()}
        data = orjson.dumps(answer)
        out.write(_LEN.pack(len(data)) + data)


class _Serving(asyncio.Protocol):
    """An :class:`RpcServer` connection after the handshake: splits the bytes that arrive into
    request frames, answers what the quick handler can at once and gives the rest a task each.

    Bounds (the module's docstring): at most ``inflight_max`` frames and ``inflight_bytes_max``
    bytes of them are handled at once; a frame that does not fit waits, and reading pauses
    until an answer makes room.  Reading also pauses while the socket's send buffer is above
    its high-water mark (the peer is not reading its answers), and a peer that leaves it there
    for ``drain_s_max`` is disconnected."""

    def __init__(self, server: RpcServer, writer: asyncio.StreamWriter, leftover: bytes,
                 ended: asyncio.Future[None]) -> None:
        self._server = server
        self._writer = writer
        self._transport: asyncio.Transport = writer.transport  # type: ignore[assignment]
        self._out = _Coalescer(writer)
        self._ended = ended
        #: bytes received and not yet taken as frames
        self._buf = bytearray()
        #: frames handed to the handler and not yet answered, and their bytes
        self._frames = 0
        self._bytes = 0
        #: a frame is waiting for room among those
        self._full = False
        self._paused = False
        #: the send buffer below its high-water mark, and the "peer reads nothing" timer while not
        self._send = SendGate(server._drain_s_max, self._abort_stalled)
        self._writable = self._send.open
        if leftover:
            self.data_received(leftover)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._take()

    def _fits(self, size: int) -> bool:
        if self._frames == 0:
            return True  # one frame of any allowed size goes alone
        s = self._server
        return self._frames < s._inflight_max and self._bytes + size <= s._inflight_bytes_max

    def _take(self) -> None:
        """Take the whole frames received, as far as there is room for them and the peer reads."""
        buf, pos, end = self._buf, 0, len(self._buf)
        server, quick = self._server, self._server._quick
        self._full = False
        try:
            while end - pos >= 4 and self._writable.is_set() and not self._transport.is_closing():
                (size,) = _LEN.unpack_from(buf, pos)
                if size > FRAME_BYTES_MAX:
                    log.warning("rpc: frame of %d bytes refused; closing connection", size)
                    self._transport.close()
                    return
                if end - pos - 4 < size:
                    break
                if not self._fits(size):
                    self._full = True  # the frame stays unread until an answer makes room
                    break
                req = orjson.loads(buf[pos + 4:pos + 4 + size])
                pos += 4 + size
                if quick is not None:
                    now = server._answer_now(req, self._out)
                    if now is True:
                        continue
                    if now is not LATER:  # a future: answered when done, counted until then
                        self._frames += 1
                        self._bytes += size
                        now.add_done_callback(functools.partial(self._done, req, size))
                        continue
                self._frames += 1
                self._bytes += size
                t = asyncio.ensure_future(self._one(req, size))
                server._tasks.add(t)
                t.add_done_callback(server._tasks.discard)
        except orjson.JSONDecodeError:
            log.warning("rpc: malformed frame from %s; closing connection", self._writer.get_extra_info("peername"))
            self._transport.close()
            return
        finally:
            del buf[:pos]
        self._update_reading()

    def _update_reading(self) -> None:
        t = self._transport
        if t.is_closing():
            return
        pause = self._full or not self._writable.is_set()
        if pause and not self._paused:
            self._paused = True
            t.pause_reading()
        elif not pause and self._paused:
            self._paused = False
            t.resume_reading()

    def _done(self, req: dict[str, Any], size: int, result: asyncio.Future[Any]) -> None:
        """Answer a request whose quick handler returned a future, now done; give its room back."""
        if result.cancelled():
            self._server._write_answer(self._out, req, error=RuntimeError("the request was cancelled"))
        else:
            error = result.exception()
            if error is None:
                self._server._write_answer(self._out, req, result.result())
            else:
                self._server._write_answer(self._out, req, error=error if isinstance(error, Exception)
                                           else RuntimeError(repr(error)))
        self._frames -= 1
        self._bytes -= size
        if self._full and not self._transport.is_closing():
            self._take()  # a frame was waiting for room

    async def _one(self, req: dict[str, Any], size: int) -> None:
        try:
            try:
                result = await self._server._handler(req)
            except Exception as e:  # noqa: BLE001 - every failure is answered (a bug as InternalServerError)
                self._server._write_answer(self._out, req, error=e)
            else:
                self._server._write_answer(self._out, req, result)
            # the frame's room is given back once the peer has taken its answer
            await self._out.flushed()
            if not self._writable.is_set():
                await self._writable.wait()
        finally:
            self._frames -= 1
            self._bytes -= size
            if not self._transport.is_closing():
                self._take()

    def pause_writing(self) -> None:
        """The send buffer passed its high-water mark: the peer is not reading its answers."""
        self._send.paused()
        self._update_reading()

    def resume_writing(self) -> None:
        self._send.resumed()
        self._take()

    def _abort_stalled(self) -> None:
        if not self._transport.is_closing():
            log.warning("rpc: %s left answers unread for %.1f s; disconnecting it",
                        self._writer.get_extra_info("peername"), self._server._drain_s_max)
            self._transport.abort()

    def eof_received(self) -> bool:
        return False  # the peer ended the connection: close it (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self._send.ended()  # tasks waiting for the peer to read find the connection gone
        if not self._ended.done():
            self._ended.set_result(None)


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of this builtin exception
class ConnectRefused(ConnectionError):
    """Nothing listens on the peer's port: its process is gone (a live process holds its port)."""


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of this builtin exception
class RequestLost(ConnectionError):
    """The connection dropped after the request was sent: the server may have carried it out."""


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of this builtin exception
class RequestTimeout(TimeoutError):
    """No answer in time after the request was sent: the server may have carried it out."""


class RpcClient:
    """One multiplexed connection to an :class:`RpcServer`, reconnected on demand."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 2.0, key: bytes | None = None) -> None:
        """``key``: the internal RPC key (default: :func:`default_key`, read when first needed)."""
        self._key = key
        self.host = host
        self.port = port
        self._connect_timeout_s = connect_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._out: _Coalescer | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        #: when each pending call with a long timeout expires (``_sweep`` expires them)
        self._due: dict[int, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._next_id = 0
        self._connecting: asyncio.Lock = asyncio.Lock()

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, limit=2**20), self._connect_timeout_s
                )
            except (TimeoutError, OSError) as e:
                # said by the exception's class, not by its __cause__ (which compiled code does not set)
                kind = ConnectRefused if isinstance(e, ConnectionRefusedError) else ConnectionError
                raise kind(f"cannot reach {self.host}:{self.port}: {e}") from e
            try:
                await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_S_MAX)
            except (TimeoutError, asyncio.IncompleteReadError, OSError) as e:
                writer.close()
                if isinstance(e, HandshakeRefused):
                    raise
                why = (f"no answer in {HANDSHAKE_S_MAX:.0f} s: the process is stopped or overloaded, or it is not a "
                       "Dynamolog service" if isinstance(e, TimeoutError)
                       else "not a Dynamolog service, or it holds another system key")
                raise HandshakeRefused(f"{self.host}:{self.port} did not complete the internal handshake ({why})") from None
            # from here the answers are read by a protocol of this client's own: it takes each
            # frame as its bytes arrive, not through a reading task woken for every batch
            leftover = bytes(getattr(reader, "_buffer", b""))  # nothing follows the handshake unasked
            writer.transport.set_protocol(_Answers(self, writer, leftover))
            self._writer = writer
            self._out = _Coalescer(writer)
            return writer

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._key is None:
            self._key = default_key()
        hello = await reader.readexactly(len(_MAGIC) + _NONCE_BYTES)
        if hello[:len(_MAGIC)] != _MAGIC:
            raise HandshakeRefused(f"{self.host}:{self.port} is not a Dynamolog internal RPC server")
        server_nonce, client_nonce = hello[len(_MAGIC):], os.urandom(_NONCE_BYTES)
        writer.write(client_nonce + _mac(self._key, b"client", server_nonce, client_nonce))
        answer = await reader.readexactly(_MAC_BYTES)
        if not hmac.compare_digest(answer, _mac(self._key, b"server", server_nonce, client_nonce)):
            raise HandshakeRefused(f"{self.host}:{self.port} does not hold this system's internal key")

    def _waiting(self, rid: Any) -> asyncio.Future[Any] | None:
        """The future of request ``rid``, taken out of the waiting ones; None when it has ended
        already (by its timeout) or was never sent."""
        fut = self._pending.pop(rid, None)
        if self._due:
            self._due.pop(rid, None)
        return None if fut is None or fut.done() else fut

    def _answer(self, msg: dict[str, Any]) -> None:
        """One answer frame: end its request (a request already ended, by its timeout, is skipped)."""
        fut = self._waiting(msg["id"])
        if fut is None:
            return
        if "e" in msg:
            fut.set_exception(ApiError.from_wire(msg["e"]))
        else:
            fut.set_result(msg.get("r"))

    def _answer_raw(self, rid: int, result: Raw) -> None:
        """One raw answer frame: end its request with the result's JSON, unparsed."""
        fut = self._waiting(rid)
        if fut is not None:
            fut.set_result(result)

    def _lost(self, writer: asyncio.StreamWriter) -> None:
        """The connection is gone: fail every waiting request so that nothing waits forever."""
        writer.close()
        if self._writer is writer:
            self._writer = None
        pending, self._pending = self._pending, {}
        self._due.clear()
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(RequestLost(f"connection to {self.host}:{self.port} lost"))

    async def call(self, op: str, timeout_s: float = CALL_TIMEOUT_S, **args: Any) -> Any:
        """Send one request and wait for its answer.

        Raises :class:`ApiError` for an answer that is an error, :class:`ConnectionError` when
        the server cannot be reached or the connection drops before the answer.
        """
        writer = self._writer
        if writer is None or writer.is_closing():
            writer = await self._connect()
        if len(self._pending) >= PENDING_MAX:
            raise unavailable("Too many requests in flight to a storage node")
        rid, fut = self._send(op, args, timeout_s)
        timer: asyncio.TimerHandle | None = None
        if timeout_s < SWEPT_TIMEOUT_S_MIN:
            timer = asyncio.get_running_loop().call_later(timeout_s, _expire, fut)
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.pop(rid, None)
            self._due.pop(rid, None)

    def send_now(self, op: str, **args: Any) -> asyncio.Future[Any] | None:
        """Send one request on the open connection without waiting: the future of its answer (its
        result, or what :meth:`call` would raise, after ``CALL_TIMEOUT_S`` at most), or None when
        it cannot be sent at once (no open connection, too many requests in flight: :meth:`call`
        it).  The answer, the lost connection or the sweep ends the request."""
        writer = self._writer
        if writer is None or writer.is_closing() or len(self._pending) >= PENDING_MAX:
            return None
        return self._send(op, args, CALL_TIMEOUT_S)[1]

    def _send(self, op: str, args: dict[str, Any], timeout_s: float) -> tuple[int, asyncio.Future[Any]]:
        """Write one request frame: its id and the future of its answer (swept when due, for a
        timeout of at least ``SWEPT_TIMEOUT_S_MIN``)."""
        self._next_id += 1
        rid = self._next_id
        args["id"] = rid
        args["op"] = op
        data = orjson.dumps(args)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[rid] = fut
        assert self._out is not None
        self._out.write(_LEN.pack(len(data)) + data)
        if timeout_s >= SWEPT_TIMEOUT_S_MIN:
            self._due[rid] = loop.time() + timeout_s
            if self._sweeper is None:
                self._sweeper = loop.call_later(SWEEP_S, self._sweep)
        return rid, fut

    def _sweep(self) -> None:
        """Expire the long-timeout calls that are due; again in ``SWEEP_S`` while any wait."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for rid in [rid for rid, due in self._due.items() if due <= now]:
            del self._due[rid]
            fut = self._pending.pop(rid, None)
            if fut is not None:
                _expire(fut)
        if self._due:
            self._sweeper = loop.call_later(SWEEP_S, self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        writer, self._writer = self._writer, None
        if writer is not None:
            self._lost(writer)


class _Answers(asyncio.Protocol):
    """An :class:`RpcClient` connection's reading side after the handshake: splits the bytes
    that arrive into answer frames and ends each answer's request in the same callback."""

    __slots__ = ("_buf", "_client", "_writer")

    def __init__(self, client: RpcClient, writer: asyncio.StreamWriter, leftover: bytes) -> None:
        self._client = client
        self._writer = writer
        #: the start of a frame whose end has not arrived yet
        self._buf = bytearray()
        if leftover:
            self.data_received(leftover)

    def data_received(self, data: bytes) -> None:
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
        else:
            buf = data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 4:
                (size,) = _LEN.unpack_from(buf, pos)
                raw = size & _RAW_BIT
                size &= ~_RAW_BIT
                if size > FRAME_BYTES_MAX:
                    log.warning("rpc: answer frame of %d bytes from %s:%d refused; closing connection",
                                size, self._client.host, self._client.port)
                    self._writer.transport.abort()
                    return
                if raw:
                    if size < _RAW_ID.size:
                        raise TypeError("raw answer frame without an id")
                    if end - pos - 4 < size:
                        break
                    (rid,) = _RAW_ID.unpack_from(buf, pos + 4)
                    result = Raw(bytes(memoryview(buf)[pos + 4 + _RAW_ID.size:pos + 4 + size]))
                    pos += 4 + size
                    self._client._answer_raw(rid, result)
                    continue
                if end - pos - 4 < size:
                    break
                msg = orjson.loads(buf[pos + 4:pos + 4 + size])
                pos += 4 + size
                self._client._answer(msg)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("rpc: malformed answer frame from %s:%d; closing connection",
                        self._client.host, self._client.port)
            self._writer.transport.abort()
            return
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < end:
            self._buf += memoryview(buf)[pos:]

    def eof_received(self) -> bool:
        return False  # the server ended the connection: close it (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._lost(self._writer)


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(RequestTimeout())
