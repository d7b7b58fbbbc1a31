#!/usr/bin/env bash
# The benchmark behind docs/benchmarks.md, in one run: Dynamolog (already running on
# http://127.0.0.1:8000, e.g. `dynamolog up --detach`) against dynalite, same load, same machine.
#   1. warm-up: 60 s of PutItem against Dynamolog (the Kafka broker's JIT compiler needs it)
#   2. closed loop, 32 clients: PutItem, GetItem, Query (3 runs each, medians)
#   3. closed loop, 8 clients: GetItem
#   4. open loop, 32 connections: PutItem offered at 1,000/s, GetItem offered at 3,000/s
# Every section's report goes to bench/results/<section>/latest.md; all of them, concatenated,
# to bench/results/full.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
common=(--duration "${DURATION:-10}" --items "${ITEMS:-5000}" --repeat "${REPEAT:-3}" --no-progress)
out=bench/results
mkdir -p "$out"
echo "== warm-up" >&2
python bench/loadgen.py --create --clients 32 --duration "${WARMUP:-60}" --items "${ITEMS:-5000}" --ops put --no-progress >/dev/null
run() {  # section, args...
    local section=$1; shift
    echo "== $section" >&2
    python bench/compare.py "${common[@]}" --results "$out/$section" "$@" || true
}
run closed-32 --clients 32 --ops put,get,query
run closed-8 --clients 8 --ops get
run open-put-1000 --clients 32 --ops put --rate 1000
run open-get-3000 --clients 32 --ops get --rate 3000
{
    for s in closed-32 closed-8 open-put-1000 open-get-3000; do
        echo "## $s"; echo; sed '1d' "$out/$s/latest.md"; echo
    done
} > "$out/full.md"
echo "written to $out/full.md" >&2
