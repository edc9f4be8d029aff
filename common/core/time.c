/* core/time.c - monotonic clock. */
#include "core/time.h"

#include <time.h>

double mb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
