#!/usr/bin/env bash
# Check cfmem against the Python data stack, both ways:
#
#     bash scripts/check-parquet.sh
#
# 1. `cfmem report --parquet` writes a table that pandas (through pyarrow)
#    and polars read, with the same values as the CSV (a small experiment on
#    the bundled dictionary entries: 4 tiny models, 2 epochs).
# 2. A `.jsonl.zst` and a Parquet copy of that corpus, written by Python's
#    zstandard and pyarrow, train to records byte-identical to the JSONL's
#    (2 models, 1 epoch each).
#
# About 3 minutes on 2 cores, in a temporary directory. pandas, pyarrow,
# polars and zstandard come from PyPI into a virtual environment under
# target/ (made on first use; needs python3 with venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/parquet-check-venv
if ! "$venv/bin/python" -c "import pandas, pyarrow, polars, zstandard" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q pandas pyarrow polars zstandard
fi
BIN=$(bash scripts/cfmem-bin.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BIN" run --corpus datasets/devil.jsonl --out "$tmp/exp" --models 4 --epochs 2 >/dev/null
"$BIN" report "$tmp/exp" --csv "$tmp/mem.csv" --parquet "$tmp/mem.parquet" --top 0 >/dev/null
"$venv/bin/python" - "$tmp/mem.csv" "$tmp/mem.parquet" <<'PY'
import sys
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

csv, path = sys.argv[1], sys.argv[2]
want = pd.read_csv(csv, keep_default_na=False, na_values={c: [""] for c in
    ["in_mean", "out_mean", "mem", "se", "ci_low", "ci_high"]})
pdf = pd.read_parquet(path)
plf = pl.read_parquet(path)
meta = pq.read_metadata(path).metadata
assert len(pdf) == len(want) == plf.height, (len(pdf), len(want), plf.height)
cols = ["id", "index", "n_in", "n_out", "in_mean", "out_mean", "mem", "se",
        "ci_low", "ci_high", "reason", "group", "kind"]
assert list(pdf.columns) == cols == plf.columns, (list(pdf.columns), plf.columns)
assert (pdf["id"] == want["id"].astype(str)).all()
for c in ["index", "n_in", "n_out"]:
    assert (pdf[c].to_numpy() == want[c].to_numpy()).all(), c
    assert (plf[c].to_numpy() == want[c].to_numpy()).all(), c
for c in ["in_mean", "out_mean", "mem", "se", "ci_low", "ci_high"]:
    # The CSV prints the shortest text that reads back as the same f64.
    a, b, p = pdf[c].to_numpy(), want[c].to_numpy(dtype=float), plf[c].to_numpy()
    assert np.array_equal(a, b, equal_nan=True), c
    assert np.array_equal(p, b, equal_nan=True), c
assert set(pdf["kind"]) <= {"random canaries", "controls", "documents"}, set(pdf["kind"])
assert int(meta[b"cfmem.n_models"]) == 4, meta
top = plf.sort("mem", descending=True, nulls_last=True).head(3)
print(f"parquet check: {len(pdf)} documents read by pandas {pd.__version__}, "
      f"pyarrow, polars {pl.__version__}; equal to the CSV")
print(top.select(["id", "mem", "ci_low", "ci_high", "kind"]))
PY

# 2. Compressed and Parquet copies of the corpus.
"$venv/bin/python" - datasets/devil.jsonl "$tmp" <<'PY'
import sys
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
import zstandard

src, tmp = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
open(f"{tmp}/devil.jsonl.zst", "wb").write(zstandard.ZstdCompressor(level=19).compress(data))
pq.write_table(pj.read_json(src), f"{tmp}/devil.parquet", compression="snappy")
PY
for copy in devil.jsonl.zst devil.parquet; do
    "$BIN" run --corpus "$tmp/$copy" --out "$tmp/$copy.exp" --models 2 --epochs 1 2>/dev/null >/dev/null
done
"$BIN" run --corpus datasets/devil.jsonl --out "$tmp/plain.exp" --models 2 --epochs 1 2>/dev/null >/dev/null
for copy in devil.jsonl.zst devil.parquet; do
    for rec in "$tmp/plain.exp"/runs/*.rec; do
        cmp "$rec" "$tmp/$copy.exp/runs/$(basename "$rec")"
    done
done
echo "corpus check: the .jsonl.zst and Parquet copies give byte-identical records ($(ls "$tmp/plain.exp"/runs/*.rec | wc -l) each)"
