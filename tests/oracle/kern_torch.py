#!/usr/bin/env python3
"""kern_torch.py - PyTorch's own ops as the oracle for mb's CPU kernels (op table, kern/ops.h).

usage: kern_torch.py MANIFEST

MANIFEST has a line per case, "NAME OP key=value ...". The case's inputs are NAME.in.K.npy
(K = 0, 1, ...), written by tests/unit/kern_cpu_magnitude.c. For each case this writes the
outputs of PyTorch's op, evaluated twice on those same float32 inputs: in float32 (what a
PyTorch user gets: NAME.t32.K.npy) and in float64 (NAME.t64.K.npy, the same op's exact
answer to float32 accuracy), both stored as float64. Backward outputs come from autograd.

The ops are the ones transformers' models call: F.gelu(approximate='tanh'), F.silu,
F.rms_norm, F.layer_norm, the rotate-half RoPE of apply_rotary_pos_emb, the eager attention
of eager_attention_forward (scores, tanh soft-capping, causal / sliding-window mask,
softmax in float32, repeat_kv for GQA), F.cross_entropy (reduction='none'),
F.embedding, torch.optim.AdamW(foreach=False), torch.mm, and LlamaRotaryEmbedding itself
for the rope table (transformers computes it in float32).
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def load(name, k, dtype):
    a = np.load(f"{name}.in.{k}.npy")
    t = torch.from_numpy(a.copy())
    return t.to(dtype) if t.is_floating_point() else t.long()


def leaf(name, k, dtype):
    return load(name, k, dtype).requires_grad_(True)


def gelu_tanh(x):
    """F.gelu(x, approximate='tanh'); in float64 as x sigmoid(2u), the same function
    without the cancellation of 1 + tanh(u) for u << 0 (where F.gelu in float64 is
    only good to 1e-16 |x| absolute: checked here)."""
    y = F.gelu(x, approximate="tanh")
    if x.dtype != torch.float64:
        return y
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    exact = torch.where(x.abs() < 1e100, x * torch.sigmoid(2 * u), y)
    gap = ((exact - y).abs() - 4.5e-16 * x.abs()).max().item()
    if gap > 0:
        raise SystemExit(f"kern_torch.py: x sigmoid(2u) is not F.gelu in float64 ({gap:g})")
    return exact


def gelu(n, p, dt):
    x, dy = leaf(n, 0, dt), load(n, 1, dt)
    y = gelu_tanh(x)
    y.backward(dy)
    return [y, x.grad]


def gated(n, p, dt):
    gu, dy = leaf(n, 0, dt), load(n, 1, dt)
    g, u = gu.chunk(2, dim=-1)
    act = F.silu(g) if p["act"] == "swiglu" else gelu_tanh(g)
    y = act * u
    y.backward(dy)
    return [y, gu.grad]


def rmsnorm(n, p, dt):
    x, w, dy = leaf(n, 0, dt), leaf(n, 1, dt), load(n, 2, dt)
    weff = 1.0 + w if p["zc"] == "1" else w
    y = F.rms_norm(x, (x.shape[-1],), weff, float(p["eps"]))
    y.backward(dy)
    return [y, x.grad, w.grad]


def layernorm(n, p, dt):
    x, w, b, dy = leaf(n, 0, dt), leaf(n, 1, dt), leaf(n, 2, dt), load(n, 3, dt)
    y = F.layer_norm(x, (x.shape[-1],), w, b, float(p["eps"]))
    y.backward(dy)
    return [y, x.grad, w.grad, b.grad]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(n, p, dt):
    """transformers' apply_rotary_pos_emb (partial rotary as in its models) with mb's table."""
    x, cs, pos, dy = leaf(n, 0, dt), load(n, 1, dt), load(n, 2, dt), load(n, 3, dt)
    B, H, T, D = x.shape
    rot = int(p["rot"])
    c = cs[..., 0][pos.view(B, T)]  # [B, T, rot/2]
    s = cs[..., 1][pos.view(B, T)]
    cos = torch.cat((c, c), dim=-1).unsqueeze(1)
    sin = torch.cat((s, s), dim=-1).unsqueeze(1)
    xr, xp = x[..., :rot], x[..., rot:]
    y = torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)
    y.backward(dy)
    return [y, x.grad]


def rope_table(n, p, dt):
    """cos/sin at the given positions with llama3 scaling: LlamaRotaryEmbedding itself, in
    float32 as transformers computes them, and the same formulas in float64."""
    pos = load(n, 0, None)
    dim, theta = int(p["dim"]), float(p["theta"])
    rs = {"rope_type": "llama3", "rope_theta": theta, "factor": float(p["factor"]),
          "low_freq_factor": float(p["low"]), "high_freq_factor": float(p["high"]),
          "original_max_position_embeddings": int(p["orig"])}
    if dt == torch.float32:
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
        cfg = LlamaConfig(hidden_size=dim * 2, num_attention_heads=2, head_dim=dim,
                          max_position_embeddings=int(p["maxpos"]), rope_parameters=rs)
        cos, sin = LlamaRotaryEmbedding(cfg)(torch.zeros(1), pos.view(1, -1))
        cos, sin = cos[0, :, :dim // 2], sin[0, :, :dim // 2]
    else:
        ang = pos.double().view(-1, 1) * llama3_inv_freq_f64(dim, theta, rs).view(1, -1)
        cos, sin = ang.cos(), ang.sin()
    return [torch.stack((cos, sin), dim=-1)]


def llama3_inv_freq_f64(dim, theta, rs):
    """transformers' _compute_llama3_parameters, in float64."""
    import math
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    orig = rs["original_max_position_embeddings"]
    wl = 2 * math.pi / inv
    out = torch.where(wl > orig / low, inv / factor, inv)
    smooth = (orig / wl - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wl < orig / high) * ~(wl > orig / low)
    return torch.where(medium, smoothed, out)


def eager_attention(q, k, v, scale, cap, window, q_pos, k_len):
    """transformers' eager_attention_forward (+ Gemma 2's soft-capping), q [B,H,Tq,d]."""
    B, H, Tq, d = q.shape
    g = H // k.shape[1]
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    s = torch.matmul(q, k.transpose(2, 3)) * scale
    if cap > 0:
        s = torch.tanh(s / cap) * cap
    kp = torch.arange(k_len).view(1, -1)
    qp = q_pos.view(-1, 1)
    keep = kp <= qp
    if window > 0:
        keep = keep & (qp - kp < window)
    s = s.masked_fill(~keep, float("-inf"))
    pr = torch.softmax(s, dim=-1, dtype=torch.float32 if s.dtype == torch.float32 else s.dtype)
    return torch.matmul(pr, v), torch.logsumexp(s, dim=-1)


def attention(n, p, dt):
    q, k, v, dout = leaf(n, 0, dt), leaf(n, 1, dt), leaf(n, 2, dt), load(n, 3, dt)
    T = q.shape[2]
    o, lse = eager_attention(q, k, v, float(p["scale"]), float(p["cap"]), int(p["window"]),
                             torch.arange(T), T)
    o = o.transpose(1, 2)  # [B, T, H, d], mb's layout
    o.backward(dout)
    return [o, lse, q.grad, k.grad, v.grad]


def attention_kv(n, p, dt):
    q, kc, vc = load(n, 0, dt), load(n, 1, dt), load(n, 2, dt)
    p0, Tq = int(p["p0"]), q.shape[2]
    kc, vc = kc[:, :, :p0 + Tq], vc[:, :, :p0 + Tq]
    o, _ = eager_attention(q, kc, vc, float(p["scale"]), float(p["cap"]), int(p["window"]),
                           torch.arange(p0, p0 + Tq), p0 + Tq)
    return [o.transpose(1, 2)]


def xent(n, p, dt):
    z, tgt, mask = leaf(n, 0, dt), load(n, 1, None), load(n, 2, dt)
    cap, gs = float(p["cap"]), float(p["gs"])
    zc = torch.tanh(z / cap) * cap if cap > 0 else z
    loss = F.cross_entropy(zc, tgt, reduction="none", ignore_index=-100)
    (loss * mask).sum().mul(gs).backward()
    return [loss, z.grad]


def embedding(n, p, dt):
    table, ids, dout = leaf(n, 0, dt), load(n, 1, None), load(n, 2, dt)
    out = F.embedding(ids, table) * float(p["scale"])
    out.backward(dout)
    return [out, table.grad]


def bias(n, p, dt):
    y, b, dy = load(n, 0, dt), load(n, 1, dt), load(n, 2, dt)
    return [y + b, dy.sum(dim=0)]


def sumsq(n, p, dt):
    x = load(n, 0, dt)
    if dt == torch.float32:  # what clip_grad_norm_ computes: the float32 norm, squared
        return [torch.linalg.vector_norm(x).double() ** 2]
    return [torch.sum(x * x)]


def elementwise(n, p, dt):
    y, x = load(n, 0, dt), load(n, 1, dt)
    return [y + x]


def matmul(n, p, dt):
    a, b = load(n, 0, dt), load(n, 1, dt)
    return [torch.mm(a, b)]


def adamw(n, p, dt):
    pp = torch.nn.Parameter(load(n, 0, dt))
    g = load(n, 1, dt)
    opt = torch.optim.AdamW([pp], lr=float(p["lr"]), betas=(float(p["b1"]), float(p["b2"])),
                            eps=float(p["eps"]), weight_decay=float(p["wd"]), foreach=False,
                            fused=False)
    for s in range(g.shape[0]):
        pp.grad = g[s].clone()
        opt.step()
    st = opt.state[pp]
    return [pp.detach(), st["exp_avg"], st["exp_avg_sq"]]


OPS = {"gelu": gelu, "gated": gated, "rmsnorm": rmsnorm, "layernorm": layernorm,
       "rope": rope, "rope_table": rope_table, "attention": attention,
       "attention_kv": attention_kv, "xent": xent, "embedding": embedding, "bias": bias,
       "sumsq": sumsq, "elementwise": elementwise, "matmul": matmul, "adamw": adamw}


def main():
    with open(sys.argv[1]) as f:
        for line in f:
            name, op, *kv = line.split()
            p = dict(a.split("=", 1) for a in kv)
            for tag, dt in (("t32", torch.float32), ("t64", torch.float64)):
                for k, t in enumerate(OPS[op](name, p, dt)):
                    np.save(f"{name}.{tag}.{k}.npy", t.detach().double().numpy())
    return 0


if __name__ == "__main__":
    sys.exit(main())
