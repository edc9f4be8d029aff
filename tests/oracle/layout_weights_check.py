"""The final weights of a run under another parallel layout against the single-process
run's, as Megatron compares layouts (parallel.md 7.1): per tensor of /model (or
/adapter), |a - b| / |b| <= TOL.

One part is left out, and named: the key rows of linear_qkv.bias. Their gradient is
zero in exact arithmetic (q . (k + c) = q . k + q . c shifts every logit of a query by
the same amount, which the softmax ignores), so what they get is rounding noise, which
Adam normalises to steps of the learning rate: any change in the order of a sum (a DP or
TP reduction, a tied embedding's two gradients summed across stages) gives them other
values. Their difference is printed.

usage: layout_weights_check.py REF.h5 OTHER.h5 TOL [GROUP]   (GROUP: model, default, or adapter)"""
import json
import sys

import h5py
import numpy as np


def key_rows(cfg, rows):
    """A mask of the key rows of the fused [groups x (q heads, k, v) x d] qkv bias."""
    groups, heads, d = cfg["num_query_groups"], cfg["num_attention_heads"], cfg["kv_channels"]
    if groups == 0:
        groups = heads
    if d == 0:
        d = cfg["hidden_size"] // heads
    per = (heads // groups + 2) * d
    assert per * groups == rows, (per, groups, rows)
    mask = np.zeros(rows, bool)
    for g in range(groups):
        start = g * per + (heads // groups) * d
        mask[start:start + d] = True
    return mask


def main():
    ref_path, other_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
    group = sys.argv[4] if len(sys.argv) > 4 else "model"
    with h5py.File(ref_path, "r") as ref, h5py.File(other_path, "r") as other:
        cfg = json.loads(ref.attrs["model_config"])
        names = []
        ref[group].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        worst, bad = (0.0, ""), []
        for name in names:
            a = np.asarray(ref[group][name][()], np.float64)
            b = np.asarray(other[group][name][()], np.float64)
            if a.shape != b.shape:
                sys.exit(f"{group}/{name}: shapes {a.shape} vs {b.shape}")
            if name.endswith("linear_qkv/bias"):
                keys = key_rows(cfg, a.shape[-1])
                k = np.linalg.norm(a[..., keys] - b[..., keys]) / max(np.linalg.norm(a[..., keys]), 1e-30)
                print(f"# {group}/{name}: key rows left out (relative difference {k:.2e})")
                a, b = a[..., ~keys], b[..., ~keys]
            err = np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)
            worst = max(worst, (err, name))
            if err > tol:
                bad.append(f"{group}/{name}: relative difference {err:.3e} > {tol}")
        print(f"# {len(names)} tensors of /{group}, the largest relative difference {worst[0]:.2e} ({worst[1]})")
        if bad:
            sys.exit("\n".join(bad))


main()
