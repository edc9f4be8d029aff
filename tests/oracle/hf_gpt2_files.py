#!/usr/bin/env python3
"""hf_gpt2_files.py - token ids of GPT-2 built by transformers from vocab.json + merges.txt.

usage: hf_gpt2_files.py DIR INPUT.jsonl [--append-eod] [--key text]

DIR holds only vocab.json and merges.txt. transformers builds GPT-2's
tokenizer from them (GPT2Tokenizer.from_pretrained), as Megatron's GPT2BPETokenizer does (megatron-core's
MegatronHFTokenizer); each document's text (a string) is encoded with
add_special_tokens=True and, with --append-eod, followed by eos_token_id
(<|endoftext|>). Prints one line of space-separated ids per non-empty document, the
format of megatron_read.py --dump for documents of one sequence each. Every document is
also encoded by `tokenizers`' own BPE.from_file(vocab, merges) with the ByteLevel
pre-tokenizer, splitting on <|endoftext|>; the script fails if the two disagree.
"""
import argparse
import json
import logging
import sys
import warnings


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("input")
    ap.add_argument("--append-eod", action="store_true")
    ap.add_argument("--key", default="text")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import os
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import GPT2Tokenizer

    hf = GPT2Tokenizer.from_pretrained(a.dir)
    bpe = Tokenizer(models.BPE.from_file(os.path.join(a.dir, "vocab.json"),
                                         os.path.join(a.dir, "merges.txt")))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    with open(a.input, "rb") as f:
        texts = [json.loads(line.decode("utf-8", errors="replace"))[a.key] for line in f]
    out = sys.stdout
    for ids, other, text in zip(hf(texts, add_special_tokens=True)["input_ids"],
                                bpe.encode_batch(texts), texts):
        if other.ids != ids:
            sys.exit(f"transformers and tokenizers' BPE.from_file differ on {text[:60]!r}")
        if not ids:
            continue
        if a.append_eod:
            ids = ids + [hf.eos_token_id]
        out.write(" ".join(map(str, ids)) + "\n")


if __name__ == "__main__":
    main()
