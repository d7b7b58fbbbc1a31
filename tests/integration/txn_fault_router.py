"""``python -m tests.integration.txn_fault_router STEP ROUTER-ARGS...``: a router whose transaction
coordinator kills itself with SIGKILL at STEP (tests/integration/test_transaction_crash.py).

The steps, each armed on fault points of ``services/router/transact.py`` (``dynamolog.faults``):

- ``after_prepare_one``: the first participant is prepared, no other one is asked;
- ``after_prepare``: every participant is prepared, nothing is decided;
- ``after_decision``: COMMITTED is in the decision log, no participant has heard it;
- ``after_finish_one``: the first participant applied the decision, the others have not;
- ``after_one_phase``: the one participant of a one-partition transaction applied it; the
  client has no answer.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from dynamolog import faults

log = logging.getLogger(__name__)


def _die(step: str) -> None:
    log.warning("fault test: killing this router at %s", step)
    os.kill(os.getpid(), signal.SIGKILL)


def _ask_only_the_first(i: object) -> None:
    if i != 0:
        raise ConnectionError("fault test: participant not asked")


def arm(step: str) -> None:
    if step == "after_prepare_one":
        faults.arm("txn.before_prepare", _ask_only_the_first)
        faults.arm("txn.after_prepare", lambda: _die(step))
    elif step == "after_prepare":
        faults.arm("txn.after_prepare", lambda: _die(step))
    elif step == "after_decision":
        faults.arm("txn.after_decision", lambda: _die(step))
    elif step == "after_finish_one":
        faults.arm("txn.after_finish", lambda i: _die(step) if i == 0 else None)
    elif step == "after_one_phase":
        faults.arm("txn.after_one_phase", lambda: _die(step))
    else:
        raise SystemExit(f"unknown step {step!r}")


def main() -> None:
    step = sys.argv.pop(1)
    arm(step)
    from services.router.__main__ import main as router_main

    router_main()


if __name__ == "__main__":
    main()
