/* core/cpus.c - the CPUs in this process's affinity mask. */
#include "core/cpus.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* A mask large enough for the machine: the fixed cpu_set_t holds 1024 CPUs only. */
static int affinity_count(void)
{
    long online = sysconf(_SC_NPROCESSORS_CONF);
    int ncpu = online > 1024 ? (int)online : 1024;
    for (int tries = 0; tries < 4; tries++, ncpu *= 2) {
        size_t size = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            return 0;
        int count = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : 0;
        CPU_FREE(set);
        if (count > 0)
            return count;
    }
    return 0;
}

int mb_cpus_usable(void)
{
    int count = affinity_count();
    if (count > 0)
        return count;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
