#!/usr/bin/env python3
"""hf_tokenize.py - the peer side of bench/preprocess: HF tokenizers on the same corpus.

usage: hf_tokenize.py TOKENIZER_DIR CORPUS.jsonl MB_PREFIX REPEATS

Loads the corpus (not timed), then times Tokenizer.encode_batch over every document
(add_special_tokens=True, as Megatron uses it; RAYON_NUM_THREADS sets the threads),
keeps the best of REPEATS runs, and checks that the ids equal the tokens mb wrote to
MB_PREFIX.bin (EOD excluded: the bench runs mb without --append-eod).
Prints: "hf_tokens_per_s N tokens T".
"""
import json
import sys
import time

import numpy
from tokenizers import Tokenizer


def main():
    tok_dir, corpus, mb_prefix, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tok = Tokenizer.from_file(tok_dir + "/tokenizer.json")
    docs = [json.loads(line.decode("utf-8", "replace"))["text"] for line in open(corpus, "rb")]
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc = tok.encode_batch(docs)
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    ids = numpy.concatenate([numpy.asarray(e.ids, dtype=numpy.int64) for e in enc if e.ids])
    with open(mb_prefix + ".idx", "rb") as f:
        code = f.read(18)[17]
    mb = numpy.fromfile(mb_prefix + ".bin", dtype=numpy.uint16 if code == 8 else numpy.int32)
    if len(mb) != len(ids) or (mb.astype(numpy.int64) != ids).any():
        sys.exit(f"hf_tokenize: ids differ from mb's ({len(ids)} vs {len(mb)} tokens)")
    print(f"hf_tokens_per_s {len(ids) / best:.0f} tokens {len(ids)}")


if __name__ == "__main__":
    main()
