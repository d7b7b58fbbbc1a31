"""Invariants of the storage node, asserted where the log meets the view.

A broken invariant is a bug, not an expected failure: :func:`check` logs it and raises
:class:`InvariantViolation`, which no retry loop of the storage node swallows.  The component
that hit it stops (a follower stops following and serves no reads; a leader's sequencer dies,
reports itself unhealthy and is replaced by the auto-admin), so a replica whose view may no
longer be the fold of its log never answers from it.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class InvariantViolation(Exception):
    """An invariant of the storage node does not hold (a bug): stop, never retry."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`InvariantViolation` (logged as critical) unless ``condition`` holds."""
    if not condition:
        log.critical("invariant violated: %s", message)
        raise InvariantViolation(message)
