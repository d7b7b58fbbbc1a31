"""Pacing long work on the storage node's event loop.

The loop that runs a partition's reads also sequences its writes and answers heartbeats; a
1 MB Scan page with a filter, a time-to-live sweep over a large partition or a digest would hold
it for tens of milliseconds or more.  Such loops call :meth:`Pacer.due` per item and, when it
says so, ``await pacer.pause()``: they give the loop back every ``SLICE_S`` of work.  RocksDB
iterators read a consistent snapshot, so a scan paused between items sees the same state as one
that was not.  docs/architecture.md ("Event loop") and docs/benchmarks.md have the figures.
"""

from __future__ import annotations

import asyncio
import time

#: work done on the loop between two pauses at most (seconds)
SLICE_S = 0.002


class Pacer:
    """Says when a long loop has held the event loop for a slice and lets other tasks run."""

    def __init__(self, slice_s: float | None = None) -> None:
        self.slice_s = SLICE_S if slice_s is None else slice_s
        self._since = time.perf_counter()
        #: pauses taken (for tests and status)
        self.pauses = 0

    def due(self) -> bool:
        """Whether the current slice is used up."""
        return time.perf_counter() - self._since >= self.slice_s

    async def pause(self) -> None:
        """Let the other tasks of the loop run, then start a new slice."""
        await asyncio.sleep(0)
        self.pauses += 1
        self._since = time.perf_counter()

    async def tick(self) -> None:
        """Pause when the slice is used up (for loops that are not hot enough to inline ``due``)."""
        if self.due():
            await self.pause()


class LoopLagProbe:
    """Measures how late the event loop runs a timer: the loop's stall, as the tasks on it see
    it.  One background task; :meth:`snapshot` gives the worst and the latest lag of the last
    ``window`` samples."""

    def __init__(self, interval_s: float = 0.1, window: int = 100) -> None:
        self.interval_s = interval_s
        self.window = window
        self._lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.interval_s)
            lag_ms = max(0.0, (loop.time() - t0 - self.interval_s) * 1000)
            self._lags_ms.append(lag_ms)
            if len(self._lags_ms) > self.window:
                del self._lags_ms[0]

    def snapshot(self) -> dict[str, float]:
        lags = self._lags_ms
        return {"loop_lag_ms_max": round(max(lags), 2) if lags else 0.0,
                "loop_lag_ms_last": round(lags[-1], 2) if lags else 0.0}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
