/* kern/cpu/norm.c - RMSNorm and LayerNorm forward and backward.
 *
 * Rows run in parallel; row statistics are summed in double. The weight gradients are
 * column reductions over rows: each task owns a block of columns and adds the rows in
 * order, so dw and db do not depend on the thread count.
 */
#include <float.h>
#include <math.h>

#include "core/defs.h"
#include "kern/cpu/internal.h"

#define COL_BLOCK 64

/* 1 / sqrt(ms + eps) for a row's mean square (or variance) MS computed in double. In float
 * as always while MS fits one; in double for rows beyond 1.8e19 (MS past FLT_MAX), where
 * the float path would give r = 0 and y = 0 (which is also what PyTorch's float32 norms
 * return there). */
static inline float inv_rms(double ms, float eps)
{
    float msf = (float)ms;
    if (msf <= FLT_MAX)
        return 1.0f / sqrtf(msf + eps);
    return (float)(1.0 / sqrt(ms + (double)eps));
}

/* Below this rstd (rows of rms above 1e12), r^3 mean(dy w x) in the RMSNorm backward
 * would underflow: the backward then factors out r. */
#define RMS_BWD_SMALL_R 1e-12f

MB_CPU_CLONES static void rms_fwd_row(float *restrict y, float *rstd, const float *restrict x,
                                      const float *restrict w, int64_t dim, float eps, bool zc)
{
    double ss = 0;

#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; i++)
        ss += (double)x[i] * x[i];
    float r = inv_rms(ss / (double)dim, eps);
    float off = zc ? 1.0f : 0.0f;
#pragma omp simd
    for (int64_t i = 0; i < dim; i++)
        y[i] = x[i] * r * (w[i] + off);
    *rstd = r;
}

void mb_cpu_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int64_t rows,
                        int64_t dim, float eps, bool zero_centered)
{
#pragma omp parallel for schedule(static) if (rows * dim > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        rms_fwd_row(y + (size_t)r * dim, rstd + r, x + (size_t)r * dim, w, dim, eps,
                    zero_centered);
}

/* dx += r w' dy - x r^3 sum(dy w' x) / dim, with w' the effective weight; for rows of
 * tiny r as r (w' dy - x c2) with c2 = r^2 sum(dy w' x) / dim, which stays normal. */
MB_CPU_CLONES static void rms_bwd_row(float *restrict dx, const float *restrict dy,
                                      const float *restrict x, const float *restrict w,
                                      float r, int64_t dim, bool zc)
{
    float off = zc ? 1.0f : 0.0f;
    double dot = 0;

#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < dim; i++)
        dot += (double)(dy[i] * (w[i] + off)) * x[i];
    if (r < RMS_BWD_SMALL_R) {
        float c2 = (float)(dot / (double)dim * r * r);
#pragma omp simd
        for (int64_t i = 0; i < dim; i++)
            dx[i] += r * (dy[i] * (w[i] + off) - x[i] * c2);
        return;
    }
    float c = (float)(dot / (double)dim) * r * r * r;
#pragma omp simd
    for (int64_t i = 0; i < dim; i++)
        dx[i] += r * dy[i] * (w[i] + off) - x[i] * c;
}

/* acc[0..n) += a[0..n) * b[0..n) * s */
MB_CPU_CLONES static void fma_row(float *restrict acc, const float *restrict a,
                                  const float *restrict b, float s, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        acc[i] += a[i] * b[i] * s;
}

MB_CPU_CLONES static void add_row(float *restrict acc, const float *restrict a, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        acc[i] += a[i];
}

void mb_cpu_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                        const float *rstd, int64_t rows, int64_t dim, bool zero_centered)
{
    int64_t nblk = MB_CEIL_DIV(dim, COL_BLOCK);

#pragma omp parallel if (rows * dim > MB_CPU_CHUNK)
    {
#pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++)
            rms_bwd_row(dx + (size_t)r * dim, dy + (size_t)r * dim, x + (size_t)r * dim, w,
                        rstd[r], dim, zero_centered);
#pragma omp for schedule(static)
        for (int64_t cb = 0; cb < (dw ? nblk : 0); cb++) { /* dw NULL: a frozen norm */
            int64_t c0 = cb * COL_BLOCK, nc = MB_MIN(COL_BLOCK, dim - c0);
            float acc[COL_BLOCK] = {0};
            for (int64_t r = 0; r < rows; r++)
                fma_row(acc, dy + (size_t)r * dim + c0, x + (size_t)r * dim + c0, rstd[r], nc);
            add_row(dw + c0, acc, nc);
        }
    }
}

MB_CPU_CLONES static void ln_fwd_row(float *restrict y, float *mean, float *rstd,
                                     const float *restrict x, const float *restrict w,
                                     const float *restrict b, int64_t dim, float eps)
{
    double s = 0, ss = 0;

#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < dim; i++)
        s += x[i];
    float mu = (float)(s / (double)dim);
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; i++)
        ss += (double)(x[i] - mu) * (x[i] - mu);
    float r = inv_rms(ss / (double)dim, eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; i++)
        y[i] = (x[i] - mu) * r * w[i] + b[i];
    *mean = mu;
    *rstd = r;
}

void mb_cpu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t rows, int64_t dim, float eps)
{
#pragma omp parallel for schedule(static) if (rows * dim > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        ln_fwd_row(y + (size_t)r * dim, mean + r, rstd + r, x + (size_t)r * dim, w, b, dim, eps);
}

/* xh = (x - mu) r, g = dy w: dx += r (g - mean(g) - xh mean(g xh)). */
MB_CPU_CLONES static void ln_bwd_row(float *restrict dx, const float *restrict dy,
                                     const float *restrict x, const float *restrict w,
                                     float mu, float r, int64_t dim)
{
    double sg = 0, sgx = 0;

#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t i = 0; i < dim; i++) {
        float g = dy[i] * w[i];
        sg += g;
        sgx += (double)g * ((x[i] - mu) * r);
    }
    float mg = (float)(sg / (double)dim), mgx = (float)(sgx / (double)dim);
#pragma omp simd
    for (int64_t i = 0; i < dim; i++)
        dx[i] += r * (dy[i] * w[i] - mg - (x[i] - mu) * r * mgx);
}

/* dw[0..n) += dy (x - mu) r, db[0..n) += dy over the rows of one column block. */
MB_CPU_CLONES static void ln_wgrad_row(float *restrict dw, float *restrict db,
                                       const float *restrict dy, const float *restrict x,
                                       float mu, float r, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        dw[i] += dy[i] * ((x[i] - mu) * r);
        db[i] += dy[i];
    }
}

void mb_cpu_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t rows,
                          int64_t dim)
{
    int64_t nblk = MB_CEIL_DIV(dim, COL_BLOCK);

#pragma omp parallel if (rows * dim > MB_CPU_CHUNK)
    {
#pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++)
            ln_bwd_row(dx + (size_t)r * dim, dy + (size_t)r * dim, x + (size_t)r * dim, w,
                       mean[r], rstd[r], dim);
#pragma omp for schedule(static)
        for (int64_t cb = 0; cb < (dw ? nblk : 0); cb++) { /* dw NULL: a frozen norm */
            int64_t c0 = cb * COL_BLOCK, nc = MB_MIN(COL_BLOCK, dim - c0);
            float aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
            for (int64_t r = 0; r < rows; r++)
                ln_wgrad_row(aw, ab, dy + (size_t)r * dim + c0, x + (size_t)r * dim + c0,
                             mean[r], rstd[r], nc);
            add_row(dw + c0, aw, nc);
            add_row(db + c0, ab, nc);
        }
    }
}
