#!/usr/bin/env bash
# How events/s grows with hosts: the shipped pipelines/ad-metrics.toml with
# `shared = true` (written beside a copy, the shipped file is not changed), end to end
# from the broker, on a topic of 6 partitions that already holds every event: one host,
# then 2 hosts of a new group on the same topic. Prints, per run, the events/s from the
# first record read to the last, the ratio to one host, and the CPU the hosts, the broker
# and ClickHouse used meanwhile (on 2 cores they share the machine).
#
#   scripts/scale.sh                 # 600,000 events, 1 then 2 hosts
#   scripts/scale.sh 1000000 1 2 3   # events, then host counts
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}
events=${1:-600000}
shift || true
counts=("${@:-1 2}")
read -r -a counts <<<"${counts[*]}"

scripts/build-plugins.sh >&2
cargo build --release -q -p adstream
scripts/services.sh start >&2
bin=$CARGO_TARGET_DIR/release/adstream
work=$(mktemp -d)
ns="scale$$-"
cleanup() {
    for pid in $(cat "$work"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    # The database the runs' sinks created, named after this script's pid: its own.
    clickhouse-client --query "DROP DATABASE IF EXISTS ${ns%-}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "scale: $events events into ${ns}ad-events (6 partitions)" >&2
"$bin" generate --topic "${ns}ad-events" --create-partitions 6 --count "$events" --rate 20000 \
    --no-pace --seed 3 >&2

calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# CPU seconds (user + system) a process has used so far.
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pids_of() { pgrep -d ' ' -f "$1" || true; }

# Total records every host read, from their status.
records() {
    local total=0 addr n
    for log in "$work"/run"$1"-*.log; do
        addr=$(grep -o 'status on http://[0-9.:]*' "$log" | head -1 | sed 's|status on http://||')
        [ -n "$addr" ] || continue
        n=$("$bin" status --json --addr "$addr" 2>/dev/null |
            python3 -c 'import json,sys; print(sum(p["records"] for p in json.load(sys.stdin)["pipelines"]))' 2>/dev/null || echo 0)
        total=$((total + n))
    done
    echo "$total"
}

printf '\n| hosts | events/s | ÷ 1 host | hosts CPU s | broker CPU s | ClickHouse CPU s | wall s |\n|---|---|---|---|---|---|---|\n'
base=""
run=0
for n in "${counts[@]}"; do
    run=$((run + 1))
    sed -e "s|^group = .*|group = \"${ns}ad-metrics-$run\"\nshared = true|" \
        -e "s|\"../plugins/dist/|\"$PWD/plugins/dist/|" pipelines/ad-metrics.toml >"$work/p$run.toml"
    export ADSTREAM_NS=$ns ADSTREAM_CH_DB=${ns%-} ADSTREAM_STATE=$work/state$run \
        ADSTREAM_PII_KEY=scale-bench-key-NOT-A-SECRET-0000 ADSTREAM_STATUS_ADDR=127.0.0.1:0
    broker=$(pids_of nisshi) ch=$(pids_of clickhouse-server)
    b0=0 c0=0
    for p in $broker; do b0=$(calc "$b0 + $(cpu "$p")"); done
    for p in $ch; do c0=$(calc "$c0 + $(cpu "$p")"); done
    hosts=()
    for ((h = 1; h <= n; h++)); do
        "$bin" run "$work/p$run.toml" 2>"$work/run$run-$h.log" >/dev/null &
        hosts+=($!)
        echo $! >"$work/$run-$h.pid"
    done
    began="" start=$(date +%s.%N)
    while :; do
        got=$(records "$run")
        now=$(date +%s.%N)
        if [ -z "$began" ] && [ "$got" -gt 0 ]; then began=$now; fi
        [ "$got" -ge "$events" ] && break
        if [ "$(calc "$now - $start > 600")" = "1.000" ]; then
            echo "scale: $n host(s) read $got of $events events in 10 minutes" >&2
            exit 1
        fi
        sleep 0.2
    done
    secs=$(calc "$now - $began")
    rate=$(calc "$events / $secs")
    hcpu=0
    for p in "${hosts[@]}"; do hcpu=$(calc "$hcpu + $(cpu "$p")"); done
    b1=0 c1=0
    for p in $broker; do b1=$(calc "$b1 + $(cpu "$p")"); done
    for p in $ch; do c1=$(calc "$c1 + $(cpu "$p")"); done
    kill "${hosts[@]}" 2>/dev/null || true
    wait "${hosts[@]}" 2>/dev/null || true
    base=${base:-$rate}
    printf '| %d | %.0f | %.2f | %.1f | %.1f | %.1f | %.1f |\n' "$n" "$rate" \
        "$(calc "$rate / $base")" "$hcpu" "$(calc "$b1 - $b0")" \
        "$(calc "$c1 - $c0")" "$secs"
done
