#!/usr/bin/env bash
# Check cfmem's GPT-2 layout against Hugging Face transformers, once:
#
#     bash scripts/check-gpt2.sh
#
# `cargo run --release --example gpt2_export` trains a tiny model (2 epochs
# on the quickstart corpus), writes it in GPT-2 layout (model.safetensors +
# config.json), reads it back through cfmem's GPT-2 reader and writes the
# logits cfmem computes for a fixed text; then `transformers`'
# GPT2LMHeadModel loads the same directory and computes its logits, and the
# script prints the largest difference (it fails above 1e-4). torch,
# transformers and safetensors come from PyPI into target/gpt2-check-venv
# (several GB: PyPI's torch wheel brings CUDA libraries; GPT2_CHECK_VENV=DIR
# uses another virtual environment).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GPT2_CHECK_VENV:-target/gpt2-check-venv}
if ! "$venv/bin/python" -c "import torch, transformers, safetensors" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch transformers safetensors
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run --release -q --example gpt2_export -- "$dir"
"$venv/bin/python" - "$dir" <<'PY'
import json, sys
import torch
import transformers
from transformers import GPT2LMHeadModel

d = sys.argv[1]
want = json.load(open(f"{d}/cfmem_logits.json"))
model = GPT2LMHeadModel.from_pretrained(d).eval()
with torch.no_grad():
    logits = model(torch.tensor([want["ids"]])).logits[0]
ours = torch.tensor(want["logits"]).reshape(len(want["ids"]), want["vocab"])
diff = (logits - ours).abs().max().item()
scale = ours.abs().max().item()
print(f"gpt2 check: transformers {transformers.__version__}, torch {torch.__version__}: "
      f"{len(want['ids'])} positions x {want['vocab']} logits, max |difference| {diff:.2e} "
      f"(largest logit {scale:.2f})")
assert diff < 1e-4, diff
PY
