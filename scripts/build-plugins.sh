#!/usr/bin/env bash
# Builds the plugins for wasm32-wasip2 and copies each component to its dist folder:
# plugins/dist/ for the plugins users deploy, test-plugins/dist/ for the ones the tests use
# (hostile plugins that misbehave on purpose). A file is replaced only when its bytes
# changed, so a running host that watches a dist folder sees a change exactly when a
# plugin really changed.
#
#   scripts/build-plugins.sh                 # every plugin and test plugin
#   scripts/build-plugins.sh my-rule quality # just these packages
set -euo pipefail
cd "$(dirname "$0")/.."

# Each package's folder (plugins/NAME or test-plugins/NAME), by package name.
declare -A folder
for d in plugins/*/ test-plugins/*/; do
    n=$(basename "$d")
    [ "$n" != sdk ] && [ "$n" != dist ] && [ -f "$d/Cargo.toml" ] && folder[$n]=$(dirname "$d")
done
if [ "$#" -eq 0 ]; then
    mapfile -t packages < <(printf '%s\n' "${!folder[@]}" | sort)
else
    packages=("$@")
    for p in "${packages[@]}"; do
        [ -n "${folder[$p]:-}" ] || { echo "no plugin package \`$p\` under plugins/ or test-plugins/" >&2; exit 2; }
    done
fi

# rust-toolchain.toml names the target, but rustup adds it only when it installs the
# toolchain itself; a machine that already had the toolchain lacks it (seen here).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "adding the wasm32-wasip2 target (once per machine)" >&2
    rustup target add wasm32-wasip2 >&2
fi

args=()
for p in "${packages[@]}"; do args+=(-p "$p"); done
echo "building ${#packages[@]} plugin(s) for wasm32-wasip2: ${packages[*]}" >&2
cargo build --profile plugin --target wasm32-wasip2 "${args[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for p in "${packages[@]}"; do
    file="${p//-/_}.wasm"
    src="$target_dir/wasm32-wasip2/plugin/$file"
    dist="${folder[$p]}/dist"
    dst="$dist/$file"
    mkdir -p "$dist"
    if ! cmp -s "$src" "$dst"; then
        # Copy then rename, so a watcher never reads a half-written file.
        cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"
        echo "updated $dst ($(stat -c %s "$dst") bytes)" >&2
    fi
done
