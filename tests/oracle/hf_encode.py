#!/usr/bin/env python3
"""hf_encode.py - token ids from HF `tokenizers` (test oracle for mb's tokenizer).

usage: hf_encode.py --tokenizer DIR --strings FILE [--special]

FILE holds strings separated by "\\n__ggml_vocab_test__\\n" (the layout of llama.cpp's
ggml-vocab-*.gguf.inp files: every string, the last included, is followed by the
separator; a final separator is optional). FILE must be UTF-8; "-" reads stdin.
Prints one line per string: the ids separated by single spaces (an empty line for a
string without tokens). Without --special the tokenizer's post-processor is off
(add_special_tokens=False, like the .out files); with it, BOS/EOS templates apply.
Added/special tokens written in the text are matched either way, as HF does.
"""
import argparse
import os
import sys

from tokenizers import Tokenizer

SEP = "\n__ggml_vocab_test__\n"


def read_strings(path):
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    text = data.decode("utf-8")
    if text == "":
        return []
    parts = text.split(SEP)
    if text.endswith(SEP):
        parts.pop()
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True, help="directory with tokenizer.json")
    ap.add_argument("--strings", required=True, help="file of separated strings, or -")
    ap.add_argument("--special", action="store_true",
                    help="encode with add_special_tokens=True")
    a = ap.parse_args()
    tk = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    strings = read_strings(a.strings)
    encs = tk.encode_batch(strings, add_special_tokens=a.special) if strings else []
    out = sys.stdout
    for e in encs:
        out.write(" ".join(map(str, e.ids)) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
