#!/usr/bin/env bash
# Runs the whole test suite: builds the plugins (the host tests load the real components),
# installs and starts the services, then runs every test of the workspace: plugins
# natively, the host against real components and real services. Extra arguments go to
# the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-plugins.sh
# Redis, ClickHouse and the Kafka-compatible broker, for the tests that use them (the
# tests also call this, so a test run by hand starts them too).
scripts/services.sh start

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --workspace --no-fail-fast "$@"
else
    echo "cargo-nextest not found; using cargo test" >&2
    cargo test --release --workspace --no-fail-fast "$@"
fi
