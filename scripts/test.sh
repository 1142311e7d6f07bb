#!/usr/bin/env bash
# Runs the whole test suite: builds the plugins (the host tests load the real components),
# then every test of the workspace, plugins natively and the host against real
# components. Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-plugins.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --workspace --no-fail-fast "$@"
else
    echo "cargo-nextest not found; using cargo test" >&2
    cargo test --release --workspace --no-fail-fast "$@"
fi
