#!/usr/bin/env bash
#
# mmo.sh BUILDDIR: the MMO demo, live (make mmo).
#
# Starts BUILDDIR/bin/zinx-mmo with the demo's configuration
# (examples/mmo/conf/zinx.json: players on TCP port 8999, the map on
# 9000), then MMO_PLAYERS bots (300) spread over the world, moving and
# chatting until you press Ctrl-C, and prints the map's URL. Ctrl-C stops
# the bots first (they report what they saw), then the server (it prints
# its counts); the script exits 0 when both stopped cleanly.
#
# Environment: MMO_PLAYERS (300), MMO_MOVE_HZ (1), MMO_CHAT_HZ (0.1).

set -euo pipefail

STARTUP_TIMEOUT=15 # seconds for the server to print "listening on"
STOP_TIMEOUT=20    # seconds for each to exit after SIGTERM

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/server.sh
. "$here/lib/server.sh"
conf=$here/../examples/mmo/conf/zinx.json
server_bin=$1/bin/zinx-mmo
bots_bin=$1/bin/zinx-mmo-bots
for exe in "$server_bin" "$bots_bin"; do
    if [ ! -x "$exe" ]; then
        echo "mmo: $exe not found: build first (make build; the demo needs" \
            "libprotobuf-c-dev and protobuf-c-compiler)" >&2
        exit 1
    fi
done
[ -f "$conf" ] || {
    echo "mmo: $conf not found" >&2
    exit 1
}
players=${MMO_PLAYERS:-300}
move_hz=${MMO_MOVE_HZ:-1}
chat_hz=${MMO_CHAT_HZ:-0.1}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/zinx-mmo.XXXXXX")
server_pid=
bots_pid=

cleanup() {
    for pid in $bots_pid $server_pid; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

# Both run in sessions of their own, so the terminal's Ctrl-C reaches
# only this script, which stops them in order: bots, then server (a
# server stopped first would cut the bots off, and they would count that
# as an error).
stopping=0
# stop_all [STATUS]: stops both and exits STATUS (0), or 1 if either did
# not stop cleanly.
stop_all() {
    # Once: a second signal (Ctrl-C pressed twice, or make and this script
    # both signalled) must not start the stop again half-way through.
    trap '' INT TERM HUP
    stopping=1
    local rc=${1:-0} st
    echo
    if [ -n "$bots_pid" ]; then
        echo "== stopping the bots"
        st=0
        stop_process "$bots_pid" || st=$?
        bots_pid=
        [ "$st" -eq 0 ] || {
            echo "mmo: the bots exited with status $st"
            rc=1
        }
    fi
    if [ -n "$server_pid" ]; then
        echo "== stopping the server"
        st=0
        stop_process "$server_pid" || st=$?
        server_pid=
        tail -n 1 "$workdir/server.out"
        [ "$st" -eq 0 ] || {
            echo "mmo: the server exited with status $st"
            rc=1
        }
    fi
    exit "$rc"
}
trap stop_all INT TERM HUP

echo "== starting zinx-mmo ($conf)"
ZINX_CONFIG_FILE_PATH=$conf setsid "$server_bin" >"$workdir/server.out" &
server_pid=$!
if ! wait_listening "$workdir/server.out" "$server_pid" 0.1; then
    cat "$workdir/server.out" >&2
    echo "mmo: the server did not start (is port 8999 or 9000 in use?)" >&2
    exit 1
fi
map=$(grep -m1 '^map on ' "$workdir/server.out" | sed 's/^map on //' || true)

echo "== starting $players bots (spread, $move_hz moves/s and $chat_hz" \
    "chats/s each)"
setsid "$bots_bin" --host 127.0.0.1 --port "$server_port" \
    --players "$players" --spawn spread --duration 0 --move-hz "$move_hz" \
    --chat-hz "$chat_hz" --progress 10 &
bots_pid=$!

cat <<EOF

  The MMO demo is running: $players bots play on zinx-mmo (players on
  port $server_port).

  Map:  ${map:-(no map: the server has no WsPort)}

  Press Ctrl-C to stop.

EOF

# Until Ctrl-C, or until one of them ends by itself.
while [ "$stopping" -eq 0 ]; do
    if ! kill -0 "$server_pid" 2>/dev/null || ! kill -0 "$bots_pid" 2>/dev/null; then
        echo "mmo: the server or the bots stopped by themselves" >&2
        tail -n 5 "$workdir/server.out" >&2
        stop_all 1
    fi
    sleep 0.5 &
    wait $! || true
done
