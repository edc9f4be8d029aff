#!/usr/bin/env python3
"""peft_model.py - HF PEFT oracle for mb's LoRA and DoRA adapters: forward, loss and the
gradients of every adapter tensor, the base frozen.

usage: peft_model.py compare DUMP_DIR... [--tol 1e-4]

compare   reads a dump written by `model_dump --peft lora|dora` (tests/helpers: config.json,
          peft.json, tokens/labels/loss_mask.npy, params/NAME.npy for the base and the
          adapters, grads/NAME.npy for the adapters only, logits.npy, loss.npy), builds
          the transformers model of the family (fp32, eager attention, hf_model.py) with
          the base weights, wraps it with peft.get_peft_model(LoraConfig(r, lora_alpha,
          target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
          (GPT-2: c_attn, c_proj, c_fc), use_dora=...)), and sets PEFT's lora_A, lora_B and
          lora_magnitude_vector from mb's fused adapters as Megatron Bridge exports them
          (finetune.md 3.4): A shared by q/k/v and by gate/up, B and the magnitude split
          by rows (the query-group interleave of linear_qkv undone, linear_fc1 cut into
          gate and up). Then it runs forward and backward and checks logits, loss and each
          adapter gradient against the dump (the gradient of a shared A is the sum of the
          gradients of its PEFT copies) norm-wise to --tol; it also checks that PEFT left
          the base without gradients and that the dump has none for it, and that the
          adapters change the logits (the base alone is more than 100 x tol away).
          Exits 1 when a check fails, 2 on bad input.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_model as H  # noqa: E402

MODULES = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")
PREFIX = {"linear_qkv": H.LP + "self_attention.linear_qkv",
          "linear_proj": H.LP + "self_attention.linear_proj",
          "linear_fc1": H.LP + "mlp.linear_fc1",
          "linear_fc2": H.LP + "mlp.linear_fc2"}


def hf_targets(cfg, module):
    """HF module paths (format with the layer) and how mb's rows split among them."""
    if cfg["family"] == "gpt2":
        h = "transformer.h.{}."
        return {"linear_qkv": [h + "attn.c_attn"], "linear_proj": [h + "attn.c_proj"],
                "linear_fc1": [h + "mlp.c_fc"], "linear_fc2": [h + "mlp.c_proj"]}[module]
    h = "model.layers.{}."
    return {"linear_qkv": [h + "self_attn.q_proj", h + "self_attn.k_proj", h + "self_attn.v_proj"],
            "linear_proj": [h + "self_attn.o_proj"],
            "linear_fc1": [h + "mlp.gate_proj", h + "mlp.up_proj"],
            "linear_fc2": [h + "mlp.down_proj"]}[module]


def split_rows(cfg, module, t):
    """mb's rows of a fused B or magnitude -> the HF modules' rows (hf_targets order)."""
    _, _, nh, nkv, d, ffn, _ = H.dims(cfg)
    if module == "linear_qkv":
        cat = torch.empty_like(t)
        cat[H.qkv_perm(cfg)] = t
        if cfg["family"] == "gpt2":
            return [cat]
        return list(cat.split([nh * d, nkv * d, nkv * d]))
    if module == "linear_fc1" and H.gated(cfg):
        return list(t.split([ffn, ffn]))
    return [t]


def join_rows(cfg, module, parts):
    """The inverse of split_rows."""
    if module == "linear_qkv":
        return torch.cat(parts)[H.qkv_perm(cfg)]
    return torch.cat(parts)


def read(path):
    def npy(name):
        f = os.path.join(path, name)
        if not os.path.exists(f):
            raise H.DumpError(f"{f}: missing")
        return np.load(f)
    cfg = H.load_config(os.path.join(path, "config.json"))
    with open(os.path.join(path, "peft.json"), encoding="utf-8") as f:
        pc = json.load(f)
    d = {"cfg": cfg, "peft": pc, "tokens": npy("tokens.npy"), "labels": npy("labels.npy"),
         "mask": npy("loss_mask.npy"), "logits": npy("logits.npy"), "loss": npy("loss.npy")}
    for sub in ("params", "grads"):
        d[sub] = {f[:-4]: npy(os.path.join(sub, f))
                  for f in os.listdir(os.path.join(path, sub)) if f.endswith(".npy")}
    base = set(H.mb_shapes(cfg))
    if set(d["grads"]) & base:
        raise H.DumpError(f"{path}: gradients of frozen base tensors {sorted(set(d['grads']) & base)}")
    want = set()
    for m in pc["target_modules"]:
        want |= {PREFIX[m] + ".adapter.linear_in.weight", PREFIX[m] + ".adapter.linear_out.weight"}
        if pc["peft"] == "dora":
            want.add(PREFIX[m] + ".adapter.weight_magnitude")
    if set(d["grads"]) != want or set(d["params"]) != base | want:
        raise H.DumpError(f"{path}: adapter tensors {sorted(d['grads'])}, want {sorted(want)}")
    return d


def peft_model(d):
    """The PEFT-wrapped transformers model with the dump's base and adapter weights."""
    from peft import LoraConfig, get_peft_model
    cfg, pc = d["cfg"], d["peft"]
    model = H.hf_model(cfg, torch.float32)
    base = {k: torch.from_numpy(v) for k, v in d["params"].items() if k in H.mb_shapes(cfg)}
    hf = H.mb_to_hf(cfg, base)
    named = dict(model.named_parameters())
    with torch.no_grad():
        for k, p in named.items():
            p.copy_(hf[k])
    names = sorted({hf_targets(cfg, m)[j].split(".")[-1] for m in pc["target_modules"]
                    for j in range(len(hf_targets(cfg, m)))})
    if cfg["family"] == "gpt2" and ("linear_proj" in pc["target_modules"]) != \
            ("linear_fc2" in pc["target_modules"]):
        raise H.DumpError("GPT-2: c_proj names both linear_proj and linear_fc2; target both or neither")
    lc = LoraConfig(r=pc["dim"], lora_alpha=pc["alpha"], lora_dropout=0.0, target_modules=names,
                    use_dora=pc["peft"] == "dora", fan_in_fan_out=cfg["family"] == "gpt2")
    pm = get_peft_model(model, lc)
    mods = dict(pm.named_modules())
    L = cfg["num_layers"]
    with torch.no_grad():
        for m in pc["target_modules"]:
            a = torch.from_numpy(d["params"][PREFIX[m] + ".adapter.linear_in.weight"])
            b = torch.from_numpy(d["params"][PREFIX[m] + ".adapter.linear_out.weight"])
            mag = d["params"].get(PREFIX[m] + ".adapter.weight_magnitude")
            for i in range(L):
                paths = [p.format(i) for p in hf_targets(cfg, m)]
                bs = split_rows(cfg, m, b[i])
                ms = split_rows(cfg, m, torch.from_numpy(mag[i])) if mag is not None else None
                for j, path in enumerate(paths):
                    mod = mods["base_model.model." + path]
                    mod.lora_A["default"].weight.copy_(a[i])
                    mod.lora_B["default"].weight.copy_(bs[j])
                    if ms is not None:
                        mod.lora_magnitude_vector["default"].weight.copy_(ms[j])
    return pm, mods


def forward_backward(d):
    cfg, pc = d["cfg"], d["peft"]
    pm, mods = peft_model(d)
    tokens = torch.from_numpy(d["tokens"]).long()
    pos = torch.arange(tokens.shape[1]).unsqueeze(0).expand_as(tokens)
    logits = pm(input_ids=tokens, position_ids=pos, use_cache=False).logits
    loss = H.masked_loss(logits, torch.from_numpy(d["labels"]), torch.from_numpy(d["mask"]))
    loss.backward()
    frozen_grads = [n for n, p in pm.named_parameters() if "lora_" not in n and p.grad is not None]
    grads = {}
    for m in pc["target_modules"]:
        ga, gb, gm = [], [], []
        for i in range(cfg["num_layers"]):
            ms = [mods["base_model.model." + p.format(i)] for p in hf_targets(cfg, m)]
            ga.append(sum(x.lora_A["default"].weight.grad for x in ms))
            gb.append(join_rows(cfg, m, [x.lora_B["default"].weight.grad for x in ms]))
            if pc["peft"] == "dora":
                gm.append(join_rows(cfg, m, [x.lora_magnitude_vector["default"].weight.grad
                                             for x in ms]))
        grads[PREFIX[m] + ".adapter.linear_in.weight"] = torch.stack(ga)
        grads[PREFIX[m] + ".adapter.linear_out.weight"] = torch.stack(gb)
        if gm:
            grads[PREFIX[m] + ".adapter.weight_magnitude"] = torch.stack(gm)
    with torch.no_grad(), pm.disable_adapter():
        base_logits = pm(input_ids=tokens, position_ids=pos, use_cache=False).logits
    return logits.detach(), loss.detach(), grads, frozen_grads, base_logits


def compare(path, tol, tap):
    d = read(path)
    what = f"{os.path.basename(os.path.normpath(path))}: {d['cfg']['family']} {d['peft']['peft']}"
    logits, loss, grads, frozen, base_logits = forward_backward(d)
    tap.check(not frozen, f"{what}: PEFT leaves the base without gradients", frozen[:5])
    rel, _ = H.rel_err(d["logits"], base_logits.numpy())
    tap.check(rel > 100 * tol, f"{what}: the adapters move the logits (rel {rel:.2e} from the base)")
    checks = [("logits", d["logits"], logits.numpy()), ("loss", d["loss"], loss.numpy())]
    checks += [("grad " + k, d["grads"][k], grads[k].numpy()) for k in sorted(grads)]
    for name, got, want in checks:
        rel, mx = H.rel_err(got, want)
        tap.check(rel <= tol, f"{what}: {name} (rel {rel:.2e}, max abs {mx:.2e}, tol {tol:g})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["compare"])
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    tap = H.Tap()
    errors = 0
    for path in a.dumps:
        try:
            compare(path, a.tol, tap)
        except (H.DumpError, OSError, ValueError, KeyError) as e:
            errors += 1
            tap.check(False, f"{path}: error: {e}")
    tap.plan()
    return 2 if errors else (1 if tap.failed else 0)


if __name__ == "__main__":
    sys.exit(main())
