#!/usr/bin/env python3
"""Check the checkpoints of tests/helpers/ckpt_pp.c with h5py, independently of mb.

  ckpt_pp_check.py REF FILE...
      REF is the single-process save; each FILE (saved under the layout its directory
      names, .../tpTppPdpD[vpV]/iter_*.h5) must hold the same datasets as REF, each of
      the same dtype and shape and bitwise equal, the same root attributes except the
      layout ones, and those must say T, P and D.

Prints "N files equal to REF" and exits 0, or exits 1 naming the first difference.
"""
import os
import re
import sys

import h5py
import numpy as np

LAYOUT = ["tensor_model_parallel_size", "context_parallel_size", "data_parallel_size",
          "pipeline_model_parallel_size", "use_distributed_optimizer"]


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj)
                 if isinstance(obj, h5py.Dataset) else None)
    return out


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def compare(ref, path):
    m = re.search(r"tp(\d+)pp(\d+)dp(\d+)", os.path.basename(os.path.dirname(path)))
    if not m:
        return f"{path}: no layout in the directory name"
    with h5py.File(ref, "r") as a, h5py.File(path, "r") as b:
        da, db = datasets(a), datasets(b)
        if sorted(da) != sorted(db):
            return f"{path}: datasets differ: {sorted(set(da) ^ set(db))}"
        for name in sorted(da):
            x, y = da[name], db[name]
            if x.dtype != y.dtype or x.shape != y.shape:
                return f"{path}: {name}: {x.dtype} {x.shape} vs {y.dtype} {y.shape}"
            if x.dtype.kind == "f" and x.dtype.itemsize == 2:  # bf16 as stored
                same = x[()].tobytes() == y[()].tobytes()
            else:
                same = np.asarray(x[()]).tobytes() == np.asarray(y[()]).tobytes()
            if not same:
                return f"{path}: {name}: not bitwise equal"
        ka = {k for k in a.attrs if k not in LAYOUT}
        kb = {k for k in b.attrs if k not in LAYOUT}
        if ka != kb:
            return f"{path}: root attributes differ: {sorted(ka ^ kb)}"
        for k in ka:
            if text(a.attrs[k]) != text(b.attrs[k]):
                return f"{path}: attribute {k} differs"
        want = {"tensor_model_parallel_size": m.group(1),
                "pipeline_model_parallel_size": m.group(2), "data_parallel_size": m.group(3)}
        for k, v in want.items():
            if k not in b.attrs or text(b.attrs[k]) != v:
                return f"{path}: attribute {k} is not {v}"
    return None


def main():
    ref, files = sys.argv[1], sys.argv[2:]
    for path in files:
        err = compare(ref, path)
        if err:
            sys.exit(err)
    print(f"{len(files)} files equal to {ref}")


main()
