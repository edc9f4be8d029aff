/* kern/cpu/blas_env.c - make OpenBLAS use the kernels this CPU can run.
 *
 * Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels when the library is
 * loaded, before main, and does not recognise recent Xeons: it falls back to the SSE3
 * "Prescott" kernels, about ten times slower than its AVX-512 ones. The only remedy is
 * OPENBLAS_CORETYPE in the environment at load time, so a tool that finds the fallback
 * sets it and executes itself again (before MPI starts; the launcher's environment is
 * kept). MB_BLAS_NO_REEXEC=1 turns this off.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kern/ops.h"

char *openblas_get_corename(void);

/* Cores OpenBLAS falls back to on CPUs it does not know. */
static int is_fallback_core(const char *core)
{
    static const char *const fallback[] = { "prescott", "core2", "penryn", "dunnington",
                                            "nehalem", "atom", "katmai", "northwood" };
    for (size_t i = 0; i < sizeof(fallback) / sizeof(fallback[0]); i++)
        if (strcasecmp(core, fallback[i]) == 0)
            return 1;
    return 0;
}

static const char *best_core(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

void mb_ops_cpu_prepare(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("MB_BLAS_NO_REEXEC"))
        return;
    const char *core = openblas_get_corename();
    const char *want = best_core();
    if (!core || !want || !is_fallback_core(core))
        return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) == 0)
        execv("/proc/self/exe", argv);
    /* exec failed: carry on with the slow kernels */
}
