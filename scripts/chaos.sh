#!/usr/bin/env bash
# The failure tests in full: the shipped pipelines (pipelines/ad-metrics.toml and
# alert-delivery.toml, unchanged) on a real broker, ClickHouse and Redis, through kill -9
# at random moments and just after checkpoints, a broker restart, ClickHouse stopped for
# 60 s, Redis killed and restarted, a webhook answering 500 and 429, and SIGTERM; then
# every window and alert is compared with counts from the produced events, and a summary
# table printed. Then hosts sharing the shipped ad pipeline (ADSTREAM_SHARED=true) are
# scaled 1 → 3 → 2 → 3 → 2 → 1 (joins, a SIGTERM, a kill -9, a kill -9 of the host that
# merges the windows) over 600,000 events, beside one host: the same windows and alerts,
# and a table of how long each move took. scripts/test.sh runs shorter forms of both.
#
# The services it stops and restarts are its own (scripts/instance.sh, on their own ports
# and folders); services.sh only installs what they need.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}
scripts/build-plugins.sh
scripts/services.sh start
ADSTREAM_CHAOS=full cargo nextest run --release -p adstream --no-capture \
    -E 'test(/chaos::/) | test(/shared_windows::/)' "$@"
