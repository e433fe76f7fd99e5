#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, every report
# fatal) in build-fuzz/ and runs each one for FUZZ_SECONDS against a copy
# of its committed corpus. Exits non-zero when a target crashed, leaked,
# hung or ran out of memory, and prints where the reproducer is.
#
#   make fuzz                          # 60 s per target
#   make fuzz FUZZ_SECONDS=300
#   FUZZ_TARGETS=fuzz_decoder scripts/fuzz.sh
#   FUZZ_MERGE=1 scripts/fuzz.sh       # then fold new finds into
#                                      # fuzz/corpus/ (minimised)
#
# Environment:
#   FUZZ_SECONDS  seconds per target (60)
#   FUZZ_TARGETS  targets to run ("fuzz_decoder fuzz_connection")
#   FUZZ_BUILD    build tree (build-fuzz)
#   FUZZ_MERGE    1: after a clean run, merge what the run found into
#                 fuzz/corpus/<target>/ with -merge=1 (only inputs that
#                 reach new edges; the seed-* files are kept)
#   FUZZ_ARGS     extra libFuzzer flags (e.g. "-jobs=2 -workers=2")
#   CC            the clang to use (clang)
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-fuzz_decoder fuzz_connection}"
build="${FUZZ_BUILD:-build-fuzz}"
merge="${FUZZ_MERGE:-0}"
extra="${FUZZ_ARGS:-}"
cc="${CC:-clang}"

case "$seconds" in
'' | *[!0-9]*)
    echo "fuzz.sh: FUZZ_SECONDS must be a number of seconds" >&2
    exit 2
    ;;
esac
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: $cc not found (Debian: bash scripts/install-deps.sh" \
        "fuzz installs clang and libclang-rt-14-dev)" >&2
    exit 2
fi

# The MMO demo's target lives with the demo (examples/mmo/, which needs
# protobuf-c): configure the examples only when it is asked for.
examples=OFF
case " $targets " in *" fuzz_mmo_input "* | *" fuzz_mmo_bots "* | *" fuzz_mmo_relay "*) examples=ON ;; esac

echo "== fuzz: configuring $build/ with $cc (ASan+UBSan, libFuzzer)"
CC="$cc" cmake -S . -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DZINX_SANITIZE=address \
    -DZINX_BUILD_LIBFUZZER=ON \
    -DZINX_BUILD_TESTS=OFF \
    -DZINX_BUILD_EXAMPLES="$examples" \
    -DZINX_BUILD_BENCH=OFF >/dev/null
# shellcheck disable=SC2086 # one word per target
env -u MAKELEVEL cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" \
    --target $targets

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_dir="$build/fuzz-run"
failed=()
summary=()

# Reads libFuzzer's -print_final_stats lines from a log.
stat_of() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

for t in $targets; do
    bin="$build/bin/$t"
    seeds="fuzz/corpus/$t"
    work="$run_dir/$t/corpus"
    artifacts="$run_dir/$t/artifacts"
    log="$run_dir/$t.log"
    mkdir -p "$work" "$artifacts"
    rm -f "$artifacts"/*
    # The copy keeps what earlier runs found; the committed corpus is
    # never written by the fuzzer.
    cp -n "$seeds"/* "$work"/ 2>/dev/null || true
    before="$(find "$work" -type f | wc -l)"
    flags=()
    [ -f "fuzz/$t.dict" ] && flags+=("-dict=fuzz/$t.dict")
    # The server frees a closed connection on its own threads, a moment
    # after the input returns; a leak check after every input then runs
    # for nothing and costs 5x the speed. LeakSanitizer still checks the
    # whole process at exit, after the servers are freed.
    [ "$t" = fuzz_connection ] && flags+=("-detect_leaks=0")

    echo "== fuzz: $t for ${seconds}s (corpus: $before inputs, log: $log)"
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${flags[@]}" $extra "$work" >"$log" 2>&1 || rc=$?

    after="$(find "$work" -type f | wc -l)"
    execs="$(stat_of number_of_executed_units "$log")"
    speed="$(stat_of average_exec_per_sec "$log")"
    line="$(printf '%-16s %10s execs  %6s exec/s  corpus %d -> %d' \
        "$t" "${execs:-?}" "${speed:-?}" "$before" "$after")"
    repro=("$artifacts"/*)
    if [ "$rc" -ne 0 ] || [ -e "${repro[0]}" ]; then
        failed+=("$t")
        summary+=("$line  FAILED (exit $rc)")
        echo "fuzz: $t FAILED (exit $rc); the end of $log:" >&2
        grep -v '^\[\|^#' "$log" | tail -n 40 >&2 || true
        for f in "${repro[@]}"; do
            [ -e "$f" ] || continue
            case "$f" in
            /*) path="$f" ;;
            *) path="$root/$f" ;;
            esac
            echo "fuzz: reproducer: $path" >&2
            echo "fuzz:   re-run:   $bin $f" >&2
            echo "fuzz:   replay:   build/bin/${t}_replay $f" \
                "(any build tree)" >&2
        done
        continue
    fi
    summary+=("$line  ok")

    if [ "$merge" = 1 ]; then
        # Seeds first, then only the inputs that add coverage to them.
        fresh="$run_dir/$t/merged"
        rm -rf "$fresh"
        mkdir -p "$fresh"
        cp "$seeds"/seed-* "$fresh"/ 2>/dev/null || true
        # New edges only (-use_counters=0): hit-count variants would
        # multiply the committed corpus for little gain.
        "$bin" -merge=1 -use_counters=0 -timeout=30 -rss_limit_mb=4096 \
            "${flags[@]}" "$fresh" "$seeds" "$work" \
            >"$run_dir/$t.merge.log" 2>&1 || {
            echo "fuzz: $t: merge failed, see $run_dir/$t.merge.log" >&2
            failed+=("$t-merge")
            continue
        }
        added=0
        for f in "$fresh"/*; do
            name="$(basename "$f")"
            if [ ! -e "$seeds/$name" ]; then
                cp "$f" "$seeds/$name"
                added=$((added + 1))
            fi
        done
        echo "fuzz: $t: merged $added new inputs into $seeds/"
    fi
done

echo
echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "make fuzz: FAILED: ${failed[*]} (reproducers above)"
    exit 1
fi
echo "make fuzz: no crash"
