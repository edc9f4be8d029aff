/* kern/cpu/bf16.c - bf16 conversion and the bf16 matmul, portable versions.
 *
 * The matmul widens its operands to fp32 (exactly: a bf16 is the top half of an fp32) and
 * runs the fp32 matmul, so every product is exact and the sums are fp32 as the op table
 * asks. It is the reference the faster paths are checked against.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "kern/cpu/internal.h"

static uint16_t bf16_from_f32(float x)
{
    uint32_t u;

    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep the sign, make it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);               /* ties go to the even neighbour */
    return (uint16_t)(u >> 16);
}

static float f32_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;

    memcpy(&x, &u, sizeof x);
    return x;
}

void mb_cpu_convert(void *dst, enum mb_dtype dst_type, const void *src, enum mb_dtype src_type,
                    int64_t n)
{
    MB_ASSERT((dst_type == MB_DTYPE_F32 || dst_type == MB_DTYPE_BF16) &&
              (src_type == MB_DTYPE_F32 || src_type == MB_DTYPE_BF16));
    if (dst_type == src_type) {
        memmove(dst, src, (size_t)n * mb_dtype_size(dst_type));
        return;
    }
    if (dst_type == MB_DTYPE_BF16) {
        uint16_t *out = dst;
        const float *in = src;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            out[i] = bf16_from_f32(in[i]);
    } else {
        float *out = dst;
        const uint16_t *in = src;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            out[i] = f32_from_bf16(in[i]);
    }
}

/* The ROWS x COLS matrix at X (leading dimension LD) widened to a packed fp32 copy. */
static float *widen(const uint16_t *x, int64_t rows, int64_t cols, int64_t ld)
{
    float *w = mb_xmalloc_for((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof *w,
                              "a widened bf16 matrix");

    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            w[r * cols + c] = f32_from_bf16(x[r * ld + c]);
    return w;
}

void mb_cpu_matmul_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    /* stored shapes: A is m x k (k x m when ta), B is k x n (n x k when tb) */
    int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    float *wa = widen(a, a_rows, a_cols, lda);
    float *wb = widen(b, b_rows, b_cols, ldb);

    mb_cpu_matmul(ta, tb, m, n, k, alpha, wa, a_cols, wb, b_cols, beta, c, ldc);
    free(wb);
    free(wa);
}
