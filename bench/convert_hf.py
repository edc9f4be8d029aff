"""The transformers side of bench/convert.

    convert_hf.py make DIR        a randomly initialised Llama-3.2-1B-shaped model in bf16,
                                  saved with save_pretrained (default sharding) into DIR
    convert_hf.py resave IN OUT   from_pretrained(IN, dtype bf16) + save_pretrained(OUT),
                                  then fsync of every written file; prints
                                  "load S save S fsync S" (seconds, after the imports)

Llama 3.2 1B's shape: hidden 2048, 16 layers, 32 heads over 8 KV heads (head dim 64),
SwiGLU 8192, vocab 128256, tied embeddings, RMSNorm eps 1e-5, RoPE theta 500000 with
llama3 scaling (factor 32, low 1, high 4, original context 8192): 1.236 G parameters,
2.47 GB in bf16. The weights are random (N(0, 0.02), transformers' own init); only the
byte count and layout matter here.
"""
import os
import sys
import time

import torch


def make(out):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64,
        max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=128000, eos_token_id=128001,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        dtype="bfloat16")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # init in bf16: no fp32 copy of 5 GB
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out + ".tmp")
    os.rename(out + ".tmp", out)


def fsync_tree(path):
    for name in os.listdir(path):
        fd = os.open(os.path.join(path, name), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def resave(src, out):
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    t1 = time.perf_counter()
    model.save_pretrained(out)
    t2 = time.perf_counter()
    fsync_tree(out)
    t3 = time.perf_counter()
    print(f"load {t1 - t0:.3f} save {t2 - t1:.3f} fsync {t3 - t2:.3f}")


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "resave":
        resave(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"convert_hf.py: unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
