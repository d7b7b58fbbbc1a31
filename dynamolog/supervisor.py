"""Keep the service processes of a local system running: restart a crashed one, with backoff.

``dynamolog up`` runs :class:`Supervisor` in the foreground; ``dynamolog up --detach`` leaves
``python -m dynamolog.supervisor --data-dir DATA`` running in the background (its log is
``DATA/logs/supervisor.log``). Either way its pid is ``supervisor`` in ``DATA/system.json``,
where it also keeps each service's restart count (``restarts``), which ``dynamolog status``
shows; ``dynamolog down`` stops it before the services, so that nothing is restarted while the
system stops. Kafka brokers are not supervised (a broker that dies is started again by the next
``dynamolog up``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .launcher import System, pid_alive

#: the first restart of a crashed process waits this long; each further one twice as long ...
BACKOFF_S_MIN = 0.5
#: ... up to this
BACKOFF_S_MAX = 30.0
#: a process that ran this long before it stopped is restarted after the shortest wait again
STABLE_S = 60.0
#: how often the supervisor looks at the processes
CHECK_INTERVAL_S = 0.5


def _say(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [supervisor] {msg}", file=sys.stderr, flush=True)


def backoff_s(failures: int) -> float:
    """Wait before the restart that follows ``failures`` quick consecutive crashes (1, 2, ...)."""
    return float(min(BACKOFF_S_MAX, BACKOFF_S_MIN * 2 ** max(0, failures - 1)))


@dataclass
class _Watch:
    """What the supervisor knows about one service process."""

    #: the pid it watches
    pid: int
    #: monotonic time the process was (re)started or first seen
    since: float
    #: crashes in a row, each after less than ``STABLE_S`` of running
    failures: int = 0
    #: monotonic time at which to restart it (None: it is running)
    restart_at: float | None = None


def _exit_status(pid: int) -> str:
    """How a child process ended ("exit 1", "signal 9"), reaping it; "?" for a non-child."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "?"
    if got != pid:
        return "?"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


class Supervisor:
    """Restarts the services of ``system`` that stop, until ``should_stop()`` is true."""

    def __init__(self, system: System, check_interval_s: float = CHECK_INTERVAL_S) -> None:
        self.system = system
        self.check_interval_s = check_interval_s
        self._watch: dict[str, _Watch] = {}

    def run(self, should_stop: Callable[[], bool]) -> None:
        state = self.system.state() or {}
        state["supervisor"] = os.getpid()
        state.setdefault("restarts", {})
        self.system._write(state)
        _say(f"supervising {', '.join(sorted(state.get('pids', {})))} (pid {os.getpid()})")
        while not should_stop():
            self.check()
            time.sleep(self.check_interval_s)
        _say("supervision stopped")

    def check(self) -> None:
        """One look at every service: note those that stopped, restart those that are due."""
        state = self.system.state() or {}
        now = time.monotonic()
        for name, pid in sorted(state.get("pids", {}).items()):
            w = self._watch.get(name)
            if w is None or w.pid != pid:
                w = self._watch[name] = _Watch(pid=pid, since=now)
            if w.restart_at is None:
                status = _exit_status(pid)
                if status == "?" and pid_alive(pid):
                    continue
                w.failures = 1 if now - w.since >= STABLE_S else w.failures + 1
                w.restart_at = now + backoff_s(w.failures)
                restarts = int(state.get("restarts", {}).get(name, 0))
                _say(f"{name} (pid {pid}) stopped ({status}) after {now - w.since:.1f} s; restart {restarts + 1} "
                     f"in {w.restart_at - now:.1f} s")
            elif now >= w.restart_at:
                new_pid = self.system.start_service(name)
                state = self.system.state() or {}
                state.setdefault("restarts", {})[name] = int(state.get("restarts", {}).get(name, 0)) + 1
                self.system._write(state)
                self._watch[name] = _Watch(pid=new_pid, since=time.monotonic(), failures=w.failures)
                _say(f"{name} restarted: pid {new_pid} (restart {state['restarts'][name]}); its log is "
                     f"{self.system.data_dir / 'logs' / (name + '.log')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynamolog.supervisor",
                                     description="Restart the crashed services of the system in --data-dir "
                                     "(started by `dynamolog up --detach`; stopped by `dynamolog down`).")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Supervisor(System(args.data_dir)).run(lambda: stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
