#!/usr/bin/env bash
# Builds the plugins for wasm32-wasip2 and copies each component to plugins/dist/, where
# pipeline files point. A file is replaced only when its bytes changed, so a running host
# that watches plugins/dist/ sees a change exactly when a plugin really changed.
#
#   scripts/build-plugins.sh                 # every plugin
#   scripts/build-plugins.sh my-rule quality # just these packages
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    mapfile -t packages < <(for d in plugins/*/; do
        n=$(basename "$d")
        [ "$n" != sdk ] && [ "$n" != dist ] && [ -f "$d/Cargo.toml" ] && echo "$n"
    done)
else
    packages=("$@")
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
cargo build --release --target wasm32-wasip2 "${args[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p plugins/dist
for p in "${packages[@]}"; do
    file="${p//-/_}.wasm"
    src="$target_dir/wasm32-wasip2/release/$file"
    dst="plugins/dist/$file"
    if ! cmp -s "$src" "$dst"; then
        # Copy then rename, so a watcher never reads a half-written file.
        cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"
        echo "updated $dst ($(stat -c %s "$dst") bytes)" >&2
    fi
done
