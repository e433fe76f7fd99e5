#!/usr/bin/env bash
#
# bench.sh BUILDDIR: zinx-echo side by side with the echo peers.
#
# How to run:  make bench            (builds build/, then runs this)
#              scripts/bench.sh build
#              QUICK=1 scripts/bench.sh build     (a one-minute subset)
#
# Each server (zinx-echo with IOThreads 1 and WorkerPoolSize 0, zinx-echo
# with IOThreads 1 and WorkerPoolSize 10, the same with WorkerMode Bind
# (WorkerPoolSize 1024) and DynamicBind, zinx-echo with WorkerPoolSize 0
# on IOBackend io_uring (zinx-uring), peer-epoll, peer-libuv,
# peer-libevent, peer-go) is started fresh for every run, pinned to CPU 0,
# while zinx-bench (one thread) runs pinned to CPU 1, when there are two
# or more CPUs. For every row of the matrix the servers take turns, round
# after round (A B C ... A B C ...), so that a slow spell of the machine
# hits all of them alike; the table shows the median of the rounds.
# Idle memory per connection is measured last, with zinx-bench --mode
# hold against each server.
#
# Beside every frames/s figure the throughput table shows the server's CPU
# time per frame: utime + stime of the whole server process (every
# thread) from /proc/PID/stat, which zinx-bench --pid reads when the
# warm-up ends and when the measured window ends, divided by the frames
# echoed in that window. The per-run progress lines show it too.
#
# The markdown report is printed and written to BUILDDIR/bench-results.md.
#
# Environment (defaults in brackets):
#   ROUNDS [3]          runs per server and row
#   DURATION [5]        measured seconds per run
#   WARMUP [0.5]        unmeasured seconds before each measurement
#   HOLD_CONNS [9000]   connections for the memory measurement
#   QUICK [0]           1: ROUNDS 1, DURATION 1, four rows, 1000 held
#   SERVERS             subset, e.g. "zinx-w0 epoll" (default: all built)
#   CONNS PAYLOADS DEPTHS   override the matrix, e.g. CONNS="100"
#   NO_DEPS [0]         1: do not install missing peer libraries
#   BCAST_CONNS [10000] connections of the broadcast row (QUICK: 1000)
#
# A full run with the defaults takes about 22 minutes. Every server is
# killed when the script exits, however it exits.

set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh
build=$1
bindir=$build/bin

QUICK=${QUICK:-0}
# A matrix given explicitly wins over QUICK's rows.
user_matrix=${CONNS:-}${PAYLOADS:-}${DEPTHS:-}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    DURATION=${DURATION:-1}
    WARMUP=${WARMUP:-0.3}
    HOLD_CONNS=${HOLD_CONNS:-1000}
else
    ROUNDS=${ROUNDS:-3}
    DURATION=${DURATION:-5}
    WARMUP=${WARMUP:-0.5}
    HOLD_CONNS=${HOLD_CONNS:-9000}
fi
CONNS=${CONNS:-100 1000}
PAYLOADS=${PAYLOADS:-64 1024 16384}
DEPTHS=${DEPTHS:-1 16}
NO_DEPS=${NO_DEPS:-0}

STARTUP_TIMEOUT=10
STOP_TIMEOUT=10

say() { printf 'bench: %s\n' "$*" >&2; }

# ------------------------------------------------------------ dependencies

# The peers' libraries and Go (the "peers" profile of
# scripts/install-deps.sh; `make bench` has already checked the build's).
# As root they are installed; otherwise, or with NO_DEPS=1, the script
# prints the line that installs them and the missing peers are skipped.
install_peer_deps() {
    local opts=()
    [ "$NO_DEPS" = 1 ] && opts=(--check)
    bash scripts/install-deps.sh "${opts[@]}" peers >&2 ||
        say "the peers whose packages are missing are skipped"
}

# Builds only the programs the benchmark needs that are not there yet,
# reconfiguring first when a peer's library was installed after the
# build tree was configured.
build_missing() {
    local targets=() t
    for t in zinx-echo zinx-bench peer-epoll peer-libuv peer-libevent \
        peer-go; do
        [ -x "$bindir/$t" ] || targets+=("$t")
    done
    [ "${#targets[@]}" -eq 0 ] && return 0
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    else
        cmake "$build" >/dev/null
    fi
    for t in "${targets[@]}"; do
        cmake --build "$build" --target "$t" -j"$(nproc)" >/dev/null 2>&1 ||
            say "$t could not be built; it is skipped"
    done
}

install_peer_deps
build_missing
for t in zinx-echo zinx-bench; do
    if [ ! -x "$bindir/$t" ]; then
        say "FAILED: $bindir/$t is missing"
        exit 1
    fi
done

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ]; then
    ulimit -n "$hard" 2>/dev/null || true
fi

# ------------------------------------------------------------ servers

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    srv_pin=(taskset -c 0)
    load_pin=(taskset -c 1)
    pinning="server on CPU 0, load on CPU 1 (taskset)"
else
    srv_pin=()
    load_pin=()
    pinning="not pinned (fewer than 2 CPUs or no taskset)"
fi

bench_workdir zinx-bench

# zinx-echo's two configurations: one I/O thread, handlers inline or on
# Zinx's default pool of 10 workers. 16 MiB frames fit, and the output
# limits are raised above OutputHighWater plus one such frame, as
# zinx_config_validate() requires; MaxConn is far above the connections
# held.
write_config() {
    cat >"$workdir/$1.json" <<EOF
{
    "Name": "zinx-bench-$1",
    "Host": "127.0.0.1",
    "TCPPort": 0,
    "MaxConn": 100000,
    "MaxPacketSize": 16777216,
    "OutputSoftLimit": 33554432,
    "OutputHardLimit": 67108864,
    "IOThreads": 1,
    "WorkerPoolSize": $2,
    "IOBackend": "${3:-epoll}",
    "WorkerMode": "${4:-}",
    "LogIsolationLevel": 2
}
EOF
}
write_config zinx-w0 0
write_config zinx-w10 10
write_config zinx-uring 0 io_uring
# The worker modes beside w10 (Hash): Bind with the largest pool, so
# that every connection of the matrix (1000 at most) owns a worker, and
# DynamicBind with Zinx's pool of 10, beyond which each connection gets
# a worker (a thread) made for it.
write_config zinx-bind 1024 epoll Bind
write_config zinx-dyn 10 epoll DynamicBind
# Idle connections held for the memory table: Bind refuses beyond its
# pool and DynamicBind holds a thread per connection, so both hold at
# most 1000.
hold_conns() {
    case $1 in
    zinx-bind | zinx-dyn) echo $((HOLD_CONNS < 1000 ? HOLD_CONNS : 1000)) ;;
    *) echo "$HOLD_CONNS" ;;
    esac
}

# The command line of each server; empty when it is not built.
server_cmd() {
    case $1 in
    zinx-w0 | zinx-w10 | zinx-uring | zinx-bind | zinx-dyn)
        echo "env ZINX_CONFIG_FILE_PATH=$workdir/$1.json $bindir/zinx-echo"
        ;;
    epoll | libuv | libevent | go)
        [ -x "$bindir/peer-$1" ] && echo "$bindir/peer-$1 0"
        ;;
    esac
    return 0
}

all_servers="zinx-w0 zinx-w10 zinx-bind zinx-dyn zinx-uring epoll libuv libevent go"
select_servers $all_servers


# Extracts a number from a flat JSON object: json_num KEY < json
json_num() {
    sed -n "s/.*\"$1\":\\([-0-9.]*\\).*/\\1/p"
}

# ------------------------------------------------------------ runs

runs=$workdir/runs.tsv
mem=$workdir/memory.tsv
: >"$runs"
: >"$mem"

rows=()
if [ "$QUICK" = 1 ] && [ -z "$user_matrix" ]; then
    rows=("100 64 1" "100 1024 1" "100 1024 16" "1000 1024 1")
else
    for c in $CONNS; do
        for p in $PAYLOADS; do
            for d in $DEPTHS; do
                rows+=("$c $p $d")
            done
        done
    done
fi

total=$((${#rows[@]} * ROUNDS * ${#servers[@]}))
say "${#servers[@]} servers (${servers[*]}), ${#rows[@]} rows," \
    "$ROUNDS rounds, ${DURATION}s + ${WARMUP}s warm-up each: $total runs"
say "$pinning"
started=$SECONDS
n=0

# One run: server $1 against row "$2 $3 $4", round $5; appends to runs.
run_one() {
    local s=$1 c=$2 p=$3 d=$4 r=$5 json status=ok
    n=$((n + 1))
    if ! start_server "$s"; then
        printf '%s\t%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\t0\tnostart\n' \
            "$c" "$p" "$d" "$s" "$r" >>"$runs"
        return 0
    fi
    if ! json=$("${load_pin[@]}" "$bindir/zinx-bench" --port "$server_port" \
        --connections "$c" --payload "$p" --depth "$d" \
        --duration "$DURATION" --warmup "$WARMUP" --pid "$server_pid" \
        --threads 1 --json 2>"$workdir/bench.err"); then
        status=failed
        say "run $n: $s, $c conns, $p B, depth $d: zinx-bench failed:"
        sed 's/^/    /' "$workdir/bench.err" >&2
    fi
    kill -0 "$server_pid" 2>/dev/null || {
        status=died
        say "run $n: $s died during the run"
    }
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$c" "$p" "$d" "$s" "$r" \
        "$(json_num frames_per_s <<<"$json")" \
        "$(json_num p99 <<<"$json")" \
        "$(json_num server_cpu_us_per_frame <<<"$json")" \
        "$(json_num server_ctxsw_per_frame <<<"$json")" \
        "$(json_num server_minflt_per_frame <<<"$json")" \
        "$(json_num client_cpu_pct <<<"$json")" \
        "$status" >>"$runs"
    printf 'bench: [%d/%d] %-8s %4s conns %5s B depth %2s round %s:' \
        "$n" "$total" "$s" "$c" "$p" "$d" "$r" >&2
    printf ' %s/s, %s us server CPU per frame\n' \
        "$(json_num frames_per_s <<<"$json")" \
        "$(json_num server_cpu_us_per_frame <<<"$json")" >&2
}

for row in "${rows[@]}"; do
    read -r c p d <<<"$row"
    for ((r = 1; r <= ROUNDS; r++)); do
        # Each round starts one server later, so no server always runs
        # first or last.
        k=${#servers[@]}
        for ((i = 0; i < k; i++)); do
            run_one "${servers[$(((i + r - 1) % k))]}" "$c" "$p" "$d" "$r"
        done
    done
done

# Memory: HOLD_CONNS idle connections, then one echo on each.
for s in "${servers[@]}"; do
    status=ok
    json=
    if start_server "$s"; then
        sleep 0.2
        if ! json=$("${load_pin[@]}" "$bindir/zinx-bench" --mode hold \
            --port "$server_port" --connections "$(hold_conns "$s")" \
            --pid "$server_pid" --echo-once --payload 64 --json \
            2>"$workdir/bench.err"); then
            status=failed
            say "memory, $s: zinx-bench failed:"
            sed 's/^/    /' "$workdir/bench.err" >&2
        fi
        stop_server
    else
        status=nostart
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" \
        "$(json_num opened <<<"$json")" \
        "$(json_num idle_kib_per_conn <<<"$json")" \
        "$(json_num echo_kib_per_conn <<<"$json")" \
        "$(json_num rss_before_kib <<<"$json")" "$status" >>"$mem"
    say "memory $s: $(json_num idle_kib_per_conn <<<"$json") KiB idle," \
        "$(json_num echo_kib_per_conn <<<"$json") KiB after one echo"
done

# Broadcast: one 64 B message to BCAST_CONNS connections, shared segment
# against one send per connection (zinx-bench-broadcast forks its own
# clients; a fresh server process for each way).
bcast=$workdir/broadcast.md
if [ "$QUICK" = 1 ]; then BCAST_CONNS=${BCAST_CONNS:-1000}; fi
BCAST_CONNS=${BCAST_CONNS:-10000}
if [ -x "$bindir/zinx-bench-broadcast" ]; then
    for way in broadcast send; do
        hdr=()
        [ "$way" = broadcast ] && hdr=(--header)
        "$bindir/zinx-bench-broadcast" --mode "$way" --conns "$BCAST_CONNS" \
            "${hdr[@]}" >>"$bcast" 2>"$workdir/bench.err" ||
            say "broadcast, $way: failed: $(tail -1 "$workdir/bench.err")"
    done
else
    say "zinx-bench-broadcast is not built: no broadcast row"
fi

# TLS 1.3 echo against plain TCP at 1 KiB and 64 B, and the server's RSS
# per idle TLS connection (zinx-bench-tls forks its own server, pinned
# to CPU 0, and pins its load to CPU 1).
tlsrows=$workdir/tls.md
: >"$tlsrows"
if [ -x "$bindir/zinx-bench-tls" ]; then
    for size in 1024 64; do
        idle=0
        [ "$size" = 1024 ] && idle=1000
        say "TLS against TCP, $size B"
        "$bindir/zinx-bench-tls" --size "$size" --idle "$idle" \
            --seconds "${DURATION%.*}" >>"$tlsrows" 2>"$workdir/bench.err" ||
            say "TLS, $size B: failed: $(tail -1 "$workdir/bench.err")"
    done
else
    say "zinx-bench-tls is not built: no TLS rows"
fi

elapsed=$((SECONDS - started))

# ------------------------------------------------------------ report

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report=$build/bench-results.md
{
    echo "## zinx-echo side by side ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, kernel" \
        "$(uname -r). Pinning: $pinning. zinx-bench with 1 thread," \
        "$ROUNDS rounds of ${DURATION} s (after ${WARMUP} s warm-up) per" \
        "server and row, servers alternated; medians. Took ${elapsed} s."
    echo
    awk -F'\t' -v servers="${servers[*]}" -v hold="$HOLD_CONNS" \
        -f bench/report.awk "$runs" "$mem"
    if [ -s "$bcast" ]; then
        echo
        echo "Broadcast of one 64 B message (medians of 20 rounds):"
        echo
        cat "$bcast"
    fi
    if [ -s "$tlsrows" ]; then
        echo
        echo "TLS (zinx-bench-tls, one I/O thread, 4 connections x 16 frames):"
        echo
        sed 's/^/    /' "$tlsrows"
    fi
} >"$report"
cat "$report"
say "report written to $report"
