#!/usr/bin/env bash
# Installs the Debian packages that building and testing zinx need.
# Silent and quick when they are all present. As root it installs what is
# missing; otherwise it prints the command to run and fails.
set -euo pipefail

packages=(
    cmake
    pkg-config
    libcjson-dev
    libcmocka-dev
    clang
    clang-format
    libclang-rt-14-dev
    valgrind
)

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
        grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; make sure these are present:" >&2
    echo "  gcc make ${packages[*]}" >&2
    exit 0
fi

missing=()
# gcc and make are enough; build-essential is the usual way to get them.
if ! is_installed build-essential &&
    ! { is_installed gcc && is_installed make; }; then
    missing+=(build-essential)
fi
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done

[ "${#missing[@]}" -eq 0 ] && exit 0

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    # The line must work as pasted, also on a machine without package
    # lists (a fresh Docker image) or without sudo (minimal Debian).
    if command -v sudo >/dev/null 2>&1; then
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
