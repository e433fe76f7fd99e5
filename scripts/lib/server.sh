# shellcheck shell=bash
# Sourced by scripts/bench.sh and scripts/bench-instr.sh: starting and
# stopping the server a benchmark measures.
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
