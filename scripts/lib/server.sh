# shellcheck shell=bash
# Sourced by scripts/bench.sh, scripts/bench-python.sh and
# scripts/bench-instr.sh: starting and stopping the server a benchmark
# measures.
#
# The functions after stop_process need from the sourcing script: say (prints a
# line), server_cmd NAME (the command line of server NAME, or nothing
# when it is not available), the array srv_pin (the pinning prefix),
# and workdir, starts and server_pid, which bench_workdir sets up.
#
# wait_listening OUTFILE PID INTERVAL: waits (up to STARTUP_TIMEOUT
# seconds) for the server PID to print "listening on HOST:PORT" to
# OUTFILE, polling every INTERVAL seconds. Sets server_port and returns 0;
# returns 1 if the server died or the time ran out.
wait_listening() {
    local out=$1 pid=$2 interval=$3 line
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ "$SECONDS" -le "$deadline" ]; do
        line=$(grep -m1 '^listening on ' "$out" || true)
        if [ -n "$line" ]; then
            # shellcheck disable=SC2034 # read by the sourcing script
            server_port=${line##*:}
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep "$interval"
    done
    return 1
}

# stop_process PID: sends SIGTERM, waits up to STOP_TIMEOUT seconds for
# PID to exit, then sends SIGKILL. Returns PID's exit status as `wait`
# reports it (0 for a clean stop).
stop_process() {
    local pid=$1 rc=0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null &&
            [ "$SECONDS" -le "$deadline" ]; do
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# bench_workdir NAME: a fresh work folder ${TMPDIR:-/tmp}/NAME.XXXXXX in
# `workdir`, no server yet, and traps that stop the server and remove
# the folder however the script ends.
bench_workdir() {
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    server_pid=
    starts=0
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP
}

# shellcheck disable=SC2317 # called by the trap
bench_cleanup() {
    stop_server
    rm -rf "$workdir"
}

# select_servers NAME...: the servers of SERVERS (a list of names; the
# arguments when SERVERS is unset) that server_cmd can run, into the
# array `servers`; says which were skipped, and exits 1 when none is left.
select_servers() {
    servers=()
    local s
    for s in ${SERVERS:-$*}; do
        if [ -n "$(server_cmd "$s")" ]; then
            servers+=("$s")
        else
            say "server $s is not available (not built); skipped"
        fi
    done
    [ "${#servers[@]}" -gt 0 ] || {
        say "FAILED: no server to run"
        exit 1
    }
}

# stop_server: stops the server start_server started, if any.
stop_server() {
    [ -n "$server_pid" ] || return 0
    stop_process "$server_pid" || true
    server_pid=
}

# start_server NAME: starts server NAME pinned and waits until it
# listens; sets server_pid and server_port. Returns 1 (with the end of its
# error output) when it did not start.
start_server() {
    # A new file each time: the shell creates it in the background child,
    # so an old file could still show the previous server's port.
    starts=$((starts + 1))
    local out=$workdir/server.$starts.out
    : >"$out"
    # shellcheck disable=SC2046
    "${srv_pin[@]}" $(server_cmd "$1") >"$out" 2>"$workdir/server.err" &
    server_pid=$!
    wait_listening "$out" "$server_pid" 0.02 && return 0
    say "server $1 did not start:"
    tail -20 "$workdir/server.err" >&2
    stop_server
    return 1
}
