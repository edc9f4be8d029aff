/* nn/model.h - the decoder-only transformer, forward and hand-written backward.
 *
 * One code path for every family of nn/config.h, written against the op table of
 * kern/ops.h. A step runs the forward pass, the loss (the vocabulary projection and the
 * cross-entropy chunk by chunk, so the [B*T, V] logits never exist at once) and, when
 * asked, the backward pass, accumulating into the flat gradient buffer.
 */
#ifndef MB_NN_MODEL_H
#define MB_NN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "dist/pstate.h"
#include "kern/ops.h"
#include "nn/config.h"
#include "nn/params.h"
#include "nn/stage.h"

/* One micro-batch, B sequences of T tokens, host memory, row-major [B, T]. */
struct mb_batch {
    int64_t batch;
    int64_t seq;
    const int32_t *tokens;
    const int32_t *labels;       /* < 0: no loss at this position */
    const float *loss_mask;      /* 0 or 1 */
    const int32_t *position_ids; /* NULL: 0 .. T-1 in every row */
    /* NULL: one sequence per row. Else [B, T] the index of the document (packed example)
     * each token belongs to, non-decreasing along a row: attention never crosses from one
     * document to another (kern/ops.h doc_start). */
    const int32_t *segment_ids;
};

struct mb_acts; /* activations saved for the backward pass (nn/model.c) */

struct mb_model {
    struct mb_model_config cfg;
    const struct mb_ops *ops;
    struct mb_exec *ex;          /* the context its ops run in (kern/ops.h) */
    struct mb_param_table params;
    float *w;                    /* flat parameters, params.total floats */
    float *g;                    /* flat gradients, same layout */
    float *rope_global;          /* [max_pos, rot/2, 2] cos, sin */
    float *rope_local;           /* sliding layers of Gemma 3; else == rope_global */
    float *vocab_mask;           /* [vocab rows here] 0, or -inf on padded rows (config.h
                                  * real_vocab_size), added to the logits; NULL: none here */
    struct mb_acts *acts;
    /* Pipeline parallelism: the layers held here (the whole model without a pipeline),
     * and the activations of the micro-batches in flight (mb_model_pipe_reserve). */
    struct mb_stage stage;
    struct mb_acts **pipe_slots;
    int pipe_nslots;
    struct mb_acts *pipe_scratch;
    /* Tensor parallelism: the group this rank's shards belong to (a group of one for the
     * whole model), this rank's sizes (== &params.loc), and sequence parallelism. */
    const struct mb_group *tp;
    const struct mb_local_sizes *loc;
    bool sequence_parallel;
    /* When set, the backward pass calls it as each stage's gradients of this micro-batch
     * are done: LAYER = num_layers after the output layer and final norm, then LAYER = l
     * after layer l. The gradients of that stage are final then, their TP sums included
     * (mb_model_finish_grads is then done for the step). The trainer sets it for the last micro-batch of a step, to start
     * reducing finished gradient buckets during the backward (train/gradsync.h). */
    void (*grad_ready)(void *ctx, int64_t layer);
    void *grad_ready_ctx;
    bool tp_grads_summed;        /* this step's TP-partial gradients are summed already */
    /* Adapters (peft/peft.h; peft.kind NONE: none): the base is frozen and m->g holds
     * only the trainable range [params.frozen, params.total). The scratch the adapters
     * share, and DoRA's row norms of the last forward ([L, out] per targeted module). */
    struct mb_peft_config peft;
    struct mb_adapter_scratch *peft_scratch;
    float *peft_norm[MB_PEFT_MODULES];
    /* LoRA dropout (peft.dropout > 0): applied while PEFT_DROPOUT_ON, which the trainer
     * sets, with the micro-batch's first sample, for each training micro-batch only. */
    struct mb_adapter_dropout peft_dropout;
    bool peft_dropout_on;
    bool peft_norms_fixed;       /* mb_model_fix_norms was called */
    /* bf16 mixed precision (mb_model_set_bf16; DESIGN.md 5): the bf16 copy of the weights
     * the GEMMs read (the four projections and the output layer, one after the other),
     * and where each parameter's copy starts in it (-1: none); NULL: fp32. */
    uint16_t *wb;
    int64_t wb_at[MB_P_COUNT];
    /* With wb and gradients: per parameter id and local layer ([id * layers + l]), true
     * while that weight's gradient holds nothing of this step yet. mb_model_zero_grad
     * leaves such gradients as they are and sets these; the first weight-gradient GEMM
     * then writes its product (beta 0, not read-add onto zeros: the same values) and
     * clears it. For the four projections and an untied output layer (nn/linear.h). */
    bool *gw_fresh;
};

/* Lay out CFG's parameters and allocate weights (zeroed), gradients and RoPE tables. */
MB_MUST_CHECK int mb_model_init(struct mb_model *m, const struct mb_model_config *cfg,
                                const struct mb_ops *ops);
/* The same without a gradient buffer (m->g is NULL), for forward passes only: the
 * cached inference of nn/infer.h, or mb_model_step with GRAD_SCALE 0. */
MB_MUST_CHECK int mb_model_init_inference(struct mb_model *m, const struct mb_model_config *cfg,
                                          const struct mb_ops *ops);
/* mb_model_init for member TP->rank of the tensor-parallel group TP: the model holds that
 * rank's shards (nn/params.h) and every step communicates over TP (nn/linear.h); with
 * SEQUENCE_PARALLEL the residual stream is cut on the token rows too (B*T must then be a
 * multiple of TP). -1 with mb_err when CFG does not pass mb_local_sizes_check. A TP group
 * of one is the plain model, bit for bit. */
MB_MUST_CHECK int mb_model_init_tp(struct mb_model *m, const struct mb_model_config *cfg,
                                   const struct mb_ops *ops, const struct mb_group *tp,
                                   bool sequence_parallel);
/* mb_model_init_inference with the adapters of PC (kind NONE: none) on its linear
 * layers, applied unmerged: for generating with an adapter-only checkpoint. */
MB_MUST_CHECK int mb_model_init_inference_peft(struct mb_model *m,
                                               const struct mb_model_config *cfg,
                                               const struct mb_ops *ops,
                                               const struct mb_peft_config *pc);
/* mb_model_init_tp with the adapters of PC on its linear layers (nn/params.h
 * mb_param_table_add_adapters): the base is frozen, and the gradient buffer holds only
 * the adapters. PC of kind MB_PEFT_NONE: mb_model_init_tp. */
MB_MUST_CHECK int mb_model_init_peft(struct mb_model *m, const struct mb_model_config *cfg,
                                     const struct mb_ops *ops, const struct mb_group *tp,
                                     bool sequence_parallel, const struct mb_peft_config *pc);
/* mb_model_init_peft for pipeline stage STAGE (nn/stage.h): the model holds that
 * stage's layers (and the embedding / head where the stage has them), and runs by
 * chunks (mb_model_chunk_forward) instead of mb_model_step. A whole-model STAGE is
 * mb_model_init_peft. */
MB_MUST_CHECK int mb_model_init_stage(struct mb_model *m, const struct mb_model_config *cfg,
                                      const struct mb_ops *ops, const struct mb_group *tp,
                                      bool sequence_parallel, const struct mb_peft_config *pc,
                                      const struct mb_stage *stage);
void mb_model_free(struct mb_model *m);

/* Pipeline: activations for SLOTS micro-batches of BATCH x SEQ in flight at once (one
 * slot per (micro-batch, chunk) forward whose backward is pending). -1 with mb_err when
 * out of memory; *BYTES the activation memory that takes. */
MB_MUST_CHECK int mb_model_pipe_reserve(struct mb_model *m, int slots, int64_t batch,
                                        int64_t seq, int64_t *bytes);
/* Floats of the tensor passed between stages: the residual stream of one micro-batch on
 * this rank, [B*T, H] (its sequence-parallel rows under SP; parallel.md 4.2). */
int64_t mb_model_pipe_numel(const struct mb_model *m, int64_t batch, int64_t seq);
/* Forward of chunk CHUNK (of this stage) on micro-batch B, keeping what its backward
 * needs in slot SLOT. Its input is the embedding of B in the model's first chunk, else X;
 * its output goes to Y, except in the model's last chunk, which computes the loss
 * (*LOSS_SUM, *MASK_SUM as mb_model_step) and, when GRAD_SCALE != 0, the gradient of
 * GRAD_SCALE * that sum at the head, kept in the slot. -1 with mb_err on a bad batch. */
MB_MUST_CHECK int mb_model_chunk_forward(struct mb_model *m, int chunk, int slot,
                                         const struct mb_batch *b, const float *x, float *y,
                                         float grad_scale, double *loss_sum, double *mask_sum);
/* Backward of chunk CHUNK for the micro-batch B forwarded in SLOT: from DY, the gradient
 * of its output (unused in the model's last chunk), adding to m->g, into DX, the gradient
 * of its input (unused in the model's first chunk: the embedding gradients instead). */
void mb_model_chunk_backward(struct mb_model *m, int chunk, int slot, const struct mb_batch *b,
                             const float *dy, float *dx);

/* DoRA: set every magnitude to the row norms of its base weight (summed over TP for a
 * row-parallel layer), so that the adapted layer starts equal to the base
 * (finetune.md 2.1). Call once the base weights are final; nothing without DoRA. */
void mb_model_init_magnitudes(struct mb_model *m);

/* DoRA in a model whose weights no longer change (generation): compute the row norms
 * of every adapted layer once, instead of in every forward pass. Nothing without DoRA. */
void mb_model_fix_norms(struct mb_model *m);

/* The gradient of parameter P (its first element) in m->g, or NULL when P is frozen or
 * the model has no gradients. */
float *mb_model_grad_of(const struct mb_model *m, const struct mb_param *p);

/* bf16 mixed precision (DESIGN.md 5): from now on every linear layer and the output
 * layer run their GEMMs on bf16 inputs and weights with fp32 results; without sequence
 * parallelism and adapters the layers keep their saved activations in bf16 where they
 * can (nn/internal.h mb_layer_acts). Master weights, gradients, norms, attention's
 * arithmetic, the residual stream and the loss stay fp32. Allocates the bf16 copy of the
 * GEMMs' weights (filled from them). Call after init, before the first step. -1 with
 * mb_err when out of memory. */
MB_MUST_CHECK int mb_model_set_bf16(struct mb_model *m);

/* The weights changed (initialisation, load, optimizer step): refresh the bf16 shadow
 * from them. Nothing in fp32. */
void mb_model_weights_changed(struct mb_model *m);
/* The same for parameter ID's weights alone. */
void mb_model_weight_changed(struct mb_model *m, enum mb_param_id id);

/* The bf16 copy of parameter ID's weights of local layer L (any L for a parameter that
 * is not per layer), or NULL: fp32, or no GEMM reads it. */
uint16_t *mb_model_bf16_weight(const struct mb_model *m, enum mb_param_id id, int64_t l);
/* The m->gw_fresh flag of parameter ID's layer L, or NULL where the weight's gradient
 * is zeroed and added to as any other. */
bool *mb_model_gw_fresh(const struct mb_model *m, enum mb_param_id id, int64_t l);

/* Initialise the weights from SEED (nn/params.h: same weights for any layout). */
void mb_model_init_weights(struct mb_model *m, uint64_t seed);

/* Forward and loss on B. Returns the sum over positions of loss_mask * token loss in
 * *LOSS_SUM and the sum of the mask in *MASK_SUM. When GRAD_SCALE != 0, also runs the
 * backward pass of GRAD_SCALE * (that sum) and adds the result to m->g. LOGITS, when
 * not NULL, receives the [B*T, V] logits (after final soft-capping) in host memory
 * (TP 1 only). Under TP every rank of the group passes the same batch and gets the same
 * loss: the vocabulary-parallel cross-entropy never gathers the logits.
 * Returns -1 with mb_err set on a bad batch (ids out of range, T too long). */
MB_MUST_CHECK int mb_model_step(struct mb_model *m, const struct mb_batch *b, float grad_scale,
                                double *loss_sum, double *mask_sum, float *logits);

/* 0 when mb_model_step would take B, else -1 with its mb_err (ids out of range, a
 * position too far, rows that do not split over sequence parallelism, packed documents
 * out of order): a pipeline checks every micro-batch before its stages start. */
MB_MUST_CHECK int mb_model_check_batch(struct mb_model *m, const struct mb_batch *b);

/* The attention shape of layer LAYER of C for BATCH rows of SEQ new positions: heads,
 * groups, head size, softmax scale, soft-cap and the layer's window. */
struct mb_attn_shape mb_model_attn_shape(const struct mb_model_config *c, int64_t layer,
                                         int64_t batch, int64_t seq);

/* Zero the gradients. */
void mb_model_zero_grad(struct mb_model *m);

/* After the last backward pass of a step: sum over TP the gradients of which each rank
 * computed only a part (parallel.md 2.5): q/k_layernorm (each rank normalises its own
 * heads) and, under sequence parallelism, every norm and row-parallel bias (each rank
 * sees its own tokens). Nothing to do at TP 1. */
void mb_model_finish_grads(struct mb_model *m);

/* This rank's part of the squared global gradient norm (parallel.md 2.10): the
 * TP-sharded gradients, and the TP-replicated ones on TP rank 0 only. Summed over the
 * model-parallel group it is the norm of the whole model's gradient. */
double mb_model_grad_sumsq(const struct mb_model *m);

/* Model FLOPs of one token, forward + backward: 6 per matmul parameter (the output
 * layer included; 4 for a frozen one, whose weight gradient is not computed) plus
 * 12 * layers * (heads * kv_channels) * T for the attention scores and values (the
 * usual PaLM / llm.c count, which does not halve for the causal mask). */
double mb_model_flops_per_token(const struct mb_model *m, int64_t seq);

#endif /* MB_NN_MODEL_H */
