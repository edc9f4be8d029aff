#!/usr/bin/env python3
"""hf_model.py - PyTorch/transformers oracle for mb's model forward, loss and gradients.

usage: hf_model.py compare DUMP_DIR... [--tol 1e-4] [--float64] [--min-hidden X]
                          [--min-preact Y]
       hf_model.py dump CONFIG.json DUMP_DIR [--batch 2] [--seq 16] [--seed 7]
       hf_model.py selftest CONFIG.json... [--batch 2] [--seq 16] [--seed 7] [--tol 1e-4]

compare   reads a dump written by mb's model_dump helper (config.json, tokens.npy,
          labels.npy, loss_mask.npy, params/NAME.npy, grads/NAME.npy, logits.npy,
          loss.npy), builds the transformers model of the config's family (fp32, eager
          attention), loads the params mapped from Megatron names to HF names, runs the
          forward on the tokens, takes loss = sum(mask * token_loss) / sum(mask) from the
          logits, backpropagates, maps HF's gradients back to Megatron names and checks
          logits, loss and every gradient. The measure is norm-wise: rel = ||got - want|| /
          ||want|| per tensor (for the scalar loss |got - want| / |want|); max |got - want|
          is reported beside it; a failing stacked gradient is broken down by layer.
          --float64 runs the HF model in float64 (the reference then carries no fp32
          rounding of its own). --min-hidden X / --min-preact Y also check, per dump,
          that transformers' largest |hidden state| (a decoder layer's output) reaches
          X and its largest |MLP pre-activation| (the input of act_fn / act) reaches Y
          (for dumps of models with scaled weights).
          Prints one TAP stream for all dumps; exits 1 when any
          check fails, 2 on bad input (missing or extra tensors, wrong shapes or dtypes,
          a config the family's HF class cannot express).
dump      writes such a dump from a second, independent implementation of the mb config's
          semantics: plain torch on the Megatron-layout tensors (fused QKV, fused fc1),
          random parameters (norm weights and biases randomised too) and autograd grads.
selftest  dump + compare in a scratch directory, then checks that compare fails on
          dumps with a perturbed logit, loss, gradient or swapped QKV heads, and on dumps
          made with one config value changed (rope base and scaling, sliding window and
          pattern, soft-capping, query_pre_attn_scalar, embedding scaling), so every
          feature a test config turns on moves the numbers by more than the tolerance.

Conventions of the mb config beyond formats.md: rope scaling applies to layers that use
`rotary_base`; Gemma3's sliding layers use `rotary_base_local` unscaled (HF: rope_scaling
goes to the full_attention rope parameters only).
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gpt2")
LP = "decoder.layers."


class DumpError(Exception):
    """Bad or inconsistent input (exit status 2)."""


# ---------------------------------------------------------------- the mb config

def cfg_get(cfg, key, default=None):
    v = cfg.get(key, default)
    return default if v is None else v


def load_config(path):
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    need = ("family", "hidden_size", "num_layers", "num_attention_heads", "ffn_hidden_size",
            "vocab_size", "normalization", "activation")
    for k in need:
        if k not in cfg:
            raise DumpError(f"{path}: missing key '{k}'")
    if cfg["family"] not in FAMILIES:
        raise DumpError(f"{path}: unknown family '{cfg['family']}'")
    return cfg


def dims(cfg):
    """H, L, nH, nKV, d, I, V of the config."""
    nh = cfg["num_attention_heads"]
    nkv = cfg_get(cfg, "num_query_groups", nh) or nh
    d = cfg_get(cfg, "kv_channels", 0) or cfg["hidden_size"] // nh
    return (cfg["hidden_size"], cfg["num_layers"], nh, nkv, d, cfg["ffn_hidden_size"],
            cfg["vocab_size"])


def is_sliding(cfg, i):
    w = cfg_get(cfg, "sliding_window", 0)
    pat = cfg_get(cfg, "sliding_window_pattern", 0)
    return w > 0 and (pat == 0 or (i + 1) % pat != 0)


def gated(cfg):
    return cfg["activation"] in ("swiglu", "geglu")


def has_qkv_bias(cfg):
    return bool(cfg_get(cfg, "add_qkv_bias", False) or cfg_get(cfg, "add_bias_linear", False))


def mb_shapes(cfg):
    """Every mb parameter name with its shape, in a fixed order."""
    H, L, nh, nkv, d, ffn, V = dims(cfg)
    ln = cfg["normalization"] == "LayerNorm"
    bias = cfg_get(cfg, "add_bias_linear", False)
    s = {"embedding.word_embeddings.weight": (V, H)}
    if cfg_get(cfg, "position_embedding_type", "rope") == "learned_absolute":
        s["embedding.position_embeddings.weight"] = (cfg["max_position_embeddings"], H)
    a = LP + "self_attention."
    s[a + "linear_qkv.layer_norm_weight"] = (L, H)
    if ln:
        s[a + "linear_qkv.layer_norm_bias"] = (L, H)
    s[a + "linear_qkv.weight"] = (L, (nh + 2 * nkv) * d, H)
    if has_qkv_bias(cfg):
        s[a + "linear_qkv.bias"] = (L, (nh + 2 * nkv) * d)
    if cfg_get(cfg, "qk_layernorm", False):
        s[a + "q_layernorm.weight"] = (L, d)
        s[a + "k_layernorm.weight"] = (L, d)
    s[a + "linear_proj.weight"] = (L, H, nh * d)
    if bias:
        s[a + "linear_proj.bias"] = (L, H)
    if cfg_get(cfg, "sandwich_norm", False):
        s[a + "linear_proj.post_layernorm.weight"] = (L, H)
    m = LP + "mlp."
    s[m + "linear_fc1.layer_norm_weight"] = (L, H)
    if ln:
        s[m + "linear_fc1.layer_norm_bias"] = (L, H)
    s[m + "linear_fc1.weight"] = (L, 2 * ffn if gated(cfg) else ffn, H)
    if bias:
        s[m + "linear_fc1.bias"] = (L, 2 * ffn if gated(cfg) else ffn)
    s[m + "linear_fc2.weight"] = (L, H, ffn)
    if bias:
        s[m + "linear_fc2.bias"] = (L, H)
    if cfg_get(cfg, "sandwich_norm", False):
        s[m + "linear_fc2.post_layernorm.weight"] = (L, H)
    s["decoder.final_layernorm.weight"] = (H,)
    if ln:
        s["decoder.final_layernorm.bias"] = (H,)
    if not cfg_get(cfg, "share_embeddings_and_output_weights", False):
        s["output_layer.weight"] = (V, H)
    return s


# ---------------------------------------------------------------- the HF config

def rope_params(cfg, theta, scaled):
    kind = cfg_get(cfg, "rope_scaling_type", "none") if scaled else "none"
    if kind == "none":
        return {"rope_type": "default", "rope_theta": float(theta)}
    if kind == "linear":
        return {"rope_type": "linear", "rope_theta": float(theta),
                "factor": float(cfg["rope_scaling_factor"])}
    if kind == "llama3":
        return {"rope_type": "llama3", "rope_theta": float(theta),
                "factor": float(cfg["rope_scaling_factor"]),
                "low_freq_factor": float(cfg["rope_scaling_low_freq_factor"]),
                "high_freq_factor": float(cfg["rope_scaling_high_freq_factor"]),
                "original_max_position_embeddings":
                    int(cfg["rope_scaling_original_max_position_embeddings"])}
    raise DumpError(f"rope_scaling_type '{kind}' is not supported")


def check_supported(cfg):
    """Refuse config combinations the family's HF class cannot express."""
    fam = cfg["family"]
    _, _, nh, _, d, _, _ = dims(cfg)
    bias = cfg_get(cfg, "add_bias_linear", False)
    qkvb = cfg_get(cfg, "add_qkv_bias", False)
    gpt2 = fam == "gpt2"
    want = {
        "normalization": "LayerNorm" if gpt2 else "RMSNorm",
        "activation": "gelu" if gpt2 else ("geglu" if fam.startswith("gemma") else "swiglu"),
        "position_embedding_type": "learned_absolute" if gpt2 else "rope",
        "layernorm_zero_centered_gamma": fam.startswith("gemma"),
        "scale_embeddings": fam.startswith("gemma"),
        "sandwich_norm": fam in ("gemma2", "gemma3"),
        "qk_layernorm": fam in ("qwen3", "gemma3"),
    }
    defaults = {"position_embedding_type": "rope"}
    for k, v in want.items():
        got = cfg_get(cfg, k, defaults.get(k, False))
        if got != v:
            raise DumpError(f"{fam}: {k} = {got!r} is not expressible in HF (want {v!r})")
    if float(cfg_get(cfg, "rotary_percent", 1.0)) != 1.0:
        raise DumpError(f"{fam}: rotary_percent != 1 is not supported")
    if fam == "qwen2" and not qkvb:
        raise DumpError("qwen2: HF Qwen2 always has q/k/v biases (add_qkv_bias must be true)")
    if fam == "gpt2":
        if not bias:
            raise DumpError("gpt2: add_bias_linear must be true")
        if dims(cfg)[3] != nh or d * nh != cfg["hidden_size"]:
            raise DumpError("gpt2: needs MHA with kv_channels = hidden / heads")
    elif fam == "llama":
        if qkvb != bias:
            raise DumpError("llama: HF attention_bias biases q/k/v and o together")
    elif fam != "qwen2" and (bias or qkvb):
        raise DumpError(f"{fam}: linear biases are not supported")
    if fam == "qwen2" and bias:
        raise DumpError("qwen2: add_bias_linear is not supported")
    if fam not in ("gemma2", "gemma3"):
        for k in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg_get(cfg, k, 0):
                raise DumpError(f"{fam}: {k} is not supported")
        q = cfg_get(cfg, "query_pre_attn_scalar", 0)
        if q and q != d:
            raise DumpError(f"{fam}: query_pre_attn_scalar != kv_channels is not supported")
    if fam not in ("mistral", "gemma2", "gemma3") and cfg_get(cfg, "sliding_window", 0):
        raise DumpError(f"{fam}: sliding_window is not supported")
    if fam == "mistral" and cfg_get(cfg, "sliding_window_pattern", 0):
        raise DumpError("mistral: the window applies to every layer (pattern must be 0)")
    if fam != "gemma3" and cfg_get(cfg, "rotary_base_local", 0):
        raise DumpError(f"{fam}: rotary_base_local is only for gemma3")


def hf_config(cfg):
    """The transformers config object for an mb config."""
    import transformers as tf
    check_supported(cfg)
    fam = cfg["family"]
    H, L, nh, nkv, d, ffn, V = dims(cfg)
    tied = bool(cfg_get(cfg, "share_embeddings_and_output_weights", False))
    eps = float(cfg_get(cfg, "layernorm_epsilon", 1e-5))
    # initializer_range only seeds HF's own init, which the loaded params replace; HF
    # refuses values above 1 (models with scaled weights have them)
    common = dict(vocab_size=V, tie_word_embeddings=tied, attn_implementation="eager",
                  initializer_range=min(float(cfg_get(cfg, "init_method_std", 0.02)), 1.0))
    if fam == "gpt2":
        return tf.GPT2Config(n_embd=H, n_layer=L, n_head=nh, n_inner=ffn,
                             n_positions=cfg["max_position_embeddings"],
                             layer_norm_epsilon=eps, activation_function="gelu_new",
                             resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
                             eos_token_id=None, **common)
    kw = dict(hidden_size=H, num_hidden_layers=L, num_attention_heads=nh,
              num_key_value_heads=nkv, head_dim=d, intermediate_size=ffn,
              max_position_embeddings=cfg["max_position_embeddings"], rms_norm_eps=eps,
              attention_dropout=0.0, **common)
    theta = cfg_get(cfg, "rotary_base", 10000.0)
    w = cfg_get(cfg, "sliding_window", 0)
    types = ["sliding_attention" if is_sliding(cfg, i) else "full_attention" for i in range(L)]
    if fam in ("gemma2", "gemma3"):
        q = int(cfg_get(cfg, "query_pre_attn_scalar", 0) or d)
        kw.update(query_pre_attn_scalar=q, sliding_window=w if w else None,
                  layer_types=types, hidden_activation="gelu_pytorch_tanh",
                  attn_logit_softcapping=cfg_get(cfg, "attn_logit_softcapping", 0) or None,
                  final_logit_softcapping=cfg_get(cfg, "final_logit_softcapping", 0) or None)
    if fam == "gemma3":
        local = cfg_get(cfg, "rotary_base_local", 0) or theta
        kw["rope_parameters"] = {"full_attention": rope_params(cfg, theta, True),
                                 "sliding_attention": rope_params(cfg, local, False)}
        return tf.Gemma3TextConfig(**kw)
    kw["rope_parameters"] = rope_params(cfg, theta, True)
    if fam == "gemma2":
        return tf.Gemma2Config(**kw)
    if fam == "gemma":
        return tf.GemmaConfig(hidden_act="gelu_pytorch_tanh", **kw)
    if fam == "llama":
        b = bool(cfg_get(cfg, "add_bias_linear", False))
        return tf.LlamaConfig(attention_bias=b, mlp_bias=b, **kw)
    if fam == "mistral":
        return tf.MistralConfig(sliding_window=w if w else None, **kw)
    if fam == "qwen2":
        return tf.Qwen2Config(use_sliding_window=False, **kw)
    return tf.Qwen3Config(use_sliding_window=False, attention_bias=False, **kw)


def hf_model(cfg, dtype):
    import transformers as tf
    classes = {"llama": tf.LlamaForCausalLM, "mistral": tf.MistralForCausalLM,
               "qwen2": tf.Qwen2ForCausalLM, "qwen3": tf.Qwen3ForCausalLM,
               "gemma": tf.GemmaForCausalLM, "gemma2": tf.Gemma2ForCausalLM,
               "gemma3": tf.Gemma3ForCausalLM, "gpt2": tf.GPT2LMHeadModel}
    hc = hf_config(cfg)
    torch.manual_seed(0)
    model = classes[cfg["family"]](hc).to(dtype)
    model.eval()
    return model


# ---------------------------------------------------------------- name mapping

def hf_layer_names(cfg):
    """mb per-layer name -> HF per-layer name template (simple 1:1 tensors only)."""
    fam = cfg["family"]
    a, m = LP + "self_attention.", LP + "mlp."
    if fam == "gpt2":
        h = "transformer.h.{}."
        return {a + "linear_qkv.layer_norm_weight": h + "ln_1.weight",
                a + "linear_qkv.layer_norm_bias": h + "ln_1.bias",
                m + "linear_fc1.layer_norm_weight": h + "ln_2.weight",
                m + "linear_fc1.layer_norm_bias": h + "ln_2.bias",
                a + "linear_proj.bias": h + "attn.c_proj.bias",
                m + "linear_fc1.bias": h + "mlp.c_fc.bias",
                m + "linear_fc2.bias": h + "mlp.c_proj.bias"}
    h = "model.layers.{}."
    n = {a + "linear_qkv.layer_norm_weight": h + "input_layernorm.weight",
         a + "q_layernorm.weight": h + "self_attn.q_norm.weight",
         a + "k_layernorm.weight": h + "self_attn.k_norm.weight",
         a + "linear_proj.weight": h + "self_attn.o_proj.weight",
         a + "linear_proj.bias": h + "self_attn.o_proj.bias",
         m + "linear_fc2.weight": h + "mlp.down_proj.weight",
         m + "linear_fc2.bias": h + "mlp.down_proj.bias"}
    if cfg_get(cfg, "sandwich_norm", False):
        n[a + "linear_proj.post_layernorm.weight"] = h + "post_attention_layernorm.weight"
        n[m + "linear_fc1.layer_norm_weight"] = h + "pre_feedforward_layernorm.weight"
        n[m + "linear_fc2.post_layernorm.weight"] = h + "post_feedforward_layernorm.weight"
    else:
        n[m + "linear_fc1.layer_norm_weight"] = h + "post_attention_layernorm.weight"
    return n


def hf_global_names(cfg):
    if cfg["family"] == "gpt2":
        return {"embedding.word_embeddings.weight": "transformer.wte.weight",
                "embedding.position_embeddings.weight": "transformer.wpe.weight",
                "decoder.final_layernorm.weight": "transformer.ln_f.weight",
                "decoder.final_layernorm.bias": "transformer.ln_f.bias",
                "output_layer.weight": "lm_head.weight"}
    return {"embedding.word_embeddings.weight": "model.embed_tokens.weight",
            "decoder.final_layernorm.weight": "model.norm.weight",
            "output_layer.weight": "lm_head.weight"}


def qkv_perm(cfg):
    """Row order: fused Megatron row r holds row perm[r] of cat(q, k, v) (HF order)."""
    _, _, nh, nkv, d, _, _ = dims(cfg)
    g = nh // nkv
    perm = []
    for grp in range(nkv):
        for j in range(g):
            perm.extend(range((grp * g + j) * d, (grp * g + j + 1) * d))
        perm.extend(range((nh + grp) * d, (nh + grp + 1) * d))
        perm.extend(range((nh + nkv + grp) * d, (nh + nkv + grp + 1) * d))
    return torch.tensor(perm)


def mb_to_hf(cfg, mb):
    """HF state-dict tensors from mb tensors (per layer, HF orientation)."""
    fam = cfg["family"]
    _, L, nh, nkv, d, ffn, _ = dims(cfg)
    out = {}
    for k, v in hf_global_names(cfg).items():
        if k in mb:
            out[v] = mb[k]
    simple = hf_layer_names(cfg)
    perm = qkv_perm(cfg)
    a, m = LP + "self_attention.", LP + "mlp."
    for i in range(L):
        for k, v in simple.items():
            if k in mb:
                out[v.format(i)] = mb[k][i]
        for suffix in ("weight", "bias"):
            key = a + "linear_qkv." + suffix
            if key not in mb:
                continue
            cat = torch.empty_like(mb[key][i])
            cat[perm] = mb[key][i]
            if fam == "gpt2":  # Conv1D: [in, out], columns [q | k | v]
                out[f"transformer.h.{i}.attn.c_attn.{suffix}"] = cat.T if cat.dim() == 2 else cat
            else:
                q, k_, v_ = cat.split([nh * d, nkv * d, nkv * d])
                for name, t in (("q", q), ("k", k_), ("v", v_)):
                    out[f"model.layers.{i}.self_attn.{name}_proj.{suffix}"] = t
        fc1 = mb[m + "linear_fc1.weight"][i]
        if fam == "gpt2":
            out[f"transformer.h.{i}.attn.c_proj.weight"] = mb[a + "linear_proj.weight"][i].T
            out[f"transformer.h.{i}.mlp.c_fc.weight"] = fc1.T
            out[f"transformer.h.{i}.mlp.c_proj.weight"] = mb[m + "linear_fc2.weight"][i].T
        else:
            for suffix in ("weight", "bias"):
                key = m + "linear_fc1." + suffix
                if key in mb:
                    gate, up = mb[key][i].split([ffn, ffn])
                    out[f"model.layers.{i}.mlp.gate_proj.{suffix}"] = gate
                    out[f"model.layers.{i}.mlp.up_proj.{suffix}"] = up
    return out


def hf_to_mb(cfg, hf):
    """mb tensors (stacked over layers) from HF tensors; the inverse of mb_to_hf."""
    fam = cfg["family"]
    _, L, nh, nkv, d, _, _ = dims(cfg)
    shapes = mb_shapes(cfg)
    out = {}
    for k, v in hf_global_names(cfg).items():
        if k in shapes and v in hf:
            out[k] = hf[v]
    simple = hf_layer_names(cfg)
    perm = qkv_perm(cfg)
    a, m = LP + "self_attention.", LP + "mlp."
    layers = {k: [] for k in shapes if k.startswith(LP)}
    for i in range(L):
        for k, v in simple.items():
            if k in layers and k not in (a + "linear_proj.weight", m + "linear_fc2.weight"):
                layers[k].append(hf[v.format(i)])
        for suffix in ("weight", "bias"):
            key = a + "linear_qkv." + suffix
            if key not in layers:
                continue
            if fam == "gpt2":
                cat = hf[f"transformer.h.{i}.attn.c_attn.{suffix}"]
                cat = cat.T if suffix == "weight" else cat
            else:
                cat = torch.cat([hf[f"model.layers.{i}.self_attn.{n}_proj.{suffix}"]
                                 for n in "qkv"])
            layers[key].append(cat[perm])
        if fam == "gpt2":
            pre = f"transformer.h.{i}."
            layers[a + "linear_proj.weight"].append(hf[pre + "attn.c_proj.weight"].T)
            layers[m + "linear_fc1.weight"].append(hf[pre + "mlp.c_fc.weight"].T)
            layers[m + "linear_fc2.weight"].append(hf[pre + "mlp.c_proj.weight"].T)
        else:
            pre = f"model.layers.{i}."
            layers[a + "linear_proj.weight"].append(hf[pre + "self_attn.o_proj.weight"])
            layers[m + "linear_fc2.weight"].append(hf[pre + "mlp.down_proj.weight"])
            for suffix in ("weight", "bias"):
                key = m + "linear_fc1." + suffix
                if key in layers:
                    layers[key].append(torch.cat([hf[pre + "mlp.gate_proj." + suffix],
                                                  hf[pre + "mlp.up_proj." + suffix]]))
    for k, v in layers.items():
        out[k] = torch.stack(v)
    return out


# ---------------------------------------------------------------- dumps

def read_dump(path):
    def npy(name):
        f = os.path.join(path, name)
        if not os.path.exists(f):
            raise DumpError(f"{f}: missing")
        return np.load(f)
    cfg = load_config(os.path.join(path, "config.json"))
    d = {"cfg": cfg, "tokens": npy("tokens.npy"), "labels": npy("labels.npy"),
         "mask": npy("loss_mask.npy"), "logits": npy("logits.npy"), "loss": npy("loss.npy")}
    shapes = mb_shapes(cfg)
    for sub in ("params", "grads"):
        have = {f[:-4] for f in os.listdir(os.path.join(path, sub)) if f.endswith(".npy")}
        extra = sorted(have - set(shapes))
        missing = sorted(set(shapes) - have)
        if extra or missing:
            raise DumpError(f"{path}/{sub}: unexpected {extra}, missing {missing}")
        d[sub] = {}
        for k, shape in shapes.items():
            t = npy(os.path.join(sub, k + ".npy"))
            if tuple(t.shape) != shape or t.dtype != np.dtype("<f4"):
                raise DumpError(f"{path}/{sub}/{k}.npy: {t.dtype}{list(t.shape)}, "
                                f"want float32{list(shape)}")
            d[sub][k] = t
    B, T = d["tokens"].shape
    V = cfg["vocab_size"]
    for k, shape in (("labels", (B, T)), ("mask", (B, T)), ("logits", (B, T, V)), ("loss", ())):
        if tuple(d[k].shape) != shape:
            raise DumpError(f"{path}: {k} has shape {list(d[k].shape)}, want {list(shape)}")
    for k, dt in (("tokens", "i4"), ("labels", "i4"), ("mask", "f4"), ("logits", "f4"),
                  ("loss", "f4")):
        if d[k].dtype != np.dtype("<" + dt):
            raise DumpError(f"{path}: {k} is {d[k].dtype}, want little-endian {dt}")
    for k in ("tokens", "labels"):
        if d[k].min() < 0 or d[k].max() >= V:
            raise DumpError(f"{path}: {k} out of range [0, {V})")
    if not d["mask"].sum() > 0:
        raise DumpError(f"{path}: loss_mask has no positive entry")
    return d


def save_npy(path, arr):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def write_dump(path, cfg, tokens, labels, mask, params, grads, logits, loss):
    os.makedirs(os.path.join(path, "params"), exist_ok=True)
    os.makedirs(os.path.join(path, "grads"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
    save_npy(os.path.join(path, "tokens.npy"), tokens.astype("<i4"))
    save_npy(os.path.join(path, "labels.npy"), labels.astype("<i4"))
    save_npy(os.path.join(path, "loss_mask.npy"), mask.astype("<f4"))
    for k in params:
        save_npy(os.path.join(path, "params", k + ".npy"), f32(params[k]))
        save_npy(os.path.join(path, "grads", k + ".npy"), f32(grads[k]))
    save_npy(os.path.join(path, "logits.npy"), f32(logits))
    save_npy(os.path.join(path, "loss.npy"), f32(loss))


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy().astype("<f4")


def masked_loss(logits, labels, mask):
    """sum(mask * token cross-entropy) / sum(mask), in the logits' dtype."""
    V = logits.shape[-1]
    tok = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1).long(), reduction="none")
    m = mask.reshape(-1).to(logits.dtype)
    return (tok * m).sum() / m.sum()


# ---------------------------------------------------------------- compare

def track_activations(model, stats):
    """Forward hooks recording in STATS the largest |input| of the MLP activations ("act")
    and |output| of the decoder layers ("hidden")."""
    def act_hook(mod, args, out):
        stats["act"] = max(stats["act"], args[0].detach().abs().max().item())

    def layer_hook(mod, args, out):
        h = out[0] if isinstance(out, tuple) else out
        stats["hidden"] = max(stats["hidden"], h.detach().abs().max().item())

    for name, mod in model.named_modules():
        if name.endswith(".act_fn") or name.endswith(".mlp.act"):
            mod.register_forward_hook(act_hook)
        parts = name.split(".")
        if len(parts) >= 2 and parts[-1].isdigit() and parts[-2] in ("layers", "h"):
            mod.register_forward_hook(layer_hook)


def hf_forward_backward(d, dtype, setup=None):
    """Logits, loss and mb-named grads from the HF model loaded with the dump's params
    (SETUP, a function, is called with the loaded model before the forward: hooks such
    as track_activations)."""
    cfg = d["cfg"]
    model = hf_model(cfg, dtype)
    mb = {k: torch.from_numpy(v).to(dtype) for k, v in d["params"].items()}
    hf = mb_to_hf(cfg, mb)
    named = dict(model.named_parameters())
    unused = sorted(set(hf) - set(named))
    unset = sorted(set(named) - set(hf))
    if unused or unset:
        raise DumpError(f"name mapping: not in model {unused}, not loaded {unset}")
    if cfg_get(cfg, "share_embeddings_and_output_weights", False):
        head = model.get_output_embeddings().weight
        if head is not model.get_input_embeddings().weight:
            raise DumpError("HF model did not tie its output layer to the embedding")
    elif "lm_head.weight" not in named:
        raise DumpError("HF model has no separate lm_head")
    with torch.no_grad():
        for k, p in named.items():
            if tuple(p.shape) != tuple(hf[k].shape):
                raise DumpError(f"{k}: HF shape {list(p.shape)}, mapped {list(hf[k].shape)}")
            p.copy_(hf[k])
    back = hf_to_mb(cfg, {k: p.detach() for k, p in named.items()})
    for k, t in mb.items():
        if not torch.equal(back[k], t):
            raise DumpError(f"{k}: mb -> HF -> mb round trip changes the tensor")
    if setup is not None:
        setup(model)
    tokens = torch.from_numpy(d["tokens"]).long()
    T = tokens.shape[1]
    pos = torch.arange(T).unsqueeze(0).expand_as(tokens)
    logits = model(input_ids=tokens, position_ids=pos, use_cache=False).logits
    loss = masked_loss(logits, torch.from_numpy(d["labels"]), torch.from_numpy(d["mask"]))
    loss.backward()
    grads = hf_to_mb(cfg, {k: p.grad for k, p in named.items()})
    return logits.detach(), loss.detach(), grads


def rel_err(got, want):
    """(||got - want|| / ||want||, max |got - want|) in float64; inf when got is not finite."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if not np.all(np.isfinite(got)):
        return math.inf, math.inf
    diff = got - want
    num = math.sqrt(float(np.square(diff).sum()))
    den = math.sqrt(float(np.square(want).sum()))
    mx = float(np.abs(diff).max()) if diff.size else 0.0
    return (num / den if den > 0 else num), mx


class Tap:
    """Numbered TAP lines; quiet ones are kept in .lines instead of printed."""

    def __init__(self, quiet=False):
        self.n = 0
        self.failed = 0
        self.quiet = quiet
        self.lines = []
        self.failures = []

    def say(self, line):
        if self.quiet:
            self.lines.append(line)
        else:
            print(line, flush=True)

    def check(self, ok, title, detail=()):
        self.n += 1
        self.failed += not ok
        if not ok:
            self.failures.append(title)
        self.say(f"{'ok' if ok else 'not ok'} {self.n} - {title}")
        if not ok:
            for line in detail:
                self.say("#   " + line)

    def plan(self):
        """The plan line, after a summary of the failures (which may be far above)."""
        self.say(f"1..{self.n}")
        if self.failures:
            self.say(f"# {self.failed} of {self.n} failed:")
            for title in self.failures:
                self.say("#   " + title)


def compare(path, tol, dtype, tap, min_act=(0.0, 0.0)):
    """Checks one dump: a TAP line per tensor through tap; returns the worst rel error."""
    d = read_dump(path)
    fam = d["cfg"]["family"]
    stats = {"act": 0.0, "hidden": 0.0}
    logits, loss, grads = hf_forward_backward(d, dtype, lambda m: track_activations(m, stats))
    if max(min_act) > 0:
        tap.check(stats["hidden"] >= min_act[0] and stats["act"] >= min_act[1],
                  f"{fam}: transformers' largest |hidden state| {stats['hidden']:.4g} >= "
                  f"{min_act[0]:g}, |MLP pre-activation| {stats['act']:.4g} >= {min_act[1]:g}")
    checks = [("logits", d["logits"], logits.numpy()), ("loss", d["loss"], loss.numpy())]
    checks += [("grad " + k, d["grads"][k], grads[k].numpy()) for k in mb_shapes(d["cfg"])]
    worst = 0.0
    for what, got, want in checks:
        rel, mx = rel_err(got, want)
        worst = max(worst, rel)
        detail = []
        if rel > tol and what.startswith("grad " + LP):
            for i in range(got.shape[0]):
                r, m = rel_err(got[i], want[i])
                detail.append(f"layer {i}: rel {r:.2e}, max abs {m:.2e}")
        tap.check(rel <= tol, f"{fam}: {what} (rel {rel:.2e}, max abs {mx:.2e}, tol {tol:g})",
                  detail)
    return worst


def compare_all(paths, tol, dtype, min_act=(0.0, 0.0)):
    tap = Tap()
    errors = 0
    for path in paths:
        try:
            compare(path, tol, dtype, tap, min_act)
        except (DumpError, OSError, ValueError, KeyError) as e:
            errors += 1
            tap.check(False, f"{path}: error: {e}")
    tap.plan()
    return 2 if errors else (1 if tap.failed else 0)


# ---------------------------------------------------------------- the torch reference of mb

def rope_inv_freq(cfg, base, scaled):
    d = dims(cfg)[4]
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    kind = cfg_get(cfg, "rope_scaling_type", "none") if scaled else "none"
    if kind == "linear":
        inv = inv / cfg["rope_scaling_factor"]
    elif kind == "llama3":
        fac = cfg["rope_scaling_factor"]
        lo, hi = cfg["rope_scaling_low_freq_factor"], cfg["rope_scaling_high_freq_factor"]
        orig = cfg["rope_scaling_original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        s = (orig / wl - lo) / (hi - lo)
        mid = (1 - s) * inv / fac + s * inv
        inv = torch.where(wl < orig / hi, inv, torch.where(wl > orig / lo, inv / fac, mid))
    return inv


def apply_rope(x, inv, T):
    """x [B, T, heads, d]; rotate_half convention (j pairs with j + d/2)."""
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    cos, sin = ang.cos().to(x.dtype)[None, :, None], ang.sin().to(x.dtype)[None, :, None]
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def ref_norm(cfg, x, w, b=None):
    eps = cfg_get(cfg, "layernorm_epsilon", 1e-5)
    if cfg_get(cfg, "layernorm_zero_centered_gamma", False):
        w = 1 + w
    if cfg["normalization"] == "LayerNorm":
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def ref_attention(cfg, P, i, x):
    B, T, _ = x.shape
    _, _, nh, nkv, d, _, _ = dims(cfg)
    g = nh // nkv
    a = LP + "self_attention."
    qkv = x @ P[a + "linear_qkv.weight"][i].T
    if a + "linear_qkv.bias" in P:
        qkv = qkv + P[a + "linear_qkv.bias"][i]
    qkv = qkv.view(B, T, nkv, g + 2, d)
    q = qkv[:, :, :, :g].reshape(B, T, nh, d)
    k, v = qkv[:, :, :, g], qkv[:, :, :, g + 1]
    if cfg_get(cfg, "qk_layernorm", False):
        q = ref_norm(cfg, q, P[a + "q_layernorm.weight"][i])
        k = ref_norm(cfg, k, P[a + "k_layernorm.weight"][i])
    if cfg_get(cfg, "position_embedding_type", "rope") == "rope":
        local = cfg_get(cfg, "rotary_base_local", 0)
        if is_sliding(cfg, i) and local:
            inv = rope_inv_freq(cfg, local, False)
        else:
            inv = rope_inv_freq(cfg, cfg_get(cfg, "rotary_base", 10000.0), True)
        q, k = apply_rope(q, inv, T), apply_rope(k, inv, T)
    k = k.repeat_interleave(g, dim=2)
    v = v.repeat_interleave(g, dim=2)
    qpas = cfg_get(cfg, "query_pre_attn_scalar", 0) or d
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(qpas)
    cap = cfg_get(cfg, "attn_logit_softcapping", 0)
    if cap:
        s = cap * torch.tanh(s / cap)
    qi, ki = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = ki <= qi
    if is_sliding(cfg, i):
        allowed = allowed & (qi - ki < cfg["sliding_window"])
    s = s.masked_fill(~allowed, -math.inf)
    o = torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v).reshape(B, T, nh * d)
    o = o @ P[a + "linear_proj.weight"][i].T
    if a + "linear_proj.bias" in P:
        o = o + P[a + "linear_proj.bias"][i]
    if cfg_get(cfg, "sandwich_norm", False):
        o = ref_norm(cfg, o, P[a + "linear_proj.post_layernorm.weight"][i])
    return o


def ref_mlp(cfg, P, i, x):
    m = LP + "mlp."
    y = x @ P[m + "linear_fc1.weight"][i].T
    if m + "linear_fc1.bias" in P:
        y = y + P[m + "linear_fc1.bias"][i]
    act = cfg["activation"]
    if act == "swiglu":
        gate, up = y.chunk(2, dim=-1)
        y = F.silu(gate) * up
    elif act == "geglu":
        gate, up = y.chunk(2, dim=-1)
        y = F.gelu(gate, approximate="tanh") * up
    else:
        y = F.gelu(y, approximate="tanh")
    y = y @ P[m + "linear_fc2.weight"][i].T
    if m + "linear_fc2.bias" in P:
        y = y + P[m + "linear_fc2.bias"][i]
    if cfg_get(cfg, "sandwich_norm", False):
        y = ref_norm(cfg, y, P[m + "linear_fc2.post_layernorm.weight"][i])
    return y


def ref_forward(cfg, P, tokens):
    """Logits [B, T, V] of the mb model, straight from the config's definitions."""
    T = tokens.shape[1]
    emb = P["embedding.word_embeddings.weight"]
    h = emb[tokens]
    if cfg_get(cfg, "scale_embeddings", False):
        h = h * torch.tensor(math.sqrt(cfg["hidden_size"]), dtype=h.dtype)
    if "embedding.position_embeddings.weight" in P:
        h = h + P["embedding.position_embeddings.weight"][:T]
    a, m = LP + "self_attention.", LP + "mlp."
    for i in range(cfg["num_layers"]):
        x = ref_norm(cfg, h, P[a + "linear_qkv.layer_norm_weight"][i],
                     P[a + "linear_qkv.layer_norm_bias"][i] if cfg["normalization"] ==
                     "LayerNorm" else None)
        h = h + ref_attention(cfg, P, i, x)
        x = ref_norm(cfg, h, P[m + "linear_fc1.layer_norm_weight"][i],
                     P[m + "linear_fc1.layer_norm_bias"][i] if cfg["normalization"] ==
                     "LayerNorm" else None)
        h = h + ref_mlp(cfg, P, i, x)
    h = ref_norm(cfg, h, P["decoder.final_layernorm.weight"],
                 P.get("decoder.final_layernorm.bias"))
    logits = h @ P.get("output_layer.weight", emb).T
    cap = cfg_get(cfg, "final_logit_softcapping", 0)
    if cap:
        logits = cap * torch.tanh(logits / cap)
    return logits


def random_params(cfg, gen):
    std = float(cfg_get(cfg, "init_method_std", 0.02))
    zc = cfg_get(cfg, "layernorm_zero_centered_gamma", False)
    out = {}
    for k, shape in mb_shapes(cfg).items():
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        if "layernorm" in k or "layer_norm_weight" in k:
            t = 0.2 * r if zc else 1 + 0.2 * r
        elif k.endswith("bias"):
            t = 0.1 * r
        else:
            t = std * r
        out[k] = t.float()
    return out


def ref_dump(cfg, path, batch, seq, seed):
    gen = torch.Generator().manual_seed(seed)
    V = cfg["vocab_size"]
    params = {k: v.requires_grad_() for k, v in random_params(cfg, gen).items()}
    tokens = torch.randint(0, V, (batch, seq), generator=gen)
    labels = torch.randint(0, V, (batch, seq), generator=gen)
    mask = (torch.rand(batch, seq, generator=gen) > 0.25).float()
    mask[0, 0] = 0.0
    logits = ref_forward(cfg, params, tokens)
    loss = masked_loss(logits, labels, mask)
    loss.backward()
    grads = {k: p.grad for k, p in params.items()}
    write_dump(path, cfg, tokens.numpy(), labels.numpy(), mask.numpy(), params, grads,
               logits, loss)


# ---------------------------------------------------------------- selftest

def mutate(src, dst, what, cfg):
    shutil.copytree(src, dst)
    if what == "logits":
        f = os.path.join(dst, "logits.npy")
        x = np.load(f)
        x[1, 3, :] += 1e-3 * np.abs(x).max()
    elif what == "loss":
        f = os.path.join(dst, "loss.npy")
        x = np.load(f) * np.float32(1.001)
    elif what == "grad":
        f = os.path.join(dst, "grads", LP + "mlp.linear_fc2.weight.npy")
        x = np.load(f)
        x[-1] *= np.float32(1.01)
    else:
        # swap the first two heads of the fused QKV weight: a wrong regrouping
        f = os.path.join(dst, "params", LP + "self_attention.linear_qkv.weight.npy")
        x = np.load(f)
        d = dims(cfg)[4]
        x[:, :2 * d] = np.concatenate([x[:, d:2 * d], x[:, :d]], axis=1)
    save_npy(f, x.astype("<f4"))


def config_mutations(cfg):
    """Config changes each of which must change the numbers (the test configs are live)."""
    m = []
    if cfg_get(cfg, "position_embedding_type", "rope") == "rope":
        m.append(("rotary_base", cfg_get(cfg, "rotary_base", 10000.0) * 2))
    for k, v in (("sliding_window", 1), ("sliding_window_pattern", 1),
                 ("query_pre_attn_scalar", 8)):
        if cfg_get(cfg, k, 0):
            m.append((k, cfg[k] + v))
    for k in ("attn_logit_softcapping", "final_logit_softcapping", "rotary_base_local"):
        if cfg_get(cfg, k, 0):
            m.append((k, cfg[k] * 2))
    kind = cfg_get(cfg, "rope_scaling_type", "none")
    if kind != "none":
        m.append(("rope_scaling_factor", cfg["rope_scaling_factor"] * 2))
    if kind == "llama3":
        m.append(("rope_scaling_high_freq_factor", cfg["rope_scaling_high_freq_factor"] * 2))
    if cfg_get(cfg, "scale_embeddings", False):
        m.append(("scale_embeddings", False))
    return m


def selftest_case(tap, path, cfg, tol, want_fail, what):
    inner = Tap(quiet=True)
    worst = compare(path, tol, torch.float32, inner)
    tap.check((inner.failed > 0) == want_fail, f"{cfg['family']}: {what} (worst rel {worst:.2e})",
              inner.lines)


def selftest(tap, cfg_path, batch, seq, seed, tol):
    cfg = load_config(cfg_path)
    tmp = tempfile.mkdtemp(prefix="hf_model-")
    try:
        good = os.path.join(tmp, "good")
        ref_dump(cfg, good, batch, seq, seed)
        selftest_case(tap, good, cfg, tol, False, "torch reference matches HF")
        for what in ("logits", "loss", "grad", "qkv-order"):
            mutate(good, os.path.join(tmp, what), what, cfg)
            selftest_case(tap, os.path.join(tmp, what), cfg, tol, True,
                          f"a perturbed {what} is caught")
        for key, val in config_mutations(cfg):
            path = os.path.join(tmp, "cfg-" + key)
            ref_dump(dict(cfg, **{key: val}), path, batch, seq, seed)
            with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
                json.dump(cfg, f)
            selftest_case(tap, path, cfg, tol, True, f"numbers made with {key} = {val} are caught")
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="check model_dump directories against transformers")
    c.add_argument("dump", nargs="+")
    c.add_argument("--tol", type=float, default=1e-4, help="norm-wise relative tolerance")
    c.add_argument("--float64", action="store_true", help="run the HF model in float64")
    c.add_argument("--min-hidden", type=float, default=0.0,
                   help="check that transformers' hidden states reach this size")
    c.add_argument("--min-preact", type=float, default=0.0,
                   help="check that transformers' MLP pre-activations reach this size")
    d = sub.add_parser("dump", help="write a dump from the torch reference")
    d.add_argument("config")
    d.add_argument("out")
    t = sub.add_parser("selftest", help="reference vs HF, and perturbed dumps must fail")
    t.add_argument("config", nargs="+")
    for s in (d, t):
        s.add_argument("--batch", type=int, default=2)
        s.add_argument("--seq", type=int, default=16)
        s.add_argument("--seed", type=int, default=7)
    t.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    try:
        if a.cmd == "compare":
            return compare_all(a.dump, a.tol, torch.float64 if a.float64 else torch.float32,
                               (a.min_hidden, a.min_preact))
        if a.cmd == "dump":
            ref_dump(load_config(a.config), a.out, a.batch, a.seq, a.seed)
            return 0
        tap = Tap()
        for path in a.config:
            selftest(tap, path, a.batch, a.seq, a.seed, a.tol)
        tap.plan()
        return 1 if tap.failed else 0
    except (DumpError, OSError, ValueError, KeyError) as e:
        print(f"hf_model.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
