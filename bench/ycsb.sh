#!/usr/bin/env bash
# The YCSB-style benchmark (bench/ycsb.py) in one sitting, on this machine:
#   1. dynalite (bench/peers.py start, LevelDB in a temp dir) on 127.0.0.1:8401
#   2. `dynamolog up` (1 broker, 1 storage node), fresh temp data dir, port 8400
#   3. `dynamolog up --brokers 3 --storage-nodes 3`, fresh temp data dir, port 8400
# one after the other (only one system runs at a time). For each: 30 s of PutItem warm-up (the
# brokers' JIT; dynalite gets the same), then the workloads load, A, C, put-lone and put-rate
# (bench/ycsb.py --help; Dynamolog's table with WarmThroughput --warm, default 40,000 units a
# second), with the CPU of each of the system's processes from /proc; then the
# system is stopped and its data dir deleted. Finally the markdown table of all three.
#
# Arguments go to every bench/ycsb.py run, after the defaults (which are the full size: 5,000
# records, 16 clients, 15 s per workload, 2,000 lone PutItems, 15 s at 500 PutItem/s), e.g.
#   bench/ycsb.sh --repeat 3                       # medians of three interleaved runs
#   bench/ycsb.sh --records 500 --duration 3 --lone-requests 200 --probe-duration 3 --warmup 5   # a short trial
# TOPOLOGIES="1x1" measures only the default topology beside dynalite (default "1x1 3x3").
# PIN=1 runs every system under test on CPU 0 only and the load generator on CPU 1 only
# (taskset; the system's processes inherit it): what each system does with one core of its own.
# BEFORE=<checkout of an earlier commit, with its .venv> adds that code's two topologies to the
# sitting (e.g. `git worktree add /tmp/before <rev> && (cd /tmp/before && ./scripts/bootstrap)`).
# Results (git-ignored, as every bench result): bench/results/ycsb/{dynalite,1b-1n,3b-3n}.json
# and the table in bench/results/ycsb/ycsb.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
# every system signs with its own administrator key (bench/creds.py prefers $AWS_* over it)
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
out=bench/results/ycsb
port=8400
kafka_port=29410
storage_port=7401
dynalite_port=8401
workloads=load,A,C,put-lone,put-rate
run_limit_s=1800   # a bound on each system's ycsb.py run
sys_pin=()
gen_pin=()
if [ "${PIN:-0}" = 1 ]; then sys_pin=(taskset -c 0); gen_pin=(taskset -c 1); fi
mkdir -p "$out"
rm -f "$out"/*.json "$out/ycsb.md"

dir=""
dynalite_up=0
cleanup() {
    if [ "$dynalite_up" = 1 ]; then python bench/peers.py stop --port "$dynalite_port" || true; dynalite_up=0; fi
    if [ -n "$dir" ]; then
        "${dyn_cmd:-dynamolog}" down --data-dir "$dir" >/dev/null 2>&1 || true
        rm -rf "$dir"
        dir=""
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ycsb() {  # name label endpoint [ycsb.py options...]
    local name=$1 label=$2 endpoint=$3
    shift 3
    timeout --signal=INT "$run_limit_s" "${gen_pin[@]}" python bench/ycsb.py --endpoint "$endpoint" --label "$label" \
        --workload "$workloads" --warmup 30 --json "$out/$name.json" "$@" 2>&1 | tee "$out/$name.txt" >&2
}

echo "== dynalite" >&2
"${sys_pin[@]}" python bench/peers.py start --port "$dynalite_port" >/dev/null
dynalite_up=1
version="$(python -c 'import sys; sys.path.insert(0, "bench"); import peers; print(peers.DYNALITE_VERSION)')"
ycsb dynalite "dynalite $version" "http://127.0.0.1:$dynalite_port" --system dynalite "$@"
cleanup

topology() {  # dynamolog-command name-prefix brokers nodes label
    local prefix=$2 b=$3 n=$4 label=$5
    dyn_cmd=$1  # cleanup stops the system with the code that started it
    shift 5
    dir="$(mktemp -d /tmp/dynamolog-ycsb.XXXXXX)"
    echo "== $label ($dir)" >&2
    "${sys_pin[@]}" "$dyn_cmd" up --detach --data-dir "$dir" --brokers "$b" --storage-nodes "$n" --port "$port" \
        --kafka-port "$kafka_port" --storage-port "$storage_port" >/dev/null
    ycsb "${prefix}${b}b-${n}n" "$label" "http://127.0.0.1:$port" --data-dir "$dir" "$@"
    cleanup
}
reports=("$out/dynalite.json")
if [ -n "${BEFORE:-}" ]; then
    # BEFORE=<a checkout of an earlier commit, bootstrapped>: its two topologies in the same sitting
    rev="$(git -C "$BEFORE" rev-parse --short HEAD)"
    topology "$BEFORE/.venv/bin/dynamolog" before- 1 1 "before ($rev): 1 broker, 1 node" "$@"
    topology "$BEFORE/.venv/bin/dynamolog" before- 3 3 "before ($rev): 3 brokers, 3 nodes" "$@"
    reports+=("$out/before-1b-1n.json" "$out/before-3b-3n.json")
fi
for t in ${TOPOLOGIES:-1x1 3x3}; do
    case "$t" in
        1x1) topology dynamolog "" 1 1 '`dynamolog up` (1 broker, 1 node)' "$@"; reports+=("$out/1b-1n.json") ;;
        3x3) topology dynamolog "" 3 3 '`dynamolog up --brokers 3 --storage-nodes 3`' "$@"; reports+=("$out/3b-3n.json") ;;
        *) echo "TOPOLOGIES: unknown topology $t (1x1 or 3x3)" >&2; exit 2 ;;
    esac
done

python bench/ycsb.py --report "${reports[@]}" --out "$out/ycsb.md"
echo "written to $out/ycsb.md" >&2
