#!/usr/bin/env bash
#
# mmo-bench.sh BUILDDIR: where zinx-mmo saturates under the bot swarm
# (make mmo-bench; about 6 minutes).
#
# For each scenario (1,000 / 5,000 / 10,000 bots spread over the world,
# and 1,000 crowded in Zinx's spawn area, where their random steps stay:
# --crowd) it starts a fresh zinx-mmo
# pinned to CPU 0 (taskset) with the demo's configuration on free ports,
# and runs zinx-mmo-bots pinned to CPU 1 with a rising move rate per bot,
# one step of STEP_SECONDS each, until the p99 move → neighbour latency
# of a step passes 100 ms (the saturation point) or the rates run out.
# The bots do not chat here: a chat goes to every player and would
# measure something else. Per step: moves/s the server handled (the
# movers' own Tp 4 came back), broadcasts/s the bots received (200
# BroadCast), p50/p99 latency, the server's CPU (utime + stime from
# /proc/PID/stat over the step) and its RSS at the end of the step.
#
# Then, as the demo's acceptance check, 10,000 bots spread at the default
# rates (1 move/s, 0.1 chat/s each) for 30 s, which must report no error.
#
# The table and how it was measured go into examples/mmo/README.md
# between <!-- mmo-bench:start --> and <!-- mmo-bench:end --> (appended
# when the markers are missing), and to stdout. The JSON reports stay in
# BUILDDIR/mmo-bench/. Exits non-zero when a run failed.
#
# Environment: STEP_SECONDS (8), MMO_BENCH_CHECK (1; 0 skips the 10,000
# bot check), MMO_BENCH_SCENARIOS (scenarios of your own, separated by
# ";", each "NAME PLAYERS zinx|spread RATE,RATE,...").

set -euo pipefail

STARTUP_TIMEOUT=15
STOP_TIMEOUT=30
STEP_SECONDS=${STEP_SECONDS:-8}
CHECK=${MMO_BENCH_CHECK:-1}
SERVER_CPU=0
BOTS_CPU=1

# name players spawn "rates per bot, one step each"
SCENARIOS=(
    "1000-spread 1000 spread 0.5,1,2,4,8,16,32,64"
    "5000-spread 5000 spread 0.03,0.06,0.125,0.25,0.5,1"
    "10000-spread 10000 spread 0.01,0.02,0.04,0.08,0.16,0.32"
    "1000-crowded 1000 zinx 0.04,0.16,0.64,1.28,2.56,5.12,10.24,20.48"
)

if [ -n "${MMO_BENCH_SCENARIOS:-}" ]; then
    IFS=';' read -r -a SCENARIOS <<<"$MMO_BENCH_SCENARIOS"
fi

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILDDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/server.sh
. "$here/lib/server.sh"
server_bin=$1/bin/zinx-mmo
bots_bin=$1/bin/zinx-mmo-bots
conf=$root/examples/mmo/conf/zinx.json
readme=$root/examples/mmo/README.md
for exe in "$server_bin" "$bots_bin"; do
    [ -x "$exe" ] || {
        echo "mmo-bench: $exe not found: build first" >&2
        exit 1
    }
done
# Debian's python3 reads the reports (json) and writes the table.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
[ -n "$py" ] || {
    echo "mmo-bench: python3 is needed (apt-get install python3)" >&2
    exit 1
}
if [ "$(nproc)" -lt 2 ]; then
    echo "mmo-bench: needs two CPUs (server on CPU $SERVER_CPU, bots on" \
        "CPU $BOTS_CPU)" >&2
    exit 1
fi

out=$1/mmo-bench
rm -rf "$out"
mkdir -p "$out"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The demo's configuration, on loopback and free ports.
"$py" - "$conf" "$out/zinx.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.update({"Host": "127.0.0.1", "TCPPort": 0, "WsPort": 0,
          "LogIsolationLevel": 2})
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF

start_server() {
    ZINX_CONFIG_FILE_PATH=$out/zinx.json taskset -c "$SERVER_CPU" \
        "$server_bin" >"$out/$1.server.out" 2>"$out/$1.server.err" &
    server_pid=$!
    wait_listening "$out/$1.server.out" "$server_pid" 0.1 || {
        cat "$out/$1.server.err" >&2
        echo "mmo-bench: the server did not start" >&2
        exit 1
    }
}

stop_server() {
    local st=0
    stop_process "$server_pid" || st=$?
    server_pid=
    tail -n 1 "$out/$1.server.out"
    [ "$st" -eq 0 ] || failed="$failed $1(server exit $st)"
}

# Other work on the machine shows in the numbers: say how busy it was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
failed=
for s in "${SCENARIOS[@]}"; do
    read -r name players spawn steps <<<"$s"
    echo "== $name: $players bots ($spawn), move rates per bot $steps"
    start_server "$name"
    st=0
    # A crowd stays in the spawn area: its bots' random steps stay there.
    crowd=()
    [ "$spawn" = zinx ] && crowd=(--crowd)
    taskset -c "$BOTS_CPU" "$bots_bin" --port "$server_port" \
        --players "$players" --spawn "$spawn" "${crowd[@]}" --chat-hz 0 \
        --steps "$steps" --step-seconds "$STEP_SECONDS" --stop-p99-ms 100 \
        --server-pid "$server_pid" --report-json "$out/$name.json" \
        >"$out/$name.bots.out" || st=$?
    sed -n '/^  steps:/,$p' "$out/$name.bots.out"
    [ "$st" -eq 0 ] || failed="$failed $name(bots exit $st)"
    stop_server "$name"
done

if [ "$CHECK" != 0 ]; then
    echo "== check: 10000 bots spread at the default rates for 30 s"
    start_server check
    st=0
    taskset -c "$BOTS_CPU" "$bots_bin" --port "$server_port" \
        --players 10000 --spawn spread --duration 30 \
        --report-json "$out/check.json" >"$out/check.bots.out" || st=$?
    cat "$out/check.bots.out"
    [ "$st" -eq 0 ] || failed="$failed check(bots exit $st)"
    stop_server check
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The table, into the README between the markers.
"$py" - "$out" "$readme" "$STEP_SECONDS" "$CHECK" "$load_before" \
    "$load_after" "${SCENARIOS[@]}" <<'EOF'
import json, os, platform, re, sys, time

out, readme, step_s, check, load_before, load_after = sys.argv[1:7]
scenarios = [s.split() for s in sys.argv[7:]]

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

rows = []
for name, players, spawn, steps in scenarios:
    try:
        r = json.load(open(os.path.join(out, name + ".json")))
    except (OSError, ValueError):
        rows.append("| %s | %s | (no report) | | | | | | |" % (players, spawn))
        continue
    where = "spread" if spawn == "spread" else "crowded (Zinx's spawn area)"
    for i, st in enumerate(r["steps"]):
        sat = st["p99_ms"] > 100
        mark = " **saturated**" if sat else ""
        cpu = "%.0f %%" % st["server_cpu_pct"] if "server_cpu_pct" in st else "-"
        rss = ("%.0f MiB" % (st["server_rss_bytes"] / 2**20)
               if "server_rss_bytes" in st else "-")
        rows.append("| %s | %s | %g | %.0f | %.0f | %.1f | %.1f%s | %s | %s |" % (
            "{:,}".format(int(players)), where, st["move_hz"],
            st["moves_confirmed_per_s"], st["broadcasts_per_s"],
            st["p50_ms"], st["p99_ms"], mark, cpu, rss))
    if r["steps"] and r["steps"][-1]["p99_ms"] <= 100:
        rows.append("| %s | %s | | | | | not reached | | |" % (
            "{:,}".format(int(players)), where))

check_text = ""
if check != "0":
    try:
        c = json.load(open(os.path.join(out, "check.json")))
        check_text = (
            "\nAcceptance check, same machine: 10,000 bots spread at the default "
            "rates (1 move/s and 0.1 chat/s each) for 30 s: %d in the world, "
            "%d errors, %.0f moves/s confirmed, %.0f broadcasts/s received, "
            "p99 move → neighbour %.0f ms (the server is far past saturation "
            "there: each bot waits for its moves to be confirmed, so the swarm "
            "slows down rather than piling up).\n" % (
                c["joined"], c["errors"]["total"],
                c["run"]["moves_confirmed"] / max(c["run_s"], 1e-9),
                c["run"]["broadcasts"] / max(c["run_s"], 1e-9),
                c["latency_ms"]["p99"]))
    except (OSError, ValueError, KeyError):
        check_text = "\nAcceptance check: no report (see BUILDDIR/mmo-bench/).\n"

table = """<!-- mmo-bench:start -->
Measured by `make mmo-bench` (scripts/mmo-bench.sh) on %s: %s, %d CPUs,
Linux %s. zinx-mmo runs with the demo's conf/zinx.json (on free ports),
pinned to CPU 0; zinx-mmo-bots runs pinned to CPU 1 (one I/O thread).
Each row is one step of %s s at a move rate per bot; the bots do not
chat. *Moves/s handled*: moves the server applied (the mover heard its
own Tp 4). *Broadcasts/s*: 200 BroadCast messages the bots received.
*p50/p99*: from a move's send to its Tp 4 at a neighbour bot. *CPU*:
the server's user + system time over the step (100 %% = one core);
*RSS* at its end. The run of a scenario stops at the first step whose
p99 passes 100 ms: the saturation point. A server below 100 %% CPU at
that point was not the only limit: the bots' core, or other work on the
machine (load average %s before the bench, %s after), was.

| players | where | moves/s per bot | moves/s handled | broadcasts/s | p50 ms | p99 ms | server CPU | server RSS |
|--:|---|--:|--:|--:|--:|--:|--:|--:|
%s
%s<!-- mmo-bench:end -->""" % (
    time.strftime("%Y-%m-%d", time.gmtime()), cpu_model(),
    os.cpu_count() or 0, platform.release(), step_s, load_before,
    load_after, "\n".join(rows), check_text)

print()
print(table)
text = open(readme).read() if os.path.exists(readme) else ""
pat = re.compile(r"<!-- mmo-bench:start -->.*?<!-- mmo-bench:end -->", re.S)
if pat.search(text):
    text = pat.sub(lambda m: table, text)
else:
    text = text.rstrip("\n") + "\n\n## Benchmark\n\n" + table + "\n"
open(readme, "w").write(text)
EOF

if [ -n "$failed" ]; then
    echo "mmo-bench: FAILED:$failed" >&2
    exit 1
fi
echo "mmo-bench: the table is in $readme"
