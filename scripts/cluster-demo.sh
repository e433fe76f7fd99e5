#!/usr/bin/env bash
#
# cluster-demo.sh BUILDDIR [--selftest]: the MMO demo on two nodes behind
# HAProxy (make cluster-demo; examples/mmo/README.md, "On two nodes").
#
# Starts on 127.0.0.1: nats-server, two zinx-mmo nodes of one cluster
# (ClusterNode 1 and 2, each its own world, world chat shared over NATS;
# PROXY protocol v2 from 127.0.0.1 only), and HAProxy in front of them:
# players on CLUSTER_PORT (8999, roundrobin over both nodes,
# send-proxy-v2), each node's live map on CLUSTER_MAP_PORT_1 (9001) and
# CLUSTER_MAP_PORT_2 (9002). Then CLUSTER_PLAYERS bots (200; 0: none)
# through HAProxy. Prints what to connect to and runs until Ctrl-C or
# SIGTERM, then stops everything once: bots, HAProxy, the nodes (each
# prints its counts), NATS.
#
# --selftest (what the ctest mmo_cluster_demo runs): every port free and
# picked at start, CLUSTER_SELFTEST_PLAYERS bots (40) for
# CLUSTER_SELFTEST_SECONDS (5) chatting often; then checks that the bots
# saw no error and heard the other node's players, that both maps are
# served through HAProxy, and that each node had players and received
# the other's chats, and stops. (mmo_cluster_demo_long: 600 bots, 90 s.)
#
# Environment: CLUSTER_PORT, CLUSTER_MAP_PORT_1, CLUSTER_MAP_PORT_2,
# CLUSTER_PLAYERS, CLUSTER_MOVE_HZ (1), CLUSTER_CHAT_HZ (0.1).

set -euo pipefail

STARTUP_TIMEOUT=20 # seconds for each peer to listen
STOP_TIMEOUT=20    # seconds for each to exit after SIGTERM

usage() {
    echo "usage: $0 BUILDDIR [--selftest]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
selftest=0
if [ $# -eq 2 ]; then
    [ "$2" = --selftest ] || usage
    selftest=1
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/server.sh
. "$here/lib/server.sh"
server_bin=$1/bin/zinx-mmo
bots_bin=$1/bin/zinx-mmo-bots
for exe in "$server_bin" "$bots_bin"; do
    if [ ! -x "$exe" ]; then
        echo "cluster-demo: $exe not found: build first (make build)" >&2
        exit 1
    fi
done

# The peers: Debian installs them in /usr/sbin, which a user's PATH may
# lack. Missing is a failure (make cluster-demo installs them first),
# except for the selftest outside CI, which then skips (ctest's 77).
find_tool() {
    local name=$1 p
    for p in "/usr/sbin/$name" "/usr/bin/$name" "$(command -v "$name" || true)"; do
        [ -n "$p" ] && [ -x "$p" ] && {
            echo "$p"
            return 0
        }
    done
    echo "cluster-demo: $name not found (bash scripts/install-deps.sh" \
        "cluster)" >&2
    return 1
}
missing_tool() {
    [ "$selftest" -eq 1 ] && [ "${CI:-}" != true ] && exit 77
    exit 1
}
nats_bin=$(find_tool nats-server) || missing_tool
haproxy_bin=$(find_tool haproxy) || missing_tool

# HAProxy holds two descriptors a connection: as many connections as the
# descriptors it may open allow, up to 20,000.
fd_limit=$(ulimit -Hn)
[ "$fd_limit" = unlimited ] && fd_limit=1048576
maxconn=$(((fd_limit - 200) / 2))
[ "$maxconn" -le 20000 ] || maxconn=20000

# A port no socket uses now: random below the kernel's range of
# ephemeral ports (which outgoing connections take, so a port there may
# be busy without anyone listening), and in no line of /proc/net/tcp*.
free_port() {
    local low p hex i
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$low" -gt 11000 ] || low=61000
    for i in $(seq 1 200); do
        p=$((10000 + RANDOM % (low - 10000)))
        printf -v hex ':%04X ' "$p"
        if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
            awk '{print $2}' | grep -q "${hex% }\$"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_port PORT PID WHAT: until something listens on PORT (PID alive).
wait_port() {
    local port=$1 pid=$2 what=$3 deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ "$SECONDS" -le "$deadline" ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || {
            echo "cluster-demo: $what exited" >&2
            return 1
        }
        sleep 0.05
    done
    echo "cluster-demo: $what does not listen on 127.0.0.1:$port" >&2
    return 1
}

# wait_line FILE LINE PID: until the process PID printed LINE into FILE.
wait_line() {
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ "$SECONDS" -le "$deadline" ]; do
        grep -qxF "$2" "$1" && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

if [ "$selftest" -eq 1 ]; then
    port=$(free_port)
    map_port_1=$(free_port)
    map_port_2=$(free_port)
    players=${CLUSTER_SELFTEST_PLAYERS:-40}
    seconds=${CLUSTER_SELFTEST_SECONDS:-5}
    move_hz=2
    chat_hz=0.5
else
    port=${CLUSTER_PORT:-8999}
    map_port_1=${CLUSTER_MAP_PORT_1:-9001}
    map_port_2=${CLUSTER_MAP_PORT_2:-9002}
    players=${CLUSTER_PLAYERS:-200}
    move_hz=${CLUSTER_MOVE_HZ:-1}
    chat_hz=${CLUSTER_CHAT_HZ:-0.1}
fi
nats_port=$(free_port)
ready_port=$(free_port) # HAProxy's own: waiting for it makes no player

workdir=$(mktemp -d "${TMPDIR:-/tmp}/zinx-cluster-demo.XXXXXX")
nats_pid=
node_pids=()
haproxy_pid=
bots_pid=

# Whatever happens, nothing outlives the script.
cleanup() {
    for pid in $bots_pid $haproxy_pid "${node_pids[@]}" $nats_pid; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

# stop_one NAME PID: stops PID; prints why if it did not stop cleanly.
stop_one() {
    local st=0
    stop_process "$2" || st=$?
    if [ "$st" -ne 0 ]; then
        echo "cluster-demo: $1 exited with status $st" >&2
        return 1
    fi
}

stopping=0
# stop_all [STATUS]: stops everything, in order, and exits STATUS (0), or
# 1 if anything did not stop cleanly. Bots first (a node stopped under
# them would count as their error), then HAProxy, the nodes, NATS.
stop_all() {
    # Once: a second signal (Ctrl-C pressed twice, or make and this script
    # both signalled) must not start the stop again half-way through.
    trap '' INT TERM HUP
    stopping=1
    local rc=${1:-0} i
    echo
    if [ -n "$bots_pid" ]; then
        echo "== stopping the bots"
        stop_one bots "$bots_pid" || rc=1
        bots_pid=
    fi
    if [ -n "$haproxy_pid" ]; then
        echo "== stopping HAProxy"
        # HAProxy exits 0 or 143 on SIGTERM depending on its version.
        stop_process "$haproxy_pid" || true
        haproxy_pid=
    fi
    for i in "${!node_pids[@]}"; do
        echo "== stopping node $((i + 1))"
        stop_one "node $((i + 1))" "${node_pids[$i]}" || rc=1
        grep '^mmo: ' "$workdir/node$((i + 1)).out" || true
    done
    node_pids=()
    if [ -n "$nats_pid" ]; then
        echo "== stopping nats-server"
        stop_process "$nats_pid" || true
        nats_pid=
    fi
    if [ "$selftest" -eq 1 ] && [ "$rc" -eq 0 ]; then
        check_nodes || rc=1
    fi
    exit "$rc"
}
trap stop_all INT TERM HUP

# ---- NATS ----------------------------------------------------------------
echo "== starting nats-server on 127.0.0.1:$nats_port"
setsid "$nats_bin" -a 127.0.0.1 -p "$nats_port" >"$workdir/nats.out" 2>&1 &
nats_pid=$!
wait_port "$nats_port" "$nats_pid" nats-server || {
    cat "$workdir/nats.out" >&2
    stop_all 1
}

# ---- the nodes -----------------------------------------------------------
node_ports=()
map_ports=()
for n in 1 2; do
    conf=$workdir/node$n.json
    cat >"$conf" <<EOF
{
    "Name": "zinx-mmo-node$n",
    "Host": "127.0.0.1",
    "TCPPort": 0,
    "Mode": "",
    "WsPort": 0,
    "WsPath": "/ws",
    "PacketFormat": "ltv_le",
    "MaxConn": 15000,
    "WorkerPoolSize": 4,
    "MaxPacketSize": 4096,
    "LogIsolationLevel": 1,
    "ProxyProtocol": "v2",
    "ProxyProtocolFrom": "127.0.0.1",
    "ClusterName": "zinx-mmo-demo",
    "ClusterNatsUrl": "nats://127.0.0.1:$nats_port",
    "ClusterNode": $n,
    "ClusterHeartbeatMs": 250
}
EOF
    echo "== starting node $n"
    ZINX_CONFIG_FILE_PATH=$conf setsid "$server_bin" >"$workdir/node$n.out" &
    node_pids+=($!)
    if ! wait_listening "$workdir/node$n.out" "$!" 0.05; then
        cat "$workdir/node$n.out" >&2
        echo "cluster-demo: node $n did not start" >&2
        stop_all 1
    fi
    node_ports+=("$server_port")
    map=$(grep -m1 '^map on ' "$workdir/node$n.out" || true)
    map=${map%/}
    map_ports+=("${map##*:}")
done
# Chat reaches only the nodes a node knows of: wait for both to meet.
wait_line "$workdir/node1.out" "cluster: node 2 up" "${node_pids[0]}" &&
    wait_line "$workdir/node2.out" "cluster: node 1 up" "${node_pids[1]}" || {
    cat "$workdir/node1.out" "$workdir/node2.out" >&2
    echo "cluster-demo: the nodes did not see each other" >&2
    stop_all 1
}

# ---- HAProxy -------------------------------------------------------------
cat >"$workdir/haproxy.cfg" <<EOF
global
    maxconn $maxconn
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend players
    bind 127.0.0.1:$port
    default_backend nodes
backend nodes
    balance roundrobin
    server node1 127.0.0.1:${node_ports[0]} send-proxy-v2
    server node2 127.0.0.1:${node_ports[1]} send-proxy-v2
frontend map1
    bind 127.0.0.1:$map_port_1
    default_backend map1
backend map1
    server node1 127.0.0.1:${map_ports[0]} send-proxy-v2
frontend map2
    bind 127.0.0.1:$map_port_2
    default_backend map2
backend map2
    server node2 127.0.0.1:${map_ports[1]} send-proxy-v2
frontend ready
    mode http
    bind 127.0.0.1:$ready_port
    monitor-uri /ready
EOF
echo "== starting HAProxy"
setsid "$haproxy_bin" -db -f "$workdir/haproxy.cfg" >"$workdir/haproxy.out" 2>&1 &
haproxy_pid=$!
wait_port "$ready_port" "$haproxy_pid" HAProxy || {
    cat "$workdir/haproxy.out" >&2
    stop_all 1
}

# ---- bots ----------------------------------------------------------------
bots_cmd=("$bots_bin" --host 127.0.0.1 --port "$port" --players "$players"
    --spawn spread --move-hz "$move_hz" --chat-hz "$chat_hz")
if [ "$players" -gt 0 ]; then
    echo "== starting $players bots through HAProxy"
    if [ "$selftest" -eq 1 ]; then
        setsid "${bots_cmd[@]}" --duration "$seconds" >"$workdir/bots.out" 2>&1 &
    else
        setsid "${bots_cmd[@]}" --duration 0 --progress 10 &
    fi
    bots_pid=$!
fi

cat <<EOF

  The MMO demo runs on two nodes behind HAProxy (nats-server on
  127.0.0.1:$nats_port carries the cluster). Each node runs its own world;
  world chat reaches the players of both.

  Players (Zinx clients, bots): 127.0.0.1:$port  (HAProxy, roundrobin)
  Map of node 1:  http://127.0.0.1:$map_port_1/
  Map of node 2:  http://127.0.0.1:$map_port_2/
  More bots:      ${bots_cmd[0]} --host 127.0.0.1 --port $port --players 100 --spawn spread --duration 0

  Press Ctrl-C to stop.

EOF

# check_nodes: the selftest's checks of each node's exit line.
check_nodes() {
    local n line joined chats_in failed refused ok=0
    for n in 1 2; do
        line=$(grep -m1 '^mmo: ' "$workdir/node$n.out" || true)
        joined=$(sed -n 's/.* joined=\([0-9]*\).*/\1/p' <<<"$line")
        chats_in=$(sed -n 's/.* chats_in=\([0-9]*\).*/\1/p' <<<"$line")
        failed=$(sed -n 's/.* chats_out_failed=\([0-9]*\).*/\1/p' <<<"$line")
        refused=$(sed -n 's/.* refused_chats_in=\([0-9]*\).*/\1/p' <<<"$line")
        if [ "${joined:-0}" -lt 1 ] || [ "${chats_in:-0}" -lt 1 ] ||
            [ "${failed:-x}" != 0 ] || [ "${refused:-x}" != 0 ]; then
            echo "cluster-demo: selftest: node $n: expected players, chats" \
                "from the other node and no failed or refused chat: $line" >&2
            ok=1
        fi
    done
    [ "$ok" -eq 0 ] && echo "cluster-demo: selftest passed"
    return "$ok"
}

# check_map PORT N: node N's map page and its feed's upgrade, through
# HAProxy (so through the PROXY protocol layer).
check_map() {
    local reply
    reply=$(exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
        timeout 10 cat <&3) || true
    if ! grep -q '^HTTP/1.1 200' <<<"$reply" || ! grep -qi '<canvas' <<<"$reply"; then
        echo "cluster-demo: selftest: node $2's map is not served on" \
            "127.0.0.1:$1: ${reply:0:200}" >&2
        return 1
    fi
}

if [ "$selftest" -eq 1 ]; then
    rc=0
    check_map "$map_port_1" 1 || rc=1
    check_map "$map_port_2" 2 || rc=1
    st=0
    wait "$bots_pid" || st=$?
    bots_pid=
    cat "$workdir/bots.out"
    if [ "$st" -ne 0 ]; then
        echo "cluster-demo: selftest: the bots exited with status $st" >&2
        rc=1
    fi
    # The bots' own view: chats of players on the other node reached them.
    if ! grep -Eq '^  nodes: +[1-9][0-9]* chats heard from another node' \
        "$workdir/bots.out"; then
        echo "cluster-demo: selftest: no bot heard another node's chat" >&2
        rc=1
    fi
    stop_all "$rc"
fi

# Until Ctrl-C, or until something ends by itself.
while [ "$stopping" -eq 0 ]; do
    for pid in "${node_pids[@]}" $haproxy_pid $nats_pid $bots_pid; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "cluster-demo: a process stopped by itself (pid $pid)" >&2
            stop_all 1
        fi
    done
    sleep 0.5 &
    wait $! || true
done
