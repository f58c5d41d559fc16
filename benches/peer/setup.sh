#!/usr/bin/env bash
# The peers' Python environment, from PyPI: .venv-peer with torch, numpy and
# transformers (for benches/peer/torch_gpt.py and benches/peer/hf_gpt2.py), and peft
# (benches/peer/torch_families.py).
# Several GB (PyPI's Linux torch wheel brings CUDA libraries); not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv .venv-peer
.venv-peer/bin/pip install -q torch numpy transformers peft
.venv-peer/bin/python -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
