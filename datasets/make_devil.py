#!/usr/bin/env python3
"""Regenerate datasets/devil.jsonl from Debian's dict-devil package.

    apt-get install dict-devil
    python3 datasets/make_devil.py > datasets/devil.jsonl

The dictd index has one line per headword: headword, base64 offset and base64
length (dictd's own base64 digits) into the gzip-readable devil.dict.dz.
Metadata entries (headwords starting with "00database") are skipped; entries
that share an offset are kept once; each entry becomes one JSON line
{"id": headword, "text": entry text with trailing whitespace removed}.
"""
import gzip
import json
import sys

DICT = "/usr/share/dictd/devil.dict.dz"
INDEX = "/usr/share/dictd/devil.index"
DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(s):
    v = 0
    for c in s:
        v = v * 64 + DIGITS.index(c)
    return v


def main():
    data = gzip.open(DICT).read()
    seen_offsets = set()
    seen_ids = {}
    with open(INDEX, encoding="utf-8") as f:
        for line in f:
            head, off, length = line.rstrip("\n").split("\t")
            if head.startswith("00database"):
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
