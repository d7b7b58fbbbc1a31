#!/usr/bin/env python3
"""Run the same benchmark against Dynamolog and dynalite and write a markdown report.

Dynamolog must already be running (default http://127.0.0.1:8000).  dynalite
is installed if needed (bench/node_modules), started on 127.0.0.1 for its own
run only, and stopped afterwards.  Both runs use the same loadgen.py
parameters, each with --create (the table `bench` is dropped and recreated).
Each phase runs --repeat times; the report quotes the median of each figure.

  python bench/compare.py                         # defaults below
  python bench/compare.py --duration 5 --items 2000 --repeat 3
  python bench/compare.py --skip-dynamolog         # dynalite only

The report goes to bench/results/latest.md (git-ignored) and the raw figures
to bench/results/<label>.json.  Exit status 1 when a run failed or Dynamolog
was not reachable (the report is written all the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)

from peers import DYNALITE_VERSION, Dynalite  # noqa: E402


def reachable(endpoint: str) -> bool:
    u = urlsplit(endpoint)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((u.hostname, u.port or 80)) == 0


def loadgen_args(a: argparse.Namespace) -> list[str]:
    args = [
        "--clients", str(a.clients), "--duration", str(a.duration), "--item-bytes", str(a.item_bytes),
        "--items", str(a.items), "--sort-keys", str(a.sort_keys), "--ops", a.ops, "--table", a.table,
        "--repeat", str(a.repeat), "--rate", str(a.rate),
    ] + ([] if a.no_create else ["--create"])
    return args + (["--no-progress"] if a.no_progress else [])


def run_loadgen(label: str, endpoint: str, a: argparse.Namespace) -> dict | None:
    out = os.path.join(a.results, f"{label}.json")
    cmd = [sys.executable, os.path.join(BENCH, "loadgen.py"), "--endpoint", endpoint, "--label", label,
           "--json", out, *loadgen_args(a)]
    print(f"\n=== {label}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    if os.path.exists(out):
        os.remove(out)
    r = subprocess.run(cmd)
    if not os.path.exists(out):
        print(f"{label}: loadgen failed (exit {r.returncode})", file=sys.stderr)
        return None
    with open(out) as f:
        return json.load(f)


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 1000 else f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report(a: argparse.Namespace, command: str, results: dict[str, dict | None], notes: list[str]) -> str:
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    any_res = next((r for r in results.values() if r), None)
    lines = [
        "# Benchmark: Dynamolog vs dynalite",
        "",
        f"- Date: {date}",
        f"- Command: `{command}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"load generator on the same machine as the server; load average before the run "
        f"{' '.join(f'{x:.2f}' for x in a.loadavg)} (anything else busy on the machine skews the figures)",
        f"- Load: {a.clients} concurrent keep-alive connections, one request in flight each; "
        f"{a.duration:g} s measured per run after 1 s of warm-up; each phase run {a.repeat} times, "
        "every figure below is the median over the runs (errors: the total)",
        f"- Data: {any_res['layout'] if any_res else ''}",
        f"- Peer: dynalite {DYNALITE_VERSION} ({'in-memory' if a.dynalite_memory else 'LevelDB in a temp dir'}, "
        "createTableMs=0)",
        "- Latency: from writing the request to the end of the response, successful requests only, in ms",
        "- loadgen CPU%: the load generator's own CPU use (100% = the one core it runs on)",
        "",
        "| phase | server | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors | loadgen CPU% |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    phases = [p for p in a.ops.split(",") if p]
    by = {label: {r["phase"]: r for r in res["median"]} if res else {} for label, res in results.items()}
    for phase in phases:
        for label in results:
            r = by[label].get(phase)
            if r is None:
                lines.append(f"| {phase} | {label} | not run | | | | | | |")
                continue
            errs = str(r["errors"])
            if r["errors"]:
                errs += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(r["errors_by_type"].items())) + ")"
            lines.append(
                f"| {phase} | {label} | {r['ops_per_s']:,.0f} | {fmt(r['p50_ms'])} | {fmt(r['p90_ms'])} | "
                f"{fmt(r['p99_ms'])} | {fmt(r['max_ms'])} | {errs} | {fmt(r['loadgen_cpu_pct'], 1)} |"
            )
    if len(results) == 2 and all(by.values()):
        x, y = list(results)
        lines += ["", f"| phase | {x} / {y} throughput | {x} / {y} p99 |", "| --- | ---: | ---: |"]
        for phase in phases:
            rx, ry = by[x].get(phase), by[y].get(phase)
            if rx and ry and ry["ops_per_s"] and ry["p99_ms"] and rx["p99_ms"] is not None:
                lines.append(f"| {phase} | {rx['ops_per_s'] / ry['ops_per_s']:.2f}x | {rx['p99_ms'] / ry['p99_ms']:.2f}x |")
    pre = [(label, res["preload"]) for label, res in results.items() if res and res.get("preload")]
    if pre:
        lines += ["", "Preload (not measured figures): " + "; ".join(
            f"{label} {p['items']} items in {p['seconds']} s via {p['mode']}" for label, p in pre)]
    if notes:
        lines += [""] + [f"Note: {n}" for n in notes]
    lines += ["", "Raw figures of every run: `bench/results/<server>.json`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dynamolog", default="http://127.0.0.1:8000", help="Dynamolog endpoint, already running (default %(default)s)")
    p.add_argument("--skip-dynamolog", action="store_true", help="benchmark dynalite only")
    p.add_argument("--dynalite-port", type=int, default=8001, help="port for the dynalite this script starts (default %(default)s)")
    p.add_argument("--dynalite-memory", action="store_true", help="run dynalite in memory instead of on a temp-dir LevelDB")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default %(default)s)")
    p.add_argument("--item-bytes", type=int, default=1024)
    p.add_argument("--items", type=int, default=10000, help="partition keys (default %(default)s)")
    p.add_argument("--sort-keys", type=int, default=4)
    p.add_argument("--ops", default="put,get,query")
    p.add_argument("--table", default="bench")
    p.add_argument("--repeat", type=int, default=3, help="runs per phase, medians quoted (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.0, help="offered ops/s (open loop); 0 = closed loop (default)")
    p.add_argument("--no-create", action="store_true", help="reuse the existing table (it must hold every key)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--results", default=os.path.join(BENCH, "results"), help="output folder (default bench/results)")
    a = p.parse_args(argv)
    os.makedirs(a.results, exist_ok=True)
    command = shlex.join([os.path.basename(sys.executable), os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)])

    a.loadavg = os.getloadavg()
    results: dict[str, dict | None] = {}
    notes: list[str] = []
    if not a.skip_dynamolog:
        if reachable(a.dynamolog):
            results["Dynamolog"] = run_loadgen("dynamolog", a.dynamolog, a)
            if results["Dynamolog"] is None:
                notes.append("the Dynamolog run failed; see the console output.")
        else:
            results["Dynamolog"] = None
            notes.append(f"Dynamolog was not reachable at {a.dynamolog}; no figures for it.")
    log = os.path.join(a.results, "dynalite.log")
    with Dynalite(a.dynalite_port, memory=a.dynalite_memory, log=log) as d:
        results["dynalite"] = run_loadgen("dynalite", d.endpoint, a)
    md = report(a, command, results, notes)
    path = os.path.join(a.results, "latest.md")
    with open(path, "w") as f:
        f.write(md)
    print("\n" + md)
    print(f"written to {path}", file=sys.stderr)
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
