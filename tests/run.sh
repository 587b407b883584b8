#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian/Ubuntu machine, then run them.
# Used as-is by `.ci/run`. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# A real Valkey/Redis for the cluster tests (Debian ships redis-server; valkey-server
# where the distribution has it). The tests start their own instances on free ports.
command -v valkey-server >/dev/null 2>&1 || command -v redis-server >/dev/null 2>&1 \
    || need_apt+=(redis-server)
# npm fetches the pinned WebXR emulator for the VR browser test.
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if ((${#need_apt[@]})) && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test,media]"

# The WebXR emulator for the VR browser test (pinned in tests/web/package.json; loaded
# into test pages only, never served by the app).
if command -v npm >/dev/null 2>&1 && [ ! -f tests/web/node_modules/iwer/build/iwer.min.js ]; then
    npm install --prefix tests/web --no-audit --no-fund --silent
fi

python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest -q "$@"
