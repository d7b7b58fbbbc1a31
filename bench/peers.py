#!/usr/bin/env python3
"""Install, start and stop dynalite, the peer server the benchmark compares with.

dynalite (pinned in bench/package.json) is a DynamoDB-compatible server on
Node.js and LevelDB.  It is installed into bench/node_modules with npm and
started on 127.0.0.1 with table create/delete/update delays set to 0 ms (its
default of 500 ms would only slow --create).

  python bench/peers.py install
  python bench/peers.py start --port 8001 [--memory]   # prints the pid, runs in background
  python bench/peers.py stop --port 8001
  python bench/peers.py run --port 8001                 # foreground until Ctrl-C

By default the store is a fresh LevelDB in a temporary directory (on disk,
removed at stop); --memory keeps it in memory instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
DYNALITE_VERSION = "4.0.0"
CLI = os.path.join(BENCH, "node_modules", "dynalite", "cli.js")
STATE_DIR = os.path.join(tempfile.gettempdir(), "dynamolog-bench")


def install() -> None:
    if os.path.exists(CLI):
        return
    if not shutil.which("npm"):
        raise SystemExit("npm not found: install Node.js >= 20")
    # `npm ci` honours the lockfile in bench/; the pinned version is in package.json.
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", BENCH], check=True, cwd=BENCH)


def _answers(port: int) -> bool:
    """True once dynalite answers a DynamoDB request (any JSON reply)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return True  # an HTTP error still means it is serving
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Dynalite:
    """Context manager: a dynalite process on 127.0.0.1:port."""

    def __init__(self, port: int = 8001, memory: bool = False, log: str | None = None) -> None:
        self.port = port
        self.memory = memory
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.path: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_s: float = 30.0) -> Dynalite:
        install()
        if not _port_free(self.port):
            raise SystemExit(f"port {self.port} is already in use")
        args = ["node", CLI, "--host", "127.0.0.1", "--port", str(self.port),
                "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if not self.memory:
            self.path = tempfile.mkdtemp(prefix="dynalite-")
            args += ["--path", self.path]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"dynalite exited with code {self.proc.returncode}")
            if _answers(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise SystemExit("dynalite did not answer in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.path:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None

    def __enter__(self) -> Dynalite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _state_file(port: int) -> str:
    return os.path.join(STATE_DIR, f"dynalite-{port}.pid")


def recorded_pid(port: int) -> int | None:
    """The pid of the dynalite that ``peers.py start --port PORT`` started, if it still runs."""
    try:
        pid = int(open(_state_file(port)).read().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["install", "start", "stop", "run"])
    p.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default %(default)s)")
    p.add_argument("--memory", action="store_true", help="in-memory store instead of a temp-dir LevelDB")
    a = p.parse_args(argv)
    if a.action == "install":
        install()
        print(CLI)
        return 0
    if a.action == "run":
        with Dynalite(a.port, a.memory) as d:
            print(f"dynalite {DYNALITE_VERSION} on {d.endpoint} (Ctrl-C stops it)", flush=True)
            try:
                d.proc.wait()
            except KeyboardInterrupt:
                pass
        return 0
    if a.action == "start":
        d = Dynalite(a.port, a.memory).start()
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(_state_file(a.port), "w") as f:
            f.write(f"{d.proc.pid} {d.path or ''}\n")
        print(d.proc.pid)
        return 0
    # stop: only the process this helper started and recorded
    try:
        pid_s, _, path = open(_state_file(a.port)).read().strip().partition(" ")
    except FileNotFoundError:
        raise SystemExit(f"no dynalite started by this helper on port {a.port}")
    try:
        os.kill(int(pid_s), signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(100):
        try:
            os.kill(int(pid_s), 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    if path:
        shutil.rmtree(path, ignore_errors=True)
    os.remove(_state_file(a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
