"""Handing backup work to the backup service (services/backup) over the internal RPC.

A router validates a backup request completely, then calls the active backup service, whose
address is in ``<ns>.nodes`` under :data:`BACKUP_KEY` (it publishes it when elected).  A call
that cannot reach it looks the address up again and retries for up to ``wait_s`` (a standby
takes over within the election's session timeout), then fails with a retriable
InternalServerError.  Errors the service answers (BackupNotFoundException, ...) pass through
unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from .metadata import BACKUP_KEY, Metadata, PublishedClient
from .rpc import RpcClient

__all__ = ["BACKUP_KEY", "BackupClient"]

log = logging.getLogger(__name__)

#: how long a call waits for a backup service it cannot reach
WAIT_S = 30.0


class BackupClient:
    """Calls the active backup service."""

    def __init__(self, metadata: Metadata, *, wait_s: float = WAIT_S) -> None:
        self.metadata = metadata
        self.wait_s = wait_s
        self._published = PublishedClient(metadata, BACKUP_KEY, "backup service")

    def _service(self) -> RpcClient:
        return self._published.get()

    async def call(self, op: str, *, retry_lost: bool = True, timeout_s: float = 60.0, **args: Any) -> Any:
        """``op`` on the backup service.  ``retry_lost``: send again when the answer was lost
        (only for requests that are safe to repeat)."""
        return await self._published.call(op, wait_s=self.wait_s, timeout_s=timeout_s, retry_lost=retry_lost,
                                          unavailable="The backup service is unavailable; retry the request", **args)

    async def close(self) -> None:
        await self._published.close()
