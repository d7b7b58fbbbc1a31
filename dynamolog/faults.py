"""Named fault points: places where a fault test may act inside a running process.

Production code calls ``point(name, *details)`` where a test may want the process to die or a
step to fail; nothing is armed in a service, so a point costs a dictionary lookup and does
nothing.  Only a test's entry point arms points (``arm``), before it starts the service in the
same process: tests/integration/txn_fault_router.py crashes a transaction coordinator at every step.

Points (name, details):

- ``txn.before_prepare`` (participant index): the coordinator is about to send a prepare.
- ``txn.after_prepare``: every participant answered its prepare (or failed).
- ``txn.after_decision``: the decision is in the decision log.
- ``txn.after_finish`` (participant index): a participant took the decision.
- ``txn.after_one_phase``: the one participant of a one-partition transaction applied it (the
  client is not answered yet).
- ``backup.copied`` (partition id): a backup's copy of one partition is in the store, the
  backup is still CREATING (services/backup/service.py).
- ``restore.loaded`` (partition id): a restore wrote one source partition's items into the new
  table, which is still CREATING.
"""

from __future__ import annotations

from collections.abc import Callable

#: point names a process may arm (a typo in a test fails at once instead of never firing)
POINTS = frozenset({"txn.before_prepare", "txn.after_prepare", "txn.after_decision", "txn.after_finish",
                    "txn.after_one_phase", "backup.copied", "restore.loaded"})

_armed: dict[str, Callable[..., None]] = {}


def point(name: str, *details: object) -> None:
    """Run the action armed at ``name``, if any (none in production)."""
    action = _armed.get(name)
    if action is not None:
        action(*details)


def arm(name: str, action: Callable[..., None]) -> None:
    """Make ``point(name, ...)`` call ``action(...)`` in this process; for test entry points only."""
    if name not in POINTS:
        raise ValueError(f"no fault point {name!r}; known: {sorted(POINTS)}")
    _armed[name] = action


def disarm_all() -> None:
    _armed.clear()
