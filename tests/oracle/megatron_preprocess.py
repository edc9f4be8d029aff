#!/usr/bin/env python3
"""megatron_preprocess.py - what Megatron-LM's tools/preprocess_data.py writes (test oracle).

usage: megatron_preprocess.py --tokenizer DIR --input FILE.jsonl[.gz] --output-prefix P
                              [--json-keys text[,k2...]] [--append-eod]
                              [--no-special-tokens] [--skip-blank-lines]

Mirrors the document path of preprocess_data.py with a HuggingFace tokenizer
(formats.md 1.4), writing with megatron-core's own IndexedDatasetBuilder:

- input is read as bytes, one line at a time (.gz is decompressed); each line is
  decoded as UTF-8 with errors="replace" and parsed with json.loads;
- for every key in --json-keys the value is a string (one sentence) or a list of
  strings (sentences); each sentence is encoded with HF `tokenizers`
  Tokenizer.encode(s, add_special_tokens=not --no-special-tokens).ids;
  sentences with no tokens are dropped;
- with --append-eod, a non-empty document gets the EOD id appended to its last
  sentence; an empty document is still added (a repeated document index);
- output: P_{key}_document.bin/.idx, dtype DType.optimal_dtype(vocab size with
  added tokens) (uint16 below 65500, else int32).

EOD id (the rule mb uses too): tokenizer_config.json's eos_token (a string, or a
dict with "content") when that file exists and sets it; otherwise the first of
<|end_of_text|>, <|endoftext|>, </s>, <eos>, <|eos|> that the tokenizer knows;
otherwise an error. It is looked up only with --append-eod.

Megatron would stop with a JSON error on a blank line; so does this script, unless
--skip-blank-lines is given. Exit status is non-zero on any error.
"""
import argparse
import gzip
import json
import logging
import os
import sys
import warnings

EOD_CANDIDATES = ["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eos|>"]
BATCH = 512


def die(msg):
    sys.stderr.write(f"megatron_preprocess: {msg}\n")
    sys.exit(1)


def eod_id(tokdir, tk):
    cfg = os.path.join(tokdir, "tokenizer_config.json")
    if os.path.exists(cfg):
        with open(cfg, encoding="utf-8") as f:
            eos = json.load(f).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str):
            i = tk.token_to_id(eos)
            if i is None:
                die(f"eos_token {eos!r} of {cfg} is not in the vocabulary")
            return i
    for name in EOD_CANDIDATES:
        i = tk.token_to_id(name)
        if i is not None:
            return i
    die(f"no EOD token: {cfg} sets no eos_token and none of {EOD_CANDIDATES} is known")


def read_docs(path, keys, skip_blank):
    """Yield, per input line, the list of sentences for each key."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if skip_blank and not raw.strip():
                continue
            try:
                doc = json.loads(raw.decode("utf-8", "replace"))
            except json.JSONDecodeError as e:
                die(f"{path}:{lineno}: {e}")
            if not isinstance(doc, dict):
                die(f"{path}:{lineno}: not a JSON object")
            out = []
            for k in keys:
                if k not in doc:
                    die(f"{path}:{lineno}: no key {k!r}")
                v = doc[k]
                if isinstance(v, str):
                    v = [v]
                elif not (isinstance(v, list) and all(isinstance(s, str) for s in v)):
                    die(f"{path}:{lineno}: {k!r} is neither a string nor a list of strings")
                out.append(v)
            yield out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True, help="directory with tokenizer.json")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output-prefix", required=True)
    ap.add_argument("--json-keys", default="text")
    ap.add_argument("--append-eod", action="store_true")
    ap.add_argument("--no-special-tokens", action="store_true")
    ap.add_argument("--skip-blank-lines", action="store_true")
    a = ap.parse_args()

    from tokenizers import Tokenizer
    tk = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    eod = eod_id(a.tokenizer, tk) if a.append_eod else None
    keys = [k for k in a.json_keys.split(",") if k]
    if not keys:
        die("--json-keys is empty")

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    dtype = DType.optimal_dtype(tk.get_vocab_size(with_added_tokens=True))
    special = not a.no_special_tokens
    builders = {k: IndexedDatasetBuilder(f"{a.output_prefix}_{k}_document.bin", dtype=dtype)
                for k in keys}

    def flush(batch):
        # batch: list of per-line [sentences for key 0, sentences for key 1, ...]
        flat = [s for doc in batch for sents in doc for s in sents]
        ids = iter([e.ids for e in tk.encode_batch(flat, add_special_tokens=special)]
                   if flat else [])
        for doc in batch:
            for k, sents in zip(keys, doc):
                doc_ids, lens = [], []
                for _ in sents:
                    s_ids = next(ids)
                    if len(s_ids) > 0:
                        doc_ids.extend(s_ids)
                        lens.append(len(s_ids))
                if doc_ids and a.append_eod:
                    doc_ids.append(eod)
                    lens[-1] += 1
                builders[k].add_document(doc_ids, lens)

    batch = []
    for doc in read_docs(a.input, keys, a.skip_blank_lines):
        batch.append(doc)
        if len(batch) == BATCH:
            flush(batch)
            batch = []
    flush(batch)
    for k in keys:
        builders[k].finalize(f"{a.output_prefix}_{k}_document.idx")


if __name__ == "__main__":
    main()
