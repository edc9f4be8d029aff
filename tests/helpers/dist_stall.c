/* tests/helpers/dist_stall.c - make one MPI rank stall before a collective, to test the
 * watchdog of dist/comm.c (dist.timeout_minutes).
 *
 *   dist_stall MINUTES OP ROUNDS RANK SECONDS
 *
 * Sets the collective timeout to MINUTES, runs ROUNDS rounds of OP (agree, counter,
 * floats, doubles or barrier), each after a 10 ms pause, so a run of many quick
 * collectives lasts longer than the timeout; then rank RANK sleeps SECONDS (or stops
 * itself with SIGSTOP when SECONDS is "stop") and every rank runs OP once more. Each
 * sum is checked. Prints "rank R: done" when all went through.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/tool.h"
#include "dist/comm.h"

/* One collective; -1 with mb_err set when a sum is wrong. */
static int collective(const struct mb_dist *d, const char *op)
{
    double want = (double)d->size * (d->size + 1) / 2; /* rank r gives r + 1 */
    if (strcmp(op, "agree") == 0)
        return mb_dist_all_ok(d, 1) ? 0 : mb_err_set(MB_E_INVALID, op, "not all ok");
    if (strcmp(op, "counter") == 0)
        return mb_dist_sum_i64(d, d->rank + 1) == (int64_t)want
                   ? 0
                   : mb_err_set(MB_E_INVALID, op, "wrong sum");
    if (strcmp(op, "floats") == 0 || strcmp(op, "doubles") == 0) {
        float f[1000];
        double g[1000];
        for (int i = 0; i < 1000; i++)
            f[i] = (float)(g[i] = d->rank + 1);
        if (op[0] == 'f')
            mb_dist_sum_f32(d, f, 1000);
        else
            mb_dist_sum_f64(d, g, 1000);
        for (int i = 0; i < 1000; i++)
            if ((op[0] == 'f' ? (double)f[i] : g[i]) != want)
                return mb_err_set(MB_E_INVALID, op, "wrong sum at %d", i);
        return 0;
    }
    if (strcmp(op, "barrier") == 0) {
        mb_dist_barrier(d);
        return 0;
    }
    return mb_err_set(MB_E_USAGE, op, "unknown operation");
}

static int run(const struct mb_dist *d, char **argv)
{
    int rounds = atoi(argv[3]), rank = atoi(argv[4]);
    if (mb_dist_set_timeout(atof(argv[1]), "MINUTES") < 0)
        return -1;
    for (int i = 0; i < rounds; i++) {
        usleep(10000);
        if (collective(d, argv[2]) < 0)
            return -1;
    }
    if (d->rank == rank && strcmp(argv[5], "stop") == 0)
        raise(SIGSTOP);
    else if (d->rank == rank)
        sleep((unsigned)atoi(argv[5]));
    if (collective(d, argv[2]) < 0)
        return -1;
    printf("rank %d: done\n", d->rank);
    return 0;
}

int main(int argc, char **argv)
{
    struct mb_dist d;

    mb_tool_start("dist_stall");
    int rc = mb_dist_init(&d, &argc, &argv);
    if (rc == 0 && argc != 6)
        rc = mb_err_set(MB_E_USAGE, "", "usage: dist_stall MINUTES OP ROUNDS RANK SECONDS|stop");
    if (rc == 0)
        rc = run(&d, argv);
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
