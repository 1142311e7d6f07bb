#!/usr/bin/env bash
# The failure tests in full: the shipped pipelines (pipelines/ad-metrics.toml and
# alert-delivery.toml, unchanged) on a real broker, ClickHouse and Redis, through kill -9
# at random moments and just after checkpoints, a broker restart, ClickHouse stopped for
# 60 s, Redis killed and restarted, a webhook answering 500 and 429, and SIGTERM; then
# every window and alert is compared with counts from the produced events, and a summary
# table printed. scripts/test.sh runs a shorter form of the same test.
#
# The services it stops and restarts are its own (scripts/instance.sh, on their own ports
# and folders); services.sh only installs what they need.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}
scripts/build-plugins.sh
scripts/services.sh start
ADSTREAM_CHAOS=full cargo nextest run --release -p adstream --no-capture \
    -E 'test(/chaos::/)' "$@"
