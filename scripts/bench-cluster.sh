#!/bin/sh
# The cluster's benchmark (bench/bench_cluster.c): cross-node notify
# latency through NATS, and a broadcast to CONNS connections on two nodes
# against the same on one node, rounds interleaved in one run. The
# server processes run on CPU 0, the load and nats-server on CPU 1.
#
#   scripts/bench-cluster.sh [BUILD_DIR]     (default build/)
#   CONNS=10000 ROUNDS=30 SAMPLES=20000 scripts/bench-cluster.sh
set -eu
cd "$(dirname "$0")/.."
build="${1:-build}"
bench="$build/bin/zinx-bench-cluster"
nats="${NATS_SERVER:-/usr/sbin/nats-server}"
[ -x "$bench" ] || { echo "bench-cluster: build $bench first (make build)" >&2; exit 1; }
[ -x "$nats" ] || { echo "bench-cluster: $nats missing (scripts/install-deps.sh test)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 1 "$nats" -a 127.0.0.1 -p "$port" -m 0 >/dev/null 2>&1 &
npid=$!
trap 'kill $npid 2>/dev/null; wait $npid 2>/dev/null || true' EXIT INT TERM
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "bench-cluster: nats-server did not start" >&2; exit 1; }
    sleep 0.05
done
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" --nats "nats://127.0.0.1:$port" --conns "${CONNS:-10000}" \
    --rounds "${ROUNDS:-30}" --samples "${SAMPLES:-20000}"
