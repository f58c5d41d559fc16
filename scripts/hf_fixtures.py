"""Tiny random checkpoints of the three families cfmem reads, written by
Hugging Face transformers, with the logits transformers computes for a
fixed input: the fixtures `crates/core/tests/hf.rs` checks cfmem's logits
against (without Python). Run by scripts/check-hf.sh.

    python scripts/hf_fixtures.py OUT_DIR

writes OUT_DIR/{gpt2,gpt_neox,llama,llama_sharded}/ with config.json,
model.safetensors (or shards and their index) and expected.safetensors
(`input_ids` [2, 11] and `logits` [2, 11, vocab], f32).
"""

import os
import sys

import torch
from safetensors.torch import save_file
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

VOCAB = 96


def configs():
    common = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=1)
    yield "gpt2", GPT2LMHeadModel, GPT2Config(
        n_embd=32, n_layer=2, n_head=4, n_positions=32, n_inner=64,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
    yield "gpt_neox", GPTNeoXForCausalLM, GPTNeoXConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=32,
        rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                         "rope_type": "default"},
        use_parallel_residual=True, tie_word_embeddings=False,
        hidden_dropout=0.0, attention_dropout=0.0, **common)
    yield "llama", LlamaForCausalLM, LlamaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=32,
        rms_norm_eps=1e-5, rope_parameters={"rope_theta": 500.0, "rope_type": "default"},
        tie_word_embeddings=True, **common)


def main(out):
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (2, 11))
    for name, cls, cfg in configs():
        cfg._attn_implementation = "eager"
        model = cls(cfg).eval()
        with torch.no_grad():
            # Larger weights than the default init, so that the logits
            # spread and a layout mistake cannot hide in small numbers.
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            logits = model(ids).logits.float()
        targets = [name] + (["llama_sharded"] if name == "llama" else [])
        for target in targets:
            d = os.path.join(out, target)
            os.makedirs(d, exist_ok=True)
            shard = "20KB" if target.endswith("sharded") else "10GB"
            model.save_pretrained(d, max_shard_size=shard, safe_serialization=True)
            save_file({"input_ids": ids.to(torch.int64).contiguous(),
                       "logits": logits.contiguous()},
                      os.path.join(d, "expected.safetensors"))
            print(target, sorted(os.listdir(d)))


if __name__ == "__main__":
    main(sys.argv[1])
