"""Reference side of t7001: safetensors files and directories written and read by the
huggingface libraries themselves (safetensors, transformers, huggingface_hub).

    st_oracle.py files DIR             one file per case, written by safetensors.torch.save_file
    st_oracle.py model DIR SHARD TIED DTYPE [DIR SHARD TIED DTYPE ...]
                                       tiny random Llamas saved by transformers' save_pretrained
                                       (max_shard_size=SHARD, tie_word_embeddings TIED=0|1);
                                       DIR.sizes: "NAME NBYTES" of the saved tensors in
                                       state-dict order, the order the shard plan follows
    st_oracle.py list PATH...          for each PATH (file or model directory) "== PATH", then
                                       NAME DTYPE [SHAPE] CRC32C per tensor in name order, as
                                       tests/helpers/st_tool.c prints them
    st_oracle.py shards <LINES         per stdin line "MAX SIZE...": "== LINE", then
                                       huggingface_hub.split_torch_state_dict_into_shards over
                                       uint8 tensors t0, t1, ... of those byte sizes: "tI FILE"
    st_oracle.py mutants FILE DIR      damaged copies of FILE in DIR: cut at every 1/16th, and
                                       each header byte replaced by a few others
    st_oracle.py accepts FILE...       "FILE ok" or "FILE bad": does the reference reader open it
                                       and read every tensor
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

CASTAGNOLI = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ CASTAGNOLI if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def rand(shape, dtype, g):
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    hi = 256 if dtype == torch.uint8 else 1 << 30
    return torch.randint(0, hi, shape, generator=g).to(dtype)


def cmd_files(out):
    g = torch.Generator().manual_seed(7)
    os.makedirs(out, exist_ok=True)
    cases = {
        "f32": ({"w": ((4, 5), torch.float32), "b": ((5,), torch.float32)}, {"format": "pt"}),
        "bf16": ({"w": ((3, 8), torch.bfloat16), "v": ((7,), torch.bfloat16)}, {"format": "pt"}),
        "f16": ({"h": ((2, 3, 4), torch.float16)}, {"format": "pt"}),
        "i64": ({"ids": ((9,), torch.int64), "pos": ((2, 2), torch.int64)}, None),
        "u8": ({"bytes": ((13,), torch.uint8)}, {"format": "pt"}),
        "scalar": ({"s": ((), torch.float32), "t": ((), torch.bfloat16)}, {"format": "pt"}),
        "zero": ({"empty": ((0, 4), torch.float32), "x": ((3,), torch.float32),
                  "none": ((0,), torch.bfloat16)}, {"format": "pt"}),
        "mixed": ({"model.embed.weight": ((6, 4), torch.bfloat16),
                   "Z.first": ((1,), torch.float32), "lm_head.weight": ((6, 4), torch.float32),
                   "caf\u00e9 \"q\"\\\t": ((2,), torch.float16), "step": ((), torch.int64),
                   "mask": ((5,), torch.bool), "i8": ((3,), torch.int8),
                   "i16": ((3,), torch.int16), "i32": ((3,), torch.int32),
                   "f64": ((2,), torch.float64)},
                  {"format": "pt", "note": "\u00e9\n\"x\""}),
        "empty": ({}, {"format": "pt"}),
    }
    for name, (spec, meta) in cases.items():
        tensors = {k: rand(s, d, g) for k, (s, d) in spec.items()}
        save_file(tensors, os.path.join(out, name + ".safetensors"), metadata=meta)


def cmd_model(out, shard, tied, dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=160,
                      max_position_embeddings=64, tie_word_embeddings=tied == "1")
    model = LlamaForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(out, max_shard_size=shard)
    index = os.path.join(out, "model.safetensors.index.json")
    saved = json.load(open(index))["weight_map"] if os.path.exists(index) else None
    with open(out + ".sizes", "w") as f:
        for k, t in model.state_dict().items():
            if saved is None or k in saved:
                f.write(f"{k} {t.numel() * t.element_size()}\n")


def tensor_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def listing(path):
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                wm = json.load(f)["weight_map"]
            files = sorted(set(wm.values()))
        else:
            files = ["model.safetensors"]
        files = [os.path.join(path, f) for f in files]
    else:
        files = [path]
    rows = []
    for fn in files:
        with safe_open(fn, framework="pt") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                shape = ",".join(str(d) for d in sl.get_shape())
                crc = crc32c(tensor_bytes(f.get_tensor(k)))
                rows.append(f"{k} {sl.get_dtype()} [{shape}] {crc:08x}")
    rows.sort(key=lambda r: r.split(" ")[0].encode())
    for r in rows:
        sys.stdout.buffer.write(r.encode() + b"\n")
    sys.stdout.buffer.flush()


def cmd_shards():
    from huggingface_hub import split_torch_state_dict_into_shards

    for line in sys.stdin:
        if line.split():
            print("==", line.strip())
            max_size, *sizes = line.split()
            plan(split_torch_state_dict_into_shards, max_size, sizes)


def plan(split_torch_state_dict_into_shards, max_size, sizes):
    sd = {f"t{i}": torch.zeros(int(n), dtype=torch.uint8) for i, n in enumerate(sizes)}
    split = split_torch_state_dict_into_shards(sd, max_shard_size=int(max_size))
    for i in range(len(sizes)):
        print(f"t{i} {split.tensor_to_filename[f't{i}']}")


def cmd_mutants(src, out):
    data = open(src, "rb").read()
    n = int.from_bytes(data[:8], "little")
    os.makedirs(out, exist_ok=True)
    for k in range(16):
        open(os.path.join(out, f"cut{k:02d}"), "wb").write(data[: len(data) * k // 16])
    for i in range(8 + n):
        for j, v in enumerate(b'0" {,9\xff'):
            if data[i] != v:
                m = bytearray(data)
                m[i] = v
                open(os.path.join(out, f"b{i:04d}_{j}"), "wb").write(m)


def cmd_accepts(paths):
    for p in paths:
        try:
            with safe_open(p, framework="pt") as f:
                for k in f.keys():
                    f.get_tensor(k)
            print(p, "ok")
        except Exception:
            print(p, "bad")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "files":
        cmd_files(args[0])
    elif cmd == "model":
        for i in range(0, len(args), 4):
            cmd_model(*args[i:i + 4])
    elif cmd == "list":
        for path in args:
            print("==", path, flush=True)
            listing(path)
    elif cmd == "shards":
        cmd_shards()
    elif cmd == "mutants":
        cmd_mutants(*args)
    elif cmd == "accepts":
        cmd_accepts(args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
