#!/usr/bin/env python3
"""Regenerate a bundled dictionary corpus from its Debian dictd package:

    apt-get install dict-devil dict-jargon
    python3 datasets/make_dictd.py devil > datasets/devil.jsonl
    python3 datasets/make_dictd.py jargon > datasets/jargon.jsonl

The dictd index has one line per headword: headword, base64 offset and base64
length (dictd's own base64 digits) into the gzip-readable NAME.dict.dz.
Metadata entries (headwords starting with "00database" or "00-database") are
skipped; entries that share an offset are kept once; each entry becomes one
JSON line {"id": headword, "text": entry text with trailing whitespace
removed}; a repeated headword gets "#2", "#3", ...
"""
import gzip
import json
import sys

DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(s):
    v = 0
    for c in s:
        v = v * 64 + DIGITS.index(c)
    return v


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "devil"
    data = gzip.open(f"/usr/share/dictd/{name}.dict.dz").read()
    seen_offsets = set()
    seen_ids = {}
    with open(f"/usr/share/dictd/{name}.index", encoding="utf-8") as f:
        for line in f:
            head, off, length = line.rstrip("\n").split("\t")
            if head.startswith(("00database", "00-database")):
                continue
            off, length = b64(off), b64(length)
            if off in seen_offsets:
                continue
            seen_offsets.add(off)
            text = data[off : off + length].decode("utf-8").rstrip()
            if not text:
                continue
            n = seen_ids.get(head, 0)
            seen_ids[head] = n + 1
            doc_id = head if n == 0 else f"{head}#{n + 1}"
            sys.stdout.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
