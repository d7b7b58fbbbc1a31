"""Integration-tier fixtures."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Run finalizers (aiokafka's for fenced producers and their futures) right after each test.

    CPython 3.11.7 raises "SystemError: AST constructor recursion depth mismatch" when a garbage
    collection runs such finalizers in the middle of an ``ast.parse`` (as pytest's assertion
    rewriting does when it imports a module late); collecting here keeps them out of that window.
    """
    yield
    gc.collect()
