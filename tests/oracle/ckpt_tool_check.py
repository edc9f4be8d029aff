#!/usr/bin/env python3
"""Recompute what mb-ckpt reports and writes with h5py, numpy and torch, independently of mb.

  ckpt_tool_check.py info CKPT JSON
      JSON (the output of `mb-ckpt info --json`) lists exactly CKPT's datasets with their
      dtypes, shapes and byte sizes; the counters, optimizer flag and parameter count agree.
  ckpt_tool_check.py checksums CKPT FILE
      FILE holds the CRC-32C (tensorboard's own implementation) of every dataset's bytes.
  ckpt_tool_check.py diff A B ATOL RTOL OUTPUT
      OUTPUT (of `mb-ckpt diff`) has the status, max_abs and max_rel recomputed here for
      every dataset of A and B.
  ckpt_tool_check.py average OUT IN [IN ...]
      OUT's /model is the fp64 mean of the inputs', rounded to fp32 and then to the stored
      dtype (torch for bf16, numpy for fp16), bit for bit; the rest is IN[0]'s, no /optim.
  ckpt_tool_check.py cast OUT IN DTYPE
      OUT's /model is IN's cast to DTYPE (bf16 by torch, fp16 by numpy), bit for bit; the
      rest is IN's; /optim only when IN's model is fp32 and DTYPE is fp32.
  ckpt_tool_check.py hfinfo DIR JSON [DIR JSON ...]
      each JSON (`mb-ckpt info --json DIR`) lists exactly the tensors of the HF directory DIR
      as the safetensors package reads them: names, dtypes, shapes, bytes, files; the
      parameter count and the architecture agree.
  ckpt_tool_check.py hfchecksums DIR FILE [DIR FILE ...]
      each FILE holds the CRC-32C of every HF tensor's bytes (read by safetensors and torch).
  ckpt_tool_check.py hfedit DIR FILE OP:NAME[:VALUE] ...
      rewrite the safetensors FILE of DIR with safetensors itself: OP nan (VALUE is the
      flat index that becomes NaN), drop, extra (a new [3] tensor NAME) or reshape (NAME
      loses its last row); the index, if any, is updated to match.
  ckpt_tool_check.py poke CKPT PATH INDEX VALUE
      write VALUE (a float, e.g. nan, inf) at flat INDEX of the float dataset PATH, in
      its own dtype, so that tests can damage a checkpoint.

Exits 0 when everything matches, 1 with a message otherwise.
"""
import json
import math
import sys

import h5py
import numpy as np
import torch
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

ATTRS = ["model_config", "recipe", "tokenizer", "hf_config", "hf_architecture",
         "hf_weight_map", "hf_metadata"]


def fail(msg):
    print(f"ckpt_tool_check: {msg}", file=sys.stderr)
    sys.exit(1)


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out["/" + name] = obj
    f.visititems(visit)
    return dict(sorted(out.items()))


def dtype_of(d):
    t = d.id.get_type()
    if t.get_class() == h5py.h5t.FLOAT:
        if t.get_size() == 4:
            return "fp32"
        if t.get_size() == 2:
            return "bf16" if t.get_fields() == (15, 7, 8, 0, 7) else "fp16"
    if t.get_class() == h5py.h5t.INTEGER:
        return {8: "int64", 1: "uint8"}.get(t.get_size(), "other")
    return "other"


def raw(d):
    """The stored bytes of D as unsigned integers of the element size."""
    t = d.id.get_type()
    out = np.empty(d.shape, dtype=f"<u{t.get_size()}")
    if out.size:
        d.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=t)
    return out


def as_f32(d):
    """Exact fp32 values of a float dataset, from its bits (not through HDF5)."""
    r, k = raw(d), dtype_of(d)
    if k == "fp32":
        return r.view(np.float32)
    if k == "bf16":
        return (r.astype(np.uint32) << 16).view(np.float32)
    return r.view(np.float16).astype(np.float32)


def narrow(x32, dtype):
    """Bits of fp32 X32 rounded to DTYPE by an implementation that is not mb's."""
    if dtype == "fp32":
        return x32.view(np.uint32)
    if dtype == "fp16":
        return x32.astype(np.float16).view(np.uint16)
    t = torch.from_numpy(np.ascontiguousarray(x32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def check_rest(out, src, skip_optim):
    """Datasets outside /model of SRC are in OUT byte for byte (/optim aside when asked)."""
    do, ds = datasets(out), datasets(src)
    for p, d in ds.items():
        if p.startswith("/model/") or (skip_optim and p.startswith("/optim/")):
            continue
        if p not in do:
            fail(f"{p}: missing from the output")
        if dtype_of(do[p]) != dtype_of(d) or not np.array_equal(raw(do[p]), raw(d)):
            fail(f"{p}: not copied byte for byte")
    for p in do:
        if p not in ds:
            fail(f"{p}: in the output but not in the input")
        if skip_optim and p.startswith("/optim/"):
            fail(f"{p}: optimizer state should have been dropped")
    for a in ATTRS:
        if out.attrs.get(a) != src.attrs.get(a):
            fail(f"attribute {a}: {out.attrs.get(a)!r} != {src.attrs.get(a)!r}")


def cmd_info(ckpt, js):
    info = json.load(open(js))
    with h5py.File(ckpt, "r") as f:
        ds = datasets(f)
        got = [(t["name"], t["dtype"], tuple(t["shape"]), t["bytes"]) for t in info["tensors"]]
        want = [(p, dtype_of(d), d.shape,
                 int(np.prod(d.shape, dtype=np.int64)) * d.id.get_type().get_size())
                for p, d in ds.items()]
        if got != want:
            fail(f"tensor list differs:\n  mb {got}\n  h5py {want}")
        params = sum(int(np.prod(d.shape, dtype=np.int64)) for p, d in ds.items()
                     if p.startswith("/model/"))
        if info["parameters"] != params:
            fail(f"parameters {info['parameters']} != {params}")
        for k in ["iteration", "consumed_train_samples", "consumed_valid_samples"]:
            want_v = int(f["/train/" + k][()]) if "/train/" + k in ds else None
            if info[k] != want_v:
                fail(f"{k} {info[k]} != {want_v}")
        optim = any(p.startswith("/optim/") for p in ds)
        if info["optimizer_state"] != optim:
            fail(f"optimizer_state {info['optimizer_state']} != {optim}")
        if info["model_config"] != json.loads(f.attrs["model_config"]):
            fail("model_config differs")
        if info["family"] != json.loads(f.attrs["model_config"])["family"]:
            fail("family differs")
        keys = ["tensor_model_parallel_size", "context_parallel_size", "data_parallel_size",
                "pipeline_model_parallel_size"]
        layout = None
        if "tensor_model_parallel_size" in f.attrs:
            layout = {k: int(f.attrs[k].decode()) for k in keys}
            layout["use_distributed_optimizer"] = \
                f.attrs["use_distributed_optimizer"].decode() == "true"
        if info["layout"] != layout:
            fail(f"layout {info['layout']} != {layout}")


def cmd_checksums(ckpt, path):
    lines = [ln.split(" ", 1) for ln in open(path).read().splitlines()]
    got = {p: int(c, 16) for c, p in lines}
    with h5py.File(ckpt, "r") as f:
        want = {p: crc32c(raw(d).astype(raw(d).dtype.newbyteorder("<")).tobytes())
                for p, d in datasets(f).items()}
    if got != want:
        bad = sorted(set(got.items()) ^ set(want.items()))[:5]
        fail(f"checksums differ, e.g. {bad}")


def values(d):
    k = dtype_of(d)
    if k in ("fp32", "bf16", "fp16"):
        return as_f32(d).astype(np.float64).ravel()
    if k == "int64":
        return np.asarray(d[()], dtype=np.int64).astype(np.float64).ravel()
    return None


def stats(x, y, atol, rtol):
    both_nan = np.isnan(x) & np.isnan(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(x - y)
        d[np.isnan(d)] = np.inf
        d[(x == y) | both_nan] = 0.0
        rel = np.where(d == 0, 0.0, np.where(y != 0, d / np.abs(y), np.inf))
    beyond = ~(d <= atol + rtol * np.abs(y)) & ~both_nan
    return (float(d.max()) if d.size else 0.0, float(rel.max()) if rel.size else 0.0,
            bool(beyond.any()))


def expected_diff(a, b, atol, rtol):
    """{path: (status, max_abs or None, max_rel or None)}"""
    da, db = datasets(a), datasets(b)
    out = {}
    for p in sorted(set(da) | set(db)):
        if p not in db:
            out[p] = ("only-a", None, None)
        elif p not in da:
            out[p] = ("only-b", None, None)
        elif da[p].shape != db[p].shape:
            out[p] = ("shape", None, None)
        else:
            ka, kb = dtype_of(da[p]), dtype_of(db[p])
            x, y = values(da[p]), values(db[p])
            if x is None or y is None:
                if ka != kb:
                    out[p] = ("dtype", None, None)
                    continue
                ra, rb = raw(da[p]).astype(np.float64), raw(db[p]).astype(np.float64)
                n = int((ra != rb).sum())
                out[p] = ("differs" if n else "same",
                          float(np.abs(ra - rb).max()) if ra.size else 0.0,
                          math.inf if n else 0.0)
                continue
            mx, mr, beyond = stats(x, y, atol, rtol)
            floats = {ka, kb} <= {"fp32", "bf16", "fp16"}  # compared by value across dtypes
            status = "dtype" if ka != kb and not floats else ("differs" if beyond else "same")
            out[p] = (status, mx, mr)
    return out


def parse_diff(path):
    got = {}
    for line in open(path).read().splitlines():
        w = line.split()
        if not w or not w[0] in ("same", "differs", "only-a", "only-b", "shape", "dtype"):
            continue
        if w[1] == "attribute":
            continue
        mx = float(w[w.index("max_abs") + 1]) if "max_abs" in w else None
        mr = float(w[w.index("max_rel") + 1]) if "max_rel" in w else None
        got[w[1]] = (w[0], mx, mr)
    return got


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-8 * max(abs(a), abs(b)) + 1e-300


def cmd_diff(pa, pb, atol, rtol, output):
    with h5py.File(pa, "r") as a, h5py.File(pb, "r") as b:
        want = expected_diff(a, b, float(atol), float(rtol))
    got = parse_diff(output)
    if set(got) != set(want):
        fail(f"datasets differ: mb {sorted(set(got) ^ set(want))}")
    for p, (st, mx, mr) in want.items():
        gs, gx, gr = got[p]
        if gs != st or (gx is not None and not close(gx, mx)) or (
                gr is not None and not close(gr, mr)):
            fail(f"{p}: mb says {got[p]}, expected {want[p]}")


def cmd_average(out_path, inputs):
    files = [h5py.File(p, "r") for p in inputs]
    with h5py.File(out_path, "r") as out:
        do = datasets(out)
        for p, d in datasets(files[0]).items():
            if not p.startswith("/model/"):
                continue
            acc = np.zeros(d.shape, dtype=np.float64)
            for f in files:  # in argument order, as documented
                acc += as_f32(f[p]).astype(np.float64)
            mean32 = (acc / len(files)).astype(np.float32)
            want = narrow(mean32, dtype_of(d))
            if p not in do or dtype_of(do[p]) != dtype_of(d):
                fail(f"{p}: missing or of another dtype in the output")
            if not np.array_equal(raw(do[p]).view(want.dtype), want):
                fail(f"{p}: averaged bits differ")
        check_rest(out, files[0], skip_optim=True)


def cmd_cast(out_path, in_path, dtype):
    with h5py.File(out_path, "r") as out, h5py.File(in_path, "r") as src:
        do = datasets(out)
        model_f32 = True
        for p, d in datasets(src).items():
            if not p.startswith("/model/"):
                continue
            model_f32 &= dtype_of(d) == "fp32"
            want = narrow(as_f32(d), dtype)
            if p not in do or dtype_of(do[p]) != dtype:
                fail(f"{p}: missing or not {dtype} in the output")
            if not np.array_equal(raw(do[p]).view(want.dtype), want):
                fail(f"{p}: cast bits differ")
        check_rest(out, src, skip_optim=not (model_f32 and dtype == "fp32"))


def cmd_poke(ckpt, path, index, value):
    with h5py.File(ckpt, "r+") as f:
        d = f[path]
        r = raw(d).ravel()
        x = np.array([float(value)], dtype=np.float32)
        r[int(index)] = narrow(x, dtype_of(d))[0]
        d.id.write(h5py.h5s.ALL, h5py.h5s.ALL, r.reshape(d.shape), mtype=d.id.get_type())


def hf_tensors(d):
    """{name: (file base name, torch tensor)} of HF directory D, through safetensors."""
    import os
    from safetensors import safe_open
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
        else ["model.safetensors"]
    out = {}
    for fn in files:
        with safe_open(os.path.join(d, fn), framework="pt") as f:
            for k in f.keys():
                out[k] = (fn, f.get_tensor(k))
    return dict(sorted(out.items()))


ST_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def cmd_hfinfo(d, js):
    info = json.load(open(js))
    ts = hf_tensors(d)
    want = [(k, ST_NAMES[t.dtype], tuple(t.shape), t.numel() * t.element_size(), fn)
            for k, (fn, t) in ts.items()]
    got = [(t["name"], t["dtype"], tuple(t["shape"]), t["bytes"], t["file"])
           for t in info["tensors"]]
    if got != want:
        fail(f"tensor list differs:\n  mb {got}\n  safetensors {want}")
    if info["parameters"] != sum(t.numel() for _, t in ts.values()):
        fail("parameter count differs")
    cfg = json.load(open(d + "/config.json"))
    if info["architecture"] != cfg["architectures"][0] or info["optimizer_state"]:
        fail("architecture or optimizer_state differs")


def cmd_hfchecksums(d, path):
    got = {n: int(c, 16) for c, n in (ln.split(" ", 1) for ln in open(path).read().splitlines())}
    want = {k: crc32c(t.contiguous().view(torch.uint8).numpy().tobytes())
            for k, (_, t) in hf_tensors(d).items()}
    if got != want:
        fail(f"checksums differ, e.g. {sorted(set(got.items()) ^ set(want.items()))[:4]}")


def cmd_hfedit(d, fn, *edits):
    import os
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = os.path.join(d, fn)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        ts = {k: f.get_tensor(k) for k in f.keys()}
    for e in edits:
        op, name, value = (e.split(":") + [None])[:3]
        if op == "nan":
            t = ts[name].flatten().clone()
            t[int(value)] = float("nan")
            ts[name] = t.reshape(ts[name].shape)
        elif op == "drop":
            del ts[name]
        elif op == "extra":
            ts[name] = torch.zeros(3, dtype=next(iter(ts.values())).dtype)
        elif op == "reshape":
            ts[name] = ts[name][:-1].clone()
        else:
            fail(f"unknown edit {op}")
    save_file(ts, path, metadata=meta)
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        j = json.load(open(idx))
        j["weight_map"] = {k: v for k, v in j["weight_map"].items() if v != fn or k in ts}
        j["weight_map"].update({k: fn for k in ts})
        json.dump(j, open(idx, "w"), indent=2, sort_keys=True)


def main(argv):
    cmds = {"info": (cmd_info, 2), "checksums": (cmd_checksums, 2), "diff": (cmd_diff, 5),
            "cast": (cmd_cast, 3), "poke": (cmd_poke, 4)}
    pairs = {"hfinfo": cmd_hfinfo, "hfchecksums": cmd_hfchecksums}
    if len(argv) >= 4 and argv[0] == "hfedit":
        cmd_hfedit(*argv[1:])
    elif len(argv) >= 3 and len(argv) % 2 == 1 and argv[0] in pairs:
        for i in range(1, len(argv), 2):
            pairs[argv[0]](argv[i], argv[i + 1])
    elif len(argv) >= 3 and argv[0] == "average":
        cmd_average(argv[1], argv[2:])
    elif argv and argv[0] in cmds and len(argv) - 1 == cmds[argv[0]][1]:
        cmds[argv[0]][0](*argv[1:])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
