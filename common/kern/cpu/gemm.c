/* kern/cpu/gemm.c - matmul over OpenBLAS sgemm, threaded by our own OpenMP threads.
 *
 * Debian links the pthread build of OpenBLAS, which keeps its own thread pool. Two pools
 * on the same cores fight: OpenMP's threads spin after each of our ops while OpenBLAS's
 * threads need the cores, and the other way round (measured: a fifth of a training step
 * spent spinning). So OpenBLAS runs single-threaded and matmul splits C into one block
 * of rows (or of columns, for short wide products) per OpenMP thread, each a separate
 * sgemm. Every element of C is computed by one sgemm call over the whole K, so the result
 * does not depend on the thread count's split in any way OpenBLAS does not already fix.
 *
 * OpenBLAS picks its kernels when it is loaded, before any of our code runs. Debian's
 * 0.3.21 does not know every recent Xeon and falls back to "Prescott" (SSE3), about 10x
 * slower than its AVX-512 kernels; OPENBLAS_CORETYPE=SkylakeX in the environment fixes that
 * (openblas_get_corename() tells which one was taken).
 */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>

#include "core/err.h"
#include "kern/cpu/internal.h"

static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;

static void gemm_set_threads(void)
{
    openblas_set_num_threads(1);
}

void mb_cpu_gemm_init(void)
{
    pthread_once(&gemm_once, gemm_set_threads);
}

static void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                  int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* [lo, hi) of piece I of N pieces of LEN, cut at multiples of 16 where possible. */
static void piece(int64_t len, int i, int n, int64_t *lo, int64_t *hi)
{
    int64_t step = (len + n - 1) / n;
    step = step >= 64 ? (step + 15) / 16 * 16 : step;
    *lo = MB_MIN(len, step * i);
    *hi = MB_MIN(len, *lo + step);
}

void mb_cpu_matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc)
{
    MB_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX);
    MB_ASSERT(lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    if (m == 0 || n == 0)
        return;
    int threads = omp_get_max_threads();
    /* each thread packs all of the operand it shares: B when C is split by rows, A when
     * by columns; share the smaller one, unless the columns would be too narrow */
    bool by_rows = n <= m || n < 64 * threads;
    if (threads == 1 || (by_rows ? m : n) < 32) {
        sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int64_t lo, hi;
        piece(by_rows ? m : n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo && by_rows)
            sgemm(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * lda, lda, b, ldb, beta,
                  c + lo * ldc, ldc);
        else if (hi > lo)
            sgemm(ta, tb, m, hi - lo, k, alpha, a, lda, tb ? b + lo * ldb : b + lo, ldb, beta,
                  c + lo, ldc);
    }
}
