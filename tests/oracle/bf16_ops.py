#!/usr/bin/env python3
"""bf16_ops.py - PyTorch's bf16 ops as the oracle for mb's bf16 kernels (kern/ops.h:
convert, matmul_bf16 and the bf16 activations; tests/unit/kern_bf16_convert.c,
kern_bf16_matmul.c and kern_bf16_out.c).

usage: bf16_ops.py convert F32BITS.npy BF16BITS.npy OUT_BF16.npy OUT_F32.npy
       bf16_ops.py matmul MANIFEST
       bf16_ops.py act MANIFEST

convert: the float32 values whose bits are in F32BITS (uint32) through
  `.to(torch.bfloat16)` into OUT_BF16 (the bf16 bits as uint16), and the bf16 values
  whose bits are in BF16BITS (uint16) through `.to(torch.float32)` into OUT_F32 (uint32).

matmul: MANIFEST has a line per case, "NAME ta tb m n k lda ldb ldc alpha beta". The
  case's operands are NAME.a.npy and NAME.b.npy (the stored bf16 bits, uint16, with the
  leading dimensions given) and NAME.c.npy (C before the call, float32, m x ldc). This
  writes, as float64 m x n:
    NAME.ref.npy  alpha op(A) op(B) + beta C in float64: the exact answer (every bf16
                  product is exact in float32, and float64 holds their sums to 2^-53);
    NAME.bnd.npy  |alpha| |op(A)| |op(B)| + |beta| |C|, for the error bound;
    NAME.t32.npy  what PyTorch's bf16 matmul with float32 accumulation gives:
                  torch.matmul(a.float(), b.float()) of the bf16 tensors, then alpha, beta
                  in float32 - its worst error is printed beside mb's for scale;
    NAME.t16.npy  torch.matmul on the bf16 tensors themselves (rounded to bf16; printed
                  only, it is a bf16-output op).

act: MANIFEST has a line per case, "NAME KIND ROWS INNER". KIND is swiglu, geglu or gelu
  (tanh approximation) on NAME.x.npy, the bf16 bits (uint16) of a [ROWS, 2*INNER] gate_up
  (gate first) or, for gelu, a [ROWS, INNER] x; NAME.dy.npy (float32, [ROWS, INNER]) is
  the output's gradient. The reference with bf16 rounding of its inputs and outputs:
  torch's ops and autograd in float64 on the bf16 values of x, then y and dx rounded to
  bf16 (through float32, `.to(torch.bfloat16)`), written as uint16 bits to NAME.ty.npy
  and NAME.tdx.npy.
"""
import sys

import numpy as np
import torch

torch.set_num_threads(1)


def bf16_tensor(bits):
    return torch.from_numpy(bits.astype(np.uint16).view(np.int16)).view(torch.bfloat16)


def convert(f32bits, bf16bits, out16, out32):
    x = torch.from_numpy(np.load(f32bits).astype(np.uint32).view(np.float32))
    y = x.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.save(out16, y)
    h = bf16_tensor(np.load(bf16bits))
    f = h.to(torch.float32).numpy().view(np.uint32)
    np.save(out32, f)


def stored(bits, rows, cols, ld, trans):
    """The op() view of a stored matrix: rows x cols logically, stored transposed when
    trans (cols x rows, leading dimension ld)."""
    if trans:
        return bits.reshape(cols, ld)[:, :rows].T
    return bits.reshape(rows, ld)[:, :cols]


def matmul(manifest):
    for line in open(manifest):
        f = line.split()
        name = f[0]
        ta, tb, m, n, k, lda, ldb, ldc = (int(v) for v in f[1:9])
        alpha, beta = float(f[9]), float(f[10])
        abits = stored(np.load(f"{name}.a.npy"), m, k, lda, ta)
        bbits = stored(np.load(f"{name}.b.npy"), k, n, ldb, tb)
        c0 = np.load(f"{name}.c.npy").reshape(m, ldc)[:, :n]
        a, b = bf16_tensor(np.ascontiguousarray(abits)), bf16_tensor(np.ascontiguousarray(bbits))
        a64, b64 = a.double(), b.double()
        c64 = torch.from_numpy(c0.astype(np.float64))
        ref = alpha * (a64 @ b64) + (beta * c64 if beta != 0 else 0)
        bnd = abs(alpha) * (a64.abs() @ b64.abs()) + abs(beta) * c64.abs()
        t32 = torch.matmul(a.float(), b.float())
        t32 = alpha * t32 + (beta * torch.from_numpy(c0.copy()) if beta != 0 else 0)
        t16 = torch.matmul(a, b)
        np.save(f"{name}.ref.npy", ref.numpy())
        np.save(f"{name}.bnd.npy", bnd.numpy())
        np.save(f"{name}.t32.npy", t32.double().numpy())
        np.save(f"{name}.t16.npy", t16.double().numpy())


def act_case(name, kind, rows, inner):
    rows, inner = int(rows), int(inner)
    x = bf16_tensor(np.load(f"{name}.x.npy")).double().reshape(rows, -1).requires_grad_(True)
    dy = torch.from_numpy(np.load(f"{name}.dy.npy").astype(np.float64)).reshape(rows, inner)
    gelu = lambda t: torch.nn.functional.gelu(t, approximate="tanh")
    if kind == "gelu":
        y = gelu(x)
    else:
        f = torch.nn.functional.silu if kind == "swiglu" else gelu
        y = f(x[:, :inner]) * x[:, inner:]
    y.backward(dy)
    bits = lambda t: t.detach().float().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.save(f"{name}.ty.npy", bits(y).reshape(-1))
    np.save(f"{name}.tdx.npy", bits(x.grad).reshape(-1))


def act(manifest):
    for line in open(manifest):
        act_case(*line.split())


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "convert":
        convert(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "matmul":
        matmul(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "act":
        act(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
