"""``python -m tests.integration.backup_fault_service STEP SERVICE-ARGS...``: a backup service that
kills itself with SIGKILL at STEP (tests/integration/test_backup_crash.py), on the fault points of
``services/backup/service.py`` (``dynamolog.faults``):

- ``copying``: a backup's first partition is copied, the others are not; the backup is CREATING;
- ``loading``: a restore wrote its first source partition's items; the table is CREATING.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from dynamolog import faults

log = logging.getLogger(__name__)


def _die(step: str) -> None:
    log.warning("fault test: killing this backup service at %s", step)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    step = sys.argv.pop(1)
    if step == "copying":
        faults.arm("backup.copied", lambda _pid: _die(step))
    elif step == "loading":
        faults.arm("restore.loaded", lambda _pid: _die(step))
    else:
        raise SystemExit(f"unknown step {step!r}")
    from services.backup.__main__ import main as service_main

    service_main()


if __name__ == "__main__":
    main()
