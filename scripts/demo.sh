#!/usr/bin/env bash
#
# demo.sh BUILDDIR: runs the connection-hooks demo end to end.
#
# How to run:  scripts/demo.sh build      (or: make demo)
#
# Starts BUILDDIR/bin/zinx-demo-server on 127.0.0.1 with port 0 (a free
# port), reads the port from its "listening on" line, runs
# BUILDDIR/bin/zinx-demo-client twice (two connections), stops the server
# with SIGTERM and checks that everything exited 0, that each hook ran once
# per connection and that each client got all of its replies. Exits
# non-zero if anything failed. Every wait has a timeout and the server is
# killed on any exit.

set -euo pipefail

STARTUP_TIMEOUT=10 # seconds for the server to print "listening on"
CLIENT_TIMEOUT=20  # seconds per client run (the client has its own 5 s)
STOP_TIMEOUT=15    # seconds for the server to exit after SIGTERM
CLIENT_RUNS=2
REPLIES_PER_CLIENT=7 # welcome + ("ping" + echo) for each of 3 messages

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
bindir=$1/bin
server_bin=$bindir/zinx-demo-server
client_bin=$bindir/zinx-demo-client
for exe in "$server_bin" "$client_bin"; do
    if [ ! -x "$exe" ]; then
        echo "demo: $exe not found; build first (cmake --build $1)" >&2
        exit 1
    fi
done

workdir=$(mktemp -d "${TMPDIR:-/tmp}/zinx-demo.XXXXXX")
server_pid=

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
    echo "demo: FAILED: $*" >&2
    for f in server.out server.err; do
        if [ -s "$workdir/$f" ]; then
            echo "---- $f" >&2
            cat "$workdir/$f" >&2
        fi
    done
    exit 1
}

# Polls until the server prints its port or dies; prints the port.
wait_for_port() {
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    local line
    while [ "$SECONDS" -le "$deadline" ]; do
        line=$(grep -m1 '^listening on ' "$workdir/server.out" || true)
        if [ -n "$line" ]; then
            echo "${line##*:}"
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Waits for the server to exit after SIGTERM; sets server_status.
wait_for_exit() {
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$server_pid" 2>/dev/null; do
        [ "$SECONDS" -le "$deadline" ] || return 1
        sleep 0.1
    done
    server_status=0
    wait "$server_pid" || server_status=$?
    server_pid=
    return 0
}

echo "== starting $server_bin 127.0.0.1 0"
"$server_bin" 127.0.0.1 0 >"$workdir/server.out" 2>"$workdir/server.err" &
server_pid=$!
port=$(wait_for_port) || fail "server did not print 'listening on' in time"
case $port in
'' | *[!0-9]*) fail "cannot read the port from the 'listening on' line" ;;
esac
echo "   server pid $server_pid listening on 127.0.0.1:$port"

for run in $(seq 1 "$CLIENT_RUNS"); do
    echo "== client run $run"
    out=$workdir/client$run.out
    status=0
    timeout -k 2 "$CLIENT_TIMEOUT" "$client_bin" 127.0.0.1 "$port" \
        >"$out" 2>&1 || status=$?
    sed 's/^/   /' "$out"
    [ "$status" -eq 0 ] || fail "client run $run exited with status $status"
    got=$(grep -c '^received ' "$out" || true)
    [ "$got" -eq "$REPLIES_PER_CLIENT" ] ||
        fail "client run $run got $got replies, expected $REPLIES_PER_CLIENT"
done

echo "== stopping the server (SIGTERM)"
kill -TERM "$server_pid"
wait_for_exit || fail "server still running ${STOP_TIMEOUT}s after SIGTERM"
[ "$server_status" -eq 0 ] || fail "server exited with status $server_status"

echo "== server output"
sed 's/^/   /' "$workdir/server.out"

starts=$(grep -c '^OnConnStart: conn ' "$workdir/server.out" || true)
stops=$(grep -c '^OnConnStop: conn ' "$workdir/server.out" || true)
[ "$starts" -eq "$CLIENT_RUNS" ] ||
    fail "OnConnStart ran $starts times for $CLIENT_RUNS connections"
[ "$stops" -eq "$CLIENT_RUNS" ] ||
    fail "OnConnStop ran $stops times for $CLIENT_RUNS connections"
sessions=$(grep -c '^OnConnStop: conn [0-9]* (session: 3 ping messages' \
    "$workdir/server.out" || true)
[ "$sessions" -eq "$CLIENT_RUNS" ] ||
    fail "OnConnStop did not read the session property of every connection"
while read -r id; do
    grep -q "^OnConnStop: conn $id " "$workdir/server.out" ||
        fail "conn $id: OnConnStart ran but OnConnStop did not"
done < <(sed -n 's/^OnConnStart: conn \([0-9]*\) .*/\1/p' \
    "$workdir/server.out")

echo "== demo passed"
echo "   - $CLIENT_RUNS connections: OnConnStart and OnConnStop each ran exactly"
echo "     once per connection, and OnConnStop could still read the \"session\""
echo "     property that OnConnStart stored and the ping router updated."
echo "   - Each client sent 3 messages (ID 1), half-closed its side, and got all"
echo "     $REPLIES_PER_CLIENT replies (welcome ID 2, then \"ping\" + the echo per message)"
echo "     before the server closed the connection."
echo "   - SIGTERM stopped the server gracefully; server and clients exited 0."
