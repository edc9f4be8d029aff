#!/usr/bin/env python3
"""peft_adapter.py - adapter checkpoints for mb-convert --to peft and mb-ckpt merge-adapter,
and the HF PEFT / numpy oracles that check what those write.

usage: peft_adapter.py make BASE_CKPT OUT_DIR --peft lora|dora --dim R --alpha A
                            [--targets linear_qkv,...] [--seed S] [--module NAME]
                            [--b-std X] [--m-spread Y]
       peft_adapter.py merged BASE_CKPT ADAPTER_CKPT MERGED_CKPT
       peft_adapter.py logits TOKENS.npy HF_BASE PEFT_DIR HF_MERGED MB_DUMP [...] [--tol 1e-4]

make    writes OUT_DIR/iter_0000005.h5 and OUT_DIR/latest: an adapter-only checkpoint of
        the model in the mb checkpoint file BASE_CKPT, laid out as issue 13 fixes it (no
        /model; /adapter/<module>/adapter/linear_in/weight A [L, r, in],
        .../linear_out/weight B [L, out, r], DoRA .../weight_magnitude m [L, out];
        /optim/exp_avg, exp_avg_sq of those, /optim/step; BASE's /train and /hf; BASE's
        root attributes plus peft (JSON) and base_checkpoint). A and B are random and
        non-zero (seeded: A ~ N(0, 1/in), B ~ N(0, X^2), X 0.05 unless --b-std gives
        it), so the adapter changes the model; m is the row norms of
        W + s B A times U(1 - Y, 1 + Y), Y 0.5 unless --m-spread gives it. --module NAME adds the tensors of an adapter on the
        module NAME (e.g. linear_q, for an error test) to those of the targets.
merged  the /model of MERGED_CKPT is BASE's with every adapted weight replaced by
        W + s B A (DoRA: m / ||W + s B A||_row * (W + s B A)), computed here in fp64 from
        the tensors as h5py reads them, to 1e-6 relative to the largest |W| (fp32) or one
        unit in the last place (bf16, fp16); every other dataset of BASE is there byte for
        byte, /optim is not, and the attributes are BASE's (the parallel layout of its save
        aside).
logits  for each group of four: PeftModel.from_pretrained loads PEFT_DIR onto the
        transformers model HF_BASE with no missing or unexpected adapter keys (its adapter
        state dict is exactly the file's tensors), the adapted model's fp32 eager logits
        on TOKENS differ from the base's (the adapter does something) and equal, to TOL in
        max abs difference, those of the plain transformers model HF_MERGED and those mb
        computes with the merged checkpoint (MB_DUMP/logits.npy, written by the
        ckpt_logits test helper).
Prints one line per check; exits 1 when a check fails.
"""
import json
import os
import sys

import h5py
import numpy as np

MODULES = {
    "linear_qkv": "decoder/layers/self_attention/linear_qkv",
    "linear_proj": "decoder/layers/self_attention/linear_proj",
    "linear_fc1": "decoder/layers/mlp/linear_fc1",
    "linear_fc2": "decoder/layers/mlp/linear_fc2",
}


def fail(msg):
    print(f"peft_adapter: {msg}", file=sys.stderr)
    sys.exit(1)


def resolve(path):
    if os.path.isdir(path):
        return os.path.join(path, open(os.path.join(path, "latest")).read().strip())
    return path


def float_kind(d):
    t = d.id.get_type()
    if t.get_size() == 4:
        return "fp32"
    return "bf16" if t.get_fields() == (15, 7, 8, 0, 7) else "fp16"


def raw(d):
    t = d.id.get_type()
    out = np.empty(d.shape, dtype=f"<u{t.get_size()}")
    if out.size:
        d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=t)
    return out


def values(d):
    """Exact values of a float dataset from its bits, as fp64."""
    r, k = raw(d), float_kind(d)
    if k == "fp32":
        return r.view(np.float32).astype(np.float64)
    if k == "bf16":
        return (r.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return r.view(np.float16).astype(np.float64)


def datasets(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__("/" + n, o) if isinstance(o, h5py.Dataset) else None)
    return dict(sorted(out.items()))


def str_attr(f, name, text):
    b = text.encode()
    f.attrs.create(name, np.array(b, dtype=f"S{len(b)}"),
                   dtype=h5py.string_dtype("utf-8", len(b)))


def cmd_make(base, out, peft, dim, alpha, targets, seed, extra_module, b_std, m_spread):
    rng = np.random.default_rng(seed)
    base = resolve(base)
    os.makedirs(out, exist_ok=True)
    name = os.path.join(out, "iter_0000005.h5")
    s = alpha / dim
    with h5py.File(base, "r") as src, h5py.File(name, "w", libver="latest") as dst:
        for k in src.attrs:
            dst.attrs.create(k, src.attrs[k], dtype=src.attrs.get_id(k).dtype)
        for k in src:
            if k not in ("model", "optim"):
                src.copy(src[k], dst, k)
        dst.attrs.pop("peft", None)
        str_attr(dst, "peft", json.dumps({"peft": peft, "dim": dim, "alpha": alpha,
                                          "dropout": 0.0, "target_modules": targets}))
        str_attr(dst, "base_checkpoint", os.path.abspath(base))
        mods = [(t, MODULES[t]) for t in targets]
        if extra_module:
            mods.append((extra_module, f"decoder/layers/self_attention/{extra_module}"))
        for t, path in mods:
            W = values(src[f"model/{MODULES.get(t, MODULES['linear_qkv'])}/weight"])
            L, o, i = W.shape
            A = rng.normal(0, 1 / np.sqrt(i), (L, dim, i)).astype(np.float32)
            B = rng.normal(0, b_std, (L, o, dim)).astype(np.float32)
            tensors = {"linear_in/weight": A, "linear_out/weight": B}
            if peft == "dora":
                V = W + s * np.einsum("lor,lri->loi", B.astype(np.float64), A.astype(np.float64))
                m = np.linalg.norm(V, axis=2) * rng.uniform(1 - m_spread, 1 + m_spread, (L, o))
                tensors["weight_magnitude"] = m.astype(np.float32)
            for k, x in tensors.items():
                dst.create_dataset(f"adapter/{path}/adapter/{k}", data=x)
                dst.create_dataset(f"optim/exp_avg/{path}/adapter/{k}", data=np.zeros_like(x))
                dst.create_dataset(f"optim/exp_avg_sq/{path}/adapter/{k}", data=np.zeros_like(x))
        dst.create_dataset("optim/step", data=np.int64(5))
        del dst["train/iteration"]
        dst.create_dataset("train/iteration", data=np.int64(5))
    with open(os.path.join(out, "latest"), "w") as f:
        f.write("iter_0000005.h5\n")
    print(f"made {name}: {peft}, r {dim}, alpha {alpha}, {targets}")


def merged_expected(W, ad, path, peft, s):
    g = ad[f"adapter/{path}/adapter"]
    A, B = values(g["linear_in/weight"]), values(g["linear_out/weight"])
    V = W + s * np.einsum("lor,lri->loi", B, A)
    if peft == "dora":
        m = values(g["weight_magnitude"])
        V = V * (m / np.linalg.norm(V, axis=2))[:, :, None]
    return V


def cmd_merged(base, adapter, merged):
    with h5py.File(resolve(base), "r") as b, h5py.File(resolve(adapter), "r") as ad, \
            h5py.File(resolve(merged), "r") as out:
        cfg = json.loads(ad.attrs["peft"])
        s = cfg["alpha"] / cfg["dim"]
        adapted = {f"/model/{MODULES[t]}/weight": MODULES[t] for t in cfg["target_modules"]}
        db, do = datasets(b), datasets(out)
        for p, d in db.items():
            if p.startswith("/optim/"):
                if p in do:
                    fail(f"{p}: optimizer state should have been dropped")
                continue
            if p not in do:
                fail(f"{p}: missing from the merged checkpoint")
            same_type = d.id.get_type().equal(do[p].id.get_type()) if d.dtype.kind == "f" else \
                d.dtype == do[p].dtype
            if not same_type or d.shape != do[p].shape:
                fail(f"{p}: type or shape changed")
            if p not in adapted:
                if not np.array_equal(raw(d), raw(do[p])):
                    fail(f"{p}: not copied byte for byte")
                continue
            W = values(d)
            want, got = merged_expected(W, ad, adapted[p], cfg["peft"], s), values(do[p])
            k = float_kind(d)
            # fp32 arithmetic; then half a unit in the last place of a bf16 or fp16 value
            tol = 1e-6 * np.abs(W).max()
            if k != "fp32":
                tol = tol + np.abs(want) * (2.0 ** (-8 if k == "bf16" else -11))
            err = np.abs(got - want)
            if np.any(err > tol):
                fail(f"{p}: max error {err.max():.3g} (tolerance {np.max(tol):.3g})")
            change = np.abs(want - W).max()
            if change < 100 * np.max(tol):
                fail(f"{p}: the adapter hardly changes the weight ({change:.3g}); not a test")
            print(f"ok {p}: {cfg['peft']} merge, max error {err.max():.3g}, change {change:.3g}")
        for p in do:
            if p not in db:
                fail(f"{p}: in the merged checkpoint but not in the base")
        # the writer's own, and the parallel layout of a save (not recorded by one process)
        own = {"mb_version", "format", "tensor_model_parallel_size", "context_parallel_size",
               "data_parallel_size", "pipeline_model_parallel_size", "use_distributed_optimizer"}
        for a in set(b.attrs) | set(out.attrs):
            if a in own:
                continue
            if b.attrs.get(a) != out.attrs.get(a):
                fail(f"attribute {a}: {out.attrs.get(a)!r} != the base's {b.attrs.get(a)!r}")


def cmd_logits(tokens, groups, tol):
    import warnings

    import torch
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    ids = torch.from_numpy(np.load(tokens).astype(np.int64))

    def load(d):
        return AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                    attn_implementation="eager").eval()

    for hf_base, peft_dir, hf_merged, mb_dump in groups:
        base = load(hf_base)
        with torch.no_grad():
            base_logits = base(ids).logits
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pm = PeftModel.from_pretrained(base, peft_dir).eval()
        for w in caught:
            text = str(w.message).lower()
            if "missing" in text or "unexpected" in text or "fan_in_fan_out" in text:
                fail(f"{peft_dir}: PEFT warned: {w.message}")
        state = get_peft_model_state_dict(pm)
        want = load_file(os.path.join(peft_dir, "adapter_model.safetensors"))
        if set(state) != set(want):
            fail(f"{peft_dir}: PEFT's adapter keys differ from the file's: only PEFT "
                 f"{sorted(set(state) - set(want))[:4]}, only the file "
                 f"{sorted(set(want) - set(state))[:4]}")
        for k, v in want.items():
            if state[k].shape != v.shape or not torch.equal(state[k].float(), v.float()):
                fail(f"{peft_dir}: {k} loaded as something else")
        with torch.no_grad():
            got = pm(ids).logits
            ref = load(hf_merged)(ids).logits
        moved = (got - base_logits).abs().max().item()
        diff = (got - ref).abs().max().item()
        mb = torch.from_numpy(np.load(os.path.join(mb_dump, "logits.npy")))
        mb_diff = (got - mb).abs().max().item()
        if moved < 100 * tol:
            fail(f"{peft_dir}: the adapter hardly changes the logits ({moved:.3g}); not a test")
        if not diff <= tol:
            fail(f"{peft_dir}: PEFT logits differ from the merged model's by {diff:.3g} "
                 f"(tolerance {tol:g})")
        if not mb_diff <= tol:
            fail(f"{peft_dir}: PEFT logits differ from mb's with the merged checkpoint by "
                 f"{mb_diff:.3g} (tolerance {tol:g})")
        print(f"ok {peft_dir}: {len(want)} tensors load with no missing or unexpected keys; "
              f"logits equal the merged model's in transformers to {diff:.2g} and in mb to "
              f"{mb_diff:.2g} (the adapter moves them {moved:.2g})")


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "make":
        import argparse
        p = argparse.ArgumentParser(prog="peft_adapter.py make")
        p.add_argument("base")
        p.add_argument("out")
        p.add_argument("--peft", choices=["lora", "dora"], required=True)
        p.add_argument("--dim", type=int, required=True)
        p.add_argument("--alpha", type=float, required=True)
        p.add_argument("--targets", default="linear_qkv,linear_proj,linear_fc1,linear_fc2")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--module")
        p.add_argument("--b-std", type=float, default=0.05)
        p.add_argument("--m-spread", type=float, default=0.5)
        o = p.parse_args(args)
        alpha = int(o.alpha) if o.alpha == int(o.alpha) else o.alpha
        cmd_make(o.base, o.out, o.peft, o.dim, alpha, o.targets.split(","), o.seed, o.module,
                 o.b_std, o.m_spread)
    elif cmd == "merged" and len(args) == 3:
        cmd_merged(*args)
    elif cmd == "logits" and len(args) >= 5:
        tol = 1e-4
        if "--tol" in args:
            i = args.index("--tol")
            tol = float(args[i + 1])
            args = args[:i] + args[i + 2:]
        rest = args[1:]
        if len(rest) % 4:
            fail("logits takes TOKENS then groups HF_BASE PEFT_DIR HF_MERGED MB_DUMP")
        cmd_logits(args[0], [rest[i:i + 4] for i in range(0, len(rest), 4)], tol)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
