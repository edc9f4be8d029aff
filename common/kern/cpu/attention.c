/* kern/cpu/attention.c - causal attention (GQA, sliding window, soft-capping, per-document
 * masks of packed rows), flash style.
 *
 * Scores are never held for more than one block of BQ queries x BK keys. Forward: one task
 * per (batch, query head, query block) walks the key blocks it can see with an online
 * softmax (running max m, running sum l, output rescaled by exp(m_old - m_new)) and saves
 * lse = m + log l. Backward: one task per (batch, KV head) walks its key blocks; for every
 * query head of the group and every query block that sees the key block it recomputes
 * P = exp(s - lse), then dV += P^T dO, dP = dO V^T, dS = P (dP - D) with D = rowsum(dO O),
 * dQ += dS K, dK += dS^T Q (scale and cap derivative folded into dS). A task owns dk, dv of
 * its KV head and dq of the group's query heads, and adds in a fixed order, so the result
 * does not depend on the thread count.
 *
 * Layouts (kern/ops.h): q [B, H, T, E]; k, v [B, Hkv, T, E]; out, dout [B, T, H, E];
 * lse [B, H, T]. Blocks in each thread's scratch (the context's arena): S, P [BQ][BK];
 * Kt, Vt [E][BK] (transposed, zero-padded).
 */
#include <math.h>
#include <stdlib.h>

#include "core/defs.h"
#include "core/err.h"
#include "kern/cpu/internal.h"

#define BQ 64
#define BK 64

/* Per-thread scratch for one block. */
struct attn_scratch {
    float *s;   /* [BQ][BK] scores, then probabilities */
    float *dp;  /* [BQ][BK] dP, then dS (bwd) */
    float *dc;  /* [BQ][BK] derivative of the cap, 1 - tanh^2 (bwd, softcap only) */
    float *kt;  /* [E][BK] */
    float *vt;  /* [E][BK] */
    float *acc; /* [BQ][E] output accumulator (fwd); [BK][E] dK (bwd) */
    float *acc2; /* [BK][E] dV (bwd) */
    float *m, *l; /* [BQ] */
};

/* The calling thread's blocks, and EXTRA more floats after them at *extra (bwd's D). */
static void scratch_init(struct mb_exec *ex, struct attn_scratch *w, int64_t E, size_t extra,
                         float **extra_at)
{
    size_t blk = (size_t)BQ * BK, e = (size_t)E * BK;
    size_t count = 3 * blk + 2 * e + 2 * e + 2 * BQ;
    float *base = mb_cpu_scratch(ex, (count + extra) * sizeof *base);

    w->s = base;
    w->dp = w->s + blk;
    w->dc = w->dp + blk;
    w->kt = w->dc + blk;
    w->vt = w->kt + e;
    w->acc = w->vt + e;
    w->acc2 = w->acc + e;
    w->m = w->acc2 + e;
    w->l = w->m + BQ;
    if (extra_at)
        *extra_at = base + count;
}

/* dst[c][j] = src[j][c] for j < n, zero for n <= j < BK. */
static void block_transpose(float *dst, const float *src, int64_t n, int64_t E)
{
    for (int64_t c = 0; c < E; c++) {
        float *d = dst + c * BK;
        for (int64_t j = 0; j < n; j++)
            d[j] = src[j * E + c];
        for (int64_t j = n; j < BK; j++)
            d[j] = 0.0f;
    }
}

/* The block products run on register tiles: 4 rows x 64 columns of accumulators (16 zmm
 * registers in the AVX-512 clone), GCC vector extensions so that each clone gets its own
 * vector width, and contraction to FMA allowed in these functions only. */
typedef float vf16 __attribute__((vector_size(64), aligned(4), may_alias));
#define NV (BK / 16) /* vectors per 64-wide strip */
#define TILE_FN static inline __attribute__((always_inline))
#define GEMM_CLONES MB_CPU_CLONES __attribute__((optimize("fp-contract=fast")))

/* S[r][0..64) = alpha * sum_c A[r][c] Bt[c][0..64) for r < R. */
TILE_FN void abt_tile(float *S, const float *A, int64_t lda, const float *Bt, int64_t E,
                      float alpha, const int R)
{
    vf16 acc[4][NV];

#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            acc[r][x] = (vf16){0};
    for (int64_t c = 0; c < E; c++) {
        vf16 b[NV];
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            b[x] = *(const vf16 *)(Bt + c * BK + 16 * x);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float a = A[r * lda + c];
#pragma GCC unroll 4
            for (int x = 0; x < NV; x++)
                acc[r][x] += a * b[x];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            *(vf16 *)(S + r * BK + 16 * x) = acc[r][x] * alpha;
}

/* S[i][j] = alpha * sum_c A[i][c] Bt[c][j] for i < m, j < BK. */
GEMM_CLONES static void blk_abt(float *restrict S, const float *restrict A, int64_t lda,
                                const float *restrict Bt, int64_t m, int64_t E, float alpha)
{
    int64_t i = 0;

    for (; i + 4 <= m; i += 4)
        abt_tile(S + i * BK, A + i * lda, lda, Bt, E, alpha, 4);
    for (; i < m; i++)
        abt_tile(S + i * BK, A + i * lda, lda, Bt, E, alpha, 1);
}

/* C[r][0..64) += sum_x A[r*ars + x*acs] B[x][0..64) for r < R, x < kk. */
TILE_FN void acc_tile(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs,
                      const float *B, int64_t ldb, int64_t kk, const int R)
{
    vf16 acc[4][NV];

#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            acc[r][x] = *(const vf16 *)(C + r * ldc + 16 * x);
    for (int64_t k = 0; k < kk; k++) {
        vf16 b[NV];
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            b[x] = *(const vf16 *)(B + k * ldb + 16 * x);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float a = A[r * ars + k * acs];
#pragma GCC unroll 4
            for (int x = 0; x < NV; x++)
                acc[r][x] += a * b[x];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int x = 0; x < NV; x++)
            *(vf16 *)(C + r * ldc + 16 * x) = acc[r][x];
}

/* C[r][c] += sum_x A[r*ars + x*acs] B[x][c] for r < m, x < kk, c < E (B, C with ld ldb, ldc).
 * Whole 64-column strips go through acc_tile, the rest through a plain loop. */
GEMM_CLONES static void blk_acc(float *restrict C, int64_t ldc, const float *restrict A,
                                int64_t ars, int64_t acs, const float *restrict B,
                                int64_t ldb, int64_t m, int64_t kk, int64_t E)
{
    int64_t c0 = 0;

    for (; c0 + BK <= E; c0 += BK) {
        int64_t r = 0;
        for (; r + 4 <= m; r += 4)
            acc_tile(C + r * ldc + c0, ldc, A + r * ars, ars, acs, B + c0, ldb, kk, 4);
        for (; r < m; r++)
            acc_tile(C + r * ldc + c0, ldc, A + r * ars, ars, acs, B + c0, ldb, kk, 1);
    }
    if (c0 == E)
        return;
    for (int64_t r = 0; r < m; r++) {
        float *crow = C + r * ldc;
        for (int64_t x = 0; x < kk; x++) {
            float a = A[r * ars + x * acs];
            const float *b = B + x * ldb;
#pragma omp simd
            for (int64_t c = c0; c < E; c++)
                crow[c] += a * b[c];
        }
    }
}

/* The first key that query T of row B sees: the window's start, and no earlier than the
 * start of T's document when the rows are packed. */
static int64_t first_key(const struct mb_attn_shape *sh, int64_t b, int64_t t)
{
    int64_t first = sh->window > 0 ? t - sh->window + 1 : 0;
    if (sh->doc_start) {
        int64_t d = sh->doc_start[b * sh->seq + t];
        first = d > first ? d : first;
    }
    return first;
}

/* Keys j of a block starting at k0 that query t, whose first visible key is FIRST, sees:
 * [*lo, *hi). */
static void visible(int64_t t, int64_t k0, int64_t nk, int64_t first, int64_t *lo, int64_t *hi)
{
    int64_t l = first - k0;
    int64_t h = t - k0 + 1;
    *lo = l > 0 ? l : 0;
    *hi = h < nk ? h : nk;
}

MB_CPU_CLONES static float span_max(const float *restrict s, int64_t lo, int64_t hi)
{
    float mx = -INFINITY;

#pragma omp simd reduction(max : mx)
    for (int64_t j = lo; j < hi; j++)
        mx = s[j] > mx ? s[j] : mx;
    return mx;
}

/* s[j] <- exp(s[j] - sub) on [lo, hi), 0 elsewhere in [0, BK); returns the sum. */
MB_CPU_CLONES static float span_exp(float *restrict s, float sub, int64_t lo, int64_t hi)
{
    float sum = 0.0f;

#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < BK; j++) {
        float p = (j >= lo && j < hi) ? mb_cpu_expf(s[j] - sub) : 0.0f;
        s[j] = p;
        sum += p;
    }
    return sum;
}

MB_CPU_CLONES static void row_scale(float *restrict x, float a, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

/* Soft-capping of a score block: s = cap tanh(s / cap); dc = 1 - tanh^2 when dc. */
static void block_cap(float *s, float *dc, int64_t m, float cap)
{
    for (int64_t i = 0; i < m * BK; i++) {
        float th = tanhf(s[i] / cap);
        s[i] = cap * th;
        if (dc)
            dc[i] = 1.0f - th * th;
    }
}

/* Online-softmax update of rows [0, nq) of a query block starting at q0 with the key block
 * at k0 (scores in w->s become probabilities; acc rows are rescaled). */
static void fwd_softmax_block(struct attn_scratch *w, const struct mb_attn_shape *sh, int64_t b,
                              int64_t q0, int64_t nq, int64_t k0, int64_t nk, int64_t E)
{
    for (int64_t i = 0; i < nq; i++) {
        float *s = w->s + i * BK;
        int64_t lo, hi;
        visible(q0 + i, k0, nk, first_key(sh, b, q0 + i), &lo, &hi);
        if (lo >= hi) {
            memset(s, 0, BK * sizeof *s);
            continue;
        }
        float mx = span_max(s, lo, hi);
        float mnew = mx > w->m[i] ? mx : w->m[i];
        float alpha = w->m[i] == -INFINITY ? 0.0f : expf(w->m[i] - mnew);
        w->l[i] = w->l[i] * alpha + span_exp(s, mnew, lo, hi);
        w->m[i] = mnew;
        if (alpha != 1.0f)
            row_scale(w->acc + i * E, alpha, E);
    }
}

static void fwd_task(float *out, float *lse, const float *q, const float *k, const float *v,
                     const struct mb_attn_shape *sh, int64_t task, struct attn_scratch *w)
{
    int64_t T = sh->seq, H = sh->heads, E = sh->head_dim, nqb = MB_CEIL_DIV(T, BQ);
    int64_t bh = task / nqb, b = bh / H, h = bh % H, q0 = task % nqb * BQ;
    int64_t nq = MB_MIN(BQ, T - q0), kvh = b * sh->kv_heads + h / (H / sh->kv_heads);
    const float *Q = q + ((size_t)bh * T + q0) * E;
    const float *K = k + (size_t)kvh * T * E, *V = v + (size_t)kvh * T * E;
    /* the block's first query sees the earliest key (windows and documents only move
     * forward with t) */
    int64_t k_lo = MB_MAX(0, first_key(sh, b, q0)), k_hi = q0 + nq;

    memset(w->acc, 0, (size_t)nq * E * sizeof *w->acc);
    for (int64_t i = 0; i < nq; i++) {
        w->m[i] = -INFINITY;
        w->l[i] = 0.0f;
    }
    for (int64_t k0 = k_lo; k0 < k_hi; k0 += BK) {
        int64_t nk = MB_MIN(BK, k_hi - k0);
        block_transpose(w->kt, K + k0 * E, nk, E);
        blk_abt(w->s, Q, E, w->kt, nq, E, sh->scale);
        if (sh->softcap > 0)
            block_cap(w->s, NULL, nq, sh->softcap);
        fwd_softmax_block(w, sh, b, q0, nq, k0, nk, E);
        blk_acc(w->acc, E, w->s, BK, 1, V + k0 * E, E, nq, nk, E);
    }
    for (int64_t i = 0; i < nq; i++) {
        float *o = out + ((size_t)(b * T + q0 + i) * H + h) * E;
        float inv = 1.0f / w->l[i];
        for (int64_t c = 0; c < E; c++)
            o[c] = w->acc[i * E + c] * inv;
        lse[(size_t)bh * T + q0 + i] = w->m[i] + logf(w->l[i]);
    }
}

void mb_cpu_attention_fwd(struct mb_exec *ex, float *out, float *lse, const float *q,
                          const float *k, const float *v, const struct mb_attn_shape *s)
{
    int64_t nqb = MB_CEIL_DIV(s->seq, BQ), ntask = s->batch * s->heads * nqb;

    MB_ASSERT(s->kv_heads > 0 && s->heads % s->kv_heads == 0);
    mb_cpu_scratch_ready(ex);
#pragma omp parallel if (ntask > 1)
    {
        struct attn_scratch w;
        scratch_init(ex, &w, s->head_dim, 0, NULL);
        /* A query block sees its own and every earlier key block: the last block of a
         * row costs the most. Handed out last block first, one at a time, the threads
         * end together (a fixed split gave one thread the odd blocks, a third more work
         * at four blocks a row). Each task writes only its own rows: the same bits. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++)
            fwd_task(out, lse, q, k, v, s, t - t % nqb + (nqb - 1 - t % nqb), &w);
    }
}

/* P = exp(s - lse) on visible keys (0 elsewhere) for the rows of a query block. */
static void bwd_probs(float *s, const float *lse, const struct mb_attn_shape *sh, int64_t b,
                      int64_t q0, int64_t nq, int64_t k0, int64_t nk)
{
    for (int64_t i = 0; i < nq; i++) {
        int64_t lo, hi;
        visible(q0 + i, k0, nk, first_key(sh, b, q0 + i), &lo, &hi);
        span_exp(s + i * BK, lse[i], lo, lo < hi ? hi : lo);
    }
}

/* dS = P (dP - D) [* dc] * scale, in place in dp. */
MB_CPU_CLONES static void bwd_ds(float *restrict dp, const float *restrict p,
                                 const float *restrict dc, const float *restrict D, int64_t nq,
                                 float scale)
{
    for (int64_t i = 0; i < nq; i++) {
        float *d = dp + i * BK;
        const float *pr = p + i * BK;
        float di = D[i];
        if (dc) {
            const float *cr = dc + i * BK;
#pragma omp simd
            for (int64_t j = 0; j < BK; j++)
                d[j] = pr[j] * (d[j] - di) * cr[j] * scale;
        } else {
#pragma omp simd
            for (int64_t j = 0; j < BK; j++)
                d[j] = pr[j] * (d[j] - di) * scale;
        }
    }
}

MB_CPU_CLONES static float dot(const float *restrict a, const float *restrict b, int64_t n)
{
    float s = 0.0f;

#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Everything a backward task reads, for one (batch, KV head). */
struct bwd_ctx {
    const struct mb_attn_shape *sh;
    const float *dout, *q, *k, *v, *out, *lse;
    float *dq, *dk, *dv;
    float *D; /* [g][T] rowsum(dO O) of the group's query heads */
    int64_t b, kvh;
};

/* One (query head h, query block q0) against the key block k0 held in w. */
static void bwd_block(const struct bwd_ctx *c, struct attn_scratch *w, int64_t h, int64_t q0,
                      int64_t k0, int64_t nk)
{
    const struct mb_attn_shape *sh = c->sh;
    int64_t T = sh->seq, H = sh->heads, E = sh->head_dim, g = H / sh->kv_heads;
    int64_t nq = MB_MIN(BQ, T - q0), bh = c->b * H + h;
    const float *Q = c->q + ((size_t)bh * T + q0) * E;
    const float *dO = c->dout + ((size_t)(c->b * T + q0) * H + h) * E;
    const float *K = c->k + ((size_t)(c->b * sh->kv_heads + c->kvh) * T + k0) * E;
    float *dQ = c->dq + ((size_t)bh * T + q0) * E;

    blk_abt(w->s, Q, E, w->kt, nq, E, sh->scale);
    if (sh->softcap > 0)
        block_cap(w->s, w->dc, nq, sh->softcap);
    bwd_probs(w->s, c->lse + (size_t)bh * T + q0, sh, c->b, q0, nq, k0, nk);
    blk_acc(w->acc2, E, w->s, 1, BK, dO, H * E, nk, nq, E);        /* dV += P^T dO */
    blk_abt(w->dp, dO, H * E, w->vt, nq, E, 1.0f);                  /* dP = dO V^T */
    bwd_ds(w->dp, w->s, sh->softcap > 0 ? w->dc : NULL, c->D + (h % g) * T + q0, nq, sh->scale);
    blk_acc(dQ, E, w->dp, BK, 1, K, E, nq, nk, E);                  /* dQ += dS K */
    blk_acc(w->acc, E, w->dp, 1, BK, Q, E, nk, nq, E);              /* dK += dS^T Q */
}

/* One past the last position of the document holding position T of row B. */
static int64_t doc_end(const struct mb_attn_shape *sh, int64_t b, int64_t t)
{
    const int32_t *d = sh->doc_start + b * sh->seq;
    int64_t e = t + 1;
    while (e < sh->seq && d[e] <= t)
        e++;
    return e;
}

static void bwd_task(const struct bwd_ctx *c, struct attn_scratch *w)
{
    const struct mb_attn_shape *sh = c->sh;
    int64_t T = sh->seq, H = sh->heads, E = sh->head_dim, g = H / sh->kv_heads;
    size_t kv_off = (size_t)(c->b * sh->kv_heads + c->kvh) * T * E;

    for (int64_t hh = 0; hh < g; hh++) {
        int64_t h = c->kvh * g + hh, bh = c->b * H + h;
        memset(c->dq + (size_t)bh * T * E, 0, (size_t)T * E * sizeof *c->dq);
        for (int64_t t = 0; t < T; t++) {
            size_t o = ((size_t)(c->b * T + t) * H + h) * E;
            c->D[hh * T + t] = dot(c->dout + o, c->out + o, E);
        }
    }
    for (int64_t k0 = 0; k0 < T; k0 += BK) {
        int64_t nk = MB_MIN(BK, T - k0);
        int64_t t_end = sh->window > 0 ? MB_MIN(T, k0 + nk - 1 + sh->window) : T;
        if (sh->doc_start) /* queries past the document of the block's last key */
            t_end = MB_MIN(t_end, doc_end(sh, c->b, k0 + nk - 1));
        block_transpose(w->kt, c->k + kv_off + k0 * E, nk, E);
        block_transpose(w->vt, c->v + kv_off + k0 * E, nk, E);
        memset(w->acc, 0, (size_t)BK * E * sizeof *w->acc);
        memset(w->acc2, 0, (size_t)BK * E * sizeof *w->acc2);
        for (int64_t hh = 0; hh < g; hh++)
            for (int64_t q0 = k0 / BQ * BQ; q0 < t_end; q0 += BQ)
                bwd_block(c, w, c->kvh * g + hh, q0, k0, nk);
        memcpy(c->dk + kv_off + k0 * E, w->acc, (size_t)nk * E * sizeof *w->acc);
        memcpy(c->dv + kv_off + k0 * E, w->acc2, (size_t)nk * E * sizeof *w->acc2);
    }
}

void mb_cpu_attention_bwd(struct mb_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const float *out,
                          const float *lse, const struct mb_attn_shape *s)
{
    int64_t ntask = s->batch * s->kv_heads, g = s->heads / s->kv_heads;

    MB_ASSERT(s->kv_heads > 0 && s->heads % s->kv_heads == 0);
    mb_cpu_scratch_ready(ex);
#pragma omp parallel if (ntask > 1)
    {
        struct attn_scratch w;
        float *D;
        scratch_init(ex, &w, s->head_dim, (size_t)g * s->seq, &D);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            struct bwd_ctx c = {s, dout, q, k, v, out, lse, dq, dk, dv, D, t / s->kv_heads,
                                t % s->kv_heads};
            bwd_task(&c, &w);
        }
    }
}
