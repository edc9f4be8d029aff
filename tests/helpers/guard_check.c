/* tests/helpers/guard_check.c - what the cpu-guarded backend (kern/guarded/) must refuse,
 * one case per run; each must end the process with exit status 2 and a message naming
 * the op and argument, or the address touched.
 *
 *   guard_check host-arg   a host pointer given to an op (add's x)
 *   guard_check extent     a backend pointer whose extent runs past its allocation
 *   guard_check freed      a pointer into a freed allocation
 *   guard_check touch      host code reading backend memory (the fault handler)
 *   guard_check ok         none of these: the ops work and the data round-trips (exit 0)
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "kern/ops.h"

int main(int argc, char **argv)
{
    mb_log_set_tool("guard_check");
    if (argc != 2) {
        fprintf(stderr, "usage: guard_check host-arg|extent|freed|touch|ok\n");
        return 2;
    }
    const struct mb_ops *o = mb_ops_find("cpu-guarded", "guard_check");
    struct mb_exec *ex = o->exec;
    float host[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, back[16];
    float *y = o->alloc(ex, sizeof host);
    mb_from_host_f32(o, ex, y, host, 16);
    const char *c = argv[1];
    if (strcmp(c, "host-arg") == 0) {
        o->add(ex, y, host, 16);
    } else if (strcmp(c, "extent") == 0) {
        o->add(ex, y + 8, y, 16);
    } else if (strcmp(c, "freed") == 0) {
        float *x = o->alloc(ex, sizeof host);
        o->free(ex, x);
        o->add(ex, y, x, 16);
    } else if (strcmp(c, "touch") == 0) {
        volatile float v = y[3];
        printf("read %g from backend memory\n", (double)v);
    } else if (strcmp(c, "ok") == 0) {
        o->add(ex, y, y, 16);
        mb_to_host_f32(o, ex, back, y, 16);
        for (int i = 0; i < 16; i++)
            if (back[i] != 2 * host[i])
                return fprintf(stderr, "guard_check: element %d is %g\n", i, (double)back[i]), 1;
        o->free(ex, y);
        printf("ok\n");
        return 0;
    } else {
        fprintf(stderr, "guard_check: unknown case %s\n", c);
        return 2;
    }
    printf("not refused\n");
    return 1;
}
