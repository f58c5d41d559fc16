#!/usr/bin/env bash
# cfmem's logits against Hugging Face transformers' on tiny random
# checkpoints of GPT-2, GPT-NeoX (Pythia) and Llama-style models:
# installs transformers from PyPI into .venv-hf (once), writes the
# checkpoints and transformers' logits with scripts/hf_fixtures.py, and runs
# crates/core/tests/hf.rs on them (relative error at most 1e-5).
#
#   bash scripts/check-hf.sh            # fresh fixtures in target/hf-fixtures
#   bash scripts/check-hf.sh --bless    # and copy them over the committed ones
#
# The committed fixtures (crates/core/tests/fixtures/hf/) let `cargo test`
# check the loading and the logits without Python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-hf
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch transformers safetensors
fi
"$venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
out=target/hf-fixtures
rm -rf "$out"
"$venv/bin/python" scripts/hf_fixtures.py "$out"
CFMEM_HF_FIXTURES="$PWD/$out" cargo test --release -p cfmem-core --test hf -- --nocapture
if [ "${1:-}" = "--bless" ]; then
    rm -rf crates/core/tests/fixtures/hf
    mkdir -p crates/core/tests/fixtures
    cp -r "$out" crates/core/tests/fixtures/hf
    echo "fixtures copied to crates/core/tests/fixtures/hf"
fi
