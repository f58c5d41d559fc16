# Source this on the GPU machine: points the CUDA library names the CUDA
# binary was linked against (unversioned: libcublas.so, libcublasLt.so,
# libcurand.so, libnvrtc.so, libcudart.so; see scripts/cuda/stubs.py) at the
# libraries this machine has, newest major version first: PyTorch's NVIDIA
# wheels, $CUDA_HOME, /usr/local/cuda*, the system's. The driver's
# libcuda.so.1 comes from the system. Usage:
#
#   source scripts/cuda/libs.sh target/cuda-libs
cfmem_cuda_libs() {
  local dir=$1 roots=() lib found
  mkdir -p "$dir"
  while IFS= read -r r; do roots+=("$r"); done < <(
    python3 - <<'PY' 2>/dev/null
import importlib.util, os
for name in ("nvidia", "torch"):
    spec = importlib.util.find_spec(name)
    if spec:
        for p in (spec.submodule_search_locations or []):
            print(p)
PY
  )
  roots+=("${CUDA_HOME:-/usr/local/cuda}" /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /usr/lib64)
  for lib in cublas cublasLt curand nvrtc cudart; do
    found=$(find "${roots[@]}" -name "lib$lib.so.[0-9]*" \( -type f -o -type l \) 2>/dev/null |
      grep -v -- '-builtins' | awk -F'[.]so[.]' '{print $2 "\t" $0}' | sort -t"$(printf '\t')" -k1,1Vr |
      head -1 | cut -f2)
    if [ -z "$found" ]; then
      echo "libs.sh: no lib$lib.so.N under ${roots[*]}" >&2
      case $lib in
        cublas|curand|cudart) echo "libs.sh: cfmem needs it (candle makes a cuBLAS handle and a cuRAND generator for every CUDA device): pip install nvidia-${lib/cudart/cuda-runtime}-cu12, or set CUDA_HOME to a CUDA toolkit" >&2 ;;
      esac
      continue
    fi
    ln -sf "$found" "$dir/lib$lib.so"
    echo "lib$lib.so -> $found"
    LD_LIBRARY_PATH="$(dirname "$found"):${LD_LIBRARY_PATH:-}"
  done
  export LD_LIBRARY_PATH="$dir:$LD_LIBRARY_PATH"
}
cfmem_cuda_libs "${1:-target/cuda-libs}"
