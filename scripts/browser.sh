#!/usr/bin/env bash
# Installs what the dashboard's browser test needs, once: Debian's Chromium and
# playwright-core (from npm) to drive it; then, given arguments, runs
# scripts/dashboard-check.cjs with them (URL SCREENSHOT [HASH]).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${ADSTREAM_CACHE:-$HOME/.cache/adstream}/browser"
if ! command -v chromium >/dev/null 2>&1; then
    echo "browser: installing Debian's chromium (apt-get, a few minutes the first time)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
if [ ! -f "$cache/node_modules/playwright-core/package.json" ]; then
    echo "browser: installing playwright-core (npm) into $cache" >&2
    mkdir -p "$cache"
    (cd "$cache" && npm install --silent --no-audit --no-fund --no-save playwright-core@1 >&2)
fi
if [ $# -gt 0 ]; then
    PLAYWRIGHT_CORE="$cache/node_modules/playwright-core" CHROMIUM="$(command -v chromium)" \
        exec node scripts/dashboard-check.cjs "$@"
fi
