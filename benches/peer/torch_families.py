"""The cfmem families benchmark's model and loop in PyTorch (eager), for a
side-by-side with `cargo bench --bench families`.

A Pythia-14m-shaped GPT-NeoX (transformers' `GPTNeoXForCausalLM`: d 128,
6 layers, 4 heads, MLP 512, vocabulary 50,304, rotary on a quarter of each
head, parallel residual, untied head) trained on random 128-byte windows of
datasets/devil.jsonl, 16 per step, with cfmem's AdamW settings and
gradient clipping: every parameter (`full`), or LoRA adapters of rank 8
(α 16) on every attention and MLP projection through `peft` (`lora8`).
Prints lines in the benchmark's format:

    peak threads=T gflops=G
    train family=gpt_neox method=full d_model=128 n_layer=6 vocab=50304 ctx=128 batch=16 threads=T tokens_per_s=N peak_fraction=F

Set up once (not part of CI): `bash benches/peer/setup.sh`, then

    .venv-peer/bin/python benches/peer/torch_families.py
    .venv-peer/bin/python benches/peer/torch_families.py --bf16   # autocast to bf16
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_gpt  # noqa: E402  (windows, batches, rate, peak)

D, LAYERS, HEADS, FF, VOCAB, CTX, BATCH = 128, 6, 4, 512, 50304, 128, 16


def model(lora):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(
        vocab_size=VOCAB,
        hidden_size=D,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FF,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )
    m = GPTNeoXForCausalLM(cfg)
    if lora:
        from peft import LoraConfig, get_peft_model

        m = get_peft_model(
            m,
            LoraConfig(
                r=8,
                lora_alpha=16,
                lora_dropout=0.0,
                target_modules=[
                    "query_key_value",
                    "dense",
                    "dense_h_to_4h",
                    "dense_4h_to_h",
                ],
            ),
        )
    return m


def flops_per_token(passes):
    per_layer = 2 * (3 * D * D + D * D + 2 * D * FF) + 2 * 2 * CTX * D
    return passes * (LAYERS * per_layer + 2 * D * VOCAB)


def train(threads, steps, lora):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = model(lora)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.01)
    it = torch_gpt.batches(CTX, BATCH, 0)

    def step():
        x, y = next(it)
        with torch_gpt.autocast():
            logits = m(input_ids=x).logits
            loss = F.cross_entropy(logits.reshape(-1, VOCAB).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return torch_gpt.rate(step, steps, BATCH * CTX)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    if args.bf16:
        torch_gpt.BF16 = True
    steps = 6 if args.quick else 12
    threads = list(range(1, min(2, os.cpu_count() or 1) + 1))
    peaks = {t: torch_gpt.peak(t) for t in threads}
    for t in threads:
        print(f"peak threads={t} gflops={peaks[t]:.1f}", flush=True)
    for method, lora in [("full", False), ("lora8", True)]:
        for t in threads:
            tps = train(t, steps, lora)
            frac = tps * flops_per_token(2 if lora else 3) / (peaks[t] * 1e9)
            print(
                f"train family=gpt_neox method={method} d_model={D} n_layer={LAYERS} "
                f"vocab={VOCAB} ctx={CTX} batch={BATCH} threads={t} "
                f"tokens_per_s={tps:.0f} peak_fraction={frac:.3f}{torch_gpt.precision()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
