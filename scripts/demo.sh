#!/usr/bin/env bash
# Runs the demo: builds the plugins and the host, then `adstream demo` with any arguments
# given (e.g. --duration 90 --out /tmp/demo). Needs no services.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-plugins.sh
exec cargo run --release -p adstream -- demo "$@"
