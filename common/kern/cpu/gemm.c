/* kern/cpu/gemm.c - matmul over OpenBLAS sgemm, and the OpenBLAS thread count.
 *
 * Debian links the pthread build of OpenBLAS, which keeps its own thread pool. The other
 * ops use OpenMP; to keep the two pools from competing for cores, OpenBLAS gets as many
 * threads as OpenMP would use (omp_get_max_threads, i.e. OMP_NUM_THREADS), and sgemm is
 * only ever called outside OpenMP parallel regions.
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
    openblas_set_num_threads(omp_get_max_threads());
}

void mb_cpu_gemm_init(void)
{
    pthread_once(&gemm_once, gemm_set_threads);
}

void mb_cpu_matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc)
{
    MB_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX);
    MB_ASSERT(lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
