"""bench/torch_train.py - train the bench models in plain PyTorch and print tokens/s.

    python bench/torch_train.py MODEL [--threads N] [--steps S] [--warmup W]
                                      [--compile | --max-autotune] [--bf16]
                                      [--no-fused] [--matmul-rate]

MODEL is 'llama' (the small Llama of bench/train_cpu) or 'gpt2' (GPT-2 124M). fp32, AdamW,
random token batches of B=4 x T=256, no dropout. The models are written out here, compactly,
with the same mathematics as mb's:
  llama: token embedding, 8 x [RMSNorm, attention (fused QKV, RoPE rotate-half, GQA 8 query
         heads over 2 KV heads of 64, causal SDPA), RMSNorm, SwiGLU MLP 512->2x1408->512],
         final RMSNorm, untied LM head 512->32000, no biases.
  gpt2:  token + learned position embeddings, 12 x [LayerNorm, attention (12 heads of 64,
         QKV and projection with biases), LayerNorm, MLP 768->3072->768 gelu-tanh with
         biases], final LayerNorm, LM head tied to the token embedding, vocab 50257.
Tokens/s = B*T*S / (wall time of the S steps after W warm-up steps). Peak RSS from
getrusage. --bf16: torch.autocast("cpu", dtype=torch.bfloat16) around the forward and the
loss, the parameters, gradients and AdamW in fp32 (the mixed precision of Megatron's
bf16_mixed): the linear layers and the head in bf16 (oneDNN); the other ops as autocast's
CPU rules say: the loss in fp32, the rest in the dtype it is given (the residual stream and
the norms on it stay fp32; attention and the MLP activation take the linears' bf16
outputs). --max-autotune: torch.compile(mode="max-autotune"), where Inductor may pick its
own C++ GEMM templates over oneDNN/MKL for each matmul. OMP_WAIT_POLICY and the like must
be set in the environment before start
(bench/train_cpu tries the settings). --matmul-rate prints the GFLOP/s of torch.matmul (MKL)
on the step's GEMMs instead of training, for comparison with bench/sgemm_rate.c (with --bf16:
on bf16 tensors, for comparison with bench/bf16gemm_rate.c).

Output: 'key value' lines on stdout (tok_per_s, step_s_median, peak_rss_kib, loss_first,
loss_last, torch, settings).
"""
import argparse
import contextlib
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

B, T = 4, 256

CONFIGS = {
    "llama": dict(D=512, L=8, H=8, HKV=2, E=64, F=1408, V=32000, rope_base=10000.0, eps=1e-5),
    "gpt2": dict(D=768, L=12, H=12, HKV=12, E=64, F=3072, V=50257, P=1024, eps=1e-5),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(t, e, base):
    inv = 1.0 / base ** (torch.arange(0, e, 2, dtype=torch.float32) / e)
    ang = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    ang = torch.cat([ang, ang], dim=-1)  # rotate-half layout: [t, e]
    return ang.cos(), ang.sin()


def rope(x, cos, sin):
    """x [B, heads, T, E]; rotate-half (NeoX/Llama HF) convention"""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        self.h, self.hkv, self.e = c["H"], c["HKV"], c["E"]
        self.qkv = nn.Linear(c["D"], (self.h + 2 * self.hkv) * self.e, bias=bias)
        self.proj = nn.Linear(self.h * self.e, c["D"], bias=bias)

    def forward(self, x, cos=None, sin=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split([self.h * self.e, self.hkv * self.e, self.hkv * self.e], -1)
        q = q.view(b, t, self.h, self.e).transpose(1, 2)
        k = k.view(b, t, self.hkv, self.e).transpose(1, 2)
        v = v.view(b, t, self.hkv, self.e).transpose(1, 2)
        if cos is not None:
            q, k = rope(q, cos, sin), rope(k, cos, sin)
        gqa = self.hkv != self.h
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        return self.proj(y.transpose(1, 2).reshape(b, t, self.h * self.e))


class LlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n1, self.n2 = RMSNorm(c["D"], c["eps"]), RMSNorm(c["D"], c["eps"])
        self.attn = Attention(c, bias=False)
        self.fc1 = nn.Linear(c["D"], 2 * c["F"], bias=False)  # [gate; up]
        self.fc2 = nn.Linear(c["F"], c["D"], bias=False)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.n1(x), cos, sin)
        g, u = self.fc1(self.n2(x)).chunk(2, dim=-1)
        return x + self.fc2(F.silu(g) * u)


class Gpt2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n1 = nn.LayerNorm(c["D"], eps=c["eps"])
        self.n2 = nn.LayerNorm(c["D"], eps=c["eps"])
        self.attn = Attention(c, bias=True)
        self.fc1 = nn.Linear(c["D"], c["F"])
        self.fc2 = nn.Linear(c["F"], c["D"])

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.fc2(F.gelu(self.fc1(self.n2(x)), approximate="tanh"))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.emb = nn.Embedding(c["V"], c["D"])
        self.blocks = nn.ModuleList(LlamaBlock(c) for _ in range(c["L"]))
        self.norm = RMSNorm(c["D"], c["eps"])
        self.head = nn.Linear(c["D"], c["V"], bias=False)
        cos, sin = rope_tables(T, c["E"], c["rope_base"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, tokens):
        x = self.emb(tokens)
        for blk in self.blocks:
            x = blk(x, self.cos, self.sin)
        return self.head(self.norm(x))


class Gpt2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.emb = nn.Embedding(c["V"], c["D"])
        self.pos = nn.Embedding(c["P"], c["D"])
        self.blocks = nn.ModuleList(Gpt2Block(c) for _ in range(c["L"]))
        self.norm = nn.LayerNorm(c["D"], eps=c["eps"])

    def forward(self, tokens):
        x = self.emb(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return F.linear(self.norm(x), self.emb.weight)  # tied head


def init_(model):
    for p in model.parameters():
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)


def matmul_params(model_name):
    """matmul weights of one model, LM head included (the FLOP count's N)"""
    c = CONFIGS[model_name]
    attn = c["D"] * (c["H"] + 2 * c["HKV"]) * c["E"] + c["H"] * c["E"] * c["D"]
    mlp = c["D"] * c["F"] * (3 if model_name == "llama" else 2)
    return c["L"] * (attn + mlp) + c["D"] * c["V"]


def matmul_rate(model_name, dtype, repeats=3):
    """GFLOP/s of torch.matmul on the step's GEMMs (fwd, dgrad, wgrad per linear layer)"""
    c, n = CONFIGS[model_name], B * T
    qkv = (c["H"] + 2 * c["HKV"]) * c["E"]
    f1 = 2 * c["F"] if model_name == "llama" else c["F"]
    shapes = [(c["D"], qkv, c["L"]), (c["D"], c["D"], c["L"]), (c["D"], f1, c["L"]),
              (c["F"], c["D"], c["L"]), (c["D"], c["V"], 1)]
    flops = secs = 0.0
    for fin, fout, count in shapes:
        x, w, dy = (torch.randn(shape).to(dtype) for shape in ((n, fin), (fout, fin), (n, fout)))
        best = [math.inf] * 3
        for r in range(repeats + 1):
            ops = [lambda: x @ w.t(), lambda: dy @ w, lambda: dy.t() @ x]
            for i, op in enumerate(ops):
                t0 = time.perf_counter()
                op()
                dt = time.perf_counter() - t0
                if r:
                    best[i] = min(best[i], dt)
        flops += 6.0 * n * fin * fout * count
        secs += sum(best) * count
    return flops / secs * 1e-9


def train(args):
    torch.manual_seed(1234)
    c = CONFIGS[args.model]
    model = (Llama if args.model == "llama" else Gpt2)(c)
    init_(model)
    fused = not args.no_fused
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01, fused=fused)
    if args.max_autotune:
        fwd = torch.compile(model, mode="max-autotune")
    elif args.compile:
        fwd = torch.compile(model)
    else:
        fwd = model
    # bf16: autocast's region is the forward and the loss only (PyTorch's AMP recipe)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.bf16 \
        else contextlib.nullcontext
    gen = torch.Generator().manual_seed(1)
    times, losses = [], []
    for step in range(args.warmup + args.steps):
        data = torch.randint(0, c["V"], (B, T + 1), generator=gen)
        t0 = time.perf_counter()
        with autocast():
            logits = fwd(data[:, :-1])
            loss = F.cross_entropy(logits.view(-1, c["V"]), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"torch {torch.__version__}")
    compiled = "max-autotune" if args.max_autotune else int(args.compile)
    print(f"settings threads={torch.get_num_threads()} compile={compiled} "
          f"bf16_autocast={int(args.bf16)} fused_adamw={int(fused)} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}")
    print(f"matmul_params {matmul_params(args.model)}")
    print(f"tok_per_s {B * T * len(times) / sum(times):.1f}")
    print(f"step_s_median {statistics.median(times):.3f}")
    print(f"loss_first {losses[0]:.4f}")
    print(f"loss_last {losses[-1]:.4f}")
    print(f"peak_rss_kib {rss}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--max-autotune", action="store_true",
                    help='torch.compile the model with mode="max-autotune"')
    ap.add_argument("--bf16", action="store_true",
                    help="torch.autocast(cpu, bfloat16) around forward and loss")
    ap.add_argument("--no-fused", action="store_true", help="for-loop AdamW, not fused")
    ap.add_argument("--matmul-rate", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.matmul_rate:
        dtype = torch.bfloat16 if args.bf16 else torch.float32
        print(f"matmul_gflops {matmul_rate(args.model, dtype):.1f}")
        return 0
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
