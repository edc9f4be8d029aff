#!/usr/bin/env python3
"""peft_model.py - HF PEFT oracle for mb's LoRA and DoRA adapters: forward, loss and the
gradients of every adapter tensor, the base frozen.

usage: peft_model.py compare DUMP_DIR... [--tol 1e-4]
       peft_model.py logits TOKENS.npy ADAPTER.h5 MB_LOGITS.npy [ADAPTER.h5 MB_LOGITS.npy...]
                     [--tol 1e-4] [--greedy-out FILE --prompt-ids "1 2 3" --max-new-tokens N]
       peft_model.py generate ADAPTER.h5... --prompt-ids "1 2 3" [--max-new-tokens 32]

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
logits    the same PEFT model from an adapter-only mb checkpoint (its model_config and
          peft attributes, the base from the /model of its base_checkpoint, the adapters
          from /adapter) on TOKENS.npy (int32 [B, T]): checks mb's logits (ckpt_logits)
          against it to --tol, and that the adapters move the logits. With --greedy-out,
          also writes to FILE what `generate` prints for those checkpoints (one process
          instead of two: importing transformers and peft is most of the time).
generate  greedy generation (model.generate, do_sample=False, no EOS) of that PEFT model:
          prints the new ids on one line per checkpoint, as hf_generate.py does for whole
          models.
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


def read_adapter_ckpt(path):
    """A dump-like dict (cfg, peft, params) from an adapter-only mb checkpoint and its base."""
    import h5py
    import hf_generate

    def text(v):
        return (v.decode() if isinstance(v, bytes) else str(v)).rstrip("\0")
    with h5py.File(path, "r") as f:
        cfg = json.loads(text(f.attrs["model_config"]))
        pc = json.loads(text(f.attrs["peft"]))
        base = text(f.attrs["base_checkpoint"])
        params = {}
        f["adapter"].visititems(lambda name, obj: params.__setitem__(
            name.replace("/", "."), np.asarray(obj[()], dtype=np.float32))
            if isinstance(obj, h5py.Dataset) else None)
    _, mb = hf_generate.read_ckpt(base)
    params.update({k: v.numpy() for k, v in mb.items()})
    return {"cfg": cfg, "peft": pc, "params": params}


def greedy(pm, prompt_ids, max_new_tokens):
    """The greedy continuation of PROMPT_IDS (a string of ids), as a line of ids."""
    ids = torch.tensor([[int(x) for x in prompt_ids.split()]])
    gc = pm.generation_config
    gc.eos_token_id, gc.bos_token_id, gc.pad_token_id = None, None, 0
    gc.do_sample, gc.max_new_tokens, gc.min_new_tokens = False, max_new_tokens, 0
    with torch.no_grad():
        out = pm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    return " ".join(str(int(x)) for x in out[0, ids.shape[1]:])


def check_logits(tap, ckpt, tokens, mb_logits, tol):
    d = read_adapter_ckpt(ckpt)
    pm, _ = peft_model(d)
    pos = torch.arange(tokens.shape[1]).unsqueeze(0).expand_as(tokens)
    with torch.no_grad():
        want = pm(input_ids=tokens, position_ids=pos, use_cache=False).logits
        with pm.disable_adapter():
            base = pm(input_ids=tokens, position_ids=pos, use_cache=False).logits
    got = np.load(mb_logits)
    what = f"{ckpt}: {d['cfg']['family']} {d['peft']['peft']}"
    rel, _ = H.rel_err(got, base.numpy())
    tap.check(rel > 100 * tol, f"{what}: the adapters move the logits (rel {rel:.2e} from the base)")
    rel, mx = H.rel_err(got, want.numpy())
    tap.check(rel <= tol, f"{what}: mb's logits are PEFT's (rel {rel:.2e}, max abs {mx:.2e})")
    return pm


def cmd_logits(a):
    tokens = torch.from_numpy(np.load(a.tokens)).long()
    if len(a.pairs) % 2:
        raise SystemExit("peft_model.py logits: give ADAPTER.h5 MB_LOGITS.npy pairs")
    tap = H.Tap()
    lines = []
    for i in range(0, len(a.pairs), 2):
        pm = check_logits(tap, a.pairs[i], tokens, a.pairs[i + 1], a.tol)
        if a.greedy_out:
            lines.append(greedy(pm, a.prompt_ids, a.max_new_tokens) + "\n")
    if a.greedy_out:
        with open(a.greedy_out, "w", encoding="utf-8") as f:
            f.writelines(lines)
    tap.plan()
    return 1 if tap.failed else 0


def cmd_generate(a):
    for ckpt in a.ckpt:
        pm, _ = peft_model(read_adapter_ckpt(ckpt))
        print(greedy(pm, a.prompt_ids, a.max_new_tokens), flush=True)
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("logits", "generate"):
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        if sys.argv[1] == "logits":
            ap.add_argument("tokens")
            ap.add_argument("pairs", nargs="+")
            ap.add_argument("--tol", type=float, default=1e-4)
            ap.add_argument("--greedy-out")
            ap.add_argument("--prompt-ids")
        else:
            ap.add_argument("ckpt", nargs="+")
            ap.add_argument("--prompt-ids", required=True)
        ap.add_argument("--max-new-tokens", type=int, default=32)
        a = ap.parse_args()
        return cmd_logits(a) if a.cmd == "logits" else cmd_generate(a)
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
