#!/usr/bin/env bash
# Runs a demo: builds the plugins and the host, then `adstream demo` with any arguments
# given (e.g. --duration 90 --out /tmp/demo). Needs no services.
#
#   scripts/demo.sh            # seed 001's ad monitoring
#   scripts/demo.sh shop       # seed 000's e-commerce pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
pipeline=()
if [ "${1:-}" = shop ]; then
    shift
    pipeline=(--pipeline shop)
fi
scripts/build-plugins.sh
exec cargo run --release -p adstream -- demo "${pipeline[@]}" "$@"
