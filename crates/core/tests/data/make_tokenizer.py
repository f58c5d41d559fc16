"""Regenerate gpt2style-tokenizer.json: a byte-level BPE laid out as
GPT-2's tokenizer.json is (ByteLevel pre-tokenizer, decoder and
post-processor, one <|endoftext|> special), trained with Hugging Face's
Python `tokenizers` on the bundled Devil's Dictionary, 400 symbols. The
test `a_hugging_face_tokenizer_file_encodes_as_python_does` checks cfmem's
reading of it against the ids and offsets printed here.

    python3 -m venv /tmp/tok && /tmp/tok/bin/pip install tokenizers
    /tmp/tok/bin/python crates/core/tests/data/make_tokenizer.py
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..", "..", "..")
texts = [json.loads(line)["text"] for line in open(os.path.join(root, "datasets", "devil.jsonl"))]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
trainer = trainers.BpeTrainer(
    vocab_size=400,
    special_tokens=["<|endoftext|>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
)
tok.train_from_iterator(texts, trainer)
tok.save(os.path.join(here, "gpt2style-tokenizer.json"))
enc = tok.encode("A person whose vices and follies are not sociable.")
print("vocab", tok.get_vocab_size())
print("ids", enc.ids)
print("offsets", enc.offsets)
