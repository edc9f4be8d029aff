/* kern/cpu/internal.h - what the CPU back end's files share: the mb_cpu_* entries of the
 * op table, the vector-clone attribute and a vectorisable exp.
 *
 * Threading rule: OpenMP parallel regions live in plain (uncloned) driver functions with
 * static schedules; the per-row or per-block work they call is MB_CPU_CLONES, so GCC emits
 * AVX-512, AVX2+FMA and baseline versions and picks one at load time. The split matters:
 * GCC outlines a parallel region before it clones, so a region inside a cloned function
 * would run the baseline code. Inner loops carry "omp simd" (with a reduction clause where
 * they sum), which lets GCC vectorise them at -O2 without -ffast-math.
 */
#ifndef MB_KERN_CPU_INTERNAL_H
#define MB_KERN_CPU_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kern/ops.h"

#define MB_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* exp(x) for float, vectorisable inside an "omp simd" loop (no libm call): range reduction
 * x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r (the classic minimax
 * coefficients), and 2^n put into the exponent bits. Within 2 ulp of expf on [-87, 88];
 * returns 0 below -87.3 (e^x is denormal there) and e^88 above 88. */
static inline float mb_cpu_expf(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float x0 = x;
    x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union {
        int32_t i;
        float f;
    } s = {.i = ((int32_t)n + 127) << 23};
    return x0 < -87.3f ? 0.0f : p * s.f;
}

/* The CPU's execution context (kern/ops.h), one per process: the threads each op runs on
 * (OpenMP's, set once by threads.c) and their scratch arena (scratch.c). */
struct mb_exec {
    int threads;
    int nscratch;                   /* slots in scratch */
    struct mb_cpu_scratch *scratch; /* one per OpenMP thread */
};

/* scratch.c: before a parallel region whose threads take scratch, mb_cpu_scratch_ready;
 * inside it, mb_cpu_scratch gives the calling thread BYTES (64-byte aligned, not zeroed),
 * its own until that thread asks again. */
void mb_cpu_scratch_ready(struct mb_exec *ex);
void *mb_cpu_scratch(struct mb_exec *ex, size_t bytes);
/* Free every slot (the context stays usable: slots come back on demand). */
void mb_cpu_scratch_release(struct mb_exec *ex);

/* memory and elementwise (ops_cpu.c, elem.c) */
void mb_cpu_zero(float *x, int64_t n);
void mb_cpu_copy(float *dst, const float *src, int64_t n);
void mb_cpu_add(float *y, const float *x, int64_t n);
double mb_cpu_sumsq(const float *x, int64_t n);
void mb_cpu_add_bias(float *y, const float *bias, int64_t rows, int64_t cols);
void mb_cpu_bias_grad(float *db, const float *dy, int64_t rows, int64_t cols);
void mb_cpu_embedding_fwd(float *out, const float *table, const int32_t *ids, int64_t rows,
                          int64_t dim, float scale, bool accumulate);
void mb_cpu_embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t rows,
                          int64_t dim, float scale);
void mb_cpu_qkv_split(float *q, float *k, float *v, const float *qkv,
                      const struct mb_attn_shape *s);
void mb_cpu_qkv_merge(float *dqkv, const float *dq, const float *dk, const float *dv,
                      const struct mb_attn_shape *s);

/* gemm.c */
void mb_cpu_matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc);
void mb_cpu_gemm_init(void);

/* bf16.c */
void mb_cpu_convert(void *dst, enum mb_dtype dst_type, const void *src, enum mb_dtype src_type,
                    int64_t n);
void mb_cpu_matmul_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);
void mb_cpu_matmul_bf16_rounded(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                                uint16_t *c, int64_t ldc);

/* threads.c: set the OpenMP thread count once (call from the main thread) */
void mb_cpu_threads_init(void);

/* norm.c */
void mb_cpu_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int64_t rows,
                        int64_t dim, float eps, bool zero_centered);
void mb_cpu_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                        const float *rstd, int64_t rows, int64_t dim, bool zero_centered);
void mb_cpu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t rows, int64_t dim, float eps);
void mb_cpu_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t rows,
                          int64_t dim);

/* rope.c */
void mb_cpu_rope_fwd(float *x, const float *cos_sin, const int32_t *pos, int64_t batch,
                     int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim);
void mb_cpu_rope_bwd(float *dx, const float *cos_sin, const int32_t *pos, int64_t batch,
                     int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim);

/* attention.c */
void mb_cpu_attention_fwd(struct mb_exec *ex, float *out, float *lse, const float *q,
                          const float *k, const float *v, const struct mb_attn_shape *s);
void mb_cpu_attention_bwd(struct mb_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const float *out,
                          const float *lse, const struct mb_attn_shape *s);

/* attention_kv.c */
void mb_cpu_attention_kv(struct mb_exec *ex, float *out, const float *q, const float *kc,
                         const float *vc, const struct mb_attn_shape *s, int64_t p0,
                         int64_t tmax);

/* act.c */
void mb_cpu_swiglu_fwd(float *y, const float *gate_up, int64_t rows, int64_t inner);
void mb_cpu_swiglu_bwd(float *dgate_up, const float *dy, const float *gate_up, int64_t rows,
                       int64_t inner);
void mb_cpu_geglu_fwd(float *y, const float *gate_up, int64_t rows, int64_t inner);
void mb_cpu_geglu_bwd(float *dgate_up, const float *dy, const float *gate_up, int64_t rows,
                      int64_t inner);
void mb_cpu_gelu_fwd(float *y, const float *x, int64_t n);
void mb_cpu_gelu_bwd(float *dx, const float *dy, const float *x, int64_t n);
void mb_cpu_act_fwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *y,
                         const uint16_t *x, int64_t rows, int64_t inner);
void mb_cpu_act_bwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *dx,
                         const float *dy, const uint16_t *x, int64_t rows, int64_t inner);

/* xent.c */
void mb_cpu_xent(struct mb_exec *ex, float *logits, float *loss, const int32_t *target,
                 const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                 float grad_scale);
void mb_cpu_xent_max(float *logits, float *max, int64_t rows, int64_t vocab, float softcap);
void mb_cpu_xent_sumexp(const float *logits, const float *max, const int32_t *target,
                        int64_t start, double *sumexp, float *ztarget, int64_t rows,
                        int64_t vocab);
void mb_cpu_xent_finish(float *logits, float *loss, const float *max, const double *sumexp,
                        const float *ztarget, const int32_t *target, int64_t start,
                        const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                        float grad_scale);

/* adamw.c */
void mb_cpu_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                  const struct mb_adamw_args *a, uint16_t *pb);

/* Elements per parallel chunk of the flat elementwise ops (a fixed split, so results do
 * not depend on the thread count). */
#define MB_CPU_CHUNK ((int64_t)16384)

#endif /* MB_KERN_CPU_INTERNAL_H */
