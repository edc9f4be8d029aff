#!/usr/bin/env python3
"""bf16_autocast.py - PyTorch oracle for a training step of mb in bf16 mixed precision.

usage: bf16_autocast.py DUMP_DIR... [--tol-policy 3e-3] [--tol-autocast 5e-2] [--margin 3]
                        [--logits-only]

Each DUMP_DIR is written by `model_dump CONFIG OUT --bf16` (tests/helpers/model_dump.c):
mb's logits, loss and every parameter gradient of one forward/backward with
mixed_precision=bf16_mixed, and the fp32 master weights. The HF transformers model of the
family (tests/oracle/hf_model.py: the same loading, name mapping and loss) runs the same
step three ways:

  autocast  the whole model under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
            own mixed precision (it also runs attention's matmuls in bf16 and rounds every
            GEMM output to bf16, which mb does not);
  policy    mb's precision policy (DESIGN.md 5) in PyTorch: every nn.Linear (and GPT-2's
            Conv1D, and the output layer) takes its input, weight and output gradient
            rounded to bf16 (x.to(torch.bfloat16)) and computes in fp32 - which is what a
            bf16 GEMM with fp32 accumulation gives; the activations mb stores in bf16 are
            rounded to bf16 where they are made, the gradient passing through unchanged:
            the output of every layer's fc1 (gate_proj and up_proj, GPT-2's c_fc with its
            bias), i.e. the MLP activation's input, and q, k and v as the attention core
            receives them (after QK-norm and RoPE: the arguments of the family's
            eager_attention_forward); everything else fp32;
  fp32      the fp32 model.

Checks, per tensor (norm-wise relative error ||mb - ref|| / ||ref||, as hf_model.py):
  mb vs policy   <= max(--tol-policy, twice the policy's own spread): the same roundings;
                   what differs is the fp32 noise of everything around them (summation
                   orders), which a bf16 rounding turns into a whole bf16 step now and
                   then. So the policy runs twice, in fp32 and in fp64, and mb's distance
                   is to the nearer of the two; how far the two are apart (the spread)
                   depends on the model: <= 1.3e-3 on most test models, 3.8e-3 on
                   Gemma 2's (sandwich norms and soft-capping amplify it);
  mb vs autocast <= --tol-autocast: PyTorch's bf16 (the fp32 model is about as far from
                   it: autocast rounds more than mb's policy);
and, on the logits and on the whole gradient (every tensor together), that the test sees
bf16: mb's distance to the fp32 model is at least --margin times its distance to the
policy reference (3: Gemma 2's spread is a quarter of what bf16 does to it, so no
implementation of the policy gets 5x nearer it than to fp32). --logits-only checks the
logits and the loss only (models with scaled weights, whose gradients are chaotic: bf16
and fp32 ones differ by 50-100%).
Also checks, per dump, that the policy run rounded as many fc1 outputs and q, k, v as the
model has (the hooks into transformers fire). Prints TAP; exits 1 when a check fails, 2 on
bad input.
"""
import argparse
import collections
import contextlib
import importlib
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_model as hm  # noqa: E402


def bf16(t):
    """T rounded to bf16 (nearest, ties to even) and widened back to its dtype: exact."""
    return t.to(torch.bfloat16).to(t.dtype)


class Bf16Linear(torch.autograd.Function):
    """y = x W^T on bf16-rounded x and W in fp32 (exact products, fp32 sums: a bf16 GEMM
    with fp32 accumulation); backward: dy rounded to bf16, dx = dy W, dW = dy^T x."""

    @staticmethod
    def forward(ctx, x, w):
        xb, wb = bf16(x), bf16(w)
        ctx.save_for_backward(xb, wb)
        return xb @ wb.t()

    @staticmethod
    def backward(ctx, dy):
        xb, wb = ctx.saved_tensors
        dyb = bf16(dy)
        dw = dyb.reshape(-1, dyb.shape[-1]).t() @ xb.reshape(-1, xb.shape[-1])
        return dyb @ wb, dw


def linear_policy(self, x):
    y = Bf16Linear.apply(x, self.weight)
    return y + self.bias if self.bias is not None else y


def conv1d_policy(self, x):  # GPT-2's Conv1D: y = x W + b, W [in, out]
    return Bf16Linear.apply(x, self.weight.t()) + self.bias


class Bf16Round(torch.autograd.Function):
    """x rounded to bf16, an activation mb stores in bf16; the gradient passes unchanged
    (straight-through)."""

    @staticmethod
    def forward(ctx, x):
        return bf16(x)

    @staticmethod
    def backward(ctx, dy):
        return dy


FC1 = ("gate_proj", "up_proj", "c_fc")  # mb's fc1 is [gate_proj; up_proj], GPT-2's c_fc


def round_fc1(model, count):
    """Forward hooks on MODEL rounding the output of every fc1 module to bf16."""
    def hook(mod, args, y):
        count["fc1"] += 1
        return Bf16Round.apply(y)

    for name, mod in model.named_modules():
        if name.rsplit(".", 1)[-1] in FC1:
            mod.register_forward_hook(hook)


def rounding_qkv(attention, count):
    """ATTENTION (an eager_attention_forward) on q, k and v rounded to bf16."""
    def eager(module, query, key, value, *args, **kwargs):
        count["qkv"] += 3
        q, k, v = (Bf16Round.apply(t) for t in (query, key, value))
        return attention(module, q, k, v, *args, **kwargs)
    return eager


@contextlib.contextmanager
def policy(count):
    """While inside, every nn.Linear and Conv1D forward goes through Bf16Linear and every
    family's eager attention takes q, k, v rounded to bf16; yields the setup of a model
    (round_fc1). COUNT, a Counter, counts the roundings ("fc1", "qkv")."""
    from transformers.pytorch_utils import Conv1D
    mods = [importlib.import_module(f"transformers.models.{f}.modeling_{f}")
            for f in hm.FAMILIES]
    saved = torch.nn.Linear.forward, Conv1D.forward, [m.eager_attention_forward for m in mods]
    torch.nn.Linear.forward, Conv1D.forward = linear_policy, conv1d_policy
    for m in mods:
        m.eager_attention_forward = rounding_qkv(m.eager_attention_forward, count)
    try:
        yield lambda model: round_fc1(model, count)
    finally:
        torch.nn.Linear.forward, Conv1D.forward = saved[:2]
        for m, f in zip(mods, saved[2]):
            m.eager_attention_forward = f


def run(d, mode, count):
    """(logits, loss, grads) of the HF model on dump D, MODE: fp32, policy or autocast
    (COUNT: policy's roundings)."""
    if mode in ("policy", "policy64"):
        with policy(count) as setup:
            dtype = torch.float64 if mode == "policy64" else torch.float32
            out = hm.hf_forward_backward(d, dtype, setup=setup)
    elif mode == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = hm.hf_forward_backward(d, torch.float32)
    else:
        out = hm.hf_forward_backward(d, torch.float32)
    logits, loss, grads = out
    return logits.double().numpy(), loss.double().numpy(), {k: g.double().numpy()
                                                           for k, g in grads.items()}


def flat(grads, names):
    return np.concatenate([grads[k].ravel().astype(np.float64) for k in names])


def compare(path, a, tap):
    d = hm.read_dump(path)
    fam = d["cfg"]["family"]
    names = list(hm.mb_shapes(d["cfg"]))
    count = collections.Counter()
    ref = {m: run(d, m, count if m == "policy" else collections.Counter())
           for m in ("policy", "policy64", "autocast", "fp32")}
    L = d["cfg"]["num_layers"]
    want = {"fc1": L * (2 if hm.gated(d["cfg"]) else 1), "qkv": 3 * L}
    tap.check(count == want, f"{fam}: policy rounded {count['fc1']} fc1 outputs (want "
              f"{want['fc1']}) and {count['qkv']} of q, k, v (want {want['qkv']})")
    got = [("logits", d["logits"]), ("loss", d["loss"])]
    if a.logits_only:
        names = []
    got += [("grad " + k, d["grads"][k]) for k in names]
    want = {m: [r[0], r[1]] + [r[2][k] for k in names] for m, r in ref.items()}
    worst = {"policy": 0.0, "autocast": 0.0}
    for i, (what, g) in enumerate(got):
        rp, mp = min(hm.rel_err(g, want[p][i]) for p in ("policy", "policy64"))
        spread, _ = hm.rel_err(want["policy"][i], want["policy64"][i])
        tol = max(a.tol_policy, 2 * spread)
        ra, _ = hm.rel_err(g, want["autocast"][i])
        rf, _ = hm.rel_err(g, want["fp32"][i])
        worst["policy"] = max(worst["policy"], rp)
        worst["autocast"] = max(worst["autocast"], ra)
        tap.check(rp <= tol and ra <= a.tol_autocast,
                  f"{fam}: {what}: vs policy {rp:.2e} (max abs {mp:.2e}, tol {tol:.2g}: the "
                  f"policy in fp32 is {spread:.2e} from itself in fp64), vs autocast {ra:.2e} "
                  f"(tol {a.tol_autocast:g}), vs fp32 {rf:.2e}")
    # the test sees bf16: on the logits and on the whole gradient
    whole = [("logits", d["logits"], {m: r[0] for m, r in ref.items()})]
    if names:
        whole.append(("all gradients", flat(d["grads"], names),
                      {m: flat(r[2], names) for m, r in ref.items()}))
    for what, g, w in whole:
        rp = min(hm.rel_err(g, w[p])[0] for p in ("policy", "policy64"))
        rf, _ = hm.rel_err(g, w["fp32"])
        ra, _ = hm.rel_err(g, w["autocast"])
        fa, _ = hm.rel_err(w["fp32"], w["autocast"])
        tap.check(rf >= a.margin * rp,
                  f"{fam}: {what} see bf16: mb vs fp32 {rf:.2e} >= {a.margin:g} x mb vs policy "
                  f"{rp:.2e} (mb vs autocast {ra:.2e}, fp32 vs autocast {fa:.2e})")
    print(f"# {fam}: worst vs policy {worst['policy']:.2e}, vs autocast {worst['autocast']:.2e}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump", nargs="+")
    ap.add_argument("--tol-policy", type=float, default=3e-3)
    ap.add_argument("--tol-autocast", type=float, default=5e-2)
    ap.add_argument("--margin", type=float, default=3.0)
    ap.add_argument("--logits-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tap = hm.Tap()
    errors = 0
    for path in a.dump:
        try:
            compare(path, a, tap)
        except (hm.DumpError, OSError, ValueError, KeyError) as e:
            errors += 1
            tap.check(False, f"{path}: error: {e}")
    tap.plan()
    return 2 if errors else (1 if tap.failed else 0)


if __name__ == "__main__":
    sys.exit(main())
