/* train/gradsync.h - the data-parallel gradient reduction, in buckets that can overlap
 * the backward pass, and the shard of the flat buffer each rank's optimizer owns.
 *
 * Without the distributed optimizer (ddp.use_distributed_optimizer=false) the gradients
 * are summed over the DP group into every rank's whole buffer (an all-reduce). With it,
 * the flat buffer of P floats is cut, as if padded to a multiple of the DP size d, into d
 * shards of S = ceil(P / d) floats; rank q owns [q S, min((q + 1) S, P)) (the last shard
 * is short by the padding, which is never stored), receives only that range of the sum
 * (a reduce-scatter) and keeps AdamW state only for it; after the update the shards are
 * all-gathered into every rank's parameters (parallel.md 5.2-5.3). The shard is one range
 * of the whole buffer, whatever the buckets, so the optimizer state does not depend on
 * ddp.bucket_size. The reduce-scatter works in place in the gradient buffer (MPI puts
 * this rank's part of a bucket at the bucket's start; it is then moved to its own place),
 * so the summed shard is the model's g[lo, hi), a view as Megatron's main_grad is, and
 * no other buffer is needed: (8 + 8/d) bytes a parameter in all.
 *
 * Under adapters (nn/params.h: frozen) only the trainable range [frozen, total) of the
 * parameters has gradients: the gradient buffer, and every offset here (buckets, lo,
 * hi, the shards), count from its start, so the flat-buffer range of the optimizer is
 * [frozen + lo, frozen + hi). Without adapters frozen is 0.
 *
 * With ddp.overlap_grad_reduce the buffer is cut into buckets of at least
 * ddp.bucket_size floats, taken in reverse order of the buffer as the backward pass
 * produces them. mb stacks each per-layer parameter over the layers ([L, ...]), so the
 * unit a bucket is made of is one layer's slice of a parameter (or a whole
 * non-per-layer parameter): the slices of layer l are final once the backward of layer l
 * of the last micro-batch is done. The model reports that (mb_model.grad_ready), and every
 * bucket whose units are all final is started at once with a non-blocking collective
 * (MPI_Iallreduce, or MPI_Ireduce_scatter); the rest start, and all are waited for, in
 * mb_grad_sync_finish, before the gradient norm. Without overlap one blocking collective
 * reduces the whole buffer after the backward, as before.
 */
#ifndef MB_TRAIN_GRADSYNC_H
#define MB_TRAIN_GRADSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "dist/pstate.h"
#include "kern/ops.h"
#include "nn/params.h"

struct mb_grad_bucket {
    int64_t start, end; /* [start, end) of the flat buffer */
    int64_t stage;      /* the backward stage after which all its gradients are final */
    int *counts;        /* distributed: the floats of it each DP rank receives */
    bool started;
};

struct mb_grad_sync {
    const struct mb_group *dp;
    const struct mb_ops *ops;
    struct mb_exec *ex;   /* the context its ops run in (kern/ops.h) */
    float *g;             /* the model's flat gradients */
    /* What the DP collectives run on: G itself on host memory (kern/ops.h host_memory),
     * else a host copy of it (each bucket copied in before its reduction starts, the
     * whole buffer copied back once they are done). */
    float *gh;
    bool distributed;     /* ddp.use_distributed_optimizer */
    bool overlap;         /* ddp.overlap_grad_reduce */
    int64_t total;        /* P: floats in the gradient buffer (the trainable range) */
    int64_t shard;        /* S: floats per shard (distributed), else P */
    int64_t lo, hi;       /* the range this rank's optimizer updates: its shard, or [0, P) */
    int *shard_counts;    /* per DP rank: floats of its shard, and its first index */
    int *shard_displs;
    int64_t num_layers;
    int nbuckets;
    struct mb_grad_bucket *buckets;
    struct mb_group_request *reqs; /* one per bucket */
};

/* The backward stages, in the order the model finishes them: the output layer and the
 * final norm, then layer L-1 down to 0, then the embeddings (the end of the step). */
#define MB_GRAD_STAGE_HEAD 0
static inline int64_t mb_grad_stage_of_layer(int64_t num_layers, int64_t layer)
{
    return num_layers - layer; /* layer == num_layers: the head */
}

/* Lay out the reduction of the gradients G (PARAMS) over DP. BUCKET_SIZE in floats, used
 * only with OVERLAP (<= 0: Megatron's max(40e6, 1e6 d)). -1 (mb_err set, naming WHERE)
 * when a shard exceeds MPI's int counts. */
MB_MUST_CHECK int mb_grad_sync_init(struct mb_grad_sync *s, const struct mb_group *dp,
                                    const struct mb_ops *ops, const struct mb_param_table *params,
                                    int64_t num_layers, float *g, bool distributed, bool overlap,
                                    int64_t bucket_size, const char *where);
void mb_grad_sync_free(struct mb_grad_sync *s);

/* A step's backward is about to start: no bucket is started yet. */
void mb_grad_sync_begin(struct mb_grad_sync *s);
/* The backward of the last micro-batch finished STAGE: start the buckets now final. */
void mb_grad_sync_ready(struct mb_grad_sync *s, int64_t stage);
/* Start what is left and wait for everything: then mb_grad_sync_grads holds the sums.
 * Every rank must call it once a step's backward began, also when it failed, so that no
 * collective another rank started is left unmatched. */
void mb_grad_sync_finish(struct mb_grad_sync *s);

/* The summed gradients of [lo, hi), indexed from lo: the model's g + lo. With the
 * distributed optimizer the rest of g is undefined until the next zeroing. */
static inline float *mb_grad_sync_grads(const struct mb_grad_sync *s)
{
    return s->g + s->lo;
}

/* Distributed: every rank's updated shard of W into every rank's W (an all-gather); a
 * no-op when replicated. W is the trainable range of the parameters (the flat buffer
 * from params->frozen). */
void mb_grad_sync_gather(const struct mb_grad_sync *s, float *w);

#endif /* MB_TRAIN_GRADSYNC_H */
