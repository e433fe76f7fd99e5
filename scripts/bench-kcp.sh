#!/usr/bin/env bash
#
# bench-kcp.sh BUILDDIR: KCP against TCP over the same impaired link
# (issue 15): frames/s and round-trip percentiles of zinx-echo with Mode
# "tcp" and Mode "kcp", through a link that loses packets and delays
# them (50 ms +- 20 ms each way by default), at 0 % and 10 % loss.
#
# How to run:  make bench            (runs it after scripts/bench.sh)
#              sudo scripts/bench-kcp.sh build
#              QUICK=1 scripts/bench-kcp.sh build   (about 2 minutes)
#
# The link is zinx-tun-link (bench/tools/tun_link.c): a TUN device that
# reflects every packet sent to 10.77.0.0/24 back with swapped addresses
# after its loss and delay, so a client connecting to 10.77.0.2:PORT
# reaches the server listening on 0.0.0.0:PORT, each direction crossing
# the impairment once. The kernel here has no netem; this needs root
# and a network namespace, which the script makes (unshare --net) so
# the link and its routes vanish with it. Not root: it says so and exits
# 0 (make test never runs it). Before each loss level the link is
# checked with UDP datagrams (share delivered, round trip): a link that
# does not do what it was told fails the script.
#
# The load is zinx-kcp-rtt (bench/peers/kcp_rtt/main.go, kcp-go from
# Debian, built here into BUILDDIR/bin): CONNS connections, each keeping
# DEPTH TLV frames of PAYLOAD bytes in flight (depth 1: request, reply,
# next request), timing every frame sent in the measured window. KCP:
# no encryption, no FEC, stream mode, nodelay 1/10/2/1, windows 32/32,
# as the server's defaults. TCP: TCP_NODELAY on both sides.
#
# Servers on CPU 0, load and link on CPU 1 (taskset, with two CPUs); a
# fresh server per run; for every row the servers take turns, round
# after round. The table shows medians of the rounds; the report goes to
# BUILDDIR/bench-kcp-results.md.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10] (s)  WARMUP [1] (s)  QUICK [0]: 1 round, 4 s
#   RT [1]: 1 runs link, server and load under SCHED_FIFO (chrt -f 10)
#   LOSSES ["0 10"] (percent)  DELAY [50]  JITTER [20] (ms, one way)
#   CONNS ["1 16"]  DEPTHS ["1 16"]  PAYLOAD [64]
#   SERVERS  ["zinx-tcp zinx-kcp"; "go-tcp go-kcp" are kcp-go and Go's
#            net echo servers, the stand-ins used before the C server]
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
build=$1
bindir=$build/bin

say() { printf 'bench-kcp: %s\n' "$*" >&2; }

skip() {
    say "skipped: $*"
    exit 0
}

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    DURATION=${DURATION:-4}
else
    ROUNDS=${ROUNDS:-3}
    DURATION=${DURATION:-10}
fi
WARMUP=${WARMUP:-1}
LOSSES=${LOSSES:-0 10}
DELAY=${DELAY:-50}
JITTER=${JITTER:-20}
CONNS=${CONNS:-1 16}
DEPTHS=${DEPTHS:-1 16}
PAYLOAD=${PAYLOAD:-64}
STARTUP_TIMEOUT=10
STOP_TIMEOUT=10
TCP_PORT=9000
KCP_PORT=9001
UDP_PORT=9002

# ------------------------------------------------------------ outside

# Builds what is missing: zinx-echo and zinx-tun-link with CMake, the Go
# load in GOPATH mode against Debian's kcp-go (no network).
build_programs() {
    local t
    for t in zinx-echo zinx-tun-link; do
        [ -x "$bindir/$t" ] && continue
        [ -f "$build/CMakeCache.txt" ] ||
            cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$build" --target "$t" -j"$(nproc)" >/dev/null
    done
    command -v go >/dev/null || skip "go is missing (apt-get install golang-go)"
    [ -d /usr/share/gocode/src/github.com/xtaci/kcp-go ] ||
        skip "kcp-go is missing (apt-get install golang-github-xtaci-kcp-dev)"
    env GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local \
        GOPATH="/usr/share/gocode:$PWD/$build/go-path" \
        GOCACHE="$PWD/$build/go-cache" \
        go build -o "$bindir/zinx-kcp-rtt" ./bench/peers/kcp_rtt
}

if [ -z "${ZINX_BENCH_KCP_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] ||
        skip "needs root (a network namespace and a TUN device); run it with sudo"
    [ -c /dev/net/tun ] || skip "no /dev/net/tun"
    command -v unshare >/dev/null || skip "unshare (util-linux) is missing"
    build_programs
    ZINX_BENCH_KCP_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi

# ------------------------------------------------------------ inside

# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    srv_pin=(taskset -c 0)
    load_pin=(taskset -c 1)
    pinning="server on CPU 0, load and link on CPU 1 (taskset)"
else
    srv_pin=()
    load_pin=()
    pinning="not pinned (fewer than 2 CPUs or no taskset)"
fi
# Round trips of 100 ms measured to the millisecond must not wait for a
# CPU taken by a compiler: with RT=1 the link, the server and the load
# run under SCHED_FIFO (chrt). None of them spins (the link sleeps in
# ppoll until a packet is due), and the kernel's RT throttling leaves the
# rest of the machine 5 % at worst.
RT=${RT:-1}
if [ "$RT" = 1 ] && command -v chrt >/dev/null 2>&1; then
    srv_pin+=(chrt -f 10)
    load_pin+=(chrt -f 10)
    pinning="$pinning, SCHED_FIFO (chrt -f 10)"
fi

bench_workdir zinx-bench-kcp
link_pid=
# The link goes with the server when the script ends, however it ends.
trap 'stop_link; bench_cleanup' EXIT

# zinx-echo on both ports, handlers inline on one I/O thread; Mode picks
# the transport. The Kcp* keys stay at their defaults (nodelay 1/10/2/1,
# windows 32/32, stream mode, no FEC).
write_config() {
    cat >"$workdir/$1.json" <<JSON
{
    "Name": "zinx-bench-$1",
    "Host": "0.0.0.0",
    "TCPPort": $TCP_PORT,
    "KcpPort": $KCP_PORT,
    "Mode": "$2",
    "MaxConn": 1000,
    "IOThreads": 1,
    "WorkerPoolSize": 0,
    "LogIsolationLevel": 2
}
JSON
}
write_config zinx-tcp tcp
write_config zinx-kcp kcp

# The C server's KCP mode exists once the lead's transport is merged.
have_c_kcp() {
    grep -q ZINX_MODE_KCP include/zinx/config.h
}

server_cmd() {
    case $1 in
    zinx-tcp) echo "env ZINX_CONFIG_FILE_PATH=$workdir/zinx-tcp.json $bindir/zinx-echo" ;;
    zinx-kcp)
        have_c_kcp &&
            echo "env ZINX_CONFIG_FILE_PATH=$workdir/zinx-kcp.json $bindir/zinx-echo"
        ;;
    go-tcp) echo "$bindir/zinx-kcp-rtt -mode server -proto tcp -listen 0.0.0.0:$TCP_PORT" ;;
    go-kcp) echo "$bindir/zinx-kcp-rtt -mode server -proto kcp -listen 0.0.0.0:$KCP_PORT" ;;
    esac
    return 0
}

if [ -z "${SERVERS:-}" ] && ! have_c_kcp; then
    say "the C server has no Mode \"kcp\" yet: the Go servers stand in"
    SERVERS="go-tcp go-kcp"
fi
select_servers zinx-tcp zinx-kcp

# start_link LOSS: the impaired link, up when it says so.
start_link() {
    local out=$workdir/link.out deadline=$((SECONDS + STARTUP_TIMEOUT))
    : >"$out"
    "${load_pin[@]}" "$bindir/zinx-tun-link" --loss "$1" --delay "$DELAY" \
        --jitter "$JITTER" --seed "$((1000 + ${1%.*}))" \
        >"$out" 2>"$workdir/link.err" &
    link_pid=$!
    until grep -q '^link up ' "$out"; do
        if ! kill -0 "$link_pid" 2>/dev/null || [ "$SECONDS" -gt "$deadline" ]; then
            say "FAILED: the link did not come up:"
            cat "$workdir/link.err" >&2
            exit 1
        fi
        sleep 0.02
    done
    say "$(cat "$out")"
}

# shellcheck disable=SC2317 # called by the trap too
stop_link() {
    [ -n "${link_pid:-}" ] || return 0
    stop_process "$link_pid" || true
    link_pid=
    say "$(tail -1 "$workdir/link.err")"
}

json_num() {
    sed -n "s/.*\"$1\":\\([-0-9.e+]*\\).*/\\1/p"
}

# check_link LOSS: 1000 UDP datagrams through the link to a UDP echo:
# the share that comes back must be (1 - loss)^2 (give or take 6 points),
# the median round trip twice the one-way delay (+- 15 ms) and the
# longest at most 2 x (delay + jitter) + 20 ms (a link, server or probe
# kept off the CPU shows here).
check_link() {
    local loss=$1 json pid ok
    "${srv_pin[@]}" "$bindir/zinx-kcp-rtt" -mode server -proto udp \
        -listen "0.0.0.0:$UDP_PORT" >/dev/null 2>&1 &
    pid=$!
    sleep 0.2
    json=$("${load_pin[@]}" "$bindir/zinx-kcp-rtt" -mode probe -addr "10.77.0.2:$UDP_PORT" \
        -count 1000) || json=
    stop_process "$pid" || true
    say "link check (UDP echo, 1000 datagrams): $json"
    ok=$(awk -v j="$json" -v loss="$loss" -v delay="$DELAY" -v jitter="$JITTER" '
        BEGIN {
            d = j; sub(/.*"delivery":/, "", d); d += 0
            p = j; sub(/.*"p50_ms":/, "", p); p += 0
            m = j; sub(/.*"max_ms":/, "", m); m += 0
            want = (1 - loss / 100) ^ 2
            print (d > want - 0.06 && d < want + 0.06 &&
                   p > 2 * delay - 15 && p < 2 * delay + 15 &&
                   m <= 2 * (delay + jitter) + 20) ? 1 : 0
        }')
    if [ "$ok" != 1 ]; then
        say "FAILED: the link does not lose or delay as configured"
        exit 1
    fi
}

runs=$workdir/runs.tsv
: >"$runs"
# Every frame's round trip (us), one file per loss, row and server: the
# percentiles are taken over the frames of all rounds together (one
# connection at depth 1 times only about 10 frames a second).
samples=$workdir/samples
mkdir -p "$samples"
pooled=$workdir/pooled.tsv

rows=()
for c in $CONNS; do
    for d in $DEPTHS; do
        rows+=("$c $d")
    done
done
read -ra loss_levels <<<"$LOSSES"
total=$((${#loss_levels[@]} * ${#rows[@]} * ROUNDS * ${#servers[@]}))
say "${servers[*]}; losses ${LOSSES} %, ${DELAY} +- ${JITTER} ms each way;" \
    "${#rows[@]} rows, $ROUNDS rounds of ${DURATION} s (+${WARMUP} s): $total runs"
say "$pinning"
started=$SECONDS
n=0

# One run: server $1, loss $2, row "$3 $4", round $5; appends to runs.
run_one() {
    local s=$1 loss=$2 c=$3 d=$4 r=$5 json status=ok proto port
    proto=${s##*-}
    port=$TCP_PORT
    [ "$proto" = kcp ] && port=$KCP_PORT
    n=$((n + 1))
    json=
    if ! start_server "$s"; then
        status=nostart
    elif ! json=$("${load_pin[@]}" "$bindir/zinx-kcp-rtt" -proto "$proto" \
        -addr "10.77.0.2:$port" -conns "$c" -depth "$d" -payload "$PAYLOAD" \
        -duration "${DURATION}s" -warmup "${WARMUP}s" \
        -samples "$samples/${loss}_${c}_${d}_$s" 2>"$workdir/load.err"); then
        status=failed
        say "run $n: $s failed:"
        sed 's/^/    /' "$workdir/load.err" >&2
    fi
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$loss" "$c" "$d" "$s" "$r" \
        "$(json_num frames_per_s <<<"$json")" "$(json_num p50_ms <<<"$json")" \
        "$(json_num p99_ms <<<"$json")" "$(json_num p999_ms <<<"$json")" \
        "$(json_num max_ms <<<"$json")" "$status" >>"$runs"
    say "[$n/$total] $s loss $loss % $c conns depth $d round $r: $json"
}

for loss in "${loss_levels[@]}"; do
    start_link "$loss"
    check_link "$loss"
    for row in "${rows[@]}"; do
        read -r c d <<<"$row"
        for ((r = 1; r <= ROUNDS; r++)); do
            k=${#servers[@]}
            for ((i = 0; i < k; i++)); do
                run_one "${servers[$(((i + r - 1) % k))]}" "$loss" "$c" "$d" "$r"
            done
        done
    done
    stop_link
done
elapsed=$((SECONDS - started))

# pooled.tsv: loss conns depth server frames p50 p99 p99.9 max (ms), the
# nearest-rank percentiles of each file of round trips.
: >"$pooled"
for f in "$samples"/*; do
    [ -s "$f" ] || continue
    IFS=_ read -r loss c d s <<<"${f##*/}"
    sort -n "$f" | awk -v key="$loss	$c	$d	$s" '
        { v[NR] = $1 }
        function pct(p,    i) {
            i = int(p * NR + 0.999999)
            if (i < 1) i = 1
            if (i > NR) i = NR
            return v[i] / 1000
        }
        END {
            printf "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", key, NR,
                pct(0.5), pct(0.99), pct(0.999), pct(1)
        }' >>"$pooled"
done

# ------------------------------------------------------------ report

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report=$build/bench-kcp-results.md
{
    echo "## KCP against TCP on an impaired link ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, kernel $(uname -r)," \
        "load $(cut -d' ' -f1-3 /proc/loadavg) at the end. Link: zinx-tun-link," \
        "${DELAY} +- ${JITTER} ms each way (uniform), loss as shown each way." \
        "Pinning: $pinning. $ROUNDS rounds of ${DURATION} s (after ${WARMUP} s)" \
        "per server and row, servers alternated. frames/s: median of the" \
        "rounds; round trips (ms): percentiles of the frames of all rounds" \
        "together (frames: how many). Payload ${PAYLOAD} B. Took ${elapsed} s."
    echo
    awk -F'\t' -v tcp="$(printf '%s\n' "${servers[@]}" | grep -m1 -- -tcp)" \
        -v kcp="$(printf '%s\n' "${servers[@]}" | grep -m1 -- -kcp)" \
        -f bench/report_kcp.awk "$pooled" "$runs"
} >"$report"
cat "$report"
say "report written to $report"
