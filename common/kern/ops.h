/* kern/ops.h - the op table the model is written against.
 *
 * nn/ calls every operation through a struct mb_ops, never a kernel directly, so a
 * backend (kern/cpu now, kern/cuda later) is a table of its own. All tensors are fp32,
 * row-major and contiguous unless a leading dimension is given. Pointers are the
 * backend's own memory (from ->alloc).
 *
 * Conventions:
 *   - "rows" is the number of token positions (B*T) unless said otherwise.
 *   - Backward ops ACCUMULATE (+=) into parameter gradients (dw, db, dtable) and into
 *     the input gradient when the comment says so; other outputs are overwritten.
 *   - Results are deterministic for a fixed thread count: no atomics on floats, every
 *     reduction in a fixed order.
 *
 * Attention layouts: q is [B, nH, T, d], k and v are [B, nKV, T, d] (head-major, so a
 * head's keys are contiguous); the attention output is [B, T, nH, d] = [rows, nH*d], ready
 * for the output projection. Query head h reads KV head h / (nH / nKV) (GQA).
 */
#ifndef MB_KERN_OPS_H
#define MB_KERN_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "kern/act_kind.h"

/* Shape of one attention call. */
struct mb_attn_shape {
    int64_t batch;        /* B */
    int64_t seq;          /* T */
    int64_t heads;        /* nH, query heads */
    int64_t kv_heads;     /* nKV, divides nH */
    int64_t head_dim;     /* d */
    float scale;          /* multiplies q.k (usually 1/sqrt(d)) */
    float softcap;        /* > 0: scores = softcap * tanh(scores / softcap), after scale */
    int64_t window;       /* > 0: query t sees keys k with 0 <= t - k < window; 0: all k <= t */
    /* NULL: plain causal. Else [B*T]: the first position of the document that each token
     * belongs to in its row (packed sequences, non-decreasing along a row); query t then
     * sees only keys k >= doc_start[t], so attention never crosses documents. */
    const int32_t *doc_start;
};

/* AdamW hyper-parameters for one step (bias correction uses step, counted from 1). */
struct mb_adamw_args {
    float lr;
    float beta1;
    float beta2;
    float eps;
    float weight_decay; /* decoupled: p -= lr * wd * p */
    int64_t step;
    /* Gradient clipping folded into the update: g is taken as g * grad_scale when
     * 0 < grad_scale < 1 (the same float product as scaling g first), as is otherwise. */
    float grad_scale;
};

/* A backend's execution context, opaque outside the backend: what its ops need besides
 * their arguments (CPU: its thread count and a scratch arena, a buffer per thread that
 * attention and xent work in; CUDA, later: a stream, the cuBLASLt handle and a workspace).
 * Every entry of the table takes one first. One host thread uses a context at a time. */
struct mb_exec;

struct mb_ops {
    const char *name;
    /* The backend's context for this process. Whoever keeps the table (the model, the
     * optimizer, the gradient sync) keeps this next to it and passes it to every entry. */
    struct mb_exec *exec;

    /* true: the backend's memory is host memory, which host code (MPI, HDF5, loops) may
     * read and write in place; false: only ops and the copies below may touch it, and
     * host code stages through host buffers (dist/devcomm.h). */
    bool host_memory;

    /* memory */
    /* zeroed, 64-byte aligned; NULL + mb_err on failure */
    void *(*alloc)(struct mb_exec *ex, size_t bytes);
    void (*free)(struct mb_exec *ex, void *p);
    void (*zero)(struct mb_exec *ex, float *x, int64_t n);
    void (*copy)(struct mb_exec *ex, float *dst, const float *src, int64_t n);
    /* Copies of BYTES bytes between host memory and the backend's (the typed helpers
     * below count elements). They return once the host side may be used: to_host's
     * data has arrived, from_host's source may be reused. */
    void (*to_host)(struct mb_exec *ex, void *host, const void *dev, size_t bytes);
    void (*from_host)(struct mb_exec *ex, void *dev, const void *host, size_t bytes);
    /* Wait until every op queued on EX is done (a no-op for a backend that runs them as
     * they are called, like the CPU's). */
    void (*sync)(struct mb_exec *ex);

    /* C[m,n] = alpha * op(A) op(B) + beta * C; op(X) = X^T when tx. Row-major, with
     * leading dimensions (elements between rows of the stored matrix). */
    void (*matmul)(struct mb_exec *ex, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc);

    /* bf16 (mixed precision, DESIGN.md 5): a bf16 is the top half of an fp32, stored as
     * uint16_t. convert copies N elements between MB_DTYPE_F32 and MB_DTYPE_BF16 (either
     * way, or the same type): fp32 -> bf16 rounds to nearest, ties to even, a NaN stays a
     * (quiet) NaN; bf16 -> fp32 is exact. fp32 -> bf16 may run in place (dst == src): the
     * N bf16 values then fill the buffer's first 2N bytes. Otherwise dst and src do not
     * overlap. */
    void (*convert)(struct mb_exec *ex, void *dst, enum mb_dtype dst_type, const void *src,
                    enum mb_dtype src_type, int64_t n);
    /* matmul with bf16 operands and an fp32 C: the products are exact in fp32 and summed
     * in fp32 (the order is the backend's). Same arguments as matmul. */
    void (*matmul_bf16)(struct mb_exec *ex, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);
    /* matmul_bf16 with a bf16 C, for a GEMM whose output only feeds bf16 consumers:
     * C = bf16(op(A) op(B)), the fp32 sum of matmul_bf16 (alpha 1, beta 0) rounded once
     * to nearest even, so the same bits as matmul_bf16 into an fp32 C and then convert. */
    void (*matmul_bf16_rounded)(struct mb_exec *ex, bool ta, bool tb, int64_t m, int64_t n,
                                int64_t k, const uint16_t *a, int64_t lda, const uint16_t *b,
                                int64_t ldb, uint16_t *c, int64_t ldc);

    /* elementwise */
    void (*add)(struct mb_exec *ex, float *y, const float *x, int64_t n); /* y += x */
    double (*sumsq)(struct mb_exec *ex, const float *x, int64_t n); /* sum x^2, in double */
    /* y[r,:] += b */
    void (*add_bias)(struct mb_exec *ex, float *y, const float *bias, int64_t rows, int64_t cols);
    /* db += sum_r dy[r,:] */
    void (*bias_grad)(struct mb_exec *ex, float *db, const float *dy, int64_t rows, int64_t cols);

    /* RMSNorm: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); with zero_centered the
     * weight is stored as w - 1 (Gemma) and (1 + w) is used. rstd[rows] is saved for bwd.
     * bwd: dx += ..., dw += ... (dw NULL: none). */
    void (*rmsnorm_fwd)(struct mb_exec *ex, float *y, float *rstd, const float *x, const float *w,
                        int64_t rows, int64_t dim, float eps, bool zero_centered);
    void (*rmsnorm_bwd)(struct mb_exec *ex, float *dx, float *dw, const float *dy, const float *x,
                        const float *w, const float *rstd, int64_t rows, int64_t dim,
                        bool zero_centered);

    /* LayerNorm with weight and bias (GPT-2). mean[rows], rstd[rows] saved for bwd.
     * bwd: dx += ..., dw += ..., db += ... (dw and db NULL: none). */
    void (*layernorm_fwd)(struct mb_exec *ex, float *y, float *mean, float *rstd, const float *x,
                          const float *w, const float *b, int64_t rows, int64_t dim, float eps);
    void (*layernorm_bwd)(struct mb_exec *ex, float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, const float *mean, const float *rstd,
                          int64_t rows, int64_t dim);

    /* Embedding: out[r,:] (= or += when accumulate) table[ids[r],:] * scale; a negative id
     * (a row another tensor-parallel rank holds) gives zeros (adds nothing).
     * bwd: dtable[ids[r],:] += dout[r,:] * scale (deterministic for repeated ids; negative
     * ids skipped). */
    void (*embedding_fwd)(struct mb_exec *ex, float *out, const float *table, const int32_t *ids,
                          int64_t rows, int64_t dim, float scale, bool accumulate);
    void (*embedding_bwd)(struct mb_exec *ex, float *dtable, const float *dout, const int32_t *ids,
                          int64_t rows, int64_t dim, float scale);

    /* Fused QKV projection output [rows, (nH + 2 nKV) d] in Megatron's grouped layout
     * (per KV group: its nH/nKV query heads, then k, then v; formats.md 5.2) to q, k, v
     * in the attention layouts above. qkv_merge is the backward (overwrites dqkv). */
    void (*qkv_split)(struct mb_exec *ex, float *q, float *k, float *v, const float *qkv,
                      const struct mb_attn_shape *s);
    void (*qkv_merge)(struct mb_exec *ex, float *dqkv, const float *dq, const float *dk,
                      const float *dv, const struct mb_attn_shape *s);

    /* Rotary embedding, in place, on x [B, heads, T, d] (rotate-half convention, formats.md
     * 4.3): the first rot_dim dims of each head rotate, pairing j with j + rot_dim/2.
     * cos_sin is [max_pos, rot_dim/2, 2] (cos, sin) and pos[B*T] the position of each token.
     * rope_bwd applies the inverse rotation (gradient of rope_fwd). */
    void (*rope_fwd)(struct mb_exec *ex, float *x, const float *cos_sin, const int32_t *pos,
                     int64_t batch, int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim);
    void (*rope_bwd)(struct mb_exec *ex, float *dx, const float *cos_sin, const int32_t *pos,
                     int64_t batch, int64_t heads, int64_t seq, int64_t head_dim, int64_t rot_dim);

    /* Causal attention (GQA, sliding window, soft-capping) without a T x T matrix:
     * out [B, T, nH, d], lse [B, nH, T] (log-sum-exp of the scores, saved for bwd).
     * bwd overwrites dq, dk, dv (layouts of q, k, v), recomputing scores from lse. */
    void (*attention_fwd)(struct mb_exec *ex, float *out, float *lse, const float *q,
                          const float *k, const float *v, const struct mb_attn_shape *s);
    void (*attention_bwd)(struct mb_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const float *out,
                          const float *lse, const struct mb_attn_shape *s);

    /* Gated MLP activations on gate_up [rows, 2*inner] (gate first, then up, the fused
     * linear_fc1 layout): y [rows, inner] = act(gate) * up. swiglu: act = silu;
     * geglu: act = gelu with the tanh approximation. bwd overwrites dgate_up. */
    void (*swiglu_fwd)(struct mb_exec *ex, float *y, const float *gate_up, int64_t rows,
                       int64_t inner);
    void (*swiglu_bwd)(struct mb_exec *ex, float *dgate_up, const float *dy, const float *gate_up,
                       int64_t rows, int64_t inner);
    void (*geglu_fwd)(struct mb_exec *ex, float *y, const float *gate_up, int64_t rows,
                      int64_t inner);
    void (*geglu_bwd)(struct mb_exec *ex, float *dgate_up, const float *dy, const float *gate_up,
                      int64_t rows, int64_t inner);
    /* gelu (tanh approximation, GPT-2's gelu_new): y = gelu(x); bwd overwrites dx. */
    void (*gelu_fwd)(struct mb_exec *ex, float *y, const float *x, int64_t n);
    void (*gelu_bwd)(struct mb_exec *ex, float *dx, const float *dy, const float *x, int64_t n);
    /* The activation KIND above on bf16 storage: x (gate_up for the gated ones, [rows,
     * inner] for gelu) bf16, y and dx bf16, dy fp32. Each computes what the fp32 op
     * computes from the widened x and rounds its result once, to nearest even: the same
     * bits as convert, the fp32 op, convert, without the fp32 tensors. */
    void (*act_fwd_bf16)(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *y, const uint16_t *x,
                         int64_t rows, int64_t inner);
    void (*act_bwd_bf16)(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *dx, const float *dy,
                         const uint16_t *x, int64_t rows, int64_t inner);

    /* Softmax cross-entropy on a chunk of logits [rows, vocab] (the caller computes the
     * logits chunk by chunk, so the full [B*T, V] matrix never exists). With softcap > 0
     * the logits are first capped: z = softcap * tanh(z / softcap).
     * loss[r] = logsumexp(z[r]) - z[r, target[r]] for every row (targets < 0: loss 0).
     * When grad_scale != 0 the logits are replaced in place by
     * d(sum_r weight[r] * loss[r]) / d logits * grad_scale, where weight = loss_mask
     * (rows with mask 0 or target < 0 get zeros); else they are left as they were.
     * Logits of -inf (padded vocabulary rows) stay -inf under the cap and get
     * probability 0 and gradient 0; the target is never one of them. */
    void (*xent)(struct mb_exec *ex, float *logits, float *loss, const int32_t *target,
                 const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                 float grad_scale);

    /* The vocabulary-parallel cross-entropy (parallel.md 2.8) in three steps around the
     * caller's all-reduces over the tensor-parallel group. A rank holds the logits of
     * vocabulary rows [start, start + vocab) in [rows, vocab]; targets are global ids.
     * xent_max: caps the logits in place (softcap > 0) and writes each row's local max.
     * xent_sumexp: with the global max, sumexp[r] = sum exp(z - max) over the local
     * columns, and ztarget[r] = z[target - start] when this rank holds the target, else 0.
     * xent_finish: with the global sums: loss[r] = max + log(sumexp) - ztarget (0 for
     * targets < 0), and, when grad_scale != 0, the logits replaced by the gradient as
     * xent writes it (its local columns). Same values as xent up to the exp-sum's order. */
    void (*xent_max)(struct mb_exec *ex, float *logits, float *max, int64_t rows, int64_t vocab,
                     float softcap);
    void (*xent_sumexp)(struct mb_exec *ex, const float *logits, const float *max,
                        const int32_t *target, int64_t start, double *sumexp, float *ztarget,
                        int64_t rows, int64_t vocab);
    void (*xent_finish)(struct mb_exec *ex, float *logits, float *loss, const float *max,
                        const double *sumexp, const float *ztarget, const int32_t *target,
                        int64_t start, const float *loss_mask, int64_t rows, int64_t vocab,
                        float softcap, float grad_scale);

    /* AdamW on n elements: m, v updated, p updated with decoupled weight decay. pb, when
     * not NULL, gets the updated p in bf16 as convert rounds it (a bf16 weight copy kept
     * in step without a pass of its own). */
    void (*adamw)(struct mb_exec *ex, float *p, const float *g, float *m, float *v, int64_t n,
                  const struct mb_adamw_args *a, uint16_t *pb);

    /* Attention of s->seq new queries at positions p0 .. p0 + s->seq - 1 over a key/value
     * cache (generation): q [B, nH, Tq, d]; kc, vc [B, nKV, tmax, d] holding the keys and
     * values of positions 0 .. p0 + Tq - 1 (later slots are not read); out [B, Tq, nH, d].
     * Causal, GQA, sliding window and soft-capping as attention_fwd; no lse. */
    void (*attention_kv)(struct mb_exec *ex, float *out, const float *q, const float *kc,
                         const float *vc, const struct mb_attn_shape *s, int64_t p0, int64_t tmax);
};

/* Typed copies: N elements of TYPE (or of floats, int32s) between host and backend. */
static inline void mb_to_host_typed(const struct mb_ops *o, struct mb_exec *ex, void *host,
                                    const void *dev, int64_t n, enum mb_dtype type)
{
    o->to_host(ex, host, dev, (size_t)n * mb_dtype_size(type));
}

static inline void mb_from_host_typed(const struct mb_ops *o, struct mb_exec *ex, void *dev,
                                      const void *host, int64_t n, enum mb_dtype type)
{
    o->from_host(ex, dev, host, (size_t)n * mb_dtype_size(type));
}

static inline void mb_to_host_f32(const struct mb_ops *o, struct mb_exec *ex, float *host,
                                  const float *dev, int64_t n)
{
    o->to_host(ex, host, dev, (size_t)n * sizeof(float));
}

static inline void mb_from_host_f32(const struct mb_ops *o, struct mb_exec *ex, float *dev,
                                    const float *host, int64_t n)
{
    o->from_host(ex, dev, host, (size_t)n * sizeof(float));
}

static inline void mb_from_host_i32(const struct mb_ops *o, struct mb_exec *ex, int32_t *dev,
                                    const int32_t *host, int64_t n)
{
    o->from_host(ex, dev, host, (size_t)n * sizeof(int32_t));
}

/* Host code's access to BYTES of backend memory at DEV (kern/ops.c): DEV itself when the
 * backend's memory is host memory, else a host copy of it. mb_host_view_end ends it: with
 * WRITE the host copy goes back to DEV; the copy is freed. So a host loop over backend
 * memory costs nothing on the CPU and stages through the host elsewhere. */
void *mb_host_view(const struct mb_ops *o, struct mb_exec *ex, const void *dev, size_t bytes);
void mb_host_view_end(const struct mb_ops *o, struct mb_exec *ex, void *dev, void *host,
                      size_t bytes, bool write);

/* The backend called NAME (kern/ops.c): "cpu"; "cpu-guarded", the CPU kernels on a
 * guarded arena that host code cannot touch (for tests: kern/guarded/); "auto", the
 * best one built ("cpu" until a CUDA backend exists); "cuda" is refused, this mb having
 * been built without it. NULL with mb_err naming WHERE (the key, option or variable that
 * asked) otherwise: MB_E_UNSUPPORTED for cuda, MB_E_USAGE for an unknown name. */
const struct mb_ops *mb_ops_find(const char *name, const char *where);
/* The backend a run uses when its key or option is not given: $MB_DEVICE when set and
 * not empty (so that a test suite can run everything on one backend), else "auto". */
const char *mb_ops_default_name(void);

/* The CPU backend (OpenBLAS + OpenMP). */
const struct mb_ops *mb_ops_cpu(void);
/* The CPU kernels on a guarded arena (kern/guarded/): its memory is mapped PROT_NONE
 * where host code sees it, each op checks that every pointer and extent it gets lies in
 * a live allocation of the arena (a host pointer is an error naming the op and the
 * argument, exit 2) and runs the CPU kernel on a read-write twin of the arena; host
 * code touching the arena faults, and the fault is reported (address, backtrace, exit 2).
 * For tests: it proves that only backend pointers reach the ops and that host code
 * reaches backend memory only through the copies. */
const struct mb_ops *mb_ops_cpu_guarded(void);
/* Threads each CPU op runs on (per process, i.e. per rank): OMP_NUM_THREADS when set,
 * else the CPUs this process may use (kern/cpu/threads.c). */
int mb_ops_cpu_threads(void);

/* Call first thing in main: when OpenBLAS chose its generic kernels on a CPU it did not
 * recognise, set OPENBLAS_CORETYPE and execute the program again (kern/cpu/blas_env.c).
 * Returns only when nothing needed doing or exec failed. */
void mb_ops_cpu_prepare(char **argv);

#endif /* MB_KERN_OPS_H */
