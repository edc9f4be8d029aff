/* train/gradsync.c - data-parallel gradient reduction in buckets; the optimizer's shard. */
#include "train/gradsync.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

/* The stage after which the gradients of parameter P (layer LAYER's slice when P is per
 * layer) are final. The head's own parameters are final after the head; the embeddings
 * (the tied output layer too) and anything else not per layer only at the end. */
static int64_t unit_stage(const struct mb_param *p, int64_t num_layers, int64_t layer)
{
    if (p->per_layer)
        return mb_grad_stage_of_layer(num_layers, layer);
    if (p->id == MB_P_FINAL_NORM_W || p->id == MB_P_FINAL_NORM_B || p->id == MB_P_OUTPUT_W)
        return MB_GRAD_STAGE_HEAD;
    return num_layers + 1;
}

static void add_bucket(struct mb_grad_sync *s, int64_t start, int64_t end, int64_t stage)
{
    s->buckets = mb_xrealloc(s->buckets, (size_t)(s->nbuckets + 1) * sizeof(*s->buckets));
    struct mb_grad_bucket *b = &s->buckets[s->nbuckets++];
    memset(b, 0, sizeof *b);
    b->start = start, b->end = end, b->stage = stage;
}

/* Cut the buffer, from its end down, into buckets of at least SIZE floats made of whole
 * units (one layer's slice of a parameter, or a whole parameter). The table lays the
 * parameters out in increasing offsets. */
static void make_buckets(struct mb_grad_sync *s, const struct mb_param_table *params,
                         int64_t size)
{
    int64_t end = s->total, stage = 0;
    for (int i = params->count - 1; i >= 0; i--) {
        const struct mb_param *p = &params->items[i];
        if (!p->trainable) /* frozen: no gradient, before the trainable range */
            continue;
        int64_t units = p->per_layer ? p->shape[0] : 1, unit = p->numel / units;
        for (int64_t l = units - 1; l >= 0; l--) {
            int64_t start = p->offset - params->frozen + l * unit;
            stage = MB_MAX(stage, unit_stage(p, s->num_layers, l));
            if (end - start >= size || start == 0) {
                add_bucket(s, start, end, stage);
                end = start, stage = 0;
            }
        }
    }
}

/* Which part of each bucket each DP rank receives: its overlap with the rank's shard. */
static void bucket_counts(struct mb_grad_sync *s)
{
    int d = s->dp->size;
    for (int k = 0; k < s->nbuckets; k++) {
        struct mb_grad_bucket *b = &s->buckets[k];
        b->counts = mb_xcalloc((size_t)d, sizeof(int));
        for (int r = 0; r < d; r++) {
            int64_t lo = MB_MIN(r * s->shard, s->total), hi = MB_MIN(lo + s->shard, s->total);
            int64_t n = MB_MIN(hi, b->end) - MB_MAX(lo, b->start);
            b->counts[r] = n > 0 ? (int)n : 0;
        }
    }
}

/* Whether the collectives need a host copy of the gradients (dist/devcomm.h's rule). */
static bool staged(const struct mb_grad_sync *s)
{
    return !s->ops->host_memory && s->dp->comm;
}

int mb_grad_sync_init(struct mb_grad_sync *s, const struct mb_group *dp, const struct mb_ops *ops,
                      const struct mb_param_table *params, int64_t num_layers, float *g,
                      bool distributed, bool overlap, int64_t bucket_size, const char *where)
{
    memset(s, 0, sizeof *s);
    s->dp = dp, s->ops = ops, s->ex = ops->exec, s->g = g;
    s->distributed = distributed, s->overlap = overlap;
    s->total = params->total - params->frozen;
    s->num_layers = num_layers;
    int d = dp->size;
    s->shard = distributed ? MB_CEIL_DIV(s->total, d) : s->total;
    if (distributed && s->total > INT_MAX) /* the all-gather's displacements are ints */
        return mb_err_set(MB_E_UNSUPPORTED, where,
                          "ddp.use_distributed_optimizer: %lld parameters on a rank; more than "
                          "2^31 is not supported yet", (long long)s->total);
    s->lo = distributed ? MB_MIN(dp->rank * s->shard, s->total) : 0;
    s->hi = distributed ? MB_MIN(s->lo + s->shard, s->total) : s->total;
    if (bucket_size <= 0) /* Megatron's default (parallel.md 5.1) */
        bucket_size = MB_MAX((int64_t)40000000, (int64_t)1000000 * d);
    if (!overlap) /* one bucket, reduced after the backward */
        add_bucket(s, 0, s->total, num_layers + 1);
    else
        make_buckets(s, params, bucket_size);
    s->reqs = mb_xcalloc((size_t)s->nbuckets, sizeof(*s->reqs));
    s->gh = staged(s) ? mb_xmalloc((size_t)s->total * sizeof(float) + 1) : g;
    if (!distributed)
        return 0;
    bucket_counts(s);
    s->shard_counts = mb_xcalloc((size_t)d, sizeof(int));
    s->shard_displs = mb_xcalloc((size_t)d, sizeof(int));
    for (int r = 0; r < d; r++) {
        int64_t lo = MB_MIN(r * s->shard, s->total);
        s->shard_displs[r] = (int)lo;
        s->shard_counts[r] = (int)(MB_MIN(lo + s->shard, s->total) - lo);
    }
    return 0;
}

void mb_grad_sync_free(struct mb_grad_sync *s)
{
    for (int k = 0; k < s->nbuckets; k++)
        free(s->buckets[k].counts);
    for (int k = 0; s->reqs && k < s->nbuckets; k++)
        free(s->reqs[k].mpi);
    free(s->buckets);
    free(s->reqs);
    free(s->shard_counts);
    free(s->shard_displs);
    if (s->gh != s->g)
        free(s->gh);
    memset(s, 0, sizeof *s);
}

void mb_grad_sync_begin(struct mb_grad_sync *s)
{
    for (int k = 0; k < s->nbuckets; k++)
        s->buckets[k].started = false;
}

/* A bucket's reduce-scatter is in place: this rank's part of the sum arrives at the
 * bucket's start, and goes where it belongs in the flat buffer, inside the bucket. */
static void start_bucket(struct mb_grad_sync *s, int k)
{
    struct mb_grad_bucket *b = &s->buckets[k];
    b->started = true;
    if (!s->dp->comm) /* a group of one: the sum is the buffer, in place */
        return;
    float *in = s->gh + b->start;
    if (s->gh != s->g)
        mb_to_host_f32(s->ops, s->ex, in, s->g + b->start, b->end - b->start);
    if (!s->overlap && !s->distributed)
        mb_group_sum_f32(s->dp, in, b->end - b->start);
    else if (!s->overlap)
        mb_group_reduce_scatter_v_f32(s->dp, in, in, b->counts);
    else if (!s->distributed)
        mb_group_isum_f32(s->dp, in, b->end - b->start, &s->reqs[k]);
    else
        mb_group_ireduce_scatter_v_f32(s->dp, in, in, b->counts, &s->reqs[k]);
}

/* After the reduce-scatters: each bucket's part of this rank's shard from the bucket's
 * start to its place (memmove: the two may overlap). */
static void place_parts(const struct mb_grad_sync *s)
{
    for (int k = 0; k < s->nbuckets; k++) {
        const struct mb_grad_bucket *b = &s->buckets[k];
        int n = b->counts[s->dp->rank];
        int64_t to = MB_MAX(b->start, s->lo);
        if (n > 0 && to != b->start)
            memmove(s->gh + to, s->gh + b->start, (size_t)n * sizeof(float));
    }
}

/* Buckets are started in the order (stage, index) on every rank, whichever stages a
 * rank reported (MPI matches non-blocking collectives by the order they start in): a
 * rank whose backward failed starts them all in mb_grad_sync_finish in the same order
 * as the others did during theirs. */
void mb_grad_sync_ready(struct mb_grad_sync *s, int64_t stage)
{
    for (int64_t st = 0; st <= stage; st++)
        for (int k = 0; k < s->nbuckets; k++)
            if (!s->buckets[k].started && s->buckets[k].stage == st)
                start_bucket(s, k);
    mb_group_poll(s->reqs, s->nbuckets);
}

void mb_grad_sync_finish(struct mb_grad_sync *s)
{
    mb_grad_sync_ready(s, s->num_layers + 1); /* the last stage: every bucket */
    mb_group_wait(s->dp, s->reqs, s->nbuckets);
    if (s->distributed && s->dp->comm) /* a group of one reduces nothing, in place */
        place_parts(s);
    if (s->gh != s->g)
        mb_from_host_f32(s->ops, s->ex, s->g, s->gh, s->total);
}

void mb_grad_sync_gather(const struct mb_grad_sync *s, float *w)
{
    if (!s->distributed)
        return;
    if (!staged(s)) {
        mb_group_all_gather_v_f32(s->dp, w, s->shard_counts, s->shard_displs);
        return;
    }
    size_t bytes = (size_t)s->total * sizeof(float);
    float *hw = mb_host_view(s->ops, s->ex, w, bytes);
    mb_group_all_gather_v_f32(s->dp, hw, s->shard_counts, s->shard_displs);
    mb_host_view_end(s->ops, s->ex, w, hw, bytes, true);
}
