/* kern/cpu/threads.c - how many OpenMP threads the CPU kernels use.
 *
 * One per CPU this process may run on (its affinity mask: what Slurm, mpirun's binding
 * or taskset left it), not one per CPU of the node: ranks bound to a few cores each
 * would otherwise start a node's worth of threads apiece and fight over their cores.
 * OMP_NUM_THREADS, when set, wins. OpenBLAS itself runs single-threaded (gemm.c).
 */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/cpus.h"
#include "kern/cpu/internal.h"
#include "kern/ops.h"

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void set_threads(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    if (!env || !*env)
        omp_set_num_threads(mb_cpus_usable());
}

void mb_cpu_threads_init(void)
{
    pthread_once(&threads_once, set_threads);
}

int mb_ops_cpu_threads(void)
{
    mb_cpu_threads_init();
    return omp_get_max_threads();
}
