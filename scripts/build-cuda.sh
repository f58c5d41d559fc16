#!/usr/bin/env bash
# Build cfmem's CUDA binaries on a machine without a GPU or a CUDA install.
#
#   bash scripts/build-cuda.sh          # ≈ 20 minutes on 2 cores the first time
#
# What it does:
# 1. The CUDA compiler from PyPI (NVIDIA's wheels, CUDA 13.0: nvcc, cicc,
#    the headers, the runtime), unpacked into target/cuda-toolkit/ as a
#    CUDA_HOME; nothing is installed system-wide.
# 2. Link-time stubs for libcuda, libcublas, libcublasLt, libcurand,
#    libnvrtc and libcudart (scripts/cuda/stubs.py): the binary carries no
#    CUDA library and binds, at run time, to whatever the GPU machine has
#    (the driver's libcuda.so.1; CUDA 12.4 or newer libraries from PyTorch's
#    wheels or a toolkit), found by scripts/cuda/libs.sh.
# 3. candle's kernels as PTX for compute capability 9.0 (H100, H200;
#    CUDA_COMPUTE_CAP to change it), stamped PTX ISA 8.4 so that drivers
#    from CUDA 12.4 on load them (scripts/cuda/nvcc); cudarc's bindings of
#    the CUDA 12.4 API (CUDARC_CUDA_VERSION), which newer drivers and
#    libraries keep.
# 4. `cargo build --release --features cuda` of the cfmem binary and of
#    the CUDA tests (crates/core/tests/cuda.rs) as an executable, copied to
#    target/cuda-bin/ with BUILD.txt: versions, sizes, the libraries each
#    needs.
#
# The build directory is target/cuda (the CPU build's target/ is untouched).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KIT=$ROOT/target/cuda-toolkit
OUT=$ROOT/target/cuda-bin
CUDA_VERSION=13.0
WHEELS=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-nvvm==13.0.88"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-cccl==13.0.85"
)

if [ ! -x "$KIT/bin/nvcc" ]; then
  echo "== CUDA $CUDA_VERSION compiler from PyPI into $KIT"
  rm -rf "$KIT" "$KIT.wheels"
  mkdir -p "$KIT.wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --python-version 3.11 -d "$KIT.wheels" "${WHEELS[@]}"
  mkdir -p "$KIT.unpacked"
  for w in "$KIT.wheels"/*.whl; do
    python3 -m zipfile -e "$w" "$KIT.unpacked"
  done
  mv "$KIT.unpacked/nvidia/cu13" "$KIT"
  rm -rf "$KIT.unpacked" "$KIT.wheels"
  chmod +x "$KIT"/bin/* "$KIT"/nvvm/bin/*
  mkdir -p "$KIT/lib64"
fi
"$KIT/bin/nvcc" --version | tail -2

export CUDA_HOME=$KIT
export PATH=$KIT/bin:$PATH
export CFMEM_REAL_NVCC=$KIT/bin/nvcc
export NVCC=$ROOT/scripts/cuda/nvcc
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-12040}
export CARGO_TARGET_DIR=$ROOT/target/cuda
# Lazy binding: runtime internals that only the (unused) statically
# compiled MoE kernels call may be missing from an older libcudart.
export RUSTFLAGS="-L native=$KIT/stubs -C link-arg=-Wl,-z,lazy"

echo "== candle's kernels (compute capability $CUDA_COMPUTE_CAP, PTX ISA ${CFMEM_PTX_VERSION:-8.4})"
mkdir -p "$KIT/stubs"
cargo build --release -p cfmem-core --features cuda
echo "== link-time stubs"
CUDARC=$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')
MOE=$(ls -t "$CARGO_TARGET_DIR"/release/build/candle-kernels-*/out/libmoe.a | head -1)
python3 scripts/cuda/stubs.py "$CUDARC" "$KIT/stubs" "$MOE"
echo "== cargo build --release --features cuda (CUDA API $CUDARC_CUDA_VERSION)"
cargo build --release -p cfmem-cli --features cuda
cargo test --release --features cuda -p cfmem-core --test cuda --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="cuda":
        print(m["executable"])' > "$CARGO_TARGET_DIR/cuda-test-path"
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$CARGO_TARGET_DIR/release/cfmem" "$OUT/cfmem"
cp "$(cat "$CARGO_TARGET_DIR/cuda-test-path")" "$OUT/cuda-tests"
strip "$OUT"/* 2>/dev/null || true
{
  echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "nvcc: $("$KIT/bin/nvcc" --version | tail -1)"
  echo "compute capability: $CUDA_COMPUTE_CAP; PTX ISA: ${CFMEM_PTX_VERSION:-8.4}; cudarc API: $CUDARC_CUDA_VERSION"
  for f in "$OUT"/*; do
    [ "$(basename "$f")" = BUILD.txt ] && continue
    echo "$(basename "$f"): $(du -h "$f" | cut -f1); needs: $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  done
} > "$OUT/BUILD.txt"
cat "$OUT/BUILD.txt"
# The binaries hold candle's kernels (PTX and SASS): ≈ 125 MB, ≈ 20 MB packed.
tar -C "$ROOT/target" -cf - cuda-bin | xz -T0 -6 > "$ROOT/target/cuda-bin.tar.xz"
echo "== done: $(du -h "$ROOT/target/cuda-bin.tar.xz" | cut -f1) target/cuda-bin.tar.xz; carry it (or target/cuda-bin) to the GPU machine and run scripts/gpu-check.sh there"
