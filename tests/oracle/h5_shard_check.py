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

from h5_check import check_tensors, fail

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


def check_layout(f, layout):
    have = {k: f.attrs[k].decode() for k in LAYOUT_ATTRS if k in f.attrs}
    want = {} if layout == "none" else dict(zip(LAYOUT_ATTRS, layout.split(",")))
    if have != want:
        fail(f"layout attributes {have}, want {want}")


def check(path, it, dtype, optim, layout):
    f = h5py.File(path, "r")
    n = check_tensors(f, TENSORS, it, dtype, optim)
    if int(f["/train/iteration"][()]) != it or (optim and int(f["/optim/step"][()]) != it):
        fail("/train/iteration or /optim/step differs")
    check_layout(f, layout)
    print(f"ok {path}: {n} datasets")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    for i in range(0, len(args), 5):
        check(args[i], int(args[i + 1]), args[i + 2], args[i + 3] == "optim", args[i + 4])


if __name__ == "__main__":
    main()
