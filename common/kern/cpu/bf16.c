/* kern/cpu/bf16.c - the op table's bf16 entries: convert and matmul_bf16.
 *
 * convert splits n into fixed MB_CPU_CHUNK pieces over the OpenMP threads and runs the
 * AVX512-BF16 kernels (bf16_avx512.c) where the CPU has them, else the portable ones
 * here; both give the same bits on every input (tests/unit/kern_bf16_convert.c checks all
 * 2^32 floats). fp32 -> bf16 also runs in place, in doubling rounds (to_bf16_in_place).
 *
 * matmul_bf16 runs oneDNN's matmul primitive (gemm_bf16.c) where oneDNN has a native bf16
 * implementation for this CPU (AVX512-BF16, AVX512 or AMX), else the portable path:
 * widen the operands to fp32 (exactly) and run the fp32 OpenBLAS matmul. Both form every
 * product exactly and sum in fp32, but in different orders (oneDNN blocks K its own way,
 * OpenBLAS its way), so the two paths agree to fp32 summation error, NOT bitwise; each is
 * deterministic for a fixed thread count. A run stays on one path: the choice depends
 * only on the CPU (and the test hook), never on the shape.
 */
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "core/err.h"
#include "core/mem.h"
#include "kern/cpu/bf16.h"
#include "kern/cpu/internal.h"

static bool forced_portable;

void mb_cpu_bf16_force_portable(bool on)
{
    forced_portable = on;
}

bool mb_cpu_bf16_have_avx512(void)
{
    return !forced_portable && __builtin_cpu_supports("avx512bf16") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

MB_CPU_CLONES void mb_cpu_bf16_round_portable(uint16_t *restrict dst, const float *restrict src,
                                              int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = mb_cpu_bf16_rne(src[i]);
}

MB_CPU_CLONES void mb_cpu_bf16_widen_portable(float *restrict dst, const uint16_t *restrict src,
                                              int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;

        memcpy(&dst[i], &u, sizeof u);
    }
}

void mb_cpu_bf16_round_span(uint16_t *dst, const float *src, int64_t n)
{
    if (mb_cpu_bf16_have_avx512())
        mb_cpu_bf16_round_avx512(dst, src, n);
    else
        mb_cpu_bf16_round_portable(dst, src, n);
}

void mb_cpu_bf16_widen_span(float *dst, const uint16_t *src, int64_t n)
{
    if (mb_cpu_bf16_have_avx512())
        mb_cpu_bf16_widen_avx512(dst, src, n);
    else
        mb_cpu_bf16_widen_portable(dst, src, n);
}

static void to_bf16(uint16_t *dst, const float *src, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        mb_cpu_bf16_round_span(dst + i0, src + i0, MB_MIN(MB_CPU_CHUNK, n - i0));
    }
}

static void to_f32(float *dst, const uint16_t *src, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        mb_cpu_bf16_widen_span(dst + i0, src + i0, MB_MIN(MB_CPU_CHUNK, n - i0));
    }
}

/* Elements converted one by one before the halves start (to_bf16_in_place). */
#define IN_PLACE_FIRST ((int64_t)4096)

/* fp32 -> bf16 in place: element i's bf16 goes to bytes [2i, 2i + 2), which held part of
 * element i/2, already read. So once elements [0, s) are done, [s, 2s) can all be done at
 * once, in parallel: they read bytes [4s, 8s) and write [2s, 4s), which held elements
 * below s only (and no piece of to_bf16 there overlaps itself: each starts at s or later
 * and is at most s long). The first few go one by one through memcpy, which may alias. */
static void to_bf16_in_place(void *buf, int64_t n)
{
    char *bytes = buf;
    int64_t s = MB_MIN(n, IN_PLACE_FIRST);

    for (int64_t i = 0; i < s; i++) {
        float x;
        uint16_t b;
        memcpy(&x, bytes + 4 * i, sizeof x);
        mb_cpu_bf16_round_portable(&b, &x, 1);
        memcpy(bytes + 2 * i, &b, sizeof b);
    }
    for (; s < n; s *= 2)
        to_bf16((uint16_t *)buf + s, (const float *)buf + s, MB_MIN(2 * s, n) - s);
}

void mb_cpu_convert(void *dst, enum mb_dtype dst_type, const void *src, enum mb_dtype src_type,
                    int64_t n)
{
    MB_ASSERT((dst_type == MB_DTYPE_F32 || dst_type == MB_DTYPE_BF16) &&
              (src_type == MB_DTYPE_F32 || src_type == MB_DTYPE_BF16));
    if (dst_type == src_type)
        memmove(dst, src, (size_t)n * mb_dtype_size(dst_type));
    else if (dst_type == MB_DTYPE_BF16 && dst == src)
        to_bf16_in_place(dst, n);
    else if (dst_type == MB_DTYPE_BF16)
        to_bf16(dst, src, n);
    else
        to_f32(dst, src, n);
}

/* The ROWS x COLS matrix at X (leading dimension LD) widened to a packed fp32 copy. */
static float *widen(const uint16_t *x, int64_t rows, int64_t cols, int64_t ld)
{
    float *w = mb_xmalloc_for((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof *w,
                              "a widened bf16 matrix");

#pragma omp parallel for schedule(static) if (rows * cols > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        mb_cpu_bf16_widen_portable(w + r * cols, x + r * ld, cols);
    return w;
}

void mb_cpu_matmul_bf16_portable(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                 float alpha, const uint16_t *a, int64_t lda, const uint16_t *b,
                                 int64_t ldb, float beta, float *c, int64_t ldc)
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

void mb_cpu_matmul_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                        float beta, float *c, int64_t ldc)
{
    if (forced_portable ||
        !mb_cpu_matmul_bf16_dnnl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        mb_cpu_matmul_bf16_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Where oneDNN has no bf16-output matmul: the fp32 C of matmul_bf16, rounded row by row.
 * Both ways give the same bits when they sum alike (the fp32 sum rounded once). */
void mb_cpu_matmul_bf16_rounded(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                                const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                                uint16_t *c, int64_t ldc)
{
    if (!forced_portable && mb_cpu_matmul_bf16_rounded_dnnl(ta, tb, m, n, k, a, lda, b, ldb, c, ldc))
        return;
    float *c32 = mb_xmalloc_for((size_t)MB_MAX(m * n, 1) * sizeof *c32, "a bf16 matmul's fp32 C");

    mb_cpu_matmul_bf16(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c32, n);
#pragma omp parallel for schedule(static) if (m * n > MB_CPU_CHUNK)
    for (int64_t r = 0; r < m; r++)
        mb_cpu_bf16_round_span(c + r * ldc, c32 + r * n, n);
    free(c32);
}
