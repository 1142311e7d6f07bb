#!/usr/bin/env bash
# Runs the whole test suite: checks formatting and lints, builds the plugins (the host
# tests load the real components), installs and starts the services, then runs every test
# of the workspace: plugins natively, the host against real components and real services.
# Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outputs live outside the clone, so that a fresh clone (CI) reuses what an earlier
# run compiled; a machine without that cache builds from scratch, just slower.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
# The plugins first: the host embeds them (host/build.rs), and builds them itself when
# plugins/dist/ lacks them.
scripts/build-plugins.sh
echo "== cargo clippy -D warnings" >&2
cargo clippy --release --workspace --all-targets --quiet -- -D warnings

# Redis, ClickHouse and the Kafka-compatible broker, for the tests that use them (the
# tests also call this, so a test run by hand starts them too).
scripts/services.sh start
# Chromium and playwright-core for the dashboard's browser test, the Prometheus client's
# parser for the metrics test (each installed once; the tests call these scripts too).
scripts/browser.sh
scripts/prom-parse.sh --install

# The failure tests run after the rest, on their own (in a short form; scripts/chaos.sh
# runs the full one): they start and restart services of their own, which would compete
# with the other tests for the two cores.
if cargo nextest --version >/dev/null 2>&1; then
    status=0
    cargo nextest run --release --workspace --no-fail-fast -E 'not test(/chaos::/)' "$@" || status=$?
    echo "== failure tests (short form)" >&2
    cargo nextest run --release -p adstream --no-fail-fast --no-capture -E 'test(/chaos::/)' "$@" || status=$?
    exit $status
else
    echo "cargo-nextest not found; using cargo test" >&2
    cargo test --release --workspace --no-fail-fast "$@" -- --skip chaos::
    cargo test --release -p adstream --test it "$@" -- --test-threads 1 --nocapture chaos::
fi
