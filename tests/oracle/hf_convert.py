#!/usr/bin/env python3
"""hf_convert.py - transformers oracle for mb-convert.

usage: hf_convert.py make OUT_DIR CORPUS.jsonl NAME[:OPTS]...
       hf_convert.py check ORIG BACK [MB_DUMP] [--files] [--dtype float32|bfloat16|float16]
                     [--tokens TOKENS.npy] [--tol 1e-4] [ORIG BACK [MB_DUMP] ...]

make    creates, for each NAME (llama, llama_tied, mistral, qwen2, qwen3, gemma, gemma2,
        gemma3, gpt2), a tiny randomly initialised model with transformers itself
        (config + AutoModelForCausalLM.from_config, seeded) saved with save_pretrained
        in OUT_DIR/NAME, with a byte-level BPE tokenizer trained by `tokenizers` on the
        corpus (vocab 512) saved beside it; OPTS, comma-separated: bf16, fp16 (save in
        that dtype), shard=SIZE (max_shard_size), scale=X (every matrix times X: peaked
        next-token distributions, so greedy decoding has no near-ties), mixed (with bf16 or
        fp16: the 1-D tensors, norms and biases, stay fp32), head (a tied model: its
        model.safetensors rewritten by safetensors' save_file with lm_head.weight, equal to
        the embedding, kept), badhead (the same, lm_head.weight differing from it).
        Also writes OUT_DIR/tokens.npy: the
        first 64 tokens of the corpus, int32 [1, 64].
check   for each ORIG/BACK pair of HF directories: the same tensor names, every tensor
        bit-identical (raw bytes; with --dtype, ORIG cast by torch to that dtype), the
        same shard files and index, with --files every file byte-identical, config.json
        equivalent (transformers' to_dict equal, dtype aside) and BACK loads with
        from_pretrained; with MB_DUMP (a ckpt_logits output directory), mb's logits
        equal transformers' fp32 eager logits on TOKENS to TOL in max abs difference
        (the norm-wise relative difference is printed too) and the losses to TOL.
        ORIG "-" skips the comparisons with an original (a generated config.json).
Prints TAP; exits 1 when a check fails.
"""
import json
import os
import sys

import numpy as np
import torch

V = 512


def tiny_config(name):
    import transformers as tf
    c = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=96, vocab_size=V, max_position_embeddings=128, head_dim=16)
    if name == "llama":  # Llama 3.1/3.2 rope scaling, untied
        c["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16}
        return tf.LlamaConfig(tie_word_embeddings=False, **c)
    if name == "llama_tied":
        return tf.LlamaConfig(tie_word_embeddings=True, **c)
    if name == "mistral":
        return tf.MistralConfig(sliding_window=8, **c)
    if name == "qwen2":
        c.pop("head_dim")
        return tf.Qwen2Config(tie_word_embeddings=True, **c)
    if name == "qwen3":
        c["head_dim"] = 32  # heads * head_dim != hidden
        return tf.Qwen3Config(**c)
    if name == "gemma":
        return tf.GemmaConfig(**c)
    if name == "gemma2":
        c["num_hidden_layers"] = 4
        return tf.Gemma2Config(sliding_window=8, query_pre_attn_scalar=24, **c)
    if name == "gemma3":
        c["num_hidden_layers"] = 4
        return tf.Gemma3TextConfig(sliding_window=8, query_pre_attn_scalar=16,
                                   sliding_window_pattern=3, **c)
    if name == "gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, vocab_size=V,
                             bos_token_id=0, eos_token_id=0)
    raise SystemExit(f"hf_convert.py: unknown model '{name}'")


ARCH = {"llama": "LlamaForCausalLM", "llama_tied": "LlamaForCausalLM",
        "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
        "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM",
        "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM", "gpt2": "GPT2LMHeadModel"}


def train_tokenizer(corpus):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    texts = []
    with open(corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 2000:
                break
            texts.append(json.loads(line)["text"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=V, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok, texts


def make(out, corpus, specs):
    import transformers as tf
    os.makedirs(out, exist_ok=True)
    tok, texts = train_tokenizer(corpus)
    ids = tok.encode("\n".join(texts[:20])).ids[:64]
    assert len(ids) == 64 and max(ids) < V
    np.save(os.path.join(out, "tokens.npy"), np.array([ids], dtype=np.int32))
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok)
    for spec in specs:
        name, _, opts = spec.partition(":")
        opts = [o for o in opts.split(",") if o]
        cfg = tiny_config(name)
        cfg.architectures = [ARCH[name]]
        torch.manual_seed(1234)
        model = tf.AutoModelForCausalLM.from_config(cfg)
        # norm weights start at 1 (or 0) and biases at 0: move them, so a wrong mapping shows
        with torch.no_grad():
            scale = [float(o[6:]) for o in opts if o.startswith("scale=")]
            for k, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(0.1 * torch.randn_like(p))
                elif scale:
                    p.mul_(scale[0])
        dtype = torch.bfloat16 if "bf16" in opts else torch.float16 if "fp16" in opts else None
        if dtype is not None:
            model = model.to(dtype)
            if "mixed" in opts:
                for p in model.parameters():
                    if p.dim() == 1:
                        p.data = p.data.float()
        shard = [o[6:] for o in opts if o.startswith("shard=")]
        d = os.path.join(out, spec.replace(":", "_").replace(",", "_").replace("=", ""))
        model.save_pretrained(d, max_shard_size=shard[0] if shard else "5GB")
        fast.save_pretrained(d)
        if "head" in opts or "badhead" in opts:
            from safetensors.torch import load_file, save_file
            f = os.path.join(d, "model.safetensors")
            sd = load_file(f)
            emb = next(k for k in sd if k.endswith("embed_tokens.weight") or k.endswith("wte.weight"))
            sd["lm_head.weight"] = sd[emb].clone()
            if "badhead" in opts:
                sd["lm_head.weight"][3, 5] += 1
            save_file(sd, f, metadata={"format": "pt"})


# ---------------------------------------------------------------- check

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, title, diag=""):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {title}")
        if not cond:
            self.failed += 1
            for line in str(diag).splitlines():
                print(f"#   {line}")
        return cond


def tensors(d):
    from safetensors import safe_open
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(d, f), framework="pt") as s:
                for k in s.keys():
                    out[k] = (f, s.get_tensor(k))
    return out


def raw(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


def config_dict(d):
    import transformers as tf
    c = tf.AutoConfig.from_pretrained(d).to_dict()
    for k in ("transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        c.pop(k, None)
    return c


def compare_dirs(tap, name, orig, back, a):
    want, got = tensors(orig), tensors(back)
    tap.ok(sorted(want) == sorted(got), f"{name}: the same tensor names",
           f"missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}")
    dt = getattr(torch, a.dtype) if a.dtype else None
    bad = [k for k in want if k in got and
           raw(want[k][1].to(dt) if dt else want[k][1]) != raw(got[k][1])]
    tap.ok(not bad and all(got[k][1].dtype == (dt or want[k][1].dtype) for k in got),
           f"{name}: every tensor bit-identical" + (f" to torch's cast to {a.dtype}" if dt else ""),
           f"differ: {bad[:5]}")
    tap.ok(all(want[k][0] == got[k][0] for k in want if k in got),
           f"{name}: every tensor in the same shard file")
    if a.files:
        diff = [f for f in sorted(os.listdir(orig)) if not os.path.exists(os.path.join(back, f))
                or open(os.path.join(orig, f), "rb").read() !=
                open(os.path.join(back, f), "rb").read()]
        tap.ok(not diff, f"{name}: every file byte-identical", f"differ: {diff}")
    tap.ok(config_dict(orig) == config_dict(back), f"{name}: config.json equivalent",
           f"{config_dict(orig)}\n{config_dict(back)}")


def check_pair(tap, orig, back, dump, a):
    import transformers as tf
    name = os.path.basename(back.rstrip("/"))
    if orig != "-":
        compare_dirs(tap, name, orig, back, a)
    model = tf.AutoModelForCausalLM.from_pretrained(back, attn_implementation="eager").float()
    model.eval()
    tap.ok(True, f"{name}: transformers loads the result")
    if not dump:
        return
    ids = torch.from_numpy(np.load(a.tokens)).long()
    with torch.no_grad():
        logits = model(ids).logits.float()
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
    mine = torch.from_numpy(np.load(os.path.join(dump, "logits.npy")))
    mloss = float(np.load(os.path.join(dump, "loss.npy")))
    err = (mine - logits).abs().max().item() if mine.shape == logits.shape else float("inf")
    rel = ((mine - logits).norm() / logits.norm()).item() if err < float("inf") else err
    tap.ok(err <= a.tol, f"{name}: mb logits = transformers (max abs {err:.2e}, rel {rel:.2e})")
    tap.ok(abs(mloss - loss) <= a.tol, f"{name}: loss {mloss:.6f} = {loss:.6f}")


def check(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--files", action="store_true")
    ap.add_argument("--dtype")
    ap.add_argument("--tokens")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    tap = Tap()
    groups, cur = [], []
    for d in a.dirs:  # ORIG BACK [DUMP]: a dump has logits.npy
        if cur and len(cur) >= 2 and not os.path.exists(os.path.join(d, "logits.npy")):
            groups.append(cur)
            cur = []
        cur.append(d)
    groups.append(cur)
    for g in groups:
        check_pair(tap, g[0], g[1], g[2] if len(g) > 2 else None, a)  # ORIG "-": no ORIG
    print(f"1..{tap.n}")
    return 1 if tap.failed else 0


def main():
    torch.set_num_threads(1)
    if len(sys.argv) > 3 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    if len(sys.argv) > 3 and sys.argv[1] == "check":
        return check(sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
