#!/usr/bin/env bash
#
# bench-python.sh [BUILDDIR]: echo throughput and latency of a Python
# handler on the C core (bindings/python, issue 14) against the same
# server on gevent and against a C handler, in one run.
#
# How to run:  make bench                (runs this after scripts/bench.sh)
#              scripts/bench-python.sh build
#              QUICK=1 scripts/bench-python.sh build    (about 40 s)
#
# The servers, each started fresh for every run:
#   c-w0     zinx-echo (C handler), WorkerPoolSize 0: handlers on the
#            I/O thread
#   c-w10    zinx-echo, WorkerPoolSize 10 (Zinx's default pool)
#   py-w0    bench/peers/zinx_py_echo.py (Python handler on the C core),
#            WorkerPoolSize 0
#   py-w10   the same, WorkerPoolSize 10
#   gevent   bench/peers/gevent_echo.py (the same server on gevent)
# All with one I/O thread, tlv frames, MaxPacketSize 4096, pinned to
# CPU 0, while zinx-bench (one thread) runs pinned to CPU 1. For every
# row the servers take turns, round after round, each round starting one
# server later, so that a slow spell of the machine hits all alike. The
# report gives per server the median of the rounds (frames/s, p50, p99,
# the server's CPU per frame), the spread of the rounds (noise), and the
# ratios py/gevent and C/py computed within each round, with their
# median.
#
# The Python servers need the extension module: the CMake target
# zinx_python (built here when missing) and the package in
# bindings/python. When the module cannot be imported the py-* servers
# are skipped with a message and the rest is measured.
#
# Environment (defaults in brackets):
#   ROUNDS [3]        runs per server and row
#   DURATION [3]      measured seconds per run
#   WARMUP [0.5]      unmeasured seconds before each measurement
#   ROWS ["1:1 64:1 64:16"]   connections:depth of each row
#   PAYLOAD [64]      payload bytes of every frame
#   SERVERS           subset, e.g. "gevent py-w0" (default: all five)
#   QUICK [0]         1: ROUNDS 1, DURATION 1
#   PYTHON [/usr/bin/python3]  Debian's Python, where python3-gevent is
#   PYPATH [BUILDDIR/bindings/python:bindings/python]  where the Python
#                     servers find _zinx and the package
#
# The markdown report is printed and written to
# BUILDDIR/bench-python-results.md, the runs (zinx-bench's JSON of each)
# to BUILDDIR/bench-python-runs.tsv. Every server is stopped when the
# script exits, however it exits.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh
build=${1:-build}
bindir=$build/bin
PYTHON=${PYTHON:-/usr/bin/python3}

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    DURATION=${DURATION:-1}
    WARMUP=${WARMUP:-0.3}
else
    ROUNDS=${ROUNDS:-3}
    DURATION=${DURATION:-3}
    WARMUP=${WARMUP:-0.5}
fi
ROWS=${ROWS:-1:1 64:1 64:16}
PAYLOAD=${PAYLOAD:-64}
STARTUP_TIMEOUT=10
STOP_TIMEOUT=10

say() { printf 'bench-python: %s\n' "$*" >&2; }

# ------------------------------------------------------------ programs

bench_workdir zinx-bench-python

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
for t in zinx-echo zinx-bench zinx_python; do
    case $t in
    zinx_python) [ -n "$(ls "$build"/bindings/python/_zinx*.so 2>/dev/null)" ] ;;
    *) [ -x "$bindir/$t" ] ;;
    esac && continue
    cmake --build "$build" --target "$t" -j"$(nproc)" >/dev/null 2>&1 ||
        say "$t could not be built (not there yet?)"
done
for t in zinx-echo zinx-bench; do
    [ -x "$bindir/$t" ] || {
        say "FAILED: $bindir/$t is missing"
        exit 1
    }
done

# The build's folder first: the source folder has a _zinx folder too
# (the C sources), which must not shadow the built module.
pypath=${PYPATH:-$(cd "$build" && pwd)/bindings/python:$PWD/bindings/python}
have_py=1
if ! PYTHONPATH=$pypath "$PYTHON" -c \
    'import _zinx, znet.server, znet.router, zconf' 2>"$workdir/pyimport.err"; then
    have_py=0
    say "the Python module does not import; py-* servers skipped:"
    sed 's/^/    /' "$workdir/pyimport.err" | tail -3 >&2
fi
have_gevent=1
"$PYTHON" -c 'import gevent' 2>/dev/null || {
    have_gevent=0
    say "gevent is not installed (bash scripts/install-deps.sh bench);" \
        "the gevent server is skipped"
}

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    srv_pin=(taskset -c 0)
    load_pin=(taskset -c 1)
    pinning="server on CPU 0, load on CPU 1 (taskset)"
else
    srv_pin=()
    load_pin=()
    pinning="not pinned (fewer than 2 CPUs or no taskset)"
fi

# One configuration file for all: each server's own settings come from
# its command line (zinx-echo reads only the file, so it gets its own).
write_config() {
    cat >"$workdir/$1.json" <<EOF
{
    "Name": "zinx-bench-python-$1",
    "Host": "127.0.0.1",
    "TCPPort": 0,
    "MaxConn": 10000,
    "MaxPacketSize": 4096,
    "IOThreads": 1,
    "WorkerPoolSize": $2,
    "PacketFormat": "tlv",
    "LogIsolationLevel": 2
}
EOF
}
write_config c-w0 0
write_config c-w10 10
write_config py 10

server_cmd() {
    case $1 in
    c-w0 | c-w10)
        echo "env ZINX_CONFIG_FILE_PATH=$workdir/$1.json $bindir/zinx-echo"
        ;;
    py-w0 | py-w10)
        [ "$have_py" = 1 ] &&
            echo "env PYTHONPATH=$pypath ZINX_CONFIG_FILE_PATH=$workdir/py.json" \
                "$PYTHON bench/peers/zinx_py_echo.py --workers ${1#py-w}"
        ;;
    gevent)
        [ "$have_gevent" = 1 ] &&
            echo "$PYTHON bench/peers/gevent_echo.py --format tlv --max-packet 4096"
        ;;
    esac
    return 0
}

select_servers c-w0 c-w10 py-w0 py-w10 gevent


# ------------------------------------------------------------ runs

runs=$workdir/runs.tsv
: >"$runs"
read -r -a rows <<<"$ROWS"
total=$((${#rows[@]} * ROUNDS * ${#servers[@]}))
say "${#servers[@]} servers (${servers[*]}), rows ${rows[*]}" \
    "(connections:depth), $PAYLOAD B, $ROUNDS rounds," \
    "${DURATION}s + ${WARMUP}s warm-up each: $total runs; $pinning"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$SECONDS
n=0

# One run: server $1, $2 connections, depth $3, round $4: a line of runs.
run_one() {
    local s=$1 c=$2 d=$3 r=$4 json=
    n=$((n + 1))
    if start_server "$s"; then
        json=$("${load_pin[@]}" "$bindir/zinx-bench" --port "$server_port" \
            --connections "$c" --payload "$PAYLOAD" --depth "$d" \
            --duration "$DURATION" --warmup "$WARMUP" --pid "$server_pid" \
            --threads 1 --json 2>"$workdir/bench.err") || {
            say "run $n: $s, $c conns, depth $d: zinx-bench failed:"
            sed 's/^/    /' "$workdir/bench.err" >&2
            json=
        }
        kill -0 "$server_pid" 2>/dev/null || {
            say "run $n: $s died during the run"
            json=
        }
        stop_server
    fi
    [ -n "$json" ] || json='{}'
    printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$d" "$s" "$r" "$json" >>"$runs"
    printf 'bench-python: [%d/%d] %-7s %3s conns depth %2s round %s: %s/s\n' \
        "$n" "$total" "$s" "$c" "$d" "$r" \
        "$(sed -n 's/.*"frames_per_s":\([0-9]*\).*/\1/p' <<<"$json")" >&2
}

for row in "${rows[@]}"; do
    c=${row%%:*}
    d=${row##*:}
    for ((r = 1; r <= ROUNDS; r++)); do
        k=${#servers[@]}
        for ((i = 0; i < k; i++)); do
            run_one "${servers[$(((i + r - 1) % k))]}" "$c" "$d" "$r"
        done
    done
done
elapsed=$((SECONDS - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ report

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report=$build/bench-python-results.md
{
    echo "## Python handlers against gevent and C ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, kernel" \
        "$(uname -r), $("$PYTHON" -c 'import platform; print("Python", platform.python_version())')," \
        "gevent $("$PYTHON" -c 'import gevent; print(gevent.__version__)' 2>/dev/null || echo -)." \
        "Pinning: $pinning. zinx-bench with 1 thread, $PAYLOAD B frames," \
        "$ROUNDS rounds of ${DURATION} s (after ${WARMUP} s warm-up) per" \
        "server and row, servers alternated; medians. Load average" \
        "before $load_before, after $load_after. Took ${elapsed} s."
    echo
    "$PYTHON" bench/report_python.py "$runs"
} >"$report"
cp "$runs" "$build/bench-python-runs.tsv"
cat "$report"
say "report written to $report (the runs: $build/bench-python-runs.tsv," \
    "bench/report_python.py makes the tables again from them)"
