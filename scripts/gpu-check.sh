#!/usr/bin/env bash
# The device check: run on a GPU machine from a copy of the repository plus
# target/cuda-bin/ (built here by scripts/build-cuda.sh; no Rust toolchain
# needed there). Sized for one 15-minute window: about 8 minutes on one
# H100, every step under its own time limit. Figures land in $OUT
# (default target/gpu-check/):
#
#   gpu.txt          nvidia-smi: the card, driver, CUDA version, memory
#   libs.txt         which CUDA libraries the binary bound to
#   cuda-tests.txt   the CUDA tests (crates/core/tests/cuda.rs)
#   train.txt        cfmem training throughput, d 128 / 2 layers / ctx 128, K = 1, 16, 64, 256
#   peer.txt         the PyTorch peer (benches/peer/torch_gpu_ensemble.py), same shapes and K
#   exp64/, cpu16/   a 64-model experiment on the GPU and the first 16 of its models on the CPU
#   compare.txt      GPU estimates against the CPU's, per document
#   summary.txt      the lines to put in the book's GPU page (docs/src/guide/gpu.md)
#
#   bash scripts/gpu-check.sh            # PEAK_TFLOPS=67 (H100 SXM fp32 dense) for the fractions
#
# Smaller settings, e.g. to rehearse the script on a CPU with stand-ins for
# the binaries and nvidia-smi: TP_KS="1 2" EXP_MODELS=4 EXP_EPOCHS=1
# PEER_DEVICE=cpu.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-check}
BIN=${BIN:-target/cuda-bin}
PEAK_TFLOPS=${PEAK_TFLOPS:-67}
TP_KS=${TP_KS:-1 16 64 256 64-tf32}
EXP_MODELS=${EXP_MODELS:-64}
EXP_EPOCHS=${EXP_EPOCHS:-8}
PEER_DEVICE=${PEER_DEVICE:-cuda}
mkdir -p "$OUT"
if [ ! -x "$BIN/cfmem" ] && [ -f target/cuda-bin.tar.xz ]; then
  tar -C target -xJf target/cuda-bin.tar.xz
fi
START=$(date +%s)
step() { echo "== [$(($(date +%s) - START)) s] $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

step "card"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$OUT/gpu.txt" | tee -a "$OUT/summary.txt"
nvidia-smi | head -12 >> "$OUT/gpu.txt"
cat "$BIN/BUILD.txt" >> "$OUT/summary.txt"

step "CUDA libraries"
# shellcheck source=cuda/libs.sh
source scripts/cuda/libs.sh target/cuda-libs > "$OUT/libs.txt" 2>&1
ldd "$BIN/cfmem" | grep -E "cuda|cublas|curand|nvrtc|not found" >> "$OUT/libs.txt"
cat "$OUT/libs.txt" | tee -a "$OUT/summary.txt"

step "CUDA tests"
timeout 120 "$BIN/cuda-tests" --test-threads 1 > "$OUT/cuda-tests.txt" 2>&1
echo "exit $?" >> "$OUT/cuda-tests.txt"
grep -E "^test |test result|exit" "$OUT/cuda-tests.txt" | tee -a "$OUT/summary.txt"

# Throughput: K models in one ensemble on the first 200 dictionary entries
# (each model on its half), 2 epochs; tokens/s from cfmem's run summary
# (wall time including start-up and evaluation, so a lower bound).
head -n 200 datasets/devil.jsonl > "$OUT/devil200.jsonl"
# FLOP per trained token of d 128, 2 layers, ctx 128, vocabulary 259 (the
# formula of benches/peer/torch_gpt.py: forward + backward, causal attention).
FPT=$(python3 -c 'd,l,f,v,t=128,2,512,259,128; p=2*(3*d*d+d*d+2*d*f)+2*2*t*d; print(3*(l*p+2*d*v))')
step "cfmem training throughput (FLOP/token $FPT, peak $PEAK_TFLOPS TFLOP/s)"
: > "$OUT/train.txt"
for K in $TP_KS; do
  k=${K%-tf32}
  extra=()
  [ "$K" != "$k" ] && extra=(--tf32)
  rm -rf "$OUT/tp-$K"
  line=$(timeout 60 "$BIN/cfmem" run "$OUT/tp-$K" --corpus "$OUT/devil200.jsonl" --preset small \
    --device cuda --ensemble "$k" --models "$k" --jobs 1 --epochs 2 "${extra[@]}" 2>&1 | tee "$OUT/tp-$K.log" |
    grep -E "^trained .* tokens/s" | tail -1)
  rate=$(echo "$line" | sed -n 's/.*(\([0-9]*\) tokens\/s).*/\1/p')
  if [ -n "$rate" ]; then
    frac=$(python3 -c "print(f'{$rate*$FPT/($PEAK_TFLOPS*1e12):.4f}')")
    echo "train d_model=128 n_layer=2 ctx=128 k=$k ${extra[*]} device=cuda tokens_per_s=$rate peak_fraction=$frac" | tee -a "$OUT/train.txt"
  else
    echo "train k=$K: no result (see tp-$K.log)" | tee -a "$OUT/train.txt"
  fi
done
cat "$OUT/train.txt" >> "$OUT/summary.txt"

step "PyTorch peer (torch.func ensembles, fp32)"
KS=$(echo "$TP_KS" | tr ' ' '\n' | grep -v tf32 | tr '\n' ' ')
# shellcheck disable=SC2086
timeout 120 python3 benches/peer/torch_gpu_ensemble.py --k $KS --seconds 6 --device "$PEER_DEVICE" \
  --peak-tflops "$PEAK_TFLOPS" > "$OUT/peer.txt" 2>&1
timeout 40 python3 benches/peer/torch_gpu_ensemble.py --k "$EXP_MODELS" --seconds 6 --tf32 --device "$PEER_DEVICE" \
  --peak-tflops "$PEAK_TFLOPS" 2>&1 | grep "^train" | sed 's/ device=/ tf32 device=/' >> "$OUT/peer.txt"
tail -7 "$OUT/peer.txt" | tee -a "$OUT/summary.txt"

step "$EXP_MODELS models on the dictionary: GPU (one ensemble), and the first quarter of them on the CPU"
rm -rf "$OUT/exp64" "$OUT/cpu16"
(timeout 150 "$BIN/cfmem" run "$OUT/cpu16" --corpus datasets/devil.jsonl --epochs "$EXP_EPOCHS" --models $((EXP_MODELS / 4)) \
  --jobs "$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))" > "$OUT/cpu16.log" 2>&1) &
cpu=$!
timeout 150 "$BIN/cfmem" run "$OUT/exp64" --corpus datasets/devil.jsonl --epochs "$EXP_EPOCHS" --models "$EXP_MODELS" \
  --device cuda --ensemble "$EXP_MODELS" --jobs 1 > "$OUT/exp64.log" 2>&1
tail -1 "$OUT/exp64.log" | tee -a "$OUT/summary.txt"
wait $cpu
tail -1 "$OUT/cpu16.log" | tee -a "$OUT/summary.txt"
"$BIN/cfmem" report "$OUT/exp64" --csv "$OUT/exp64.csv" --top 5 > "$OUT/exp64-report.txt" 2>&1
"$BIN/cfmem" report "$OUT/cpu16" --csv "$OUT/cpu16.csv" --top 5 > "$OUT/cpu16-report.txt" 2>&1
cmp <(od -An -tx1 -j0 -N16 "$OUT/exp64/runs/model-000000.rec") \
  <(od -An -tx1 -j0 -N16 "$OUT/cpu16/runs/model-000000.rec") > /dev/null &&
  echo "record header: same format on both devices" | tee -a "$OUT/summary.txt"
python3 - "$OUT" <<'PY' | tee "$OUT/compare.txt" | tee -a "$OUT/summary.txt"
import csv, sys
out = sys.argv[1]
def load(p):
    try:
        return {r["id"]: r for r in csv.DictReader(open(p))}
    except OSError:
        return {}
g, c = load(f"{out}/exp64.csv"), load(f"{out}/cpu16.csv")
both = [i for i in g if i in c and g[i]["mem"] and c[i]["mem"] and g[i]["ci_low"] and c[i]["ci_low"]]
if not both:
    print("compare: no estimates to compare"); sys.exit()
def rank(v):
    order = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v)
    for k, i in enumerate(order): r[i] = k
    return r
x = [float(g[i]["mem"]) for i in both]; y = [float(c[i]["mem"]) for i in both]
rx, ry = rank(x), rank(y); n = len(both)
mx, my = sum(rx) / n, sum(ry) / n
cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
sp = cov / (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
# Do the two intervals overlap (the GPU's from 64 models, the CPU's from 16)?
overlap = sum(
    float(g[i]["ci_low"]) <= float(c[i]["ci_high"]) and float(c[i]["ci_low"]) <= float(g[i]["ci_high"])
    for i in both
)
print(f"compare: {n} documents; mean mem GPU {sum(x)/n:.4f}, CPU {sum(y)/n:.4f}; "
      f"Spearman {sp:.3f}; 95% intervals overlap for {overlap}/{n} ({overlap/n:.1%})")
PY
step "done"
