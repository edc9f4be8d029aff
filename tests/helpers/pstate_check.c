/* tests/helpers/pstate_check.c - print this rank's place in the parallel grid and check
 * the collectives of each of its groups (dist/pstate.h).
 *
 *   pstate_check TP CP PP
 *
 * Prints one line per rank, "rank R: tp T cp C dp D pp P | tp: a,b | dp: ... | pp: ...
 * | tp-pp: ...", each group as the world ranks of its members in member order (found by
 * mb_pstate_member and checked against an all-gather of the world ranks, so the
 * communicator and the arithmetic agree). Then, in every group: a sum, a max, an
 * all-gather, a reduce-scatter and a broadcast, each against the value computed here.
 * Exit 1 with the reason on a wrong value or a layout that does not fit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/tool.h"
#include "dist/pstate.h"

static const enum mb_group_kind shown[] = { MB_GROUP_TP, MB_GROUP_CP, MB_GROUP_DP, MB_GROUP_PP,
                                            MB_GROUP_MP };

/* The collectives of G against values computed from the members' world ranks. */
static int check_group(const struct mb_pstate *ps, enum mb_group_kind kind)
{
    const struct mb_group *g = mb_pstate_group(ps, kind);
    int n = g->size, me = ps->world->rank;
    float *all = mb_xcalloc((size_t)n * 2, sizeof(float));
    float x[2] = { (float)me, (float)-me };
    int rc = 0;

    mb_group_all_gather_f32(g, x, all, 2);
    for (int i = 0; i < n && rc == 0; i++)
        if (all[2 * i] != (float)mb_pstate_member(ps, kind, i))
            rc = mb_err_set(MB_E_INVALID, g->name, "member %d is world rank %g, expected %d", i,
                            all[2 * i], mb_pstate_member(ps, kind, i));
    float sum = 0, max = 0, s[1] = { (float)me }, m[1] = { (float)me };
    for (int i = 0; i < n; i++) {
        sum += (float)mb_pstate_member(ps, kind, i);
        if (mb_pstate_member(ps, kind, i) > max)
            max = (float)mb_pstate_member(ps, kind, i);
    }
    mb_group_sum_f32(g, s, 1);
    mb_group_max_f32(g, m, 1);
    if (rc == 0 && (s[0] != sum || m[0] != max))
        rc = mb_err_set(MB_E_INVALID, g->name, "sum %g max %g, expected %g %g", s[0], m[0], sum,
                        max);
    /* reduce-scatter: member i gives (i + 1) * (j + 1) for block j; block j sums to
     * (j + 1) * n (n + 1) / 2 */
    float *in = mb_xmalloc((size_t)n * sizeof(float)), out = 0;
    for (int j = 0; j < n; j++)
        in[j] = (float)((g->rank + 1) * (j + 1));
    mb_group_reduce_scatter_f32(g, in, &out, 1);
    if (rc == 0 && out != (float)((g->rank + 1) * n * (n + 1) / 2))
        rc = mb_err_set(MB_E_INVALID, g->name, "reduce-scatter gave %g", out);
    double b = g->rank == n - 1 ? 42.5 : 0;
    mb_group_broadcast(g, &b, sizeof b, n - 1);
    if (rc == 0 && b != 42.5)
        rc = mb_err_set(MB_E_INVALID, g->name, "broadcast gave %g", b);
    free(in);
    free(all);
    return rc;
}

static int run(const struct mb_dist *d, char **argv)
{
    struct mb_pstate ps;
    if (mb_pstate_init(&ps, d, atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), "layout") != 0)
        return -1;
    char line[1024];
    int at = snprintf(line, sizeof line, "rank %d: tp %d cp %d dp %d pp %d", d->rank, ps.tp_rank,
                      ps.cp_rank, ps.dp_rank, ps.pp_rank);
    int rc = 0;
    for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
        const struct mb_group *g = mb_pstate_group(&ps, shown[k]);
        at += snprintf(line + at, sizeof line - (size_t)at, " | %s:", g->name);
        for (int i = 0; i < g->size; i++)
            at += snprintf(line + at, sizeof line - (size_t)at, "%s%d", i ? "," : " ",
                           mb_pstate_member(&ps, shown[k], i));
    }
    for (int k = 0; k < MB_GROUP_COUNT && rc == 0; k++)
        rc = check_group(&ps, (enum mb_group_kind)k);
    if (rc == 0)
        printf("%s\n", line);
    mb_pstate_free(&ps);
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;

    mb_tool_start("pstate_check");
    int rc = mb_dist_init(&d, &argc, &argv);
    if (rc == 0 && argc != 4)
        rc = mb_err_set(MB_E_USAGE, "", "usage: pstate_check TP CP PP");
    if (rc == 0)
        rc = run(&d, argv);
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
