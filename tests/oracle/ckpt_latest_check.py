"""Check with h5py that DIR/latest names a complete mb checkpoint: the file opens, every
dataset reads in full, /train/iteration matches the iter_NNNNNNN.h5 name (and ITER when
given), every float dataset is finite. With --no-tmp, no file of DIR may have ".tmp" in
its name. Prints the iteration; exit 1 with the problem named. With --files, checks
each checkpoint FILE the same way against its iteration ITER (the file kept, e.g. as a
hard link, from a DIR/latest of the past) and prints how many were complete.

usage: ckpt_latest_check.py DIR [ITER] [--no-tmp]
       ckpt_latest_check.py --files FILE:ITER ..."""
import os
import re
import sys

import h5py
import numpy as np


def fail(msg):
    sys.exit(f"ckpt_latest_check: {msg}")


def check_file(path, it):
    """Every dataset of PATH reads, floats are finite, /train/iteration is IT."""
    with h5py.File(path, "r") as h:
        sets = []
        h.visititems(lambda n, o: sets.append(n) if isinstance(o, h5py.Dataset) else None)
        if not any(s.startswith("model/") for s in sets):
            fail(f"{path}: no /model datasets")
        for s in sets:
            v = np.asarray(h[s][()])
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                fail(f"{path}: {s} holds non-finite values")
        stored = int(h["train/iteration"][()])
        if stored != it:
            fail(f"{path}: /train/iteration is {stored}, expected {it}")
        for a in ("model_config", "recipe", "format"):
            if a not in h.attrs:
                fail(f"{path}: no attribute {a}")


def main():
    if sys.argv[1:2] == ["--files"]:
        for item in sys.argv[2:]:
            path, _, it = item.rpartition(":")
            check_file(path, int(it))
        print(f"{len(sys.argv) - 2} checkpoints complete")
        return
    args = [a for a in sys.argv[1:] if a != "--no-tmp"]
    no_tmp = "--no-tmp" in sys.argv
    d = args[0]
    want = int(args[1]) if len(args) > 1 else None
    with open(os.path.join(d, "latest")) as f:
        name = f.read().strip()
    m = re.fullmatch(r"iter_(\d{7})\.h5", name)
    if not m:
        fail(f"{d}/latest holds {name!r}")
    it = int(m.group(1))
    check_file(os.path.join(d, name), it)
    if want is not None and it != want:
        fail(f"{d}/latest names iteration {it}, expected {want}")
    if no_tmp:
        left = [f for f in os.listdir(d) if ".tmp" in f]
        if left:
            fail(f"{d}: temporaries left: {left}")
    print(it)


if __name__ == "__main__":
    main()
