"""A TCP proxy that fault tests put between two components, to cut and heal the network between them.

:class:`TcpProxy` listens on one port and forwards every connection to a target address.
:meth:`TcpProxy.cut` partitions the two sides in one of two ways:

``refuse``
    every open connection is reset (``RST``) and new ones are accepted and reset at once: the
    peers see connection errors straight away, as when a host is down but its network answers;
``blackhole``
    bytes are silently dropped in both directions and new connections are accepted but never
    forwarded: the peers see nothing and find out only by their own timeouts, as when a
    network link stops delivering packets.

:meth:`TcpProxy.heal` forwards again.  A connection that lost bytes while cut is reset on heal
(a TCP stream with a hole in it is no longer a stream), so peers reconnect, as they would after
a real partition outlasting TCP's retransmissions.

:class:`ProxyThread` runs proxies on an event loop in a background thread for synchronous test
code (the fault tests' scripts run in threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

REFUSE: Final = "refuse"
BLACKHOLE: Final = "blackhole"
CutMode = Literal["refuse", "blackhole"]

CHUNK_BYTES_MAX: Final = 64 * 1024
CONNECTIONS_MAX: Final = 512

T = TypeVar("T")


@dataclass(frozen=True)
class ProxyStats:
    """What a proxy has done so far."""

    accepted: int
    """connections accepted, forwarded or not"""
    refused: int
    """connections reset on arrival (cut in ``refuse`` mode, or over the connection limit)"""
    open: int
    """connections open now (forwarded or held in a black hole)"""
    dropped_bytes: int
    """bytes discarded while cut"""


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side and (once connected) the target side."""

    client: asyncio.StreamWriter
    target: asyncio.StreamWriter | None = None
    lost: bool = False
    """bytes were dropped while cut: the stream is broken and is reset on heal"""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        for w in (self.client, self.target):
            if w is not None:
                w.transport.abort()
        for t in self.tasks:
            t.cancel()


class TcpProxy:
    """Forwards ``listen_host:listen_port`` to ``target_host:target_port``; see the module doc.

    ``listen_port`` 0 picks a free port (:attr:`port` after :meth:`start`).  :meth:`cut` and
    :meth:`heal` must be called on the proxy's event loop (:class:`ProxyThread` does that).
    """

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, connect_timeout_s: float = 5.0,
                 connections_max: int = CONNECTIONS_MAX) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = listen_port
        self.connect_timeout_s = connect_timeout_s
        self.connections_max = connections_max
        self.mode: CutMode | None = None
        """None while forwarding, else how the proxy is cut"""
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._accepted = 0
        self._refused = 0
        self._dropped_bytes = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, reset every connection and wait for its tasks to end."""
        if self._server is not None:
            self._server.close()
        tasks = [t for link in self._links for t in link.tasks]
        for link in list(self._links):
            link.reset()
        self._links.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    @property
    def stats(self) -> ProxyStats:
        return ProxyStats(self._accepted, self._refused, len(self._links), self._dropped_bytes)

    def cut(self, mode: CutMode = REFUSE) -> None:
        """Partition the two sides (see the module doc for the modes)."""
        if mode not in (REFUSE, BLACKHOLE):
            raise ValueError(f"unknown cut mode {mode!r}")
        self.mode = mode
        if mode == REFUSE:
            for link in list(self._links):
                self._drop(link)

    def heal(self) -> None:
        """Forward again; connections that lost bytes while cut are reset."""
        self.mode = None
        for link in list(self._links):
            if link.lost or link.target is None:
                self._drop(link)

    def _drop(self, link: _Link) -> None:
        link.reset()
        self._links.discard(link)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        if self.mode == REFUSE or len(self._links) >= self.connections_max:
            self._refused += 1
            writer.transport.abort()
            return
        link = _Link(writer)
        self._links.add(link)
        if self.mode == BLACKHOLE:
            link.lost = True
            await self._swallow(reader, link)
            return
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                t_reader, t_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except (OSError, TimeoutError):
            self._drop(link)
            return
        if link not in self._links:  # cut while connecting
            t_writer.transport.abort()
            return
        link.target = t_writer
        link.tasks = [asyncio.ensure_future(self._pump(reader, t_writer, link)),
                      asyncio.ensure_future(self._pump(t_reader, writer, link))]

    async def _swallow(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """Read and discard a black-holed connection's bytes until it closes or is reset."""
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while link in self._links:
                data = await reader.read(CHUNK_BYTES_MAX)
                if not data:
                    break
                self._dropped_bytes += len(data)
        if link in self._links:
            self._drop(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        """Copy one direction; in a black hole, read and drop."""
        try:
            while True:
                data = await reader.read(CHUNK_BYTES_MAX)
                if not data:
                    break
                if self.mode is not None:
                    link.lost = True
                    self._dropped_bytes += len(data)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if link in self._links:  # one side closed: close both, as a direct connection would
                self._links.discard(link)
                for w in (link.client, link.target):
                    if w is not None:
                        w.close()


class ProxyThread:
    """Runs :class:`TcpProxy` instances on an event loop in a daemon thread; every method is
    synchronous and safe to call from any other thread.  ``start()`` then ``close()``."""

    def __init__(self, call_timeout_s: float = 10.0) -> None:
        self.call_timeout_s = call_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxies", daemon=True)
        self._proxies: list[TcpProxy] = []

    def start(self) -> None:
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.call_timeout_s)

    def _call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._run(call())

    def add(self, target_host: str, target_port: int, listen_port: int = 0) -> TcpProxy:
        """A new proxy to the target, listening (on ``listen_port``, or any free port) on return."""
        proxy = TcpProxy(target_host, target_port, listen_port=listen_port)
        self._run(proxy.start())
        self._proxies.append(proxy)
        return proxy

    def cut(self, *proxies: TcpProxy, mode: CutMode = REFUSE) -> None:
        """Cut the given proxies (all of them when none is given) at the same moment."""
        chosen = proxies or tuple(self._proxies)

        def cut_all() -> None:
            for p in chosen:
                p.cut(mode)

        self._call(cut_all)

    def heal(self, *proxies: TcpProxy) -> None:
        """Heal the given proxies (all of them when none is given)."""
        chosen = proxies or tuple(self._proxies)

        def heal_all() -> None:
            for p in chosen:
                p.heal()

        self._call(heal_all)

    def stats(self, proxy: TcpProxy) -> ProxyStats:
        return self._call(lambda: proxy.stats)

    def close(self) -> None:
        """Close every proxy, end every task on the loop (none is left for the garbage collector
        to finalize after the loop is gone), and stop the thread."""
        if self._thread.is_alive():
            for proxy in self._proxies:
                with contextlib.suppress(Exception):
                    self._run(proxy.close())
            with contextlib.suppress(Exception):
                self._run(_cancel_other_tasks())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.call_timeout_s)
        self._proxies.clear()
        if not self._thread.is_alive():
            self._loop.close()


async def _cancel_other_tasks() -> None:
    """Cancel every task on the running loop but this one, and wait for them."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
