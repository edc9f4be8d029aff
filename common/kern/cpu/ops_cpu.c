/* kern/cpu/ops_cpu.c - the CPU op table: its execution context, the memory entries and
 * the table instance. Most kernels (mb_cpu_*) take no context: their threads are OpenMP's,
 * set once (threads.c), so their entries here drop it. Those that need working memory
 * per thread (attention, attention_kv, xent) take it for its scratch arena (scratch.c). */
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "core/err.h"
#include "kern/cpu/internal.h"

static struct mb_exec cpu_exec;

static void *cpu_alloc(struct mb_exec *ex MB_UNUSED, size_t bytes)
{
    size_t size = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);

    if (!p) {
        mb_err_set(MB_E_IO, "cpu backend", "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, size ? size : 64);
    return p;
}

static void cpu_free(struct mb_exec *ex MB_UNUSED, void *p)
{
    free(p);
}

static void cpu_zero(struct mb_exec *ex MB_UNUSED, float *x, int64_t n)
{
    mb_cpu_zero(x, n);
}

static void cpu_copy(struct mb_exec *ex MB_UNUSED, float *dst, const float *src, int64_t n)
{
    mb_cpu_copy(dst, src, n);
}

static void cpu_to_host(struct mb_exec *ex MB_UNUSED, void *host, const void *dev, size_t bytes)
{
    memcpy(host, dev, bytes);
}

static void cpu_from_host(struct mb_exec *ex MB_UNUSED, void *dev, const void *host, size_t bytes)
{
    memcpy(dev, host, bytes);
}

static void cpu_sync(struct mb_exec *ex MB_UNUSED)
{
}

static void cpu_matmul(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float beta, float *c, int64_t ldc)
{
    mb_cpu_matmul(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void cpu_convert(struct mb_exec *ex MB_UNUSED, void *dst, enum mb_dtype dst_type,
                        const void *src, enum mb_dtype src_type, int64_t n)
{
    mb_cpu_convert(dst, dst_type, src, src_type, n);
}

static void cpu_matmul_bf16(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m, int64_t n,
                            int64_t k, float alpha, const uint16_t *a, int64_t lda,
                            const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    mb_cpu_matmul_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void cpu_matmul_bf16_rounded(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m,
                                    int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                                    const uint16_t *b, int64_t ldb, uint16_t *c, int64_t ldc)
{
    mb_cpu_matmul_bf16_rounded(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

static void cpu_add(struct mb_exec *ex MB_UNUSED, float *y, const float *x, int64_t n)
{
    mb_cpu_add(y, x, n);
}

static double cpu_sumsq(struct mb_exec *ex MB_UNUSED, const float *x, int64_t n)
{
    return mb_cpu_sumsq(x, n);
}

static void cpu_add_bias(struct mb_exec *ex MB_UNUSED, float *y, const float *bias, int64_t rows,
                         int64_t cols)
{
    mb_cpu_add_bias(y, bias, rows, cols);
}

static void cpu_bias_grad(struct mb_exec *ex MB_UNUSED, float *db, const float *dy, int64_t rows,
                          int64_t cols)
{
    mb_cpu_bias_grad(db, dy, rows, cols);
}

static void cpu_rmsnorm_fwd(struct mb_exec *ex MB_UNUSED, float *y, float *rstd, const float *x,
                            const float *w, int64_t rows, int64_t dim, float eps,
                            bool zero_centered)
{
    mb_cpu_rmsnorm_fwd(y, rstd, x, w, rows, dim, eps, zero_centered);
}

static void cpu_rmsnorm_bwd(struct mb_exec *ex MB_UNUSED, float *dx, float *dw, const float *dy,
                            const float *x, const float *w, const float *rstd, int64_t rows,
                            int64_t dim, bool zero_centered)
{
    mb_cpu_rmsnorm_bwd(dx, dw, dy, x, w, rstd, rows, dim, zero_centered);
}

static void cpu_layernorm_fwd(struct mb_exec *ex MB_UNUSED, float *y, float *mean, float *rstd,
                              const float *x, const float *w, const float *b, int64_t rows,
                              int64_t dim, float eps)
{
    mb_cpu_layernorm_fwd(y, mean, rstd, x, w, b, rows, dim, eps);
}

static void cpu_layernorm_bwd(struct mb_exec *ex MB_UNUSED, float *dx, float *dw, float *db,
                              const float *dy, const float *x, const float *w, const float *mean,
                              const float *rstd, int64_t rows, int64_t dim)
{
    mb_cpu_layernorm_bwd(dx, dw, db, dy, x, w, mean, rstd, rows, dim);
}

static void cpu_embedding_fwd(struct mb_exec *ex MB_UNUSED, float *out, const float *table,
                              const int32_t *ids, int64_t rows, int64_t dim, float scale,
                              bool accumulate)
{
    mb_cpu_embedding_fwd(out, table, ids, rows, dim, scale, accumulate);
}

static void cpu_embedding_bwd(struct mb_exec *ex MB_UNUSED, float *dtable, const float *dout,
                              const int32_t *ids, int64_t rows, int64_t dim, float scale)
{
    mb_cpu_embedding_bwd(dtable, dout, ids, rows, dim, scale);
}

static void cpu_qkv_split(struct mb_exec *ex MB_UNUSED, float *q, float *k, float *v,
                          const float *qkv, const struct mb_attn_shape *s)
{
    mb_cpu_qkv_split(q, k, v, qkv, s);
}

static void cpu_qkv_merge(struct mb_exec *ex MB_UNUSED, float *dqkv, const float *dq,
                          const float *dk, const float *dv, const struct mb_attn_shape *s)
{
    mb_cpu_qkv_merge(dqkv, dq, dk, dv, s);
}

static void cpu_rope_fwd(struct mb_exec *ex MB_UNUSED, float *x, const float *cos_sin,
                         const int32_t *pos, int64_t batch, int64_t heads, int64_t seq,
                         int64_t head_dim, int64_t rot_dim)
{
    mb_cpu_rope_fwd(x, cos_sin, pos, batch, heads, seq, head_dim, rot_dim);
}

static void cpu_rope_bwd(struct mb_exec *ex MB_UNUSED, float *dx, const float *cos_sin,
                         const int32_t *pos, int64_t batch, int64_t heads, int64_t seq,
                         int64_t head_dim, int64_t rot_dim)
{
    mb_cpu_rope_bwd(dx, cos_sin, pos, batch, heads, seq, head_dim, rot_dim);
}

static void cpu_attention_fwd(struct mb_exec *ex, float *out, float *lse, const float *q,
                              const float *k, const float *v, const struct mb_attn_shape *s)
{
    mb_cpu_attention_fwd(ex, out, lse, q, k, v, s);
}

static void cpu_attention_bwd(struct mb_exec *ex, float *dq, float *dk, float *dv,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *out, const float *lse, const struct mb_attn_shape *s)
{
    mb_cpu_attention_bwd(ex, dq, dk, dv, dout, q, k, v, out, lse, s);
}

static void cpu_act_fwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *y,
                             const uint16_t *x, int64_t rows, int64_t inner)
{
    mb_cpu_act_fwd_bf16(ex, kind, y, x, rows, inner);
}

static void cpu_act_bwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *dx,
                             const float *dy, const uint16_t *x, int64_t rows, int64_t inner)
{
    mb_cpu_act_bwd_bf16(ex, kind, dx, dy, x, rows, inner);
}

static void cpu_swiglu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *gate_up,
                           int64_t rows, int64_t inner)
{
    mb_cpu_swiglu_fwd(y, gate_up, rows, inner);
}

static void cpu_swiglu_bwd(struct mb_exec *ex MB_UNUSED, float *dgate_up, const float *dy,
                           const float *gate_up, int64_t rows, int64_t inner)
{
    mb_cpu_swiglu_bwd(dgate_up, dy, gate_up, rows, inner);
}

static void cpu_geglu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *gate_up,
                          int64_t rows, int64_t inner)
{
    mb_cpu_geglu_fwd(y, gate_up, rows, inner);
}

static void cpu_geglu_bwd(struct mb_exec *ex MB_UNUSED, float *dgate_up, const float *dy,
                          const float *gate_up, int64_t rows, int64_t inner)
{
    mb_cpu_geglu_bwd(dgate_up, dy, gate_up, rows, inner);
}

static void cpu_gelu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *x, int64_t n)
{
    mb_cpu_gelu_fwd(y, x, n);
}

static void cpu_gelu_bwd(struct mb_exec *ex MB_UNUSED, float *dx, const float *dy, const float *x,
                         int64_t n)
{
    mb_cpu_gelu_bwd(dx, dy, x, n);
}

static void cpu_xent(struct mb_exec *ex, float *logits, float *loss,
                     const int32_t *target, const float *loss_mask, int64_t rows, int64_t vocab,
                     float softcap, float grad_scale)
{
    mb_cpu_xent(ex, logits, loss, target, loss_mask, rows, vocab, softcap, grad_scale);
}

static void cpu_xent_max(struct mb_exec *ex MB_UNUSED, float *logits, float *max, int64_t rows,
                         int64_t vocab, float softcap)
{
    mb_cpu_xent_max(logits, max, rows, vocab, softcap);
}

static void cpu_xent_sumexp(struct mb_exec *ex MB_UNUSED, const float *logits, const float *max,
                            const int32_t *target, int64_t start, double *sumexp, float *ztarget,
                            int64_t rows, int64_t vocab)
{
    mb_cpu_xent_sumexp(logits, max, target, start, sumexp, ztarget, rows, vocab);
}

static void cpu_xent_finish(struct mb_exec *ex MB_UNUSED, float *logits, float *loss,
                            const float *max, const double *sumexp, const float *ztarget,
                            const int32_t *target, int64_t start, const float *loss_mask,
                            int64_t rows, int64_t vocab, float softcap, float grad_scale)
{
    mb_cpu_xent_finish(logits, loss, max, sumexp, ztarget, target, start, loss_mask, rows, vocab,
                       softcap, grad_scale);
}

static void cpu_adamw(struct mb_exec *ex MB_UNUSED, float *p, const float *g, float *m, float *v,
                      int64_t n, const struct mb_adamw_args *a, uint16_t *pb)
{
    mb_cpu_adamw(p, g, m, v, n, a, pb);
}

static void cpu_attention_kv(struct mb_exec *ex, float *out, const float *q,
                             const float *kc, const float *vc, const struct mb_attn_shape *s,
                             int64_t p0, int64_t tmax)
{
    mb_cpu_attention_kv(ex, out, q, kc, vc, s, p0, tmax);
}

static const struct mb_ops cpu_ops = {
    .name = "cpu",
    .exec = &cpu_exec,
    .host_memory = true,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .to_host = cpu_to_host,
    .from_host = cpu_from_host,
    .sync = cpu_sync,
    .matmul = cpu_matmul,
    .convert = cpu_convert,
    .matmul_bf16 = cpu_matmul_bf16,
    .matmul_bf16_rounded = cpu_matmul_bf16_rounded,
    .add = cpu_add,
    .sumsq = cpu_sumsq,
    .add_bias = cpu_add_bias,
    .bias_grad = cpu_bias_grad,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd = cpu_embedding_bwd,
    .qkv_split = cpu_qkv_split,
    .qkv_merge = cpu_qkv_merge,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .geglu_fwd = cpu_geglu_fwd,
    .geglu_bwd = cpu_geglu_bwd,
    .gelu_fwd = cpu_gelu_fwd,
    .gelu_bwd = cpu_gelu_bwd,
    .act_fwd_bf16 = cpu_act_fwd_bf16,
    .act_bwd_bf16 = cpu_act_bwd_bf16,
    .xent = cpu_xent,
    .xent_max = cpu_xent_max,
    .xent_sumexp = cpu_xent_sumexp,
    .xent_finish = cpu_xent_finish,
    .adamw = cpu_adamw,
    .attention_kv = cpu_attention_kv,
};

const struct mb_ops *mb_ops_cpu(void)
{
    mb_cpu_gemm_init();
    mb_cpu_threads_init();
    cpu_exec.threads = mb_ops_cpu_threads();
    return &cpu_ops;
}
