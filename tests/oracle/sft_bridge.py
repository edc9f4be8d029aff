#!/usr/bin/env python3
"""sft_bridge.py - Megatron Bridge's prompt/completion tokenization (test oracle for
mb's data/sft_row.c), written from finetune.md 4.2 with the HF tokenizer.

usage: sft_bridge.py JOBS.json

JOBS is a list of {"out", "tokenizer", "file", "rows", "seq", "separator", "template",
"answer_key"}. Each job writes OUT: for each of the first ROWS rows of FILE, "ids ..."
and "mask ..." lines (the unshifted mask: 1 on completion tokens and the EOS), or "skip"
where truncation left a non-empty completion without tokens (Bridge raises ValueError
there). One process for all jobs: transformers is slow to import.
"""
import argparse
import json

from transformers import AutoTokenizer


def space_sensitive(tok):
    # Bridge: tokenize("x y") != tokenize("x") + tokenize("y")
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    return enc("x y") != enc("x") + enc("y")


def example(tok, row, a, sensitive):
    values = {k: v.strip(" ") if isinstance(v, str) else v for k, v in row.items()}
    prompt_text = a.template.format(**values)
    sep = a.separator
    if sep.startswith(" ") and not sensitive:
        sep = sep[1:]
    completion_text = sep + row[a.answer_key].strip(" ")
    prompt = tok.encode(prompt_text, add_special_tokens=False)
    completion = tok.encode(completion_text, add_special_tokens=False)
    budget = a.seq - 1  # [eos]; no bos, prefix or sep token
    overflow = len(prompt) + len(completion) - budget
    if overflow > 0:
        cut = min(overflow, len(prompt))
        prompt = prompt[: len(prompt) - cut]  # truncation_method "right": keep the head
        overflow -= cut
        if overflow > 0:
            completion = completion[: max(0, len(completion) - overflow)]
            if completion_text and not completion:
                return None
    ids = prompt + completion + [tok.eos_token_id]
    mask = [0] * len(prompt) + [1] * (len(completion) + 1)
    return ids, mask


def run(job):
    a = argparse.Namespace(**job)
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    sensitive = space_sensitive(tok)
    with open(a.file, encoding="utf-8") as f, open(a.out, "w") as out:
        for i, line in enumerate(f):
            if i >= a.rows:
                break
            ex = example(tok, json.loads(line), a, sensitive)
            if ex is None:
                out.write("skip\n")
                continue
            out.write("ids " + " ".join(map(str, ex[0])) + "\n")
            out.write("mask " + " ".join(map(str, ex[1])) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("jobs")
    for job in json.load(open(p.parse_args().jobs)):
        run(job)


if __name__ == "__main__":
    main()
