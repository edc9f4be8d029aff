/* kern/cpu/elem.c - flat elementwise ops, bias, embedding and the QKV layout change.
 *
 * Flat ops split n into fixed MB_CPU_CHUNK pieces; column reductions (bias_grad,
 * embedding_bwd) give each thread whole column blocks and walk the rows in order, so every
 * result is independent of the thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "core/err.h"
#include "core/mem.h"
#include "kern/cpu/internal.h"

#define COL_BLOCK 64 /* columns per task of a column reduction */

MB_CPU_CLONES static void add_k(float *restrict y, const float *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

MB_CPU_CLONES static double sumsq_k(const float *x, int64_t n)
{
    double s = 0;

#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

void mb_cpu_zero(float *x, int64_t n)
{
    memset(x, 0, (size_t)n * sizeof *x);
}

void mb_cpu_copy(float *dst, const float *src, int64_t n)
{
    if (dst != src)
        memmove(dst, src, (size_t)n * sizeof *dst);
}

void mb_cpu_add(float *y, const float *x, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        add_k(y + i0, x + i0, MB_MIN(MB_CPU_CHUNK, n - i0));
    }
}

/* Chunk sums land in part[], then are added in chunk order. */
double mb_cpu_sumsq(const float *x, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);
    double local[64];
    double *part = nchunk <= 64 ? local : mb_xmalloc((size_t)nchunk * sizeof *part);
    double s = 0;

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        part[c] = sumsq_k(x + i0, MB_MIN(MB_CPU_CHUNK, n - i0));
    }
    for (int64_t c = 0; c < nchunk; c++)
        s += part[c];
    if (part != local)
        free(part);
    return s;
}

MB_CPU_CLONES static void add_row_k(float *restrict y, const float *restrict b, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += b[i];
}

void mb_cpu_add_bias(float *y, const float *bias, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        add_row_k(y + (size_t)r * cols, bias, cols);
}

/* acc[0..n) += x[0..n) * s */
MB_CPU_CLONES static void axpy_k(float *restrict acc, const float *restrict x, float s,
                                 int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        acc[i] += x[i] * s;
}

void mb_cpu_bias_grad(float *db, const float *dy, int64_t rows, int64_t cols)
{
    int64_t nblk = MB_CEIL_DIV(cols, COL_BLOCK);

#pragma omp parallel for schedule(static) if (rows * cols > MB_CPU_CHUNK)
    for (int64_t cb = 0; cb < nblk; cb++) {
        int64_t c0 = cb * COL_BLOCK, nc = MB_MIN(COL_BLOCK, cols - c0);
        float acc[COL_BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++)
            axpy_k(acc, dy + (size_t)r * cols + c0, 1.0f, nc);
        add_row_k(db + c0, acc, nc);
    }
}

MB_CPU_CLONES static void embed_row_k(float *restrict out, const float *restrict row,
                                      float scale, int64_t n, bool accumulate)
{
    if (accumulate) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] += row[i] * scale;
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = row[i] * scale;
    }
}

void mb_cpu_embedding_fwd(float *out, const float *table, const int32_t *ids, int64_t rows,
                          int64_t dim, float scale, bool accumulate)
{
#pragma omp parallel for schedule(static) if (rows * dim > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        if (ids[r] >= 0)
            embed_row_k(out + (size_t)r * dim, table + (size_t)ids[r] * dim, scale, dim,
                        accumulate);
        else if (!accumulate)
            memset(out + (size_t)r * dim, 0, (size_t)dim * sizeof *out);
    }
}

/* Each task owns a block of columns of dtable and adds the rows in order: repeated ids
 * accumulate in the same order whatever the thread count. */
void mb_cpu_embedding_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t rows,
                          int64_t dim, float scale)
{
    int64_t nblk = MB_CEIL_DIV(dim, COL_BLOCK);

#pragma omp parallel for schedule(static) if (rows * dim > MB_CPU_CHUNK)
    for (int64_t cb = 0; cb < nblk; cb++) {
        int64_t c0 = cb * COL_BLOCK, nc = MB_MIN(COL_BLOCK, dim - c0);
        for (int64_t r = 0; r < rows; r++)
            if (ids[r] >= 0)
                axpy_k(dtable + (size_t)ids[r] * dim + c0, dout + (size_t)r * dim + c0, scale,
                       nc);
    }
}

/* Head slot of query head h, and of the k and v heads of group i, in the fused row
 * (formats.md 5.2: per group, its g query heads, then k, then v). */
static int64_t q_slot(int64_t h, int64_t g)
{
    return h / g * (g + 2) + h % g;
}

void mb_cpu_qkv_split(float *q, float *k, float *v, const float *qkv,
                      const struct mb_attn_shape *s)
{
    int64_t T = s->seq, H = s->heads, Hkv = s->kv_heads, E = s->head_dim, g = H / Hkv;
    int64_t width = (H + 2 * Hkv) * E;

#pragma omp parallel for schedule(static) if (s->batch * T * width > MB_CPU_CHUNK)
    for (int64_t bt = 0; bt < s->batch * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        const float *row = qkv + (size_t)bt * width;
        for (int64_t h = 0; h < H; h++)
            memcpy(q + ((size_t)(b * H + h) * T + t) * E, row + q_slot(h, g) * E,
                   (size_t)E * sizeof *q);
        for (int64_t i = 0; i < Hkv; i++) {
            size_t dst = ((size_t)(b * Hkv + i) * T + t) * E;
            memcpy(k + dst, row + (i * (g + 2) + g) * E, (size_t)E * sizeof *k);
            memcpy(v + dst, row + (i * (g + 2) + g + 1) * E, (size_t)E * sizeof *v);
        }
    }
}

void mb_cpu_qkv_merge(float *dqkv, const float *dq, const float *dk, const float *dv,
                      const struct mb_attn_shape *s)
{
    int64_t T = s->seq, H = s->heads, Hkv = s->kv_heads, E = s->head_dim, g = H / Hkv;
    int64_t width = (H + 2 * Hkv) * E;

#pragma omp parallel for schedule(static) if (s->batch * T * width > MB_CPU_CHUNK)
    for (int64_t bt = 0; bt < s->batch * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        float *row = dqkv + (size_t)bt * width;
        for (int64_t h = 0; h < H; h++)
            memcpy(row + q_slot(h, g) * E, dq + ((size_t)(b * H + h) * T + t) * E,
                   (size_t)E * sizeof *dq);
        for (int64_t i = 0; i < Hkv; i++) {
            size_t src = ((size_t)(b * Hkv + i) * T + t) * E;
            memcpy(row + (i * (g + 2) + g) * E, dk + src, (size_t)E * sizeof *dk);
            memcpy(row + (i * (g + 2) + g + 1) * E, dv + src, (size_t)E * sizeof *dv);
        }
    }
}
