"""The cfmem training benchmark's shapes with Hugging Face transformers'
GPT2LMHeadModel: a second peer, written by neither cfmem nor its PyTorch
port. The same architecture (learned positions, pre-norm blocks, tanh-GELU
MLP, tied embeddings, biases everywhere), no dropout, torch.optim.AdamW
with cfmem's settings, fp32, on the same windows of datasets/devil.jsonl
as benches/peer/torch_gpt.py, whose helpers it uses. Prints lines in the
benchmark's format (and `eval` lines: forward only, no_grad):

    peak threads=T gflops=G
    train d_model=128 n_layer=2 ctx=128 batch=32 k=1 threads=T tokens_per_s=N peak_fraction=F
    eval d_model=128 ... threads=T tokens_per_s=N

Set up once (not part of CI; PyPI's torch wheel is several GB):

    bash benches/peer/setup.sh
    .venv-peer/bin/python benches/peer/hf_gpt2.py [--quick] [--bf16]   # --bf16: autocast, as torch_gpt.py
"""

import os
import sys

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import EVAL_BATCH, autocast, batches, bench, rate  # noqa: E402


def model_for(d, layers, ctx):
    cfg = GPT2Config(
        vocab_size=259,
        n_positions=ctx,
        n_embd=d,
        n_layer=layers,
        n_head=4,
        n_inner=4 * d,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=256,
        eos_token_id=257,
    )
    return GPT2LMHeadModel(cfg)


def train(cfg, threads, steps, seed=0):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    d, layers, ctx, batch = cfg
    model = model_for(d, layers, ctx).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.01)
    it = batches(ctx, batch, seed)

    def step():
        x, y = next(it)
        with autocast():
            logits = model(input_ids=x).logits
            loss = F.cross_entropy(logits.reshape(-1, 259), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return rate(step, steps, batch * ctx)


def evaluate(cfg, threads, steps):
    torch.set_num_threads(threads)
    d, layers, ctx, _ = cfg
    model = model_for(d, layers, ctx).eval()
    it = batches(ctx, EVAL_BATCH, 0)
    with torch.no_grad(), autocast():
        return rate(lambda: model(input_ids=next(it)[0]), steps, EVAL_BATCH * ctx)


def _worker(args):
    return train(*args)


def main():
    bench(train, _worker, evaluate)


if __name__ == "__main__":
    main()
