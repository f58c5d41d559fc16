#!/usr/bin/env bash
# A 100,000-document end-to-end run on one machine: a synthetic corpus
# (`cfmem::synthetic::corpus`, 100 bytes a document on average), then
# `cfmem run` (2 tiny models, 1 epoch, blocks of 2) and `cfmem report` with
# the CSV, JSON and plots. Prints each step's wall time and peak memory
# (GNU time). Takes about 10 minutes on 2 cores.
#
#     bash scripts/smoke-100k.sh [N_DOCS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000}
WORK=$(mktemp -d /tmp/cfmem-smoke.XXXXXX)
BIN=$(bash "$ROOT/scripts/cfmem-bin.sh")
(cd "$ROOT" && cargo run --release -q --example synthetic_corpus -- "$N" "$WORK/corpus.jsonl")
measure() {
    local name=$1
    shift
    /usr/bin/time -f "$name: %e s wall, %M KiB peak resident" "$@"
}
measure "run" "$BIN" run --corpus "$WORK/corpus.jsonl" --out "$WORK/exp" --models 2 --epochs 1
measure "report" "$BIN" report "$WORK/exp" --top 5 --csv "$WORK/mem.csv" --json "$WORK/mem.json" --plots "$WORK/plots"
echo "records: $(du -b "$WORK"/exp/runs/*.rec | awk '{s += $1} END {print s}') bytes for 2 models; tokens.bin: $(stat -c %s "$WORK/exp/tokens.bin") bytes"
echo "CSV: $(($(wc -l < "$WORK/mem.csv") - 1)) documents; plots: $(ls "$WORK/plots" | tr '\n' ' ')"
echo "everything is in $WORK"
