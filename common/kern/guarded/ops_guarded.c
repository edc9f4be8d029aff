/* kern/guarded/ops_guarded.c - the cpu-guarded op table: every entry checks each pointer
 * it gets against the guarded arena (with the extent its shape arguments give), swaps it
 * for its work address and runs the CPU kernel. Optional arguments (a frozen norm's dw,
 * xent's loss or mask, a plain causal mask's doc_start) may be NULL. */
#include <string.h>

#include "core/defs.h"
#include "kern/cpu/internal.h"
#include "kern/guarded/internal.h"

static struct mb_exec guarded_exec;

/* Work addresses of N elements at P (OPT: P may be NULL). */
static float *wf(const char *op, const char *arg, const float *p, int64_t n)
{
    return mb_guarded_work(op, arg, p, (size_t)(n > 0 ? n : 0) * sizeof(float), false);
}

static float *wf_opt(const char *op, const char *arg, const float *p, int64_t n)
{
    return mb_guarded_work(op, arg, p, (size_t)(n > 0 ? n : 0) * sizeof(float), true);
}

/* Bytes of N bf16 values (N < 0: none). */
static size_t bf16_bytes(int64_t n)
{
    return (size_t)(n > 0 ? n : 0) * sizeof(uint16_t);
}

static int32_t *wi(const char *op, const char *arg, const int32_t *p, int64_t n)
{
    return mb_guarded_work(op, arg, p, (size_t)(n > 0 ? n : 0) * sizeof(int32_t), false);
}

static double *wd(const char *op, const char *arg, const double *p, int64_t n)
{
    return mb_guarded_work(op, arg, p, (size_t)(n > 0 ? n : 0) * sizeof(double), false);
}

/* Elements a ROWS x COLS matrix with leading dimension LD spans. */
static int64_t mat_span(int64_t rows, int64_t cols, int64_t ld)
{
    return rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
}

/* One more than the largest of the N ids at (work address) IDS, 0 when none is >= 0:
 * the rows of a table they index. */
static int64_t rows_indexed(const int32_t *ids, int64_t n)
{
    int64_t top = -1;
    for (int64_t i = 0; i < n; i++)
        top = ids[i] > top ? ids[i] : top;
    return top + 1;
}

/* S with its doc_start checked and translated ([B*T] when set). */
static struct mb_attn_shape shape(const char *op, const struct mb_attn_shape *s)
{
    struct mb_attn_shape w = *s;
    w.doc_start = mb_guarded_work(op, "s->doc_start", s->doc_start,
                                  (size_t)(s->batch * s->seq) * sizeof(int32_t), true);
    return w;
}

static void *g_alloc(struct mb_exec *ex MB_UNUSED, size_t bytes)
{
    return mb_guarded_alloc(bytes);
}

static void g_free(struct mb_exec *ex MB_UNUSED, void *p)
{
    mb_guarded_free("free", p);
}

static void g_zero(struct mb_exec *ex MB_UNUSED, float *x, int64_t n)
{
    mb_cpu_zero(wf("zero", "x", x, n), n);
}

static void g_copy(struct mb_exec *ex MB_UNUSED, float *dst, const float *src, int64_t n)
{
    mb_cpu_copy(wf("copy", "dst", dst, n), wf("copy", "src", src, n), n);
}

static void g_to_host(struct mb_exec *ex MB_UNUSED, void *host, const void *dev, size_t bytes)
{
    memcpy(host, mb_guarded_work("to_host", "dev", dev, bytes, false), bytes);
}

static void g_from_host(struct mb_exec *ex MB_UNUSED, void *dev, const void *host, size_t bytes)
{
    memcpy(mb_guarded_work("from_host", "dev", dev, bytes, false), host, bytes);
}

static void g_sync(struct mb_exec *ex MB_UNUSED)
{
}

static void g_matmul(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m, int64_t n,
                     int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float beta, float *c, int64_t ldc)
{
    const char *op = "matmul";
    const float *wa = wf(op, "a", a, mat_span(ta ? k : m, ta ? m : k, lda));
    const float *wb = wf(op, "b", b, mat_span(tb ? n : k, tb ? k : n, ldb));
    mb_cpu_matmul(ta, tb, m, n, k, alpha, wa, lda, wb, ldb, beta,
                  wf(op, "c", c, mat_span(m, n, ldc)), ldc);
}

static void g_convert(struct mb_exec *ex MB_UNUSED, void *dst, enum mb_dtype dst_type,
                      const void *src, enum mb_dtype src_type, int64_t n)
{
    size_t cnt = (size_t)(n > 0 ? n : 0);
    mb_cpu_convert(mb_guarded_work("convert", "dst", dst, cnt * mb_dtype_size(dst_type), false),
                   dst_type,
                   mb_guarded_work("convert", "src", src, cnt * mb_dtype_size(src_type), false),
                   src_type, n);
}

static void g_matmul_bf16(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m, int64_t n,
                          int64_t k, float alpha, const uint16_t *a, int64_t lda,
                          const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const char *op = "matmul_bf16";
    size_t a_bytes = (size_t)mat_span(ta ? k : m, ta ? m : k, lda) * sizeof *a;
    size_t b_bytes = (size_t)mat_span(tb ? n : k, tb ? k : n, ldb) * sizeof *b;
    const uint16_t *wa = mb_guarded_work(op, "a", a, a_bytes, false);
    const uint16_t *wb = mb_guarded_work(op, "b", b, b_bytes, false);
    mb_cpu_matmul_bf16(ta, tb, m, n, k, alpha, wa, lda, wb, ldb, beta,
                       wf(op, "c", c, mat_span(m, n, ldc)), ldc);
}

static void g_matmul_bf16_rounded(struct mb_exec *ex MB_UNUSED, bool ta, bool tb, int64_t m,
                                  int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                                  const uint16_t *b, int64_t ldb, uint16_t *c, int64_t ldc)
{
    const char *op = "matmul_bf16_rounded";
    size_t a_bytes = (size_t)mat_span(ta ? k : m, ta ? m : k, lda) * sizeof *a;
    size_t b_bytes = (size_t)mat_span(tb ? n : k, tb ? k : n, ldb) * sizeof *b;
    size_t c_bytes = (size_t)mat_span(m, n, ldc) * sizeof *c;
    mb_cpu_matmul_bf16_rounded(ta, tb, m, n, k, mb_guarded_work(op, "a", a, a_bytes, false), lda,
                               mb_guarded_work(op, "b", b, b_bytes, false), ldb,
                               mb_guarded_work(op, "c", c, c_bytes, false), ldc);
}

static void g_add(struct mb_exec *ex MB_UNUSED, float *y, const float *x, int64_t n)
{
    mb_cpu_add(wf("add", "y", y, n), wf("add", "x", x, n), n);
}

static double g_sumsq(struct mb_exec *ex MB_UNUSED, const float *x, int64_t n)
{
    return mb_cpu_sumsq(wf("sumsq", "x", x, n), n);
}

static void g_add_bias(struct mb_exec *ex MB_UNUSED, float *y, const float *bias, int64_t rows,
                       int64_t cols)
{
    mb_cpu_add_bias(wf("add_bias", "y", y, rows * cols), wf("add_bias", "bias", bias, cols),
                    rows, cols);
}

static void g_bias_grad(struct mb_exec *ex MB_UNUSED, float *db, const float *dy, int64_t rows,
                        int64_t cols)
{
    mb_cpu_bias_grad(wf("bias_grad", "db", db, cols), wf("bias_grad", "dy", dy, rows * cols),
                     rows, cols);
}

static void g_rmsnorm_fwd(struct mb_exec *ex MB_UNUSED, float *y, float *rstd, const float *x,
                          const float *w, int64_t rows, int64_t dim, float eps, bool zero_centered)
{
    const char *op = "rmsnorm_fwd";
    mb_cpu_rmsnorm_fwd(wf(op, "y", y, rows * dim), wf(op, "rstd", rstd, rows),
                       wf(op, "x", x, rows * dim), wf(op, "w", w, dim), rows, dim, eps,
                       zero_centered);
}

static void g_rmsnorm_bwd(struct mb_exec *ex MB_UNUSED, float *dx, float *dw, const float *dy,
                          const float *x, const float *w, const float *rstd, int64_t rows,
                          int64_t dim, bool zero_centered)
{
    const char *op = "rmsnorm_bwd";
    mb_cpu_rmsnorm_bwd(wf(op, "dx", dx, rows * dim), wf_opt(op, "dw", dw, dim),
                       wf(op, "dy", dy, rows * dim), wf(op, "x", x, rows * dim),
                       wf(op, "w", w, dim), wf(op, "rstd", rstd, rows), rows, dim,
                       zero_centered);
}

static void g_layernorm_fwd(struct mb_exec *ex MB_UNUSED, float *y, float *mean, float *rstd,
                            const float *x, const float *w, const float *b, int64_t rows,
                            int64_t dim, float eps)
{
    const char *op = "layernorm_fwd";
    mb_cpu_layernorm_fwd(wf(op, "y", y, rows * dim), wf(op, "mean", mean, rows),
                         wf(op, "rstd", rstd, rows), wf(op, "x", x, rows * dim),
                         wf(op, "w", w, dim), wf(op, "b", b, dim), rows, dim, eps);
}

static void g_layernorm_bwd(struct mb_exec *ex MB_UNUSED, float *dx, float *dw, float *db,
                            const float *dy, const float *x, const float *w, const float *mean,
                            const float *rstd, int64_t rows, int64_t dim)
{
    const char *op = "layernorm_bwd";
    mb_cpu_layernorm_bwd(wf(op, "dx", dx, rows * dim), wf_opt(op, "dw", dw, dim),
                         wf_opt(op, "db", db, dim), wf(op, "dy", dy, rows * dim),
                         wf(op, "x", x, rows * dim), wf(op, "w", w, dim),
                         wf(op, "mean", mean, rows), wf(op, "rstd", rstd, rows), rows, dim);
}

static void g_embedding_fwd(struct mb_exec *ex MB_UNUSED, float *out, const float *table,
                            const int32_t *ids, int64_t rows, int64_t dim, float scale,
                            bool accumulate)
{
    const char *op = "embedding_fwd";
    const int32_t *wids = wi(op, "ids", ids, rows);
    mb_cpu_embedding_fwd(wf(op, "out", out, rows * dim),
                         wf(op, "table", table, rows_indexed(wids, rows) * dim), wids, rows, dim,
                         scale, accumulate);
}

static void g_embedding_bwd(struct mb_exec *ex MB_UNUSED, float *dtable, const float *dout,
                            const int32_t *ids, int64_t rows, int64_t dim, float scale)
{
    const char *op = "embedding_bwd";
    const int32_t *wids = wi(op, "ids", ids, rows);
    mb_cpu_embedding_bwd(wf(op, "dtable", dtable, rows_indexed(wids, rows) * dim),
                         wf(op, "dout", dout, rows * dim), wids, rows, dim, scale);
}

/* Elements of q and of k (or v) in the attention layouts of S with TQ positions. */
static int64_t q_numel(const struct mb_attn_shape *s, int64_t tq)
{
    return s->batch * s->heads * tq * s->head_dim;
}

static int64_t kv_numel(const struct mb_attn_shape *s, int64_t t)
{
    return s->batch * s->kv_heads * t * s->head_dim;
}

static void g_qkv_split(struct mb_exec *ex MB_UNUSED, float *q, float *k, float *v,
                        const float *qkv, const struct mb_attn_shape *s)
{
    const char *op = "qkv_split";
    struct mb_attn_shape w = shape(op, s);
    int64_t nq = q_numel(s, s->seq), nkv = kv_numel(s, s->seq);
    mb_cpu_qkv_split(wf(op, "q", q, nq), wf(op, "k", k, nkv), wf(op, "v", v, nkv),
                     wf(op, "qkv", qkv, nq + 2 * nkv), &w);
}

static void g_qkv_merge(struct mb_exec *ex MB_UNUSED, float *dqkv, const float *dq,
                        const float *dk, const float *dv, const struct mb_attn_shape *s)
{
    const char *op = "qkv_merge";
    struct mb_attn_shape w = shape(op, s);
    int64_t nq = q_numel(s, s->seq), nkv = kv_numel(s, s->seq);
    mb_cpu_qkv_merge(wf(op, "dqkv", dqkv, nq + 2 * nkv), wf(op, "dq", dq, nq),
                     wf(op, "dk", dk, nkv), wf(op, "dv", dv, nkv), &w);
}

static void g_rope_fwd(struct mb_exec *ex MB_UNUSED, float *x, const float *cos_sin,
                       const int32_t *pos, int64_t batch, int64_t heads, int64_t seq,
                       int64_t head_dim, int64_t rot_dim)
{
    const char *op = "rope_fwd";
    const int32_t *wpos = wi(op, "pos", pos, batch * seq);
    mb_cpu_rope_fwd(wf(op, "x", x, batch * heads * seq * head_dim),
                    wf(op, "cos_sin", cos_sin, rows_indexed(wpos, batch * seq) * rot_dim), wpos,
                    batch, heads, seq, head_dim, rot_dim);
}

static void g_rope_bwd(struct mb_exec *ex MB_UNUSED, float *dx, const float *cos_sin,
                       const int32_t *pos, int64_t batch, int64_t heads, int64_t seq,
                       int64_t head_dim, int64_t rot_dim)
{
    const char *op = "rope_bwd";
    const int32_t *wpos = wi(op, "pos", pos, batch * seq);
    mb_cpu_rope_bwd(wf(op, "dx", dx, batch * heads * seq * head_dim),
                    wf(op, "cos_sin", cos_sin, rows_indexed(wpos, batch * seq) * rot_dim), wpos,
                    batch, heads, seq, head_dim, rot_dim);
}

static void g_attention_fwd(struct mb_exec *ex, float *out, float *lse, const float *q,
                            const float *k, const float *v, const struct mb_attn_shape *s)
{
    const char *op = "attention_fwd";
    struct mb_attn_shape w = shape(op, s);
    int64_t nq = q_numel(s, s->seq), nkv = kv_numel(s, s->seq);
    mb_cpu_attention_fwd(ex, wf(op, "out", out, nq),
                         wf(op, "lse", lse, s->batch * s->heads * s->seq), wf(op, "q", q, nq),
                         wf(op, "k", k, nkv), wf(op, "v", v, nkv), &w);
}

static void g_attention_bwd(struct mb_exec *ex, float *dq, float *dk, float *dv,
                            const float *dout, const float *q, const float *k, const float *v,
                            const float *out, const float *lse, const struct mb_attn_shape *s)
{
    const char *op = "attention_bwd";
    struct mb_attn_shape w = shape(op, s);
    int64_t nq = q_numel(s, s->seq), nkv = kv_numel(s, s->seq);
    mb_cpu_attention_bwd(ex, wf(op, "dq", dq, nq), wf(op, "dk", dk, nkv), wf(op, "dv", dv, nkv),
                         wf(op, "dout", dout, nq), wf(op, "q", q, nq), wf(op, "k", k, nkv),
                         wf(op, "v", v, nkv), wf(op, "out", out, nq),
                         wf(op, "lse", lse, s->batch * s->heads * s->seq), &w);
}

static void g_swiglu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *gate_up,
                         int64_t rows, int64_t inner)
{
    mb_cpu_swiglu_fwd(wf("swiglu_fwd", "y", y, rows * inner),
                      wf("swiglu_fwd", "gate_up", gate_up, 2 * rows * inner), rows, inner);
}

static void g_swiglu_bwd(struct mb_exec *ex MB_UNUSED, float *dgate_up, const float *dy,
                         const float *gate_up, int64_t rows, int64_t inner)
{
    const char *op = "swiglu_bwd";
    mb_cpu_swiglu_bwd(wf(op, "dgate_up", dgate_up, 2 * rows * inner),
                      wf(op, "dy", dy, rows * inner), wf(op, "gate_up", gate_up, 2 * rows * inner),
                      rows, inner);
}

static void g_geglu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *gate_up,
                        int64_t rows, int64_t inner)
{
    mb_cpu_geglu_fwd(wf("geglu_fwd", "y", y, rows * inner),
                     wf("geglu_fwd", "gate_up", gate_up, 2 * rows * inner), rows, inner);
}

static void g_geglu_bwd(struct mb_exec *ex MB_UNUSED, float *dgate_up, const float *dy,
                        const float *gate_up, int64_t rows, int64_t inner)
{
    const char *op = "geglu_bwd";
    mb_cpu_geglu_bwd(wf(op, "dgate_up", dgate_up, 2 * rows * inner),
                     wf(op, "dy", dy, rows * inner), wf(op, "gate_up", gate_up, 2 * rows * inner),
                     rows, inner);
}

static void g_gelu_fwd(struct mb_exec *ex MB_UNUSED, float *y, const float *x, int64_t n)
{
    mb_cpu_gelu_fwd(wf("gelu_fwd", "y", y, n), wf("gelu_fwd", "x", x, n), n);
}

static void g_gelu_bwd(struct mb_exec *ex MB_UNUSED, float *dx, const float *dy, const float *x,
                       int64_t n)
{
    mb_cpu_gelu_bwd(wf("gelu_bwd", "dx", dx, n), wf("gelu_bwd", "dy", dy, n),
                    wf("gelu_bwd", "x", x, n), n);
}

static void g_act_fwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *y,
                           const uint16_t *x, int64_t rows, int64_t inner)
{
    const char *op = "act_fwd_bf16";
    int64_t nx = rows * mb_act_x_cols(kind, inner);
    mb_cpu_act_fwd_bf16(ex, kind, mb_guarded_work(op, "y", y, bf16_bytes(rows * inner), false),
                        mb_guarded_work(op, "x", x, bf16_bytes(nx), false), rows, inner);
}

static void g_act_bwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *dx,
                           const float *dy, const uint16_t *x, int64_t rows, int64_t inner)
{
    const char *op = "act_bwd_bf16";
    int64_t nx = rows * mb_act_x_cols(kind, inner);
    mb_cpu_act_bwd_bf16(ex, kind, mb_guarded_work(op, "dx", dx, bf16_bytes(nx), false),
                        wf(op, "dy", dy, rows * inner),
                        mb_guarded_work(op, "x", x, bf16_bytes(nx), false), rows, inner);
}

static void g_xent(struct mb_exec *ex, float *logits, float *loss, const int32_t *target,
                   const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                   float grad_scale)
{
    const char *op = "xent";
    mb_cpu_xent(ex, wf(op, "logits", logits, rows * vocab), wf_opt(op, "loss", loss, rows),
                wi(op, "target", target, rows), wf_opt(op, "loss_mask", loss_mask, rows), rows,
                vocab, softcap, grad_scale);
}

static void g_xent_max(struct mb_exec *ex MB_UNUSED, float *logits, float *max, int64_t rows,
                       int64_t vocab, float softcap)
{
    mb_cpu_xent_max(wf("xent_max", "logits", logits, rows * vocab),
                    wf("xent_max", "max", max, rows), rows, vocab, softcap);
}

static void g_xent_sumexp(struct mb_exec *ex MB_UNUSED, const float *logits, const float *max,
                          const int32_t *target, int64_t start, double *sumexp, float *ztarget,
                          int64_t rows, int64_t vocab)
{
    const char *op = "xent_sumexp";
    mb_cpu_xent_sumexp(wf(op, "logits", logits, rows * vocab), wf(op, "max", max, rows),
                       wi(op, "target", target, rows), start, wd(op, "sumexp", sumexp, rows),
                       wf(op, "ztarget", ztarget, rows), rows, vocab);
}

static void g_xent_finish(struct mb_exec *ex MB_UNUSED, float *logits, float *loss,
                          const float *max, const double *sumexp, const float *ztarget,
                          const int32_t *target, int64_t start, const float *loss_mask,
                          int64_t rows, int64_t vocab, float softcap, float grad_scale)
{
    const char *op = "xent_finish";
    mb_cpu_xent_finish(wf(op, "logits", logits, rows * vocab), wf_opt(op, "loss", loss, rows),
                       wf(op, "max", max, rows), wd(op, "sumexp", sumexp, rows),
                       wf(op, "ztarget", ztarget, rows), wi(op, "target", target, rows), start,
                       wf_opt(op, "loss_mask", loss_mask, rows), rows, vocab, softcap,
                       grad_scale);
}

static void g_adamw(struct mb_exec *ex MB_UNUSED, float *p, const float *g, float *m, float *v,
                    int64_t n, const struct mb_adamw_args *a, uint16_t *pb)
{
    mb_cpu_adamw(wf("adamw", "p", p, n), wf("adamw", "g", g, n), wf("adamw", "m", m, n),
                 wf("adamw", "v", v, n), n, a,
                 mb_guarded_work("adamw", "pb", pb, bf16_bytes(n), true));
}

static void g_attention_kv(struct mb_exec *ex, float *out, const float *q,
                           const float *kc, const float *vc, const struct mb_attn_shape *s,
                           int64_t p0, int64_t tmax)
{
    const char *op = "attention_kv";
    struct mb_attn_shape w = shape(op, s);
    int64_t nq = q_numel(s, s->seq), nkv = kv_numel(s, tmax);
    mb_cpu_attention_kv(ex, wf(op, "out", out, nq), wf(op, "q", q, nq), wf(op, "kc", kc, nkv),
                        wf(op, "vc", vc, nkv), &w, p0, tmax);
}

static const struct mb_ops guarded_ops = {
    .name = "cpu-guarded",
    .exec = &guarded_exec,
    .host_memory = false,
    .alloc = g_alloc,
    .free = g_free,
    .zero = g_zero,
    .copy = g_copy,
    .to_host = g_to_host,
    .from_host = g_from_host,
    .sync = g_sync,
    .matmul = g_matmul,
    .convert = g_convert,
    .matmul_bf16 = g_matmul_bf16,
    .matmul_bf16_rounded = g_matmul_bf16_rounded,
    .add = g_add,
    .sumsq = g_sumsq,
    .add_bias = g_add_bias,
    .bias_grad = g_bias_grad,
    .rmsnorm_fwd = g_rmsnorm_fwd,
    .rmsnorm_bwd = g_rmsnorm_bwd,
    .layernorm_fwd = g_layernorm_fwd,
    .layernorm_bwd = g_layernorm_bwd,
    .embedding_fwd = g_embedding_fwd,
    .embedding_bwd = g_embedding_bwd,
    .qkv_split = g_qkv_split,
    .qkv_merge = g_qkv_merge,
    .rope_fwd = g_rope_fwd,
    .rope_bwd = g_rope_bwd,
    .attention_fwd = g_attention_fwd,
    .attention_bwd = g_attention_bwd,
    .swiglu_fwd = g_swiglu_fwd,
    .swiglu_bwd = g_swiglu_bwd,
    .geglu_fwd = g_geglu_fwd,
    .geglu_bwd = g_geglu_bwd,
    .gelu_fwd = g_gelu_fwd,
    .gelu_bwd = g_gelu_bwd,
    .act_fwd_bf16 = g_act_fwd_bf16,
    .act_bwd_bf16 = g_act_bwd_bf16,
    .xent = g_xent,
    .xent_max = g_xent_max,
    .xent_sumexp = g_xent_sumexp,
    .xent_finish = g_xent_finish,
    .adamw = g_adamw,
    .attention_kv = g_attention_kv,
};

const struct mb_ops *mb_ops_cpu_guarded(void)
{
    const struct mb_ops *cpu = mb_ops_cpu(); /* the kernels' threads and OpenBLAS set up */
    guarded_exec.threads = cpu->exec->threads;
    mb_guarded_init();
    return &guarded_ops;
}
