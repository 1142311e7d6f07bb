#!/usr/bin/env bash
# The failure tests in full: the shipped pipelines (pipelines/ad-metrics.toml and
# alert-delivery.toml, unchanged) on the real broker, ClickHouse and Redis, through kill -9
# at random moments and just after checkpoints, a broker restart, ClickHouse stopped for
# 60 s, a Redis restart, a webhook answering 500 and 429, and SIGTERM; then every window
# and alert is compared with counts from the produced events, and a summary table printed.
# scripts/test.sh runs a shorter form of the same test.
#
# It restarts the shared services: nothing else should use them while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}
scripts/build-plugins.sh
scripts/services.sh start
ADSTREAM_CHAOS=full cargo nextest run --release -p adstream --no-capture \
    -E 'test(/chaos::/)' "$@"
