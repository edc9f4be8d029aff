/* nn/stage.h - the layers a pipeline rank holds (parallel.md 4.1).
 *
 * Pipeline parallelism cuts the stack of L decoder layers over PP ranks. Without
 * virtual stages (VP = 1) rank r holds one contiguous range; with VP = v it holds v
 * "chunks", chunk j of rank r being the j-th range of the order (rank 0, chunk 0), (rank
 * 1, chunk 0), ..., (rank p-1, chunk 0), (rank 0, chunk 1), ... The embedding lives in
 * chunk 0 of rank 0, the final norm, output layer and loss in chunk v-1 of rank p-1.
 *
 * Locally the layers a rank holds are stacked in chunk order, local layer i being global
 * layer mb_stage_global_layer(s, i): global numbers decide the sliding-window pattern, the
 * rope base of a layer and where a layer's slice lies in a checkpoint.
 *
 * As Megatron allows: model.num_layers must be a multiple of PP (and L/PP of VP) unless
 * dist.num_layers_in_first_pipeline_stage / _last_ set the first / last stage's count,
 * the middle stages then sharing the rest evenly (not with VP here).
 */
#ifndef MB_NN_STAGE_H
#define MB_NN_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"

#define MB_STAGE_MAX_CHUNKS 16 /* dist.virtual_pipeline_model_parallel_size at most */

struct mb_stage {
    int pp, pp_rank;   /* pipeline size and this rank's place; 1, 0: the whole model */
    int chunks;        /* VP: the model chunks this rank holds */
    int64_t layers;    /* decoder layers held here, all chunks */
    int64_t total_layers; /* model.num_layers */
    int64_t chunk_first[MB_STAGE_MAX_CHUNKS];  /* local index of a chunk's first layer */
    int64_t chunk_layers[MB_STAGE_MAX_CHUNKS]; /* its layer count (may be 0) */
    int64_t chunk_global[MB_STAGE_MAX_CHUNKS]; /* global index of its first layer */
    bool first;        /* pp_rank 0: holds the embedding (chunk 0) */
    bool last;         /* pp_rank p-1: holds the final norm, output layer, loss (chunk v-1) */
};

/* The whole model of L layers as one stage (no pipeline). */
void mb_stage_whole(struct mb_stage *s, int64_t layers);

/* The stage of PP_RANK among PP ranks with VP chunks each for a model of LAYERS layers;
 * FIRST_LAYERS / LAST_LAYERS: the first / last stage's layer count, 0 for an even split.
 * -1 with mb_err (naming WHERE) on a split Megatron refuses: a stage without a layer,
 * L not divisible, uneven stages with VP. Every rank gets the same verdict. */
MB_MUST_CHECK int mb_stage_plan(struct mb_stage *s, int64_t layers, int pp, int pp_rank,
                                int vp, int64_t first_layers, int64_t last_layers,
                                const char *where);

/* Global index of local layer LOCAL. */
int64_t mb_stage_global_layer(const struct mb_stage *s, int64_t local);

/* The local index of global layer GLOBAL, or -1 when this rank does not hold it. */
int64_t mb_stage_local_layer(const struct mb_stage *s, int64_t global);

/* Chunk J is the model's first (holds the embedding) / last (holds the head). */
static inline bool mb_stage_has_embedding(const struct mb_stage *s, int j)
{
    return s->first && j == 0;
}
static inline bool mb_stage_has_head(const struct mb_stage *s, int j)
{
    return s->last && j == s->chunks - 1;
}

#endif /* MB_NN_STAGE_H */
