"""Clean-up around an await, for the compiled modules (decision 0059).

Code compiled with mypyc must not suspend inside a ``finally`` block or inside an ``except``
block that re-raises: there, mypyc loses the exception being handled.  A ``try: await work()
finally: await close()`` then returns as if ``work`` had succeeded, and ``except BaseException:
await close(); raise`` re-raises a freed exception object, which crashes the process.
The compiled modules call these helpers instead.  This module is never compiled, so its ``try``
blocks are CPython's own.  ``tests/unit/test_native.py`` checks that no compiled coroutine awaits
in such a block, and, with a module compiled for the test, that every exception reaches a
compiled caller through the helpers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def closing(work: Awaitable[T], cleanup: Callable[[], Awaitable[object]]) -> T:
    """``await work``, then ``await cleanup()`` whether it succeeded or raised (try/finally)."""
    try:
        return await work
    finally:
        await cleanup()


async def cleanup_on_error(work: Awaitable[T], cleanup: Callable[[], Awaitable[object]]) -> T:
    """``await work``; if it raises, ``await cleanup()`` and raise the same exception."""
    try:
        return await work
    except BaseException:
        await cleanup()
        raise
