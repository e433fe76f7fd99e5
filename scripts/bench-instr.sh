#!/usr/bin/env bash
#
# bench-instr.sh: user-space instructions per echoed frame, counted by
# callgrind, optionally checked against budgets.
#
# How to run:  make bench-instr       (builds build/, then runs this with
#                                      --check bench/instr-budgets.txt)
#              scripts/bench-instr.sh build
#              scripts/bench-instr.sh --check bench/instr-budgets.txt build
#              scripts/bench-instr.sh --base /tmp/old-build build
#
# Options:
#   --check FILE        compare with the budgets in FILE (see its header);
#                       exit 1 when a figure is more than 5 % above its
#                       budget
#   --budget-scale F    multiply every budget by F first (0.5 shows that
#                       the check fails; default 1)
#   --base BASEBUILD    also measure BASEBUILD's servers (same zinx-bench,
#                       the one of BUILDDIR) and print a before/after table
#
# Servers: zinx-echo with IOThreads 1 and WorkerPoolSize 0 ("w0") or 10
# ("w10"), and the bare epoll echo peer-epoll ("bare"). Workloads: 100
# connections x 64 B x depth 1, x 1 KiB x depth 1, x 64 B x depth 16.
# Each server runs under `valgrind --tool=callgrind` pinned to CPU 0;
# zinx-bench runs natively on CPU 1 (when there are 2 CPUs) with --count.
# Every row is run at two lengths, N1 and N2 frames:
#
#     instructions/frame = (Ir(N2) - Ir(N1)) / (N2 - N1)
#
# so that start-up, connects and shutdown cancel. Ir is callgrind's total
# over all threads of the server. It counts the instructions the server
# executes in user space (its own code and libc), not the kernel's, and
# does not depend on the machine's load or speed; it does depend on the
# compiler, the flags and glibc, so budgets hold for one toolchain and
# the RelWithDebInfo build of `make build`.
#
# The markdown report is printed and written to BUILDDIR/bench-instr.md,
# the raw runs to BUILDDIR/bench-instr.tsv. Every server is killed when
# the script exits, however it exits; its scratch files live in BUILDDIR
# and are removed at exit.
#
# Environment (defaults in brackets):
#   PAIRS [3]     N1/N2 pairs per row; the figure is their median
#   ROWS          subset of rows, e.g. "w0-100x64x1 bare-100x64x16"; it
#                 may also name the rows run only on demand: w0pp-... and
#                 w10pp-... (zinx-echo with ProxyProtocol on, zinx-bench
#                 sending a PROXY v1 header first: what the header costs
#                 per frame, docs/benchmarks.md)
#
# It takes about 100 s on a 2-CPU machine (twice that with --base); the
# pairs of a row agree within 0.5 %.

set -euo pipefail

usage() {
    echo "usage: $0 [--check BUDGETS] [--budget-scale F] [--base BASEBUILD]" \
        "BUILDDIR" >&2
    exit 2
}

budgets=
scale=1
base=
while [ $# -gt 0 ]; do
    case $1 in
    --check)
        [ $# -ge 2 ] || usage
        budgets=$2
        shift 2
        ;;
    --budget-scale)
        [ $# -ge 2 ] || usage
        scale=$2
        shift 2
        ;;
    --base)
        [ $# -ge 2 ] || usage
        base=$2
        shift 2
        ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || usage
build=$1

say() { printf 'bench-instr: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

if ! [[ "$scale" =~ ^[0-9]*\.?[0-9]+$ ]] ||
    ! awk -v s="$scale" 'BEGIN { exit !(s + 0 > 0) }'; then
    die "--budget-scale must be a number above 0, not '$scale'"
fi
if [ -n "$budgets" ]; then
    # Relative to where the user stands, before the cd below.
    [ -r "$budgets" ] || die "cannot read the budgets file $budgets"
    budgets=$(cd "$(dirname "$budgets")" && pwd)/$(basename "$budgets")
fi
absdir() { (cd "$1" 2>/dev/null && pwd) || die "no directory $1"; }
build=$(absdir "$build")
[ -z "$base" ] || base=$(absdir "$base")
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/server.sh
. scripts/lib/server.sh

PAIRS=${PAIRS:-3}
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive integer"
STARTUP_TIMEOUT=60
STOP_TIMEOUT=60

# ------------------------------------------------------------ checks

command -v valgrind >/dev/null 2>&1 ||
    die "valgrind is not installed (Debian: apt-get install valgrind;" \
        "make bench-instr installs it)"
valgrind --tool=callgrind --version >/dev/null 2>&1 ||
    die "valgrind has no callgrind tool"

# The budgets hold for `make build`'s tree: RelWithDebInfo, no sanitizer.
check_tree() {
    local dir=$1 t type san
    for t in zinx-echo peer-epoll zinx-bench; do
        [ -x "$dir/bin/$t" ] || die "$dir/bin/$t is missing (run make build)"
    done
    type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$dir/CMakeCache.txt" \
        2>/dev/null || true)
    san=$(sed -n 's/^ZINX_SANITIZE:[A-Z]*=//p' "$dir/CMakeCache.txt" \
        2>/dev/null || true)
    if [ "$type" != RelWithDebInfo ] || [ -n "$san" ]; then
        if [ -n "$budgets" ]; then
            die "$dir is a '${type:-?}' build${san:+ with $san}; the" \
                "budgets are for RelWithDebInfo without sanitizers" \
                "(make build)"
        fi
        say "note: $dir is a '${type:-?}' build${san:+ with $san}," \
            "not make build's RelWithDebInfo"
    fi
}
check_tree "$build"
[ -z "$base" ] || check_tree "$base"
bench=$build/bin/zinx-bench

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    srv_pin=(taskset -c 0)
    load_pin=(taskset -c 1)
    pinning="server on CPU 0, zinx-bench on CPU 1"
else
    srv_pin=()
    load_pin=()
    pinning="not pinned (fewer than 2 CPUs or no taskset)"
fi

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ]; then
    ulimit -n "$hard" 2>/dev/null || true
fi

# ------------------------------------------------------------ servers

workdir=$(mktemp -d "$build/bench-instr.XXXXXX")
server_pid=

stop_server() {
    [ -n "$server_pid" ] || return 0
    local rc=0
    stop_process "$server_pid" || rc=$?
    server_pid=
    return "$rc"
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    stop_server || true
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# zinx-echo as bench.sh runs it: one I/O thread, handlers inline (w0) or
# on Zinx's default pool of 10 workers (w10).
write_config() {
    cat >"$workdir/$1.json" <<EOF
{
    ${3:-}
    "Name": "zinx-instr-$1",
    "Host": "127.0.0.1",
    "TCPPort": 0,
    "MaxConn": 100000,
    "MaxPacketSize": 16777216,
    "OutputSoftLimit": 33554432,
    "OutputHardLimit": 67108864,
    "IOThreads": 1,
    "WorkerPoolSize": $2,
    "LogIsolationLevel": 2
}
EOF
}
write_config w0 0
write_config w10 10
proxy_keys='"ProxyProtocol": "v1", "ProxyProtocolFrom": "127.0.0.1",'
write_config w0pp 0 "$proxy_keys"
write_config w10pp 10 "$proxy_keys"
# MetricsAddr on (a free port): what counting per message costs.
metrics_keys='"MetricsAddr": "127.0.0.1:0",'
write_config w0m 0 "$metrics_keys"
write_config w10m 10 "$metrics_keys"

# Valgrind runs one thread at a time. Its fair scheduler
# (--fair-sched=yes) was tried for w10 and changed nothing: the spread
# between pairs is 0.1-0.5 % with either, also with both CPUs busy.
vg_opts=(--tool=callgrind --dump-line=no
    --dump-instr=no --compress-strings=no --compress-pos=no)

# Starts server $1 (w0, w10, bare) of build tree $2 under callgrind,
# writing to $3; sets server_pid and server_port.
start_server() {
    local s=$1 dir=$2 out=$3 cmd
    # The environment is set outside valgrind: valgrind does not follow
    # an exec (env's) unless told to.
    case $s in
    w0 | w10 | w0pp | w10pp | w0m | w10m) cmd=("$dir/bin/zinx-echo") ;;
    bare) cmd=("$dir/bin/peer-epoll" 0) ;;
    esac
    : >"$out.stdout"
    rm -f "$out.cg"
    # In the scratch directory, without core dumps: a crashing server
    # must not leave a vgcore file in the source tree.
    (
        cd "$workdir" && ulimit -c 0 &&
            ZINX_CONFIG_FILE_PATH="$workdir/$s.json" exec \
                "${srv_pin[@]}" valgrind "${vg_opts[@]}" \
                --callgrind-out-file="$out.cg" "${cmd[@]}"
    ) >"$out.stdout" 2>"$out.vg" </dev/null &
    server_pid=$!
    wait_listening "$out.stdout" "$server_pid" 0.05 && return 0
    say "server $s ($dir) did not start; valgrind's output:"
    sed 's/^/    /' "$out.vg" >&2
    stop_server || true
    return 1
}

# Extracts a number from a flat JSON object: json_num KEY < json
json_num() {
    sed -n "s/.*\"$1\":\\([-0-9.]*\\).*/\\1/p"
}

# One run: server $1 of tree $2, c x p x d, n frames. Sets run_ir and
# run_frames. Any failure ends the script; it runs in the script's own
# shell (no command substitution), so the EXIT trap sees server_pid.
run_one() {
    local s=$1 dir=$2 c=$3 p=$4 d=$5 n=$6 json ir frames rc=0
    local out=$workdir/run proxy=()
    [[ $s != *pp ]] || proxy=(--proxy-header)
    start_server "$s" "$dir" "$out" || die "server $s did not start"
    if ! json=$("${load_pin[@]}" "$bench" --port "$server_port" \
        --connections "$c" --payload "$p" --depth "$d" --count "$n" \
        --warmup 0 --duration 120 --threads 1 --json "${proxy[@]}" \
        2>"$out.bench"); then
        sed 's/^/    /' "$out.bench" >&2
        die "zinx-bench failed against $s ($c x $p B x $d, $n frames)"
    fi
    # zinx-echo exits 0 on SIGTERM; peer-epoll has no handler and dies of
    # it (143). Callgrind writes its counts in both cases.
    stop_server || rc=$?
    if [ "$rc" -ne 0 ] && ! { [ "$s" = bare ] && [ "$rc" -eq 143 ]; }; then
        sed 's/^/    /' "$out.vg" >&2
        die "server $s exited with status $rc"
    fi
    frames=$(json_num frames <<<"$json")
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out.cg" 2>/dev/null |
        head -1)
    [ -n "$ir" ] || ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' \
        "$out.cg" 2>/dev/null | head -1)
    [ -n "$ir" ] || {
        sed 's/^/    /' "$out.vg" >&2
        die "no callgrind counts from $s ($out.cg)"
    }
    [ "$frames" = "$n" ] ||
        die "$s: zinx-bench echoed ${frames:-no} frames, not $n"
    run_ir=$ir
    run_frames=$frames
}

# ------------------------------------------------------------ rows

# Row name, server, connections, payload, depth, N1, N2. The lengths keep
# each valgrind run to a few seconds; see docs/benchmarks.md for the
# spread they give.
all_rows=(
    "w0-100x64x1 w0 100 64 1 10000 60000"
    "w0-100x1024x1 w0 100 1024 1 10000 60000"
    "w0-100x64x16 w0 100 64 16 20000 200000"
    "w10-100x64x1 w10 100 64 1 10000 60000"
    "w10-100x1024x1 w10 100 1024 1 10000 60000"
    "w10-100x64x16 w10 100 64 16 20000 200000"
    "bare-100x64x1 bare 100 64 1 10000 60000"
    "bare-100x1024x1 bare 100 1024 1 10000 60000"
    "bare-100x64x16 bare 100 64 16 20000 200000"
)
# Measured only when ROWS names them: ProxyProtocol on, MetricsAddr on.
demand_rows=(
    "w0pp-100x64x1 w0pp 100 64 1 10000 60000"
    "w0pp-100x1024x1 w0pp 100 1024 1 10000 60000"
    "w0pp-100x64x16 w0pp 100 64 16 20000 200000"
    "w10pp-100x64x1 w10pp 100 64 1 10000 60000"
    "w0m-100x64x1 w0m 100 64 1 10000 60000"
    "w0m-100x64x16 w0m 100 64 16 20000 200000"
    "w10m-100x64x1 w10m 100 64 1 10000 60000"
)
rows=()
for r in "${all_rows[@]}" "${demand_rows[@]}"; do
    name=${r%% *}
    if [[ $name == *pp-* || $name == *m-* ]] &&
        [[ " ${ROWS:-} " != *" $name "* ]]; then
        continue
    fi
    if [ -z "${ROWS:-}" ] || [[ " $ROWS " == *" $name "* ]]; then
        rows+=("$r")
    fi
done
[ "${#rows[@]}" -gt 0 ] || die "ROWS='$ROWS' names no row"

# Instructions per frame of one row for tree $1: median of PAIRS pairs,
# in measured. Appends every pair to the raw table.
measure() {
    local dir=$1 tag=$2 name=$3 s=$4 c=$5 p=$6 d=$7 n1=$8 n2=$9 i
    local ir1 fr1 f figs=()
    for ((i = 1; i <= PAIRS; i++)); do
        run_one "$s" "$dir" "$c" "$p" "$d" "$n1"
        ir1=$run_ir
        fr1=$run_frames
        run_one "$s" "$dir" "$c" "$p" "$d" "$n2"
        f=$(awk -v a="$ir1" -v b="$run_ir" -v m="$fr1" -v n="$run_frames" \
            'BEGIN { printf "%.1f", (b - a) / (n - m) }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tag" "$name" "$i" \
            "$fr1" "$ir1" "$run_frames" "$run_ir" "$f" >>"$raw"
        figs+=("$f")
    done
    measured=$(printf '%s\n' "${figs[@]}" | sort -n |
        awk '{ v[NR] = $1 } END {
            if (NR % 2) print v[(NR + 1) / 2]
            else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
}

raw=$workdir/raw.tsv
printf '# tree\trow\tpair\tN1\tIr(N1)\tN2\tIr(N2)\tIr/frame\n' >"$raw"
results=$workdir/results.tsv
: >"$results"
say "${#rows[@]} rows, $PAIRS pair(s) each${base:+, base $base too}; $pinning"
started=$SECONDS
for r in "${rows[@]}"; do
    read -r name s c p d n1 n2 <<<"$r"
    fb=-
    if [ -n "$base" ]; then
        measure "$base" base "$name" "$s" "$c" "$p" "$d" "$n1" "$n2"
        fb=$measured
    fi
    measure "$build" this "$name" "$s" "$c" "$p" "$d" "$n1" "$n2"
    f=$measured
    printf '%s\t%s\t%s\n' "$name" "$f" "$fb" >>"$results"
    say "$name: $f instructions/frame${base:+ (base $fb)}" \
        "[$((SECONDS - started)) s]"
done
elapsed=$((SECONDS - started))

# ------------------------------------------------------------ report

# Budgets: "row budget" lines; '#' starts a comment. Prints the report;
# exits 1 when a row is over budget by more than 5 %, or when a budgeted
# row was not measured or a measured zinx row has no budget.
report() {
    awk -F'\t' -v budgets="$budgets" -v scale="$scale" -v base="$base" '
    BEGIN {
        if (budgets != "") {
            while ((getline line < budgets) > 0) {
                sub(/#.*/, "", line)
                n = split(line, f, /[ \t]+/)
                k = 0
                for (i = 1; i <= n; i++)
                    if (f[i] != "")
                        g[++k] = f[i]
                if (k == 0)
                    continue
                if (k != 2 || g[2] !~ /^[0-9]+(\.[0-9]+)?$/) {
                    printf "bad line in %s: %s\n", budgets, line > "/dev/stderr"
                    bad = 1
                    continue
                }
                budget[g[1]] = g[2] * scale
            }
            close(budgets)
        }
    }
    {
        name[++nr] = $1
        fig[$1] = $2
        fbase[$1] = $3
    }
    function row_server(r) { sub(/-.*/, "", r); return r }
    function row_load(r,    f) {
        sub(/^[^-]*-/, "", r)
        split(r, f, "x")
        return f[1] " × " (f[2] >= 1024 ? f[2] / 1024 " KiB" : f[2] " B") \
            " × " f[3]
    }
    END {
        if (base != "") {
            print "| row | server | connections × payload × depth | base |" \
                " this | this/base |"
            print "|---|---|---|---:|---:|---:|"
            for (i = 1; i <= nr; i++) {
                r = name[i]
                # Parenthesised: a bare ">" in a printf is a redirection.
                printf "| %s | %s | %s | %.1f | %.1f | %.3f |\n", r,
                    row_server(r), row_load(r), fbase[r], fig[r],
                    (fbase[r] > 0 ? fig[r] / fbase[r] : 0)
            }
            print ""
        }
        print "| row | server | connections × payload × depth |" \
            " instructions/frame | budget | ratio |"
        print "|---|---|---|---:|---:|---:|"
        for (i = 1; i <= nr; i++) {
            r = name[i]
            if (r in budget) {
                ratio = fig[r] / budget[r]
                printf "| %s | %s | %s | %.1f | %.0f | %.3f |\n", r,
                    row_server(r), row_load(r), fig[r], budget[r], ratio
                if (ratio > 1.05) {
                    over[++no] = sprintf("%s: %.1f instructions/frame," \
                        " budget %.0f: %.1f %% over (limit 5 %%)", r,
                        fig[r], budget[r], 100 * (ratio - 1))
                } else if (ratio < 0.8) {
                    under[++nu] = sprintf("%s: %.1f instructions/frame," \
                        " budget %.0f (%.0f %% of it): lower the budget", r,
                        fig[r], budget[r], 100 * ratio)
                }
            } else {
                printf "| %s | %s | %s | %.1f | – | – |\n", r,
                    row_server(r), row_load(r), fig[r]
                if (budgets != "" && row_server(r) != "bare")
                    missing[++nm] = r
            }
            seen[r] = 1
        }
        print ""
        for (r in budget)
            if (!(r in seen) && ENVIRON["ROWS"] == "")
                extra[++ne] = r
        for (i = 1; i <= nu; i++)
            print "bench-instr: hint: " under[i] > "/dev/stderr"
        for (i = 1; i <= nm; i++)
            print "bench-instr: FAILED: " missing[i] ": measured but no" \
                " budget in " budgets > "/dev/stderr"
        for (i = 1; i <= ne; i++)
            print "bench-instr: FAILED: " extra[i] ": budgeted in " \
                budgets " but not a row of this script" > "/dev/stderr"
        for (i = 1; i <= no; i++)
            print "bench-instr: FAILED: " over[i] > "/dev/stderr"
        if (budgets != "" && !no && !nm && !ne && !bad)
            print "bench-instr: every row within 5 % of its budget" \
                > "/dev/stderr"
        exit (no || nm || ne || bad) ? 1 : 0
    }' "$results"
}

report_md=$build/bench-instr.md
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" |
    head -1)
ccver=$("${cc:-cc}" --version 2>/dev/null | head -1 || true)
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || true)
status=0
report >"$workdir/table" 2>"$workdir/check" || status=$?
{
    echo "## Instructions per echoed frame ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "callgrind, user space, all threads of the server;" \
        "(Ir(N2) - Ir(N1)) / (N2 - N1), median of $PAIRS pair(s);" \
        "$pinning. ${ccver:-unknown compiler}, ${glibc:-unknown libc}." \
        "Took ${elapsed} s."
    if [ -n "$budgets" ]; then
        [ "$scale" = 1 ] && scaled= || scaled=" × $scale"
        echo "Budgets: ${budgets#"$PWD"/}$scaled; a row fails above" \
            "1.05 × its budget."
    fi
    echo
    cat "$workdir/table"
} >"$report_md"
cat "$report_md"
# The verdicts go to stderr, and into the file as a list.
if [ -s "$workdir/check" ]; then
    sed 's/^bench-instr: /- /' "$workdir/check" >>"$report_md"
    cat "$workdir/check" >&2
fi
cp "$raw" "$build/bench-instr.tsv"
say "report written to $report_md (raw runs: $build/bench-instr.tsv)"
exit "$status"
