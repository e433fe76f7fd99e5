# Sourced by scripts/bench.sh and scripts/bench-instr.sh.
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
            server_port=${line##*:}
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep "$interval"
    done
    return 1
}
