/* kern/cpu/scratch.c - the CPU context's scratch arena.
 *
 * One buffer per OpenMP thread, grown to the largest size that thread has asked for and
 * kept, so a kernel that needs working memory per thread (attention's score blocks,
 * generation's score row, xent's soft-capped row) takes it from the context instead of
 * allocating on every call. A context is used by one host thread at a time, as a device
 * stream would be: the slots belong to that thread's OpenMP team.
 */
#include <omp.h>
#include <stdlib.h>

#include "core/defs.h"
#include "core/err.h"
#include "core/mem.h"
#include "kern/cpu/internal.h"

struct mb_cpu_scratch {
    void *p;
    size_t bytes;
};

void mb_cpu_scratch_ready(struct mb_exec *ex)
{
    int need = omp_get_max_threads();

    if (need <= ex->nscratch)
        return;
    ex->scratch = mb_xrealloc_for(ex->scratch, (size_t)need * sizeof *ex->scratch,
                                  "the scratch arena's slots");
    for (int i = ex->nscratch; i < need; i++)
        ex->scratch[i] = (struct mb_cpu_scratch){ NULL, 0 };
    ex->nscratch = need;
}

void *mb_cpu_scratch(struct mb_exec *ex, size_t bytes)
{
    int t = omp_get_thread_num();

    MB_ASSERT(t < ex->nscratch); /* mb_cpu_scratch_ready was called before the region */
    struct mb_cpu_scratch *s = &ex->scratch[t];
    if (s->bytes < bytes) {
        free(s->p);
        s->p = mb_xaligned64_for(bytes, "a thread's scratch");
        s->bytes = bytes;
    }
    return s->p;
}

void mb_cpu_scratch_release(struct mb_exec *ex)
{
    for (int i = 0; i < ex->nscratch; i++)
        free(ex->scratch[i].p);
    free(ex->scratch);
    ex->scratch = NULL;
    ex->nscratch = 0;
}
