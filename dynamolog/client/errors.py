"""The error a client call raises for an error answer (shared by the client's modules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ClientError"]


class ClientError(Exception):
    """An error answer. ``code`` is the short name of DynamoDB's ``__type`` (e.g.
    ``"ConditionalCheckFailedException"``), ``status`` the HTTP status, ``body`` the decoded answer
    (or ``{"raw": text}`` when it was not JSON)."""

    def __init__(self, code: str, message: str, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.body = dict(body)
