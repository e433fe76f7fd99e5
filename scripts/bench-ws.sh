#!/usr/bin/env bash
# WebSocket against plain TCP on one server (bench/bench_ws.c): echo
# throughput at 64 B and 1 KiB (rounds alternating TCP and WebSocket) and
# the server's memory per idle connection. Server on CPU 0, load on
# CPU 1 (when there are two).
#
#   bash scripts/bench-ws.sh [BUILD_DIR]     (make bench runs it)
#
# Environment: WS_BENCH_SECONDS (2 per round), WS_BENCH_ROUNDS (5),
# WS_BENCH_IDLE (2000 connections).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
bin="$build/bin/zinx-bench-ws"
[ -x "$bin" ] || { echo "bench-ws.sh: $bin not built" >&2; exit 1; }
seconds="${WS_BENCH_SECONDS:-2}"
rounds="${WS_BENCH_ROUNDS:-5}"
idle="${WS_BENCH_IDLE:-2000}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pin_server=() pin_load=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

coproc SERVER { exec "${pin_server[@]}" "$bin" serve; }
trap 'exec {SERVER[1]}>&-; wait' EXIT
read -r _ tcp ws pid <&"${SERVER[0]}"
echo "== WebSocket vs TCP echo (server pid $pid: TCP $tcp, WebSocket $ws)"
for size in 64 1024; do
    "${pin_load[@]}" "$bin" echo "$tcp" "$ws" "$size" "$seconds" "$rounds" "$pid"
done
"${pin_load[@]}" "$bin" idle "$tcp" "$ws" "$pid" "$idle"
