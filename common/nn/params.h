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

#include "core/defs.h"
#include "nn/config.h"
#include "nn/stage.h"
#include "peft/peft.h"

#define MB_PARAM_MAX_DIMS 3

enum mb_param_init {
    MB_INIT_NORMAL,        /* N(0, init_method_std) */
    MB_INIT_NORMAL_SCALED, /* N(0, init_method_std / sqrt(2 num_layers)): output projections */
    MB_INIT_ONES,
    MB_INIT_ZEROS,
    MB_INIT_XAVIER,        /* adapters (peft/peft.h): N(0, sqrt(2 / (in + r))) over [r, in] */
    MB_INIT_LORA_NORMAL,   /* N(0, 0.2) */
    MB_INIT_KAIMING,       /* U(-1/sqrt(in), 1/sqrt(in)), in the last axis */
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
    /* adapters (peft/peft.h), per module: A (linear_in), B (linear_out), DoRA magnitude */
    MB_P_QKV_LORA_A,
    MB_P_QKV_LORA_B,
    MB_P_QKV_DORA_M,
    MB_P_PROJ_LORA_A,
    MB_P_PROJ_LORA_B,
    MB_P_PROJ_DORA_M,
    MB_P_FC1_LORA_A,
    MB_P_FC1_LORA_B,
    MB_P_FC1_DORA_M,
    MB_P_FC2_LORA_A,
    MB_P_FC2_LORA_B,
    MB_P_FC2_DORA_M,
    MB_P_COUNT
};

/* The adapter tensor ids of module M: A, B and the DoRA magnitude. */
static inline enum mb_param_id mb_param_adapter_id(enum mb_peft_module m, int which)
{
    return (enum mb_param_id)(MB_P_QKV_LORA_A + 3 * (int)m + which);
}
enum { MB_ADAPTER_A = 0, MB_ADAPTER_B = 1, MB_ADAPTER_M = 2 };

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
    /* Pipeline parallelism (nn/stage.h): a per-layer parameter holds only this rank's
     * layers, axis 0 cut in NLAYER_SLAB blocks, one per model chunk (0: all layers). */
    int nlayer_slab;
    struct mb_param_slab layer_slab[MB_STAGE_MAX_CHUNKS];
    /* The last pipeline stage's copy of a tied word embedding (parallel.md 4.6): its
     * gradient is summed with the first stage's, and it is not counted in the norm. */
    bool pp_shared;
    bool no_weight_decay;      /* norms and biases */
    enum mb_param_init init;
    int64_t offset;            /* in floats, into the flat buffer */
    int64_t numel;             /* whole (stacked) tensor */
};

/* This rank's share of the model under tensor parallelism (parallel.md 2.2-2.9), computed
 * once from the configuration and the TP size and rank: the layer code reads these, never
 * the configuration's global sizes. At TP 1 they are the global sizes. */
struct mb_local_sizes {
    int tp, tp_rank;
    int64_t heads;       /* query heads, nH / TP */
    int64_t groups;      /* query groups (KV heads), nKV / TP: whole groups per rank */
    int64_t qkv_rows;    /* (heads + 2 groups) * kv_channels */
    int64_t ffn;         /* FFN width, I / TP */
    int64_t fc1_rows;    /* 2 ffn gated ([gate shard; up shard]), ffn plain */
    int64_t vocab_start; /* first vocabulary row (embedding and output layer) held here */
    int64_t vocab_rows;  /* rows held here: the vocabulary cut in TP near-equal blocks */
};

/* -1 with mb_err (naming WHERE, the TP size key) when CFG cannot be cut over TP ranks:
 * TP must divide the query heads, the query groups and the FFN width, and not exceed the
 * vocabulary. */
MB_MUST_CHECK int mb_local_sizes_check(const struct mb_model_config *cfg, int tp,
                                       const char *where);
/* The sizes of rank TP_RANK of TP (valid after mb_local_sizes_check). */
void mb_local_sizes_of(struct mb_local_sizes *s, const struct mb_model_config *cfg, int tp,
                       int tp_rank);

struct mb_param_table {
    struct mb_local_sizes loc; /* the sizes this table was laid out for */
    struct mb_stage stage;     /* and the layers (the whole model without a pipeline) */
    struct mb_param items[MB_P_COUNT];
    int count;
    int index[MB_P_COUNT];     /* id -> position in items, -1 when the model has none */
    int64_t total;             /* floats in the flat buffer */
    /* Floats at the start of the buffer whose parameters are frozen (a base model under
     * adapters): no gradient, no optimizer state. Every trainable parameter lies in
     * [frozen, total), and the gradient buffer holds only that range. 0 without peft. */
    int64_t frozen;
};

/* Lay out the parameters of CFG (every tensor whole: one process, TP 1). */
void mb_param_table_build(struct mb_param_table *t, const struct mb_model_config *cfg);
/* Lay out rank TP_RANK's shards of CFG's parameters under tensor parallelism TP
 * (formats.md 5.4): linear_qkv (weight, bias) by query groups, linear_fc1 by rows (gate
 * and up cut separately: 2 slabs), the word embedding and output layer by vocabulary
 * rows, linear_proj and linear_fc2 weights by columns (axis 2 of the stacked tensor);
 * norms, position embeddings and row-parallel biases whole (TP-replicated). CFG must
 * pass mb_local_sizes_check. */
void mb_param_table_build_tp(struct mb_param_table *t, const struct mb_model_config *cfg, int tp,
                             int tp_rank);

/* mb_param_table_build_tp for the pipeline stage STAGE (nn/stage.h): the per-layer
 * parameters hold its layers only; the word embedding is on the first stage (and, tied
 * to the output layer, a copy on the last: pp_shared), learned positions on the first,
 * the final norm and output layer on the last. */
void mb_param_table_build_stage(struct mb_param_table *t, const struct mb_model_config *cfg,
                                int tp, int tp_rank, const struct mb_stage *stage);

/* Add the adapters of PC (peft/peft.h; nothing for MB_PEFT_NONE) to a table built by
 * mb_param_table_build_tp for CFG: A and B of each targeted module, and DoRA's magnitude,
 * stacked over the layers as the base weights are and cut over TP with the base layer
 * (peft/peft.h); every parameter already in the table becomes frozen. The names are
 * Megatron Bridge's: "decoder.layers.self_attention.linear_qkv.adapter.linear_in.weight"
 * (A), ".adapter.linear_out.weight" (B), ".adapter.weight_magnitude" (m). */
void mb_param_table_add_adapters(struct mb_param_table *t, const struct mb_model_config *cfg,
                                 const struct mb_peft_config *pc);

/* The parameter with ID, or NULL when this model has none (or ID is MB_P_COUNT). */
const struct mb_param *mb_param_get(const struct mb_param_table *t, enum mb_param_id id);

/* Offset (in floats) of layer LAYER's slice of a per-layer parameter, or of the whole
 * parameter when it is not per layer; -1 when the model has no such parameter. */
int64_t mb_param_offset(const struct mb_param_table *t, enum mb_param_id id, int64_t layer);

/* Initialise the flat host buffer W (t->total floats) from SEED. Each element's value
 * depends only on (seed, parameter name, index of the element in the whole logical
 * tensor, found from the slabs), so every parallel layout starts from the same weights. */
void mb_param_init_all(const struct mb_param_table *t, const struct mb_model_config *cfg,
                       uint64_t seed, float *w);

/* Index in the whole logical tensor (global_shape, row-major) of element E of P's local
 * tensor on this rank (through its TP slabs and its pipeline layer slabs). */
int64_t mb_param_global_index(const struct mb_param *p, int64_t e);

/* Number of parameters in matrix multiplications (for FLOP counts) of the whole model
 * (global shapes): every 2-D weight except embeddings, plus the output layer (tied or
 * not). */
int64_t mb_param_matmul_count(const struct mb_param_table *t, const struct mb_model_config *cfg);
/* The same over the trainable (TRAINABLE) or the frozen parameters only. */
int64_t mb_param_matmul_count_of(const struct mb_param_table *t,
                                 const struct mb_model_config *cfg, bool trainable);

#endif /* MB_NN_PARAMS_H */
