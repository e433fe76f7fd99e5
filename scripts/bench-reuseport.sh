#!/usr/bin/env bash
#
# bench-reuseport.sh BUILDDIR: ReusePort measured with zinx-echo and
# zinx-bench (docs/benchmarks.md, "ReusePort").
#
# How to run:  scripts/bench-reuseport.sh build
#
# Five setups of zinx-echo (WorkerPoolSize 0), each started fresh per run:
#   off, process, loops   one process, IOThreads 2, ReusePort as named;
#   1p                    one process, IOThreads 1, ReusePort "process";
#   2p                    two such processes on one port.
# Every server process is pinned to CPU 0 and zinx-bench (one thread) to
# CPU 1 when there are two or more CPUs: with two processes they share
# CPU 0, so 1p vs 2p compares the same CPU budget split two ways. Two
# loads per setup: connections/s (--mode connrate, 50 connections'
# worth of cycles at once) and echo throughput (pingpong, 100
# connections, 64 B, depth 16). For each load the setups take turns,
# each round starting one setup later, so a slow spell of the shared
# machine hits all alike; the table shows the median of the rounds.
#
# Environment: ROUNDS [3], DURATION [3] measured seconds, WARMUP [0.5].

set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

BUILD=$1
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
STARTUP_TIMEOUT=10
STOP_TIMEOUT=10
ECHO="$BUILD/bin/zinx-echo"
BENCH="$BUILD/bin/zinx-bench"
SETUPS=(off process loops 1p 2p)

srv_cpu=()
cli_cpu=()
if [ "$(nproc)" -ge 2 ]; then
    srv_cpu=(taskset -c 0)
    cli_cpu=(taskset -c 1)
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# config SETUP PORT: zinx-echo's configuration file for one process.
config() {
    local reuse=$1 threads=2 port=$2
    case $1 in
    1p | 2p) reuse=process threads=1 ;;
    esac
    local f="$tmp/$1.json"
    printf '{"Host":"127.0.0.1","TCPPort":%s,"IOThreads":%s,' "$port" \
        "$threads" >"$f"
    printf '"WorkerPoolSize":0,"MaxConn":100000,"IOBackend":"epoll",' >>"$f"
    printf '"LogIsolationLevel":2,"ReusePort":"%s"}\n' "$reuse" >>"$f"
    echo "$f"
}

# start SETUP: starts its process(es); sets port.
start() {
    local setup=$1 cfg
    cfg=$(config "$setup" 0)
    # Emptied here: the background start truncates it only later, and
    # the last run's "listening on" line must not be read.
    : >"$tmp/out1"
    : >"$tmp/out2"
    ZINX_CONFIG_FILE_PATH=$cfg "${srv_cpu[@]}" "$ECHO" >"$tmp/out1" 2>&1 &
    pids=($!)
    wait_listening "$tmp/out1" "${pids[0]}" 0.05 || {
        cat "$tmp/out1" >&2
        exit 1
    }
    port=$server_port
    if [ "$setup" = 2p ]; then
        cfg=$(config 2p "$port")
        ZINX_CONFIG_FILE_PATH=$cfg "${srv_cpu[@]}" "$ECHO" >"$tmp/out2" \
            2>&1 &
        pids+=($!)
        wait_listening "$tmp/out2" "${pids[1]}" 0.05 || {
            cat "$tmp/out2" >&2
            exit 1
        }
    fi
}

stop() {
    for p in "${pids[@]}"; do
        stop_process "$p" || true
    done
    pids=()
}

# run SETUP LOAD: one measurement; prints the figure (nothing when the
# run failed: the servers' output goes to stderr then).
run() {
    local setup=$1 load=$2 out key=frames_per_s
    start "$setup"
    local args=(--port "$port" --connections 100 --payload 64 --depth 16)
    if [ "$load" = connrate ]; then
        key=connections_per_s
        args=(--mode connrate --port "$port" --connections 50)
    fi
    out=$("${cli_cpu[@]}" "$BENCH" "${args[@]}" --duration "$DURATION" \
        --warmup "$WARMUP" --json) || cat "$tmp"/out* >&2
    stop
    echo "$out" | sed -n "s/.*\"$key\":\\([0-9.]*\\).*/\\1/p"
}

median() {
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo "| load | off | process | loops | 1p | 2p |"
for load in connrate pingpong; do
    declare -A res=()
    for ((r = 0; r < ROUNDS; r++)); do
        n=${#SETUPS[@]}
        for ((i = 0; i < n; i++)); do
            s=${SETUPS[$(((i + r) % n))]}
            v=$(run "$s" "$load")
            echo "round $r $load $s: $v" >&2
            res[$s]="${res[$s]:-} $v"
        done
    done
    line="| $load |"
    for s in "${SETUPS[@]}"; do
        line="$line $(echo "${res[$s]}" | tr ' ' '\n' | grep . | median) |"
    done
    echo "$line"
    unset res
done
