#!/usr/bin/env python3
"""megatron_read.py - open a .bin/.idx pair with megatron-core's reader (test oracle).

usage: megatron_read.py PREFIX [--dump FILE] [--compare PREFIX2]

Opens PREFIX.idx/PREFIX.bin with megatron.core.datasets.indexed_dataset.IndexedDataset
(which checks the magic, version and that document_indices ends at the sequence count)
and prints:
    sequences S
    documents D          (len(document_indices) - 1)
    tokens T
    dtype NAME           (numpy name: uint16, int32, ...)
It also checks that PREFIX.bin holds exactly the bytes the index points at, and that
each sequence pointer follows from the lengths.

--dump FILE   write every sequence as one line of space-separated ids, then one line
              "document_indices: 0 ..." (FILE "-" is stdout; the summary then goes
              to stderr)
--compare P2  also open P2 and require the same dtype, sequence lengths, sequence
              pointers, document indices and tokens; the first difference is reported

Exit status: 0 when everything opened (and compared equal), 1 otherwise.
"""
import argparse
import logging
import os
import sys
import warnings


def fail(msg):
    sys.stderr.write(f"megatron_read: {msg}\n")
    sys.exit(1)


def load(prefix):
    import numpy
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    for ext in (".idx", ".bin"):
        if not os.path.isfile(prefix + ext):
            fail(f"{prefix}{ext}: no such file")
    try:
        ds = IndexedDataset(prefix)
    except Exception as e:  # the reader signals bad files with asserts and ValueErrors
        fail(f"{prefix}: megatron-core cannot open it: {type(e).__name__}: {e}")
    ix = ds.index
    lengths = numpy.asarray(ix.sequence_lengths, dtype=numpy.int64)
    pointers = numpy.asarray(ix.sequence_pointers, dtype=numpy.int64)
    docs = numpy.asarray(ix.document_indices, dtype=numpy.int64)
    dtype = numpy.dtype(ix.dtype)
    S = len(lengths)
    if len(docs) == 0 or docs[0] != 0:
        fail(f"{prefix}: document_indices does not start with 0")
    if numpy.any(numpy.diff(docs) < 0):
        fail(f"{prefix}: document_indices decreases")
    if numpy.any(lengths < 0):
        fail(f"{prefix}: negative sequence length")
    expect = numpy.zeros(S, dtype=numpy.int64)
    if S:
        expect[1:] = numpy.cumsum(lengths[:-1] * dtype.itemsize)
    bad = numpy.nonzero(pointers != expect)[0]
    if len(bad):
        i = int(bad[0])
        fail(f"{prefix}: sequence_pointers[{i}] = {pointers[i]}, expected {expect[i]}")
    total = int(lengths.sum())
    size = os.path.getsize(prefix + ".bin")
    if size != total * dtype.itemsize:
        fail(f"{prefix}.bin: {size} bytes, the index describes {total * dtype.itemsize}")
    if S:
        seqs = ds[0:S]
        tokens = numpy.concatenate(seqs) if seqs else numpy.zeros(0, dtype)
    else:
        seqs, tokens = [], numpy.zeros(0, dtype)
    if len(tokens) != total:
        fail(f"{prefix}: read {len(tokens)} tokens, expected {total}")
    return dict(ds=ds, lengths=lengths, pointers=pointers, docs=docs, dtype=dtype,
                seqs=seqs, tokens=tokens)


def first_diff(a, b):
    import numpy
    n = min(len(a), len(b))
    d = numpy.nonzero(a[:n] != b[:n])[0]
    return int(d[0]) if len(d) else n


def compare(p1, a, p2, b):
    if a["dtype"] != b["dtype"]:
        fail(f"dtype differs: {p1}: {a['dtype']}, {p2}: {b['dtype']}")
    for name in ("lengths", "pointers", "docs"):
        x, y = a[name], b[name]
        if len(x) != len(y) or (x != y).any():
            i = first_diff(x, y)
            xv = x[i] if i < len(x) else "(end)"
            yv = y[i] if i < len(y) else "(end)"
            label = {"lengths": "sequence_lengths", "pointers": "sequence_pointers",
                     "docs": "document_indices"}[name]
            fail(f"{label} differ: {len(x)} vs {len(y)} entries; first at [{i}]: {xv} vs {yv}")
    if (a["tokens"] != b["tokens"]).any():
        i = first_diff(a["tokens"], b["tokens"])
        import numpy
        seq = int(numpy.searchsorted(numpy.cumsum(a["lengths"]), i, side="right"))
        fail(f"tokens differ: first at token {i} (sequence {seq}): "
             f"{a['tokens'][i]} vs {b['tokens'][i]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix")
    ap.add_argument("--dump", metavar="FILE")
    ap.add_argument("--compare", metavar="PREFIX2")
    a = ap.parse_args()

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    d = load(a.prefix)
    info = sys.stderr if a.dump == "-" else sys.stdout
    info.write(f"sequences {len(d['lengths'])}\n"
               f"documents {len(d['docs']) - 1}\n"
               f"tokens {len(d['tokens'])}\n"
               f"dtype {d['dtype'].name}\n")
    if a.dump:
        out = sys.stdout if a.dump == "-" else open(a.dump, "w")
        for s in d["seqs"]:
            out.write(" ".join(map(str, s.tolist())) + "\n")
        out.write("document_indices: " + " ".join(map(str, d["docs"].tolist())) + "\n")
        out.flush()
        if out is not sys.stdout:
            out.close()
    if a.compare:
        compare(a.prefix, d, a.compare, load(a.compare))
        info.write("identical\n")


if __name__ == "__main__":
    main()
