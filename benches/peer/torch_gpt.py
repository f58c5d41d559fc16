"""The cfmem training benchmark's model and loop in PyTorch (eager), for a
side-by-side with `cargo bench --bench train`.

Same model (byte-level GPT: learned positions, pre-norm blocks, tanh-GELU
MLP, tied embeddings, biases everywhere), same AdamW settings, fp32, on
windows of datasets/devil.jsonl. Prints lines in the benchmark's format:

    peak threads=T gflops=G
    train d_model=128 n_layer=2 ctx=128 batch=32 k=1 threads=T tokens_per_s=N peak_fraction=F
    train ... k=2 procs=2 threads=1 ...   (one process per core, summed)
    eval d_model=128 ... threads=T tokens_per_s=N   (forward only, no_grad)

Set up once (not part of CI):

    python3 -m venv .venv-peer && .venv-peer/bin/pip install torch numpy
    .venv-peer/bin/python benches/peer/torch_gpt.py            # all configs
    .venv-peer/bin/python benches/peer/torch_gpt.py --quick    # fewer steps
    .venv-peer/bin/python benches/peer/torch_gpt.py --products # per-product GFLOP/s
    .venv-peer/bin/python benches/peer/torch_gpt.py --bf16     # autocast to bf16

`--bf16` runs PyTorch's best CPU arrangement, `torch.autocast("cpu",
dtype=torch.bfloat16)` around the forward pass and the loss (fp32 master
weights and AdamW; oneDNN's AMX or AVX512-BF16 kernels), and adds
`precision=bf16` to each line; with `--products` it times the products
with bf16 operands (`gflops`, the kernel alone) and under autocast from
fp32 operands (`gflops_autocast`, the casts included).
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Autocast to bf16 (`--bf16`); an environment variable so that the worker
# processes of the one-process-per-core arrangement see it too.
BF16 = os.environ.get("CFMEM_PEER_BF16") == "1"


def autocast():
    """bf16 autocast under `--bf16`, else nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16)


def precision():
    """` precision=bf16` under `--bf16`, else nothing."""
    return " precision=bf16" if BF16 else ""

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Block(nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, f)
        self.proj = nn.Linear(f, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.h)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.o(y)
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, v, d, layers, h, f, ctx):
        super().__init__()
        self.wte = nn.Embedding(v, d)
        self.wpe = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, h, f) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for b in self.blocks:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.T


def windows(ctx):
    data = bytearray()
    with open(os.path.join(ROOT, "datasets", "devil.jsonl")) as f:
        for line in f:
            data += json.loads(line)["text"].encode() + b"\n"
    ids = torch.tensor(list(data), dtype=torch.long)
    n = (len(ids) - 1) // ctx
    return ids[: n * ctx + 1]


def peak(threads):
    """GFLOP/s of the best of four 2048³ products: fp32, or bf16 tensors
    under `--bf16` (so that `peak_fraction` is of the bf16 ceiling)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    if BF16:
        a, b = a.bfloat16(), b.bfloat16()
    best = float("inf")
    for _ in range(4):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best / 1e9


def flops_per_token(d, layers, f, v, t):
    per_layer = 2 * (3 * d * d + d * d + 2 * d * f) + 2 * 2 * t * d
    return 3 * (layers * per_layer + 2 * d * v)


def batches(ctx, batch, seed):
    """Endless `(inputs, targets)` batches of random windows."""
    data = windows(ctx)
    n = (len(data) - 1) // ctx
    g = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, n, (batch,), generator=g) * ctx
        x = torch.stack([data[s : s + ctx] for s in starts])
        y = torch.stack([data[s + 1 : s + ctx + 1] for s in starts])
        yield x, y


def rate(step, steps, tokens_per_step):
    """Tokens/s over `steps` calls of `step` after 2 untimed warm-up calls
    (cfmem's benchmark leaves out the same number)."""
    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * tokens_per_step / (time.perf_counter() - t)


def train(cfg, threads, steps, seed=0):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    d, layers, ctx, batch = cfg
    model = Gpt(259, d, layers, 4, 4 * d, ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.01)
    it = batches(ctx, batch, seed)

    def step():
        x, y = next(it)
        with autocast():
            loss = F.cross_entropy(model(x).reshape(-1, 259), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return rate(step, steps, batch * ctx)


# Windows per evaluation batch, in both peers and in cfmem's benchmark.
EVAL_BATCH = 64


def evaluate(cfg, threads, steps):
    """Forward only under `torch.no_grad()`, batch 64 (cfmem's evaluation
    batch), with the per-token losses an evaluation reads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d, layers, ctx, _ = cfg
    model = Gpt(259, d, layers, 4, 4 * d, ctx).eval()
    it = batches(ctx, EVAL_BATCH, 0)

    def step():
        x, y = next(it)
        with autocast():
            F.cross_entropy(model(x).reshape(-1, 259).float(), y.reshape(-1), reduction="none")

    with torch.no_grad():
        return rate(step, steps, EVAL_BATCH * ctx)


def products():
    """`--products`: GFLOP/s of each matrix product of a training step
    outside attention on one thread, as `CFMEM_BENCH_PRODUCTS=1 cargo bench
    --bench train` prints cfmem's: `fwd` = X·W, `dx` = dY·Wᵀ, `dw` = Xᵀ·dY."""
    torch.set_num_threads(1)
    n = 32 * 128
    for d in (128, 256):
        for name, k, m in (("qkv", d, 3 * d), ("out", d, d), ("fc", d, 4 * d),
                           ("proj", 4 * d, d), ("head", d, 259)):
            x, w, dy = torch.randn(n, k), torch.randn(k, m), torch.randn(n, m)
            for direction, a, b in (("fwd", x, w), ("dx", dy, w.T), ("dw", x.T, dy)):
                def best_of(f):
                    best = float("inf")
                    for _ in range(6):
                        t = time.perf_counter()
                        f()
                        best = min(best, time.perf_counter() - t)
                    return 2 * n * k * m / best / 1e9
                line = f"product d_model={d} {name} {direction} n={n} k={k} m={m}"
                if BF16:
                    a16, b16 = a.bfloat16(), b.bfloat16()
                    g = best_of(lambda: a16 @ b16)

                    def cast():
                        with autocast():
                            a @ b
                    print(f"{line} gflops={g:.1f} gflops_autocast={best_of(cast):.1f}"
                          f"{precision()}", flush=True)
                else:
                    print(f"{line} gflops={best_of(lambda: a @ b):.1f}", flush=True)


def _worker(args):
    return train(*args)


def bench(train_fn, worker, evaluate=None):
    """Print the peak and one line per configuration and arrangement:
    `train_fn(cfg, threads, steps[, seed])` gives tokens/s, `worker` is its
    picklable one-argument form for one process per core, and
    `evaluate(cfg, threads, steps)`, when given, adds `eval` lines."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--products", action="store_true",
                    help="only the per-product GFLOP/s of the training step's shapes")
    ap.add_argument("--bf16", action="store_true",
                    help="torch.autocast to bf16 (PyTorch's best CPU arrangement)")
    args = ap.parse_args()
    if args.bf16:
        global BF16
        BF16 = True
        os.environ["CFMEM_PEER_BF16"] = "1"
    if args.products:
        products()
        return
    steps = 6 if args.quick else 16
    cores = min(os.cpu_count() or 1, 2)
    peaks = {t: peak(t) for t in range(1, cores + 1)}
    for t, p in peaks.items():
        print(f"peak threads={t} gflops={p:.1f}{precision()}", flush=True)
    # The tiny preset (cfmem's default), then the benchmark's two sizes.
    for cfg in [(64, 2, 64, 16), (128, 2, 128, 32), (256, 4, 128, 32)]:
        d, layers, ctx, batch = cfg
        fpt = flops_per_token(d, layers, 4 * d, 259, ctx)
        head = f"d_model={d} n_layer={layers} ctx={ctx} batch={batch}"
        for t in range(1, cores + 1):
            tps = train_fn(cfg, t, steps)
            print(f"train {head} k=1 threads={t} tokens_per_s={tps:.0f} "
                  f"peak_fraction={tps * fpt / (peaks[t] * 1e9):.3f}{precision()}", flush=True)
        if cores > 1:
            with mp.get_context("spawn").Pool(cores) as pool:
                rates = pool.map(worker, [(cfg, 1, steps, s) for s in range(cores)])
            tps = sum(rates)
            print(f"train {head} k={cores} procs={cores} threads=1 tokens_per_s={tps:.0f} "
                  f"peak_fraction={tps * fpt / (peaks[cores] * 1e9):.3f}{precision()}",
                  flush=True)
        if evaluate is not None:
            for t in range(1, cores + 1):
                eps = evaluate(cfg, t, 4 * steps)
                eval_head = head.replace(f"batch={batch}", f"batch={EVAL_BATCH}")
                print(f"eval {eval_head} k=1 threads={t} tokens_per_s={eps:.0f}{precision()}",
                      flush=True)


def main():
    bench(train, _worker, evaluate)


if __name__ == "__main__":
    main()
