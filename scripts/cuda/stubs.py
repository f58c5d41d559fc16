"""Link-time stand-ins for the CUDA libraries cfmem's CUDA build links to.

A machine without a GPU has no libcuda (it comes with the driver), and the
CUDA libraries of the GPU machine may be of another major version than any
set installed here (PyTorch's wheels, a system toolkit: 12.x or 13.x). So
the CUDA binary links against stubs: one shared library per CUDA library,
defining every function name cudarc binds (read from its generated
bindings) as a function that reports and aborts, with an unversioned soname
(`libcublas.so`, …; the driver's keeps its own, `libcuda.so.1`). The binary
then needs those names at run time, and `scripts/gpu-check.sh` points them
at the libraries the GPU machine has (see `scripts/cuda/libs.sh`). The stubs
are never run.

usage: python3 stubs.py CUDARC_SRC OUT_DIR [ARCHIVE...]

The runtime stub also defines every `cuda*`/`__cuda*` name the given
static archives leave undefined (candle's statically compiled kernels,
`libmoe.a`: nvcc's host code calls runtime internals such as
`__cudaLaunchKernel_ptsz`).
"""

import pathlib
import re
import subprocess
import sys

# library -> (soname, cudarc modules whose bindings it serves, extra names)
LIBS = {
    "cuda": ("libcuda.so.1", ["driver"], []),
    "cublas": ("libcublas.so", ["cublas"], []),
    "cublasLt": ("libcublasLt.so", ["cublaslt"], []),
    "curand": ("libcurand.so", ["curand"], []),
    "nvrtc": ("libnvrtc.so", ["nvrtc"], []),
    # The runtime: what nvcc's host code for statically compiled kernels
    # calls (registration and launch), beside the runtime API itself.
    "cudart": (
        "libcudart.so",
        ["runtime"],
        [
            "__cudaRegisterFatBinary",
            "__cudaRegisterFatBinaryEnd",
            "__cudaUnregisterFatBinary",
            "__cudaRegisterFunction",
            "__cudaRegisterVar",
            "__cudaRegisterManagedVar",
            "__cudaInitModule",
            "__cudaPushCallConfiguration",
            "__cudaPopCallConfiguration",
            "__cudaRegisterLinkedBinary",
        ],
    ),
}

EXTERN_FN = re.compile(r"^\s*(?:pub\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.M)


def names(cudarc: pathlib.Path, module: str) -> set[str]:
    found = set()
    for rs in (cudarc / "src" / module / "sys").glob("*.rs"):
        text = rs.read_text()
        # Only the declarations inside `extern "C" { ... }` blocks.
        for block in re.finditer(r'extern\s+"C"\s*\{(.*?)\n\s*\}', text, re.S):
            found.update(EXTERN_FN.findall(block.group(1)))
    return found


def undefined_runtime_names(archives: list[str]) -> set[str]:
    found = set()
    for a in archives:
        out = subprocess.run(
            ["nm", "-u", "--format=just-symbols", a], check=True, capture_output=True, text=True
        ).stdout
        found.update(s for s in out.split() if s.startswith(("cuda", "__cuda")))
    return found


def main() -> None:
    cudarc, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    runtime_extra = undefined_runtime_names(sys.argv[3:])
    out.mkdir(parents=True, exist_ok=True)
    for lib, (soname, modules, extra) in LIBS.items():
        syms = set(extra) | (runtime_extra if lib == "cudart" else set())
        for m in modules:
            syms |= names(cudarc, m)
        if not syms:
            sys.exit(f"no function names found for {lib} under {cudarc}")
        src = out / f"{lib}.c"
        # Never meant to run: one that does says so and stops.
        src.write_text(
            "#include <stdio.h>\n#include <stdlib.h>\n"
            "static void stub(const char *f) {\n"
            f'  fprintf(stderr, "cfmem: %s is a link-time stub of lib{lib}; '
            'point LD_LIBRARY_PATH at the real library (scripts/cuda/libs.sh)\\n", f);\n'
            "  abort();\n}\n"
            + "".join(f'void {s}(void) {{ stub("{s}"); }}\n' for s in sorted(syms))
        )
        so = out / f"lib{lib}.so"
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-o", str(so), str(src), f"-Wl,-soname,{soname}"],
            check=True,
        )
        print(f"{so.name}: {len(syms)} functions, soname {soname}")


if __name__ == "__main__":
    main()
