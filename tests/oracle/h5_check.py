#!/usr/bin/env python3
"""Check mb checkpoints with h5py (and torch for bf16 rounding), independently of mb.

  h5_check.py check FILE ITER fp32|bf16 optim|nooptim [FILE ITER ... ...]
      each FILE must hold exactly the synthetic model of tests/helpers/ckpt_roundtrip.c for
      iteration ITER: names, shapes, dtypes, values, /train, /optim, root attributes.
  h5_check.py same A B [A B ...]
      each A and B hold the same datasets with the same dtypes and bytes, and the same root
      attributes (mb_version aside).

Exits 0 when everything matches, 1 with a message otherwise.
"""
import sys

import h5py
import numpy as np
import torch

TENSORS = [
    ("embedding.word_embeddings.weight", (11, 6)),
    ("decoder.layers.self_attention.linear_qkv.layer_norm_weight", (3, 6)),
    ("decoder.layers.self_attention.linear_qkv.weight", (3, 12, 6)),
    ("decoder.layers.mlp.linear_fc1.weight", (3, 8, 6)),
    ("decoder.layers.mlp.linear_fc2.weight", (3, 6, 4)),
    ("decoder.final_layernorm.weight", (6,)),
    ("output_layer.bias", (1,)),
]


def fail(msg):
    print(f"h5_check: {msg}", file=sys.stderr)
    sys.exit(1)


def values(t, shape, salt):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    v = ((t * 7919 + i * 104729 + salt * 31) % 65537 - 32768).astype(np.float64) / 1024.0
    return v.astype(np.float32).reshape(shape)


def raw(dset):
    """The stored bytes of DSET, as unsigned integers of the element size."""
    t = dset.id.get_type()
    out = np.empty(dset.shape, dtype=f"<u{t.get_size()}")
    if out.size:
        dset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=t)
    return out


def is_bf16(dset):
    t = dset.id.get_type()
    return (t.get_class() == h5py.h5t.FLOAT and t.get_size() == 2
            and t.get_fields() == (15, 7, 8, 0, 7) and t.get_ebias() == 127
            and t.committed())


def is_f32(dset):
    return dset.dtype == np.dtype("<f4")


def check_f32(f, path, want):
    d = f[path]
    if not is_f32(d) or d.shape != want.shape:
        fail(f"{path}: {d.dtype} {d.shape}, want float32 {want.shape}")
    if raw(d).tobytes() != want.tobytes():
        fail(f"{path}: values differ")


def check_bf16(f, path, want):
    d = f[path]
    if not is_bf16(d) or d.shape != want.shape:
        fail(f"{path}: not the committed bf16 type, or shape {d.shape} != {want.shape}")
    bits = torch.from_numpy(want.copy()).to(torch.bfloat16).view(torch.int16).numpy()
    if not np.array_equal(raw(d).astype(np.uint16), bits.view(np.uint16)):
        fail(f"{path}: bf16 bits differ from torch's rounding")
    widened = torch.from_numpy(want.copy()).to(torch.bfloat16).float().numpy()
    if not np.array_equal(d[()], widened):  # h5py reads it as float32 through HDF5
        fail(f"{path}: h5py's float32 view differs")


def check_train(f, it, optim):
    want = {"/train/iteration": it, "/train/consumed_train_samples": 8 * it,
            "/train/consumed_valid_samples": 2 * it}
    if optim:
        want["/optim/step"] = it
    for path, v in want.items():
        d = f[path]
        if d.shape != () or d.dtype != np.dtype("<i8") or int(d[()]) != v:
            fail(f"{path}: {d.dtype} {d.shape} {d[()]}, want int64 scalar {v}")
    if bytes(f["/train/rng_state"][()]) != f"rng-state-{it}".encode():
        fail("/train/rng_state differs")
    if f["/train/data_state"].shape != (0,) or f["/train/data_state"].dtype != np.uint8:
        fail("/train/data_state is not an empty uint8 blob")
    attrs = {"format": "mb-ckpt-1", "tokenizer": "bytes",
             "model_config": '{"num_layers": 3, "hidden_size": 6}',
             "recipe": '{"train": {"train_iters": %d}}' % it}
    # fixed-length UTF-8 strings (h5py gives them as bytes): never variable-length
    # strings, whose bytes live in HDF5's unchecked global heap
    for k in f.attrs:
        t = f.attrs.get_id(k).dtype
        if t.kind != "S" or h5py.check_string_dtype(t).length is None:
            fail(f"attribute {k}: {t}, want a fixed-length string")
    for k, v in attrs.items():
        if f.attrs.get(k, b"").decode() != v:
            fail(f"attribute {k}: {f.attrs.get(k)!r}, want {v!r}")
    if not f.attrs.get("mb_version", b"").decode():
        fail("attribute mb_version missing")


def check_tensors(f, tensors, it, dtype, optim):
    """Every tensor of TENSORS in /model (and /optim) holds the values of iteration IT,
    and the file holds no other dataset than those and /train's; returns their count."""
    want_paths = {"/train/iteration", "/train/consumed_train_samples",
                  "/train/consumed_valid_samples", "/train/rng_state", "/train/data_state"}
    kinds = [("/model", 0)]
    if optim:
        want_paths.add("/optim/step")
        kinds += [("/optim/exp_avg", 1), ("/optim/exp_avg_sq", 2)]
        if dtype == "bf16":
            kinds.append(("/optim/master", 0))
    for group, k in kinds:
        for t, (name, shape) in enumerate(tensors):
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
    return len(have)


def check(path, it, dtype, optim):
    f = h5py.File(path, "r")
    n = check_tensors(f, TENSORS, it, dtype, optim)
    check_train(f, it, optim)
    print(f"ok {path}: {n} datasets")


def datasets(f):
    """{name: dataset} for every dataset in F (visititems stops at a non-None return)."""
    out = {}

    def add(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj

    f.visititems(add)
    return out


def same(a, b):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    da, db = datasets(fa), datasets(fb)
    if sorted(da) != sorted(db):
        fail(f"dataset lists differ: {sorted(set(da) ^ set(db))}")
    for n in da:
        x, y = da[n], db[n]
        if x.shape != y.shape or is_bf16(x) != is_bf16(y) or x.dtype != y.dtype:
            fail(f"/{n}: type or shape differs")
        if raw(x).tobytes() != raw(y).tobytes():
            fail(f"/{n}: bytes differ")
    ka = {k: v for k, v in fa.attrs.items() if k != "mb_version"}
    kb = {k: v for k, v in fb.attrs.items() if k != "mb_version"}
    if ka != kb:
        fail("root attributes differ")
    print(f"ok {a} == {b}: {len(da)} datasets")


def main():
    args = sys.argv[2:]
    if sys.argv[1:2] == ["check"] and args and len(args) % 4 == 0:
        for i in range(0, len(args), 4):
            check(args[i], int(args[i + 1]), args[i + 2], args[i + 3] == "optim")
    elif sys.argv[1:2] == ["same"] and args and len(args) % 2 == 0:
        for i in range(0, len(args), 2):
            same(args[i], args[i + 1])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
