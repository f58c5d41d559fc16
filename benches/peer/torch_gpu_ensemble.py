"""The PyTorch peer on a GPU: K copies of the training benchmark's model
(benches/peer/torch_gpt.py: byte-level GPT, tied embeddings, AdamW, fp32)
trained together as one batched ensemble with torch.func (stacked
parameters, vmap over the model axis), each on its own batches. Prints
lines in the benchmark's format, for scripts/gpu-check.sh:

    train d_model=128 n_layer=2 ctx=128 batch=32 k=K device=cuda tokens_per_s=N peak_fraction=F

tokens/s is summed over the K models; the fraction is of the card's dense
peak given with --peak-tflops (H100 SXM: 67 TFLOP/s fp32, 495 tf32).

    python3 benches/peer/torch_gpu_ensemble.py --k 1 16 64 256 [--tf32] [--seconds 10]
"""

import argparse
import copy
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import Gpt, flops_per_token, windows  # noqa: E402


def ensemble_rate(k, d, layers, ctx, batch, seconds, device):
    torch.manual_seed(0)
    models = [Gpt(259, d, layers, 4, 4 * d, ctx) for _ in range(k)]
    params, buffers = stack_module_state(models)
    params = {n: p.to(device).detach().requires_grad_(False) for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, x, y):
        logits = functional_call(base, p, (x,))
        return F.cross_entropy(logits.reshape(-1, 259), y.reshape(-1))

    step_grads = torch.vmap(grad_and_value(loss_fn))
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    data = windows(ctx).to(device)
    n_win = (len(data) - 1) // ctx
    offs = torch.arange(ctx, device=device)
    lr, b1, b2, eps, wd = 3e-3, 0.9, 0.99, 1e-8, 0.01
    t_step = [0]

    def step():
        starts = torch.randint(0, n_win, (k, batch), device=device) * ctx
        idx = starts[..., None] + offs
        x, y = data[idx], data[idx + 1]
        grads, _ = step_grads(params, x, y)
        # Per-model gradient clipping at norm 1, then AdamW, all on the device.
        norm = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads.values()))
        scale = torch.clamp(1.0 / (norm + 1e-6), max=1.0)
        t_step[0] += 1
        t = t_step[0]
        for name, g in grads.items():
            g = g * scale.view(-1, *([1] * (g.dim() - 1)))
            m[name].mul_(b1).add_(g, alpha=1 - b1)
            v[name].mul_(b2).addcmul_(g, g, value=1 - b2)
            mh = m[name] / (1 - b1**t)
            vh = v[name] / (1 - b2**t)
            p = params[name]
            p.mul_(1 - lr * wd).addcdiv_(mh, vh.sqrt().add_(eps), value=-lr)

    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
        if steps % 10 == 0:
            sync()
    sync()
    return steps * k * batch * ctx / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=67.0)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test")
    a = ap.parse_args()
    device = a.device
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}; tf32 {a.tf32}", flush=True)
    fpt = flops_per_token(a.d, a.layers, 4 * a.d, 259, a.ctx)
    for k in a.k:
        try:
            rate = ensemble_rate(k, a.d, a.layers, a.ctx, a.batch, a.seconds, device)
        except torch.cuda.OutOfMemoryError:
            print(f"train k={k}: out of memory", flush=True)
            break
        frac = rate * fpt / (a.peak_tflops * 1e12)
        print(
            f"train d_model={a.d} n_layer={a.layers} ctx={a.ctx} batch={a.batch} k={k} "
            f"device={device} peer=torch tokens_per_s={rate:.0f} peak_fraction={frac:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
