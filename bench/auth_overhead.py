#!/usr/bin/env python3
"""What authentication costs per request: the same load against two routers of one system, one
verifying SigV4 and policies (the default) and one started with ``--no-auth``.

Both routers serve the same tables from the same storage node and Kafka, so the only difference
is the authentication step (parse the Authorization header, look the key up, recompute and
compare the signature, check the policy). The load generator signs every request in both cases.
In each round two load generators run at the same time, one per router, so that whatever else
the machine does at that moment slows both alike; the figures are medians over the rounds, and
each router's CPU time per request is read from /proc.

    .venv/bin/dynamolog up --detach --data-dir .bench-auth --port 8100 --storage-port 7101 --kafka-port 9192
    .venv/bin/python bench/auth_overhead.py --data-dir .bench-auth --rounds 5 --duration 10
    .venv/bin/dynamolog down --data-dir .bench-auth

It adds the unauthenticated router to that system (``router-noauth`` in system.json; ``dynamolog
down`` stops it) on ``--noauth-port``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import creds  # noqa: E402 - bench/creds.py

from dynamolog.launcher import System, health  # noqa: E402


def add_noauth_router(system: System, port: int) -> str:
    state = system.state()
    assert state is not None
    if "router-noauth" not in state["pids"] or not health(port):
        cmd = list(state["commands"]["router"])
        cmd[cmd.index("--port") + 1] = str(port)
        state["commands"]["router-noauth"] = [*cmd, "--no-auth"]
        system._write(state)
        system.start_service("router-noauth")
        deadline = time.monotonic() + 60
        while not health(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"the --no-auth router did not answer on {port}; see {system.data_dir}/logs")
            time.sleep(0.2)
    return f"http://127.0.0.1:{port}"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadgen(endpoint: str, a: argparse.Namespace, ops: str, extra: list[str]) -> subprocess.Popen[bytes]:
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--endpoint", endpoint, "--table", a.table,
           "--ops", ops, "--clients", str(a.clients), "--duration", str(a.duration), "--items", str(a.items),
           "--sort-keys", "4", "--data-dir", str(a.data_dir), "--no-progress", "--json", out, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    proc.out = out  # type: ignore[attr-defined]
    return proc


def result(proc: subprocess.Popen[bytes]) -> dict:
    if proc.wait() != 0:
        raise SystemExit(f"loadgen failed ({proc.args})")
    with open(proc.out) as f:  # type: ignore[attr-defined]
        doc = json.load(f)
    os.unlink(proc.out)  # type: ignore[attr-defined]
    return {row["phase"]: row for row in doc["median"]}


def micro(n: int = 50_000) -> None:
    """In-process: microseconds per request of authenticate + authorize for loadgen's GetItem and
    PutItem requests (no system needed)."""
    import orjson
    from loadgen import RequestBuilder

    from dynamolog.auth import credentials, policy
    from dynamolog.config import Settings
    from services.router.auth import Authenticator

    cred, _ = credentials.new("admin", json.loads(json.dumps(policy.ADMIN)))
    auth = Authenticator(Settings(), b"k" * 32, enabled=True)
    assert auth._view is not None
    auth._view.items[cred.access_key_id] = cred
    rb = RequestBuilder("127.0.0.1:8000", cred.access_key_id, cred.secret)
    for op, body in (("GetItem", b'{"TableName":"bench","Key":{"pk":{"S":"pk00000001"},"sk":{"S":"s1"}}}'),
                     ("PutItem", b'{"TableName":"bench","Item":{"pk":{"S":"pk00000001"},"sk":{"S":"s1"},"v":{"S":"'
                      + b"x" * 1000 + b'"}}}')):
        head = rb.build(op, body).split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in head)}
        params = orjson.loads(body)
        for _ in range(1000):
            auth.authorize(auth.authenticate("POST", "/", headers, body), op, params)
        t0 = time.process_time()
        for _ in range(n):
            auth.authorize(auth.authenticate("POST", "/", headers, body), op, params)
        print(f"{op}: {(time.process_time() - t0) / n * 1e6:.1f} us CPU per request (authenticate + authorize)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path(".data"), help="data dir of a running system (dynamolog up)")
    p.add_argument("--noauth-port", type=int, default=8199, help="port of the added --no-auth router (default 8199)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; each measures both routers (default 5)")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    p.add_argument("--clients", type=int, default=4, help="concurrent connections per router (default 4)")
    p.add_argument("--items", type=int, default=2000, help="partition keys (x 4 sort keys) (default 2000)")
    p.add_argument("--ops", default="get,put", help="phases (loadgen.py --ops) (default get,put)")
    p.add_argument("--table", default="authbench", help="table (default authbench)")
    p.add_argument("--micro", action="store_true", help="only the in-process cost per request, no system needed")
    a = p.parse_args()
    if a.micro:
        micro()
        return
    system = System(a.data_dir)
    state = system.state()
    if state is None or not health(state["port"]):
        raise SystemExit(f"no running system in {a.data_dir}: start one with dynamolog up --detach --data-dir {a.data_dir}")
    key, _ = creds.credentials(a.data_dir)
    print(f"signing with {key}; auth router :{state['port']}, --no-auth router :{a.noauth_port}", flush=True)
    on = f"http://127.0.0.1:{state['port']}"
    off = add_noauth_router(system, a.noauth_port)
    result(loadgen(on, a, "get", ["--create", "--duration", "1"]))  # create and preload
    ops = a.ops
    results: dict[str, dict[str, list[dict]]] = {"on": {}, "off": {}}
    pids = {"on": system.state()["pids"]["router"], "off": system.state()["pids"]["router-noauth"]}
    for r in range(a.rounds):
        for phase in ops.split(","):
            c0 = {lab: cpu_s(pid) for lab, pid in pids.items()}
            procs = {"on": loadgen(on, a, phase, ["--no-preload"]), "off": loadgen(off, a, phase, ["--no-preload"])}
            rows = {lab: result(p)[phase] for lab, p in procs.items()}
            line = []
            for lab, row in rows.items():
                ops_total = row["ops_per_s"] * (a.duration + 1.0)  # loadgen warms up 1 s first
                row["router_cpu_us_per_op"] = (cpu_s(pids[lab]) - c0[lab]) / max(1.0, ops_total) * 1e6
                results[lab].setdefault(phase, []).append(row)
                line.append(f"auth {lab}: p50 {row['p50_ms']:.2f} ms {row['ops_per_s']:.0f}/s "
                            f"router CPU {row['router_cpu_us_per_op']:.0f} us/op")
            print(f"round {r + 1} {phase}: " + " | ".join(line), flush=True)
    print("\n| phase | auth | p50 ms (median of rounds) | p99 ms | ops/s | router CPU µs/request | added p50 |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for phase in results["on"]:
        med = {lab: {k: statistics.median(x[k] for x in results[lab][phase])
                     for k in ("p50_ms", "p99_ms", "ops_per_s", "router_cpu_us_per_op")} for lab in ("on", "off")}
        added = (med["on"]["p50_ms"] / med["off"]["p50_ms"] - 1) * 100
        summary[phase] = {**med, "added_p50_pct": round(added, 1)}
        for lab in ("off", "on"):
            m = med[lab]
            print(f"| {phase} | {lab} | {m['p50_ms']:.3f} | {m['p99_ms']:.2f} | {m['ops_per_s']:.0f} | "
                  f"{m['router_cpu_us_per_op']:.0f} | "
                  f"{f'{added:+.1f} %' if lab == 'on' else ''} |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
