#!/usr/bin/env python3
"""Regenerate datasets/wordnet.jsonl from Debian's dict-wn package.

    apt-get install dict-wn
    python3 datasets/make_wordnet.py > datasets/wordnet.jsonl

WordNet 3.0 in dictd format: an index (headword, base64 offset, base64
length in dictd's digits) into the gzip-readable wn.dict.dz. Each entry
lists its senses ("n 1: gloss; "example" [syn: {...}]"); every sense is
one candidate document "headword: gloss", with the cross-references
([syn: ...], [ant: ...], ...) and braces removed and whitespace collapsed.
Synonyms repeat a sense's gloss under each headword, so each gloss text is
kept once (its first headword in index order). Of the distinct glosses,
10,000 evenly spaced ones are written, in index order, as JSON lines
{"id": "headword#pos.sense", "text": "headword: gloss"}.
"""
import gzip
import json
import re
import sys

DICT = "/usr/share/dictd/wn.dict.dz"
INDEX = "/usr/share/dictd/wn.index"
DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
N_DOCS = 10_000
SENSE = re.compile(r"^\s+(?:(n|v|adj|adv)\s+)?(\d+):\s*(.*)$")
XREF = re.compile(r"\[(?:syn|ant|also|see also)?:?[^\]]*\]")


def b64(s):
    v = 0
    for c in s:
        v = v * 64 + DIGITS.index(c)
    return v


def senses(entry):
    """(pos, number, gloss) of each sense in an entry's text."""
    lines = entry.split("\n")[1:]
    out, pos, cur = [], "", None
    for line in lines:
        m = SENSE.match(line)
        if m:
            if cur:
                out.append(cur)
            pos = m.group(1) or pos
            cur = [pos, int(m.group(2)), m.group(3)]
        elif cur and line.strip():
            cur[2] += " " + line.strip()
    if cur:
        out.append(cur)
    return out


def clean(gloss):
    gloss = XREF.sub("", gloss).replace("{", "").replace("}", "")
    return " ".join(gloss.split()).strip(" ;")


def main():
    data = gzip.open(DICT).read()
    seen_offsets, seen_glosses, docs = set(), set(), []
    for line in open(INDEX, encoding="utf-8"):
        head, off, length = line.rstrip("\n").split("\t")
        if head.startswith("00database") or off in seen_offsets:
            continue
        seen_offsets.add(off)
        entry = data[b64(off) : b64(off) + b64(length)].decode("utf-8")
        for pos, n, gloss in senses(entry):
            gloss = clean(gloss)
            if not gloss or gloss in seen_glosses:
                continue
            seen_glosses.add(gloss)
            docs.append({"id": f"{head}#{pos}.{n}", "text": f"{head}: {gloss}"})
    step = len(docs) / N_DOCS
    ids = set()
    for i in range(N_DOCS):
        d = docs[int(i * step)]
        assert d["id"] not in ids, d["id"]
        ids.add(d["id"])
        sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{len(docs)} distinct glosses, {N_DOCS} written", file=sys.stderr)


if __name__ == "__main__":
    main()
