#!/usr/bin/env bash
# A 100,000-document end-to-end run on one machine: a synthetic corpus
# (`cfmem::synthetic::corpus`, 100 bytes a document on average), then
# `cfmem run` (2 tiny models, 1 epoch, blocks of 2) and `cfmem report` with
# the CSV, Parquet, JSON, plots and the HTML report. Prints each step's wall
# time and peak memory (GNU time). Takes about 5 minutes on 2 cores. With
# CHECK_HTML=1 the HTML report is then opened in headless Chromium by
# scripts/check-html.sh (screenshots in the work directory).
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
measure "report" "$BIN" report "$WORK/exp" --top 5 --csv "$WORK/mem.csv" --parquet "$WORK/mem.parquet" \
    --json "$WORK/mem.json" --plots "$WORK/plots" --html "$WORK/report.html"
echo "records: $(du -b "$WORK"/exp/runs/*.rec | awk '{s += $1} END {print s}') bytes for 2 models; tokens.bin: $(stat -c %s "$WORK/exp/tokens.bin") bytes"
echo "CSV: $(($(wc -l < "$WORK/mem.csv") - 1)) documents; plots: $(ls "$WORK/plots" | tr '\n' ' ')"
echo "Parquet: $(stat -c %s "$WORK/mem.parquet") bytes; HTML report: $(stat -c %s "$WORK/report.html") bytes"
if [ "${CHECK_HTML:-0}" = 1 ]; then
    SHOTS="$WORK/html" bash "$ROOT/scripts/check-html.sh" "$WORK/report.html"
fi
echo "everything is in $WORK"
