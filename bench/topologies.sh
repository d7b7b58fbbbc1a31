#!/usr/bin/env bash
# Throughput, latency and follower lag of two topologies in one run, on this machine:
#   1 broker  + 1 storage node   (the quick start)
#   1 broker  + 3 storage nodes  (three replicas per partition, unreplicated Kafka)
#   3 brokers + 3 storage nodes  (the replicated topology: RF 3, min ISR 2, three replicas)
# For each: a fresh system in a temporary data dir on port 8300, 60 s of PutItem warm-up (the
# brokers' JIT), then closed loop with 32 clients: PutItem, GetItem, Query (3 runs of 10 s,
# medians), then the follower lag under a steady offered write rate (LAG_RATE_<brokers>b, default
# 1000 for one broker and 150 for three), then the system is stopped and deleted.
# Results: bench/results/topologies/<name>.{txt,json}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
out=bench/results/topologies
mkdir -p "$out"
run() {  # brokers nodes
    local b=$1 n=$2 name="${1}b-${2}n" dir
    dir="$(mktemp -d /tmp/dynamolog-topo.XXXXXX)"
    echo "== $name ($dir)" >&2
    dynamolog up --detach --data-dir "$dir" --brokers "$b" --storage-nodes "$n" --port 8300 \
        --kafka-port 29392 --storage-port 7301 >/dev/null
    trap 'dynamolog down --data-dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' RETURN
    python bench/loadgen.py --endpoint http://127.0.0.1:8300 --create --table topo --clients 32 \
        --duration "${WARMUP:-60}" --items 5000 --ops put --no-progress >/dev/null 2>&1
    python bench/loadgen.py --endpoint http://127.0.0.1:8300 --table topo --clients 32 --duration 10 \
        --items 5000 --repeat 3 --ops put,get,query --no-progress --json "$out/$name.json" 2>"$out/$name.txt"
    tail -6 "$out/$name.txt" >&2
    local rate_var="LAG_RATE_${b}b" default_rate=1000
    [ "$b" = 3 ] && default_rate=150
    python bench/replication.py --data-dir "$dir" --json "$out/$name-lag.json" lag \
        --rate "${!rate_var:-$default_rate}" --duration 30 >/dev/null 2>&1
    cat "$out/$name-lag.json" >&2
}
for topo in ${TOPOLOGIES:-"1 1" "1 3" "3 3"}; do
    # shellcheck disable=SC2086
    run $topo
done
