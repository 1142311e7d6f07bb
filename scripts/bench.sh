#!/usr/bin/env bash
# Runs the benchmark suite and writes BENCHMARKS.md: decode, each plugin beside its native
# build, the boundary, the seed's chains from a file, start-up, the demo's memory, end to
# end from the broker (the services are started first), then the swap and sandbox
# benches. About 12 minutes on 2 cores once the suite is built.
#
#   scripts/bench.sh                   # everything, 5 runs per figure
#   scripts/bench.sh --repeat 3        # fewer runs
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/adstream/target}

scripts/build-plugins.sh
scripts/services.sh start
out=$PWD/BENCHMARKS.md
echo "bench: the suite (host/benches/suite)" >&2
cargo bench -p adstream --bench suite -- --services --write "$out" "$@"

# The swap and sandbox benches print their own reports; they go in as printed.
section() {
    echo "bench: $2" >&2
    printf '\n## %s: `cargo bench -p adstream --bench %s`\n\n' "$1" "$2" >>"$out"
}
section "Hot swap" swap
{
    echo '```'
    cargo bench -p adstream --bench swap 2>/dev/null
    echo '```'
} >>"$out"
section "Sandbox" sandbox
cargo bench -p adstream --bench sandbox 2>/dev/null >>"$out"
echo "bench: wrote $out" >&2
