#!/usr/bin/env bash
# Benchmark Dynamolog (already running, default http://127.0.0.1:8000) against
# dynalite (started and stopped here) with the same load; writes
# bench/results/latest.md.  All options go to bench/compare.py, e.g.
#   bench/run.sh --duration 10 --items 10000 --repeat 3
#   bench/run.sh --dynamolog http://127.0.0.1:8000 --clients 64
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$root/.venv/bin/activate" ]; then
  . "$root/.venv/bin/activate"
fi
cd "$root"
exec python bench/compare.py "$@"
