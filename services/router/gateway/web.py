"""The router's web side as one object: which paths it serves and the call into it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import asgi
from .console import SystemView, add_console
from .rest import build_app
from .webauth import WebAuth

if TYPE_CHECKING:
    from ..app import Router

#: paths (before any query string) that the web side answers; everything else is the DynamoDB endpoint's
PREFIXES = ("/v1/", "/console/")
EXACT = ("/v1", "/console")


def serves(path: str) -> bool:
    """Whether ``path`` (the request target, query string included) belongs to the web side."""
    bare = path.split("?", 1)[0]
    return bare.startswith(PREFIXES) or bare in EXACT


class WebSide:
    """The REST gateway and the console on a router (decisions 0036, 0037)."""

    def __init__(self, router: Router, system_key: bytes | None) -> None:
        self.auth = WebAuth(router.auth, system_key)
        self.app = build_app(router, self.auth)
        self.view: SystemView = add_console(self.app, router, self.app.state.gateway)

    async def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> asgi.Answer:
        return await asgi.call(self.app, method, path, headers, body)

    async def close(self) -> None:
        await self.view.close()
