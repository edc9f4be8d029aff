/* tests/helpers/gradsync_check.c - the gradient reductions of train/gradsync.h against
 * MPI's own all-reduce of the whole buffer, on the flat layout of a test model.
 *
 *   gradsync_check MODEL_JSON BUCKET_SIZE
 *
 * Every rank fills the model's gradient buffer with values of its own (magnitudes over
 * six decades, so the order of a sum shows in its bits). The reference is one blocking
 * MPI_Allreduce of the whole buffer (mb_group_sum_f32: what the trainer did before the
 * distributed optimizer). Then, for each path of the trainer:
 *   replicated-overlap     MPI_Iallreduce per bucket, started stage by stage
 *   distributed            one MPI_Reduce_scatter, in place, into this rank's shard
 *   distributed-overlap    MPI_Ireduce_scatter per bucket, in place
 *   distributed-overlap-late  the same, rank 0 starting every bucket only at the end
 *                          (as a rank whose backward failed): the same matching order
 * rank 0 prints "PATH: bitwise" when every rank's result equals the reference's slice bit
 * for bit, else "PATH: max relative difference X" (max |difference| / max |reference|
 * over the buffer, the largest over ranks). The distributed paths then all-gather
 * the reference's shards into a parameter buffer ("all-gather: bitwise" when every rank
 * has the whole reference back). Exit 1 with the reason on an error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/tool.h"
#include "dist/pstate.h"
#include "kern/ops.h"
#include "nn/model.h"
#include "train/gradsync.h"

static void fill(float *g, int64_t n, int rank)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = mb_splitmix64((uint64_t)i * 131 + (uint64_t)rank);
        double unit = (double)(h >> 11) / 9007199254740992.0 - 0.5;
        g[i] = (float)(unit * pow(10.0, (double)(h % 7) - 3.0));
    }
}

/* max |a - b| / max |b| over N floats (a sum of values of both signs can cancel to
 * near 0, where a last-bit difference of the terms is a large one of the element); 0
 * when bitwise equal, else at least 1e-30. */
static double worst(const float *a, const float *b, int64_t n)
{
    if (memcmp(a, b, (size_t)n * sizeof(float)) == 0)
        return 0;
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return fmax(diff / fmax(scale, 1e-30), 1e-30);
}

static void report(const struct mb_pstate *ps, const char *path, double mine)
{
    const struct mb_group *world = mb_pstate_group(ps, MB_GROUP_WORLD);
    double *each = mb_xcalloc((size_t)world->size, sizeof(double));
    each[world->rank] = mine;
    mb_group_sum_f64(world, each, world->size);
    double w = 0;
    for (int r = 0; r < world->size; r++)
        w = fmax(w, each[r]);
    free(each);
    if (world->rank != 0)
        return;
    if (w == 0)
        printf("%s: bitwise\n", path);
    else
        printf("%s: max relative difference %.3g\n", path, w);
}

/* One path: reduce the gradients of M (filled afresh) through S, stage by stage as the
 * backward would report them (not on rank 0 when LATE: as when its backward failed),
 * and compare with REF. */
static double one_path(struct mb_model *m, struct mb_grad_sync *s, const float *ref, int rank,
                       bool late)
{
    fill(m->g, m->params.total, rank);
    mb_grad_sync_begin(s);
    for (int64_t stage = 0; s->overlap && !(late && rank == 0) && stage <= s->num_layers; stage++)
        mb_grad_sync_ready(s, stage);
    mb_grad_sync_finish(s);
    return worst(mb_grad_sync_grads(s), ref + s->lo, s->hi - s->lo);
}

static int run(const struct mb_dist *d, const char *model_json, int64_t bucket_size)
{
    struct mb_pstate ps;
    struct mb_model m;
    struct mb_model_config cfg;
    mb_json *j = mb_json_parse_file(model_json);
    if (!j || mb_model_config_from_json(&cfg, j, model_json) < 0 ||
        mb_pstate_init(&ps, d, 1, 1, 1, "layout") < 0) {
        mb_json_free(j);
        return -1;
    }
    mb_json_free(j);
    if (mb_model_init(&m, &cfg, mb_ops_cpu()) < 0)
        return -1;
    const struct mb_group *dp = mb_pstate_group(&ps, MB_GROUP_DP);
    int64_t n = m.params.total;
    float *ref = mb_xmalloc((size_t)n * sizeof(float));
    fill(ref, n, dp->rank);
    mb_group_sum_f32(dp, ref, n);
    static const struct { const char *name; bool distributed, overlap, late; } paths[] = {
        { "replicated-overlap", false, true, false },
        { "distributed", true, false, false },
        { "distributed-overlap", true, true, false },
        { "distributed-overlap-late", true, true, true },
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof paths / sizeof paths[0] && rc == 0; k++) {
        struct mb_grad_sync s;
        rc = mb_grad_sync_init(&s, dp, m.ops, &m.params, cfg.num_layers, m.g,
                               paths[k].distributed, paths[k].overlap, bucket_size, "check");
        if (rc < 0)
            break;
        report(&ps, paths[k].name, one_path(&m, &s, ref, dp->rank, paths[k].late));
        if (paths[k].distributed) {
            memset(m.w, 0, (size_t)n * sizeof(float));
            memcpy(m.w + s.lo, ref + s.lo, (size_t)(s.hi - s.lo) * sizeof(float));
            mb_grad_sync_gather(&s, m.w);
            report(&ps, "all-gather", worst(m.w, ref, n));
        }
        if (dp->rank == 0 && k == 0)
            printf("buckets: %d\n", s.nbuckets);
        mb_grad_sync_free(&s);
    }
    free(ref);
    mb_model_free(&m);
    mb_pstate_free(&ps);
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;

    mb_tool_start("gradsync_check");
    int rc = mb_dist_init(&d, &argc, &argv);
    if (rc == 0 && argc != 3)
        rc = mb_err_set(MB_E_USAGE, "", "usage: gradsync_check MODEL_JSON BUCKET_SIZE");
    if (rc == 0)
        rc = run(&d, argv[1], atoll(argv[2]));
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
