/* nn/params.h - the parameter table of a model: names, shapes, places, initialisation.
 *
 * All parameters live in one flat fp32 buffer (and the gradients in another of the same
 * layout), so the optimizer, the gradient all-reduce and the global norm see one array.
 * Names are Megatron-Core's (formats.md 5.1) with the layer index left out: per-layer
 * parameters are stacked on a first axis of num_layers, as the checkpoint stores them.
 */
#ifndef MB_NN_PARAMS_H
#define MB_NN_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/config.h"

#define MB_PARAM_MAX_DIMS 3

enum mb_param_init {
    MB_INIT_NORMAL,        /* N(0, init_method_std) */
    MB_INIT_NORMAL_SCALED, /* N(0, init_method_std / sqrt(2 num_layers)): output projections */
    MB_INIT_ONES,
    MB_INIT_ZEROS,
};

/* Which tensor a parameter is; the model code looks its slices up by this id. */
enum mb_param_id {
    MB_P_WORD_EMB,
    MB_P_POS_EMB,
    MB_P_LN1_W,
    MB_P_LN1_B,
    MB_P_QKV_W,
    MB_P_QKV_B,
    MB_P_QNORM_W,
    MB_P_KNORM_W,
    MB_P_PROJ_W,
    MB_P_PROJ_B,
    MB_P_POST_ATTN_NORM_W,
    MB_P_LN2_W,
    MB_P_LN2_B,
    MB_P_FC1_W,
    MB_P_FC1_B,
    MB_P_FC2_W,
    MB_P_FC2_B,
    MB_P_POST_MLP_NORM_W,
    MB_P_FINAL_NORM_W,
    MB_P_FINAL_NORM_B,
    MB_P_OUTPUT_W,
    MB_P_COUNT
};

/* A block of a rank's local tensor along the shard axis: local indices [local_start,
 * local_start + count) are the logical tensor's [global_start, global_start + count). */
struct mb_param_slab {
    int64_t local_start, global_start, count;
};
#define MB_PARAM_MAX_SLABS 2 /* fused gate/up rows: a block of each */

struct mb_param {
    enum mb_param_id id;
    const char *name;          /* "decoder.layers.self_attention.linear_qkv.weight" */
    int ndim;
    int64_t shape[MB_PARAM_MAX_DIMS]; /* this rank's (local) tensor; per-layer: [num_layers, ...] */
    /* Tensor parallelism. GLOBAL_SHAPE is the logical tensor (as checkpoints store it);
     * SHARD_AXIS is the axis cut over the TP group, -1 when every TP rank holds all of
     * it, in NSLAB blocks (0 when not cut). TP_REPLICATED: the same values on every TP
     * rank (counted once in the gradient norm). TRAINABLE: the optimizer updates it. */
    int64_t global_shape[MB_PARAM_MAX_DIMS];
    int shard_axis;
    int nslab;
    struct mb_param_slab slab[MB_PARAM_MAX_SLABS];
    bool tp_replicated;
    bool trainable;
    bool per_layer;
    bool no_weight_decay;      /* norms and biases */
    enum mb_param_init init;
    int64_t offset;            /* in floats, into the flat buffer */
    int64_t numel;             /* whole (stacked) tensor */
};

struct mb_param_table {
    struct mb_param items[MB_P_COUNT];
    int count;
    int index[MB_P_COUNT];     /* id -> position in items, -1 when the model has none */
    int64_t total;             /* floats in the flat buffer */
};

/* Lay out the parameters of CFG. */
void mb_param_table_build(struct mb_param_table *t, const struct mb_model_config *cfg);

/* The parameter with ID, or NULL when this model has none. */
const struct mb_param *mb_param_get(const struct mb_param_table *t, enum mb_param_id id);

/* Offset (in floats) of layer LAYER's slice of a per-layer parameter, or of the whole
 * parameter when it is not per layer; -1 when the model has no such parameter. */
int64_t mb_param_offset(const struct mb_param_table *t, enum mb_param_id id, int64_t layer);

/* Initialise the flat host buffer W (t->total floats) from SEED. Each element's value
 * depends only on (seed, parameter name, index of the element in the whole logical
 * tensor), so every parallel layout starts from the same weights. */
void mb_param_init_all(const struct mb_param_table *t, const struct mb_model_config *cfg,
                       uint64_t seed, float *w);

/* Number of parameters in matrix multiplications (for FLOP counts): every 2-D weight
 * except embeddings, plus the output layer (tied or not). */
int64_t mb_param_matmul_count(const struct mb_param_table *t, const struct mb_model_config *cfg);

#endif /* MB_NN_PARAMS_H */
