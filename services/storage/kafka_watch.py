"""Whether this storage node can reach Kafka: a small metadata request every ``interval_s``.

A node cut off from every broker can neither commit (so its leaders acknowledge nothing) nor
learn that it was deposed, yet it still answers the auto-admin's pings over the internal RPC,
so the admin would never move its partitions to another replica.  The node therefore refuses
the ping once Kafka has been silent for ``silent_max_s``: to the admin it is then down, as it is
for every write, and its partitions fail over (docs/decisions/0015-faults-kafka-reachable-liveness.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class KafkaWatch:
    """One asyncio task asking the cluster for its metadata; :meth:`silent_for` says how long
    ago an answer last came.  ``start()`` / ``close()``."""

    def __init__(self, bootstrap: str, *, interval_s: float = 0.5, timeout_s: float = 1.5) -> None:
        self.bootstrap = bootstrap
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._last_ok = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._client: AIOKafkaClient | None = None

    async def start(self) -> None:
        self._last_ok = time.monotonic()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    def silent_for(self) -> float:
        """Seconds since Kafka last answered (since start, if never)."""
        return time.monotonic() - self._last_ok

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.timeout_s):
                    if self._client is None:
                        client = AIOKafkaClient(bootstrap_servers=self.bootstrap,
                                                request_timeout_ms=int(self.timeout_s * 1000))
                        try:
                            await client.bootstrap()
                        except BaseException:
                            await client.close()
                            raise
                        self._client = client
                    await self._client.fetch_all_metadata()
                self._last_ok = time.monotonic()
            except (KafkaError, OSError, TimeoutError) as e:
                log.debug("kafka watch: no answer from Kafka (%r); silent for %.1f s", e, self.silent_for())
            await asyncio.sleep(self.interval_s)
