#!/usr/bin/env python3
"""hf_generate.py - HF transformers / tokenizers oracle for mb-generate.

usage: hf_generate.py generate CKPT.h5... --prompt-ids "1 2 3" [--max-new-tokens 32]
                               [--eos-id N ...] [--hf]
       hf_generate.py probs CKPT.h5 --prompt-ids "1 2 3" [--logits-out FILE]
                            --case OUT T K P [--case ...]
       hf_generate.py chi2 COUNTS PROBS [--samples N]
       hf_generate.py decode-cases TOKENIZER.json CORPUS.jsonl... > ids.txt
       hf_generate.py decode-check TOKENIZER.json ids.txt got.txt

generate      loads the mb checkpoint's weights (fp32 or bf16 /model, widened) into the
              transformers class of its model_config (tests/oracle/hf_model.py's name
              mapping; fp32, eager attention), or with --hf the HF directories given
              (from_pretrained, fp32, eager attention), and prints
              the ids model.generate(do_sample=False) appends to the prompt, a line per
              checkpoint.
              EOS is only what --eos-id gives (none: runs to max-new-tokens).
probs         writes to each case's OUT the distribution of the first sampled token,
              one probability per line: the next-token logits of the prompt through HF's own logits warpers
              (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, in generate's
              order; K 0 and P 1 are off) and a softmax; --logits-out FILE also writes
              the raw logits, one a line.
chi2          COUNTS: one count per line (how often each token was drawn), PROBS: the
              expected distribution. Fails (exit 1) when a token of probability 0 was
              drawn, or when Pearson's chi-square over the tokens of expected count >= 5
              (the rest pooled) exceeds the 0.999 quantile of its distribution.
decode-cases  prints lines of token ids to decode: each corpus text encoded with special
              tokens, prefixes of them cut inside multi-byte characters, special tokens
              spliced in, and seeded random ids over the whole vocabulary.
decode-check  compares got.txt (hex of mb's decoded bytes, a line per case) with HF
              tokenizers' decode(ids, skip_special_tokens=False); exit 1 on a difference.
"""
import argparse
import json
import math
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- the model

def read_ckpt(path):
    """(mb config, {mb name: float32 torch tensor}) from an mb checkpoint file."""
    import h5py
    import torch
    out = {}
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            t = obj.id.get_type()
            if t.get_class() == h5py.h5t.FLOAT and t.get_size() == 2 and \
                    t.get_fields() == (15, 7, 8, 0, 7):
                raw = np.empty(obj.shape, dtype="<u2")
                obj.id.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=t)
                x = torch.from_numpy(raw.astype(np.int16)).view(torch.bfloat16).float()
            else:
                x = torch.from_numpy(np.asarray(obj[()], dtype=np.float32))
            out[name.replace("/", ".")] = x
        f["model"].visititems(visit)
    return cfg, out


def load_model(ckpt, hf_dir):
    import torch
    if hf_dir:
        hf_dir = ckpt
        import transformers as tf
        model = tf.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                        attn_implementation="eager")
        model.eval()
        return model
    import hf_model as H
    cfg, mb = read_ckpt(ckpt)
    model = H.hf_model(cfg, torch.float32)
    hf = H.mb_to_hf(cfg, mb)
    named = dict(model.named_parameters())
    if sorted(set(hf) ^ set(named)):
        raise SystemExit(f"hf_generate.py: name mapping differs: {sorted(set(hf) ^ set(named))}")
    with torch.no_grad():
        for k, p in named.items():
            p.copy_(hf[k])
    return model


def parse_ids(s):
    return [int(x) for x in s.split()]


def cmd_generate(a):
    for ckpt in a.ckpt:
        generate_one(a, ckpt)


def generate_one(a, ckpt):
    import torch
    model = load_model(ckpt, a.hf_dir)
    ids = torch.tensor([parse_ids(a.prompt_ids)])
    gc = model.generation_config
    gc.eos_token_id = a.eos_id if a.eos_id else None
    gc.bos_token_id = None
    gc.pad_token_id = a.eos_id[0] if a.eos_id else 0
    gc.do_sample = False
    gc.max_new_tokens = a.max_new_tokens
    gc.min_new_tokens = 0
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    print(" ".join(str(int(x)) for x in out[0, ids.shape[1]:]), flush=True)


def cmd_probs(a):
    import torch
    import transformers as tf
    model = load_model(a.ckpt, None)
    ids = torch.tensor([parse_ids(a.prompt_ids)])
    with torch.no_grad():
        scores = model(ids).logits[:, -1, :].float()
    if a.logits_out:
        np.savetxt(a.logits_out, scores[0].numpy().astype(np.float64), fmt="%.9g")
    for out, t, k, p in a.case:
        t, k, p = float(t), int(k), float(p)
        warpers = tf.LogitsProcessorList()
        if t != 1.0:
            warpers.append(tf.TemperatureLogitsWarper(t))
        if k:
            warpers.append(tf.TopKLogitsWarper(k))
        if p < 1.0:
            warpers.append(tf.TopPLogitsWarper(p))
        probs = torch.softmax(warpers(ids, scores.clone()), dim=-1)[0].double().numpy()
        np.savetxt(out, probs, fmt="%.17g")


def chi2_quantile_999(k):
    """The 0.999 quantile of chi-square with K degrees of freedom (Wilson-Hilferty; within
    a few percent of the exact value, 10.83 for K = 1, and closer for larger K)."""
    z = 3.090232306  # the 0.999 quantile of the standard normal
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def cmd_chi2(a):
    counts = np.loadtxt(a.counts, dtype=np.float64, ndmin=1)
    probs = np.loadtxt(a.probs, dtype=np.float64, ndmin=1)
    n = counts.sum()
    if len(counts) != len(probs):
        raise SystemExit(f"{len(counts)} counts, {len(probs)} probabilities")
    bad = np.nonzero((probs == 0) & (counts > 0))[0]
    if len(bad):
        print(f"not ok: tokens {bad[:10].tolist()} have probability 0 but were drawn")
        return 1
    exp = probs * n
    big = exp >= 5
    obs_cells = list(counts[big]) + [counts[~big].sum()]
    exp_cells = list(exp[big]) + [exp[~big].sum()]
    cells = [(o, e) for o, e in zip(obs_cells, exp_cells) if e > 0]
    stat = sum((o - e) ** 2 / e for o, e in cells)
    dof = max(len(cells) - 1, 1)
    limit = chi2_quantile_999(dof)
    ok = stat <= limit
    print(f"{'ok' if ok else 'not ok'}: chi-square {stat:.1f} over {len(cells)} cells "
          f"(limit {limit:.1f}), {int((probs > 0).sum())} tokens allowed, {int(n)} samples")
    return 0 if ok else 1


# ---------------------------------------------------------------- decoding

def cmd_decode_cases(a):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(a.tokenizer)
    rng = random.Random(5)
    texts = []
    for path in a.corpus:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= a.per_corpus:
                    break
                texts.append(json.loads(line)["text"])
    special = sorted(tok.get_added_tokens_decoder())
    vocab = tok.get_vocab_size(with_added_tokens=True)
    lines = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        lines.append(ids)
        for _ in range(2):  # prefixes: cuts inside words and multi-byte characters
            lines.append(ids[:rng.randint(1, max(1, len(ids)))])
        if special and len(ids) > 2:
            k = rng.randint(1, len(ids) - 1)
            lines.append(ids[:k] + [rng.choice(special)] + ids[k:])
    for _ in range(200):
        lines.append([rng.randrange(vocab) for _ in range(rng.randint(1, 12))])
    for ids in lines:
        print(" ".join(map(str, ids)))


def cmd_decode_check(a):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(a.tokenizer)
    with open(a.ids, encoding="utf-8") as f:
        cases = [parse_ids(line) for line in f]
    with open(a.got, encoding="ascii") as f:
        got = [line.rstrip("\n") for line in f]
    if len(got) != len(cases):
        print(f"not ok: {len(cases)} cases, {len(got)} outputs")
        return 1
    bad = 0
    for ids, g in zip(cases, got):
        want = tok.decode(ids, skip_special_tokens=False).encode("utf-8")
        if bytes.fromhex(g) != want:
            bad += 1
            if bad <= 5:
                print(f"ids {ids[:40]}:\n  mb {bytes.fromhex(g)[:200]!r}\n  HF {want[:200]!r}")
    print(f"{'ok' if not bad else 'not ok'}: {len(cases) - bad} of {len(cases)} cases decode "
          "as HF tokenizers")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("ckpt", nargs="+")
    g.add_argument("--prompt-ids", required=True)
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--eos-id", type=int, action="append", default=[])
    g.add_argument("--hf", dest="hf_dir", action="store_true",
                   help="the CKPT arguments are HF model directories (save_pretrained)")
    p = sub.add_parser("probs")
    p.add_argument("ckpt")
    p.add_argument("--prompt-ids", required=True)
    p.add_argument("--case", nargs=4, action="append", default=[],
                   metavar=("OUT", "T", "K", "P"), help="temperature, top-k, top-p")
    p.add_argument("--logits-out", help="also write the raw next-token logits, one a line")
    c = sub.add_parser("chi2")
    c.add_argument("counts")
    c.add_argument("probs")
    d = sub.add_parser("decode-cases")
    d.add_argument("tokenizer")
    d.add_argument("corpus", nargs="+")
    d.add_argument("--per-corpus", type=int, default=40)
    k = sub.add_parser("decode-check")
    k.add_argument("tokenizer")
    k.add_argument("ids")
    k.add_argument("got")
    a = ap.parse_args()
    if a.cmd in ("generate", "probs"):
        import torch
        torch.set_num_threads(1)
    fn = {"generate": cmd_generate, "probs": cmd_probs, "chi2": cmd_chi2,
          "decode-cases": cmd_decode_cases, "decode-check": cmd_decode_check}[a.cmd]
    return fn(a) or 0


if __name__ == "__main__":
    sys.exit(main())
