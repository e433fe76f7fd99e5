#!/usr/bin/env bash
# Installs the npm packages the WebSocket tests' Node.js peers use into
# tests/node/node_modules (git-ignored). Quick when they are there; safe
# when several tests call it at once (flock). Exit 0 when installed.
set -euo pipefail
cd "$(dirname "$0")"
exec 9>.install.lock
flock 9
if [ -f node_modules/ws/package.json ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
npm install --no-audit --no-fund --loglevel=error >&2
