"""The send side of a connection whose peer may stop reading (the router's HTTP connections, the
internal RPC's): a gate that is open while the socket's send buffer is below its high-water
mark, and a timer that gives up on a peer that leaves it above the mark for too long.

A protocol calls :meth:`SendGate.paused` from ``pause_writing``, :meth:`SendGate.resumed` from
``resume_writing`` and :meth:`SendGate.ended` from ``connection_lost``; what must wait for the
peer to read awaits ``gate.open.wait()``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class SendGate:
    """Open while the send buffer is below its high-water mark; ``on_stalled`` runs when it has
    stayed closed for ``limit_s``."""

    __slots__ = ("_limit_s", "_on_stalled", "_stall", "open")

    def __init__(self, limit_s: float, on_stalled: Callable[[], None]) -> None:
        self._limit_s = limit_s
        self._on_stalled = on_stalled
        self._stall: asyncio.TimerHandle | None = None
        #: set while answers may be written
        self.open = asyncio.Event()
        self.open.set()

    def paused(self) -> None:
        """The send buffer passed its high-water mark: the peer is not reading."""
        self.open.clear()
        if self._stall is None:
            self._stall = asyncio.get_running_loop().call_later(self._limit_s, self._stalled)

    def resumed(self) -> None:
        """The peer read enough: the buffer is below the mark again."""
        self._cancel()
        self.open.set()

    def ended(self) -> None:
        """The connection is gone: whatever waits goes on, and finds it gone."""
        self._cancel()
        self.open.set()

    def _stalled(self) -> None:
        self._stall = None
        self._on_stalled()

    def _cancel(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
