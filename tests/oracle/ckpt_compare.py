"""Compare two mb checkpoints with h5py: every dataset of /model (/adapter) and /optim bitwise
equal (or within --rtol), and the /train counters equal. Exit 1 with the first
difference named.

usage: ckpt_compare.py A B [RTOL] [--only GROUP]   (GROUP: compare only GROUP/..., e.g. model)"""
import sys

import h5py
import numpy as np


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    args = sys.argv[1:]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1] + "/"
        del args[i:i + 2]
    a_path, b_path = args[0], args[1]
    rtol = float(args[2]) if len(args) > 2 else 0.0
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        da, db = datasets(a), datasets(b)
        if only:
            da = {k: v for k, v in da.items() if k.startswith(only)}
            db = {k: v for k, v in db.items() if k.startswith(only)}
        if sorted(da) != sorted(db):
            sys.exit(f"datasets differ: {sorted(set(da) ^ set(db))}")
        for name in sorted(da):
            x, y = da[name][()], db[name][()]
            if np.shape(x) != np.shape(y):
                sys.exit(f"{name}: shapes {np.shape(x)} vs {np.shape(y)}")
            if rtol == 0 or not name.startswith(("model/", "adapter/", "optim/")):
                same = np.array_equal(np.asarray(x).view(np.uint8), np.asarray(y).view(np.uint8)) \
                    if np.asarray(x).dtype.kind == "f" else np.array_equal(x, y)
                if not same:
                    sys.exit(f"{name}: not bitwise equal")
            else:
                x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
                err = np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30)
                if err > rtol:
                    sys.exit(f"{name}: relative difference {err:.3e} > {rtol}")
        print(f"{len(da)} datasets equal")


main()
