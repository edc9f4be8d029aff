#!/usr/bin/env python3
"""megatron_gpt_dataset.py - what megatron-core's GPTDataset builds (test oracle).

usage: megatron_gpt_dataset.py [options] PREFIX | W1 PREFIX1 W2 PREFIX2 ...
  --split S --seq N --seed N --eod ID --samples T,V,E --first N --out DIR
  --eod-mask-loss --reset-position-ids --cache-dir DIR --tokenizer-id KEY=VALUE
  --mock VOCAB

Runs megatron-core's own BlendedMegatronDatasetBuilder with GPTDataset (or
MockGPTDataset) and writes, like tests/helpers/gpt_samples:
  DIR/sizes.txt                      "train N" per split (0 when the split is None)
  DIR/{split}_{tokens,labels,loss_mask,position_ids}.npy   the first N samples
                                     (int32, int32, float32, int32; [n, seq])
and, for comparison of the indices themselves,
  DIR/{split}_{i}_{document,sample,shuffle}_index.npy      per GPTDataset i
  DIR/{split}_dataset_index.npy, DIR/{split}_dataset_sample_index.npy   blends only

The tokenizer is a stand-in with eod, no pad (so pad is Megatron's -1) and the given
unique identifiers, which go into the cache description as a real tokenizer's would.
A --samples entry below 0 passes None. torch.distributed is set up as one gloo rank
because BlendedDataset asks for the rank when it writes a cache.
"""
import argparse
import collections
import logging
import os
import sys
import tempfile

import numpy
import torch

from megatron.core.datasets.blended_dataset import BlendedDataset
from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig, MockGPTDataset
from megatron.core.datasets.utils import get_blend_from_list

SPLITS = ["train", "valid", "test"]


class StandInTokenizer:
    def __init__(self, eod, vocab, ids):
        self.eod = eod
        self.vocab_size = vocab
        self.unique_identifiers = collections.OrderedDict(ids)


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="969,30,1")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eod", type=int, default=0)
    ap.add_argument("--samples", default="-1,-1,-1")
    ap.add_argument("--first", type=int, default=8)
    ap.add_argument("--out", default=".")
    ap.add_argument("--eod-mask-loss", action="store_true")
    ap.add_argument("--reset-position-ids", action="store_true")
    ap.add_argument("--cache-dir")
    ap.add_argument("--tokenizer-id", action="append", default=[])
    ap.add_argument("--mock", type=int)
    ap.add_argument("blend", nargs="*")
    return ap.parse_args()


def init_one_rank():
    fd, path = tempfile.mkstemp(prefix="mb-gloo-")
    os.close(fd)
    os.unlink(path)
    torch.distributed.init_process_group("gloo", init_method=f"file://{path}", rank=0,
                                         world_size=1)


def save_indices(out, split, ds):
    if isinstance(ds, BlendedDataset):
        numpy.save(f"{out}/{split}_dataset_index.npy", ds.dataset_index)
        numpy.save(f"{out}/{split}_dataset_sample_index.npy", ds.dataset_sample_index)
        parts = ds.datasets
    else:
        parts = [ds]
    for i, p in enumerate(parts):
        numpy.save(f"{out}/{split}_{i}_document_index.npy", p.document_index)
        numpy.save(f"{out}/{split}_{i}_sample_index.npy", p.sample_index)
        numpy.save(f"{out}/{split}_{i}_shuffle_index.npy", p.shuffle_index)


def save_samples(out, split, ds, first, seq):
    n = min(first, len(ds)) if ds is not None else 0
    fields = {"tokens": numpy.int32, "labels": numpy.int32, "loss_mask": numpy.float32,
              "position_ids": numpy.int32}
    arrays = {k: numpy.zeros((n, seq), dtype=t) for k, t in fields.items()}
    for k in range(n):
        item = ds[k]
        for name, t in fields.items():
            arrays[name][k] = item[name].numpy().astype(t)
    for name, a in arrays.items():
        numpy.save(f"{out}/{split}_{name}.npy", a)


def main():
    a = parse()
    logging.basicConfig(level=logging.INFO)
    sizes = [None if int(x) < 0 else int(x) for x in a.samples.split(",")]
    ids = [tuple(kv.split("=", 1)) for kv in a.tokenizer_id]
    tok = StandInTokenizer(a.eod, a.mock or 50257, ids)
    config = GPTDatasetConfig(
        random_seed=a.seed, sequence_length=a.seq,
        blend=None if a.mock else get_blend_from_list(a.blend),
        split=None if a.mock else a.split, path_to_cache=a.cache_dir, tokenizer=tok,
        reset_position_ids=a.reset_position_ids, reset_attention_mask=False,
        eod_mask_loss=a.eod_mask_loss, create_attention_mask=False)
    init_one_rank()
    cls = MockGPTDataset if a.mock else GPTDataset
    datasets = BlendedMegatronDatasetBuilder(cls, sizes, lambda: True, config).build()
    with open(f"{a.out}/sizes.txt", "w") as f:
        for split, ds in zip(SPLITS, datasets):
            f.write(f"{split} {0 if ds is None else len(ds)}\n")
    for split, ds in zip(SPLITS, datasets):
        if ds is not None:
            save_indices(a.out, split, ds)
        save_samples(a.out, split, ds, a.first, a.seq)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
