#!/usr/bin/env bash
# Installs the Debian packages that one make target needs.
#
#   bash scripts/install-deps.sh [--check] [PROFILE...]
#
# Profiles (several may be given; none means "test"):
#   build    make, make demo, make bench, make install: gcc and its libc
#            headers, make, cmake, pkg-config, cJSON, liburing (the
#            io_uring backend), OpenSSL 3 (libssl-dev: TLS), protobuf-c
#            (libprotobuf-c-dev, protobuf-c-compiler: the MMO demo's
#            messages), the NATS client's headers (libnats-dev: the
#            cluster; the library itself is opened at run time only by
#            a server that joins a cluster), and cmocka, which the default configure needs
#            because it builds tests/
#   test     make test, make deps: build, valgrind (a ctest test runs
#            under it), haproxy (test_proxy_haproxy's peer), openssl and
#            python3 (the TLS tests' peers), chromium, Node.js and npm
#            (the WebSocket tests' peers), protobuf-compiler and
#            python3-protobuf (the MMO demo's Python client),
#            nats-server and prometheus (the scale-out tests' peers),
#            python (the Python binding's build) with python3-pytest and
#            python3-gevent (its tests, tests/python, and the gevent echo
#            peer's framing check), golang-go and
#            golang-github-xtaci-kcp-dev (tests/go/kcp_peer, the KCP
#            interop tests' kcp-go peer). gcc brings its own sanitizer runtimes
#            (libasan8, libubsan1, libtsan2, through libgcc-12-dev).
#   instr    make bench-instr: build, and valgrind (callgrind counts the
#            instructions)
#   fuzz     make fuzz: clang and its libFuzzer runtime (libclang-rt-14-dev,
#            which depends on the 32-bit libc), make, cmake, pkg-config,
#            cJSON; no cmocka (scripts/fuzz.sh builds no tests)
#   soak     make soak: build without cmocka (scripts/soak.sh builds no
#            tests)
#   cluster  make cluster-demo: build, and the demo's peers nats-server
#            and haproxy
#   format   make format, make format-check: clang-format
#   python   make python: build, and Debian's python3 headers,
#            setuptools, wheel, pip and venv (pip builds the binding with
#            them into a virtual environment; nothing is downloaded)
#   peers    the benchmark's optional peers (libuv, libevent, Go);
#            scripts/bench.sh asks for them and skips what is missing
#   all      every profile above
#   bench    make bench: python (the binding's build), and python3-gevent
#            (the gevent echo server scripts/bench-python.sh measures
#            Python handlers against)
#   demo is a name for build, bench-instr for instr,
#   format-check for format.
#
# Silent and quick when everything is present. As root it installs what
# is missing; otherwise it prints the command to run and fails. --check
# never installs: it only prints the command and fails.
set -euo pipefail

usage() {
    echo "usage: $0 [--check]" \
        "[build|test|instr|fuzz|soak|cluster|format|peers|python|all]..." >&2
    exit 2
}

cc_pkgs=(gcc libc6-dev)
cmake_pkgs=(make cmake pkg-config libcjson-dev liburing-dev libssl-dev)

# Prints the packages of one profile, one a line.
profile_packages() {
    case $1 in
    build | demo) printf '%s\n' "${cc_pkgs[@]}" "${cmake_pkgs[@]}" \
        libcmocka-dev libprotobuf-c-dev protobuf-c-compiler libnats-dev ;;
    bench)
        # scripts/bench-python.sh: the Python binding's build, and its
        # baseline, the gevent echo server.
        profile_packages python
        echo python3-gevent
        ;;
    test)
        profile_packages build
        printf '%s\n' valgrind openssl python3
        echo haproxy # test_proxy_haproxy's real PROXY protocol peer
        # WebSocket's test peers: a real browser, and Node.js with npm
        # (npm's ws package, installed by tests/node/install.sh). A
        # machine's own Node.js may come from outside Debian with npm
        # inside it: only a missing command asks for Debian's package.
        echo chromium
        command -v node >/dev/null 2>&1 || echo nodejs
        command -v npm >/dev/null 2>&1 || echo npm
        # The MMO demo's compatibility client: protoc compiles its
        # messages for Debian's /usr/bin/python3 at test time.
        printf '%s\n' protobuf-compiler python3-protobuf
        # Scale-out's real peers: the NATS server the cluster tests join,
        # and Prometheus, which scrapes /metrics in its test.
        printf '%s\n' nats-server prometheus
        # The Python binding's tests (tests/python): pytest runs them,
        # and gevent is the port's runtime that the benchmark compares.
        profile_packages python
        printf '%s\n' python3-pytest python3-gevent
        # KCP's interop peer: a Go program on Debian's kcp-go.
        printf '%s\n' golang-go golang-github-xtaci-kcp-dev
        ;;
    python)
        profile_packages build
        printf '%s\n' python3 python3-dev python3-setuptools python3-wheel \
            python3-pip python3-venv
        ;;
    cluster | cluster-demo)
        profile_packages build
        printf '%s\n' nats-server haproxy
        ;;
    instr | bench-instr)
        profile_packages build
        echo valgrind
        ;;
    # protobuf-c for fuzz_mmo_input, the MMO demo's target.
    fuzz) printf '%s\n' "${cmake_pkgs[@]}" clang libclang-rt-14-dev \
        libprotobuf-c-dev protobuf-c-compiler ;;
    soak) printf '%s\n' "${cc_pkgs[@]}" "${cmake_pkgs[@]}" ;;
    format | format-check) echo clang-format ;;
    peers) printf '%s\n' libuv1-dev libevent-dev golang-go ;;
    all)
        local p
        for p in test fuzz soak format peers; do
            profile_packages "$p"
        done
        ;;
    *) return 1 ;;
    esac
}

check_only=0
profiles=()
for arg in "$@"; do
    case $arg in
    --check) check_only=1 ;;
    -*) usage ;;
    *) profiles+=("$arg") ;;
    esac
done
[ "${#profiles[@]}" -gt 0 ] || profiles=(test)

packages=()
declare -A seen=()
for prof in "${profiles[@]}"; do
    list=$(profile_packages "$prof") || usage
    for p in $list; do
        [ -n "${seen[$p]:-}" ] && continue
        seen[$p]=1
        packages+=("$p")
    done
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; make sure these are present" \
        "(Debian names): ${packages[*]}" >&2
    exit 0
fi

# One dpkg-query for all of them: this runs on every make.
declare -A installed=()
while read -r name status; do
    [ "$status" = "install ok installed" ] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" \
    2>/dev/null || true)

missing=()
for p in "${packages[@]}"; do
    [ -n "${installed[$p]:-}" ] || missing+=("$p")
done

[ "${#missing[@]}" -eq 0 ] && exit 0

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")

if [ "$check_only" = 1 ] || [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    # The line must work as pasted, also on a machine without package
    # lists (a fresh Docker image) or without sudo (minimal Debian).
    if [ "$(id -u)" -eq 0 ]; then
        echo "install-deps: to install them, run:" >&2
        echo "  apt-get update && ${install_cmd[*]}" >&2
    elif command -v sudo >/dev/null 2>&1; then
        echo "install-deps: to install them, run:" >&2
        echo "  sudo apt-get update && sudo ${install_cmd[*]}" >&2
    else
        echo "install-deps: to install them, run as root" \
            "(sudo is not installed):" >&2
        echo "  apt-get update && ${install_cmd[*]}" >&2
    fi
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# The package lists are refreshed only when they are absent or do not
# know a package we need; a failed install retries once after a refresh,
# which covers stale lists pointing at files the mirror has dropped.
needs_update() {
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        return 0
    fi
    local p
    for p in "${missing[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null |
            grep -q 'Candidate: [^(]'; then
            return 0
        fi
    done
    return 1
}

echo "install-deps: installing ${missing[*]}"
if needs_update; then
    apt-get update -q
fi
if ! "${install_cmd[@]}" </dev/null; then
    apt-get update -q
    "${install_cmd[@]}" </dev/null
fi
