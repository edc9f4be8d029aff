#!/usr/bin/env python3
"""Check checkpoints saved by tests/helpers/ckpt_shard.c with h5py, independently of mb.

  h5_shard_check.py FILE ITER fp32|bf16 nooptim|optim LAYOUT [FILE ITER ...]
      FILE must hold exactly the logical tensors of ckpt_shard's synthetic model for
      iteration ITER, whatever layout saved it: names, shapes, dtypes and every value
      (bf16 /model as torch rounds it), /optim/step, and the layout attributes: LAYOUT
      is "TP,CP,DP,PP,true|false" or "none" (no layout attribute at all).

Exits 0 when everything matches, 1 with a message otherwise.
"""
import sys

import h5py
import numpy as np

from h5_check import check_bf16, check_f32, datasets, fail

L, H, Q, I, V = 3, 6, 16, 8, 21
TENSORS = [
    ("embedding.word_embeddings.weight", (V, H)),
    ("decoder.layers.self_attention.linear_qkv.layer_norm_weight", (L, H)),
    ("decoder.layers.self_attention.linear_qkv.weight", (L, Q, H)),
    ("decoder.layers.self_attention.linear_proj.weight", (L, H, I)),
    ("decoder.layers.self_attention.linear_proj.bias", (L, H)),
    ("decoder.layers.mlp.linear_fc1.weight", (L, 2 * I, H)),
    ("decoder.layers.mlp.linear_fc2.weight", (L, H, I)),
    ("decoder.final_layernorm.weight", (H,)),
    ("output_layer.weight", (V, H)),
]
LAYOUT_ATTRS = ["tensor_model_parallel_size", "context_parallel_size", "data_parallel_size",
                "pipeline_model_parallel_size", "use_distributed_optimizer"]


def values(t, shape, salt):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    v = ((t * 7919 + i * 104729 + salt * 31) % 65537 - 32768).astype(np.float64) / 1024.0
    return v.astype(np.float32).reshape(shape)


def check_layout(f, layout):
    have = {k: f.attrs[k].decode() for k in LAYOUT_ATTRS if k in f.attrs}
    want = {} if layout == "none" else dict(zip(LAYOUT_ATTRS, layout.split(",")))
    if have != want:
        fail(f"layout attributes {have}, want {want}")


def check(path, it, dtype, optim, layout):
    f = h5py.File(path, "r")
    want_paths = {"/train/iteration", "/train/consumed_train_samples",
                  "/train/consumed_valid_samples", "/train/rng_state", "/train/data_state"}
    kinds = [("/model", 0)]
    if optim:
        want_paths.add("/optim/step")
        kinds += [("/optim/exp_avg", 1), ("/optim/exp_avg_sq", 2)]
        if dtype == "bf16":
            kinds.append(("/optim/master", 0))
    for group, k in kinds:
        for t, (name, shape) in enumerate(TENSORS):
            p = group + "/" + name.replace(".", "/")
            want_paths.add(p)
            v = values(t, shape, it + 1000 * k)
            if group == "/model" and dtype == "bf16":
                check_bf16(f, p, v)
            else:
                check_f32(f, p, v)
    have = {"/" + n for n in datasets(f)}
    if have != want_paths:
        fail(f"datasets differ: extra {sorted(have - want_paths)}, "
             f"missing {sorted(want_paths - have)}")
    if int(f["/train/iteration"][()]) != it or (optim and int(f["/optim/step"][()]) != it):
        fail("/train/iteration or /optim/step differs")
    check_layout(f, layout)
    print(f"ok {path}: {len(have)} datasets")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    for i in range(0, len(args), 5):
        check(args[i], int(args[i + 1]), args[i + 2], args[i + 3] == "optim", args[i + 4])


if __name__ == "__main__":
    main()
