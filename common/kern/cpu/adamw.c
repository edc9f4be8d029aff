/* kern/cpu/adamw.c - one AdamW step, computed as torch.optim.AdamW (foreach=False) does in
 * fp32:
 *   p *= 1 - lr wd;  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g g;
 *   p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^step,
 * with the FMAs PyTorch's CPU kernels use in lerp and addcmul: m and v match torch bit for
 * bit, p within 1 ulp (tests/unit/kern_cpu_ops.c runs torch).
 * Scalars that PyTorch computes in Python (double) are computed in double here and rounded
 * to float where PyTorch hands them to a float kernel. A clipping factor (grad_scale)
 * multiplies g as it is read: the bits of scaling g in place first, without that pass.
 * With a bf16 copy of p to keep (pb), the new p is also rounded there, as convert would.
 */
#include <math.h>

#include "core/defs.h"
#include "core/err.h"
#include "kern/cpu/bf16.h"
#include "kern/cpu/internal.h"

struct adamw_k {
    float decay, w1, w1c, b2, c2, bc2_sqrt, eps, step_size, gscale;
    bool small_w;
};

/* The Makefile builds this file with -fno-math-errno (sqrtf needs no errno branch) and
 * -fsimd-cost-model=unlimited, so GCC vectorises the loop at -O2: 4-5x faster than scalar
 * (the vector sqrt and division are IEEE, so the bits do not change). SMALL_W and
 * WRITE_PB are constants in each of the four inlined copies: a select inside the loop
 * stops GCC. */
static inline __attribute__((always_inline)) void
adamw_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
           uint16_t *restrict pb, int64_t n, const struct adamw_k *k, const bool small_w,
           const bool write_pb)
{
    const float decay = k->decay, b2 = k->b2, c2 = k->c2;
    const float bc2_sqrt = k->bc2_sqrt, eps = k->eps, step_size = k->step_size;
    const float gscale = k->gscale; /* 1 when not clipping: g * 1 is g */
    const float lerp_w = small_w ? k->w1 : -k->w1c;

#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * gscale, mo = m[i];
        /* torch's lerp, with its FMA: m + w (g - m) for w < 0.5, else g - (g - m) (1 - w) */
        float mi = fmaf(lerp_w, gi - mo, small_w ? mo : gi);
        float vi = fmaf(c2 * gi, gi, v[i] * b2);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        float pi = p[i] * decay + step_size * mi / denom;
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if (write_pb)
            pb[i] = mb_cpu_bf16_rne(pi);
    }
}

MB_CPU_CLONES static void adamw_chunk(float *restrict p, const float *restrict g,
                                      float *restrict m, float *restrict v,
                                      uint16_t *restrict pb, int64_t n, const struct adamw_k *k)
{
    if (k->small_w && pb)
        adamw_loop(p, g, m, v, pb, n, k, true, true);
    else if (k->small_w)
        adamw_loop(p, g, m, v, pb, n, k, true, false);
    else if (pb)
        adamw_loop(p, g, m, v, pb, n, k, false, true);
    else
        adamw_loop(p, g, m, v, pb, n, k, false, false);
}

void mb_cpu_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                  const struct mb_adamw_args *a, uint16_t *pb)
{
    MB_ASSERT(a->step >= 1);
    double bc1 = 1.0 - pow((double)a->beta1, (double)a->step);
    double bc2 = 1.0 - pow((double)a->beta2, (double)a->step);
    struct adamw_k k = {
        .decay = (float)(1.0 - (double)a->lr * a->weight_decay),
        .w1 = (float)(1.0 - (double)a->beta1),
        .w1c = (float)(1.0 - (float)(1.0 - (double)a->beta1)),
        .small_w = 1.0 - (double)a->beta1 < 0.5,
        .b2 = a->beta2,
        .c2 = (float)(1.0 - (double)a->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = a->eps,
        .step_size = (float)(-(double)a->lr / bc1),
        .gscale = a->grad_scale > 0.0f && a->grad_scale < 1.0f ? a->grad_scale : 1.0f,
    };
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        adamw_chunk(p + i0, g + i0, m + i0, v + i0, pb ? pb + i0 : NULL,
                    MB_MIN(MB_CPU_CHUNK, n - i0), &k);
    }
}
