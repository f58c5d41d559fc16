#!/usr/bin/env bash
# Build the `cfmem` binary (release) and print its path as cargo reports
# it, so that scripts find it wherever cargo puts it (CARGO_TARGET_DIR,
# `build.target-dir` in a cargo config, a cross target):
#
#     BIN=$(bash scripts/cfmem-bin.sh)
#
# Extra arguments go to `cargo build` (e.g. `--features cuda`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo build --release -q -p cfmem-cli --message-format=json "$@" \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "cfmem-bin: cargo reported no cfmem executable" >&2
    exit 1
fi
echo "$bin"
