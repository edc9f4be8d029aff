/* train/optim.h - AdamW over a range of the flat parameter buffer, and global-norm
 * gradient clipping.
 *
 * The optimizer updates the range [lo, hi) of the flat buffer: all of it, or with the
 * distributed optimizer this rank's shard (train/gradsync.h). The moments hold hi - lo
 * floats with the parameters' layout from lo; a range may cut a parameter, and weight
 * decay is still per parameter: decoupled (AdamW) and skipped for norms and biases
 * (nn/params.h: no_weight_decay), as Megatron does.
 */
#ifndef MB_TRAIN_OPTIM_H
#define MB_TRAIN_OPTIM_H

#include <stdint.h>

#include "core/defs.h"
#include "kern/ops.h"
#include "nn/params.h"

struct mb_adamw {
    const struct mb_ops *ops;
    struct mb_exec *ex;  /* the context its ops run in (kern/ops.h) */
    const struct mb_param_table *params;
    int64_t lo, hi;      /* the range of the flat buffer it updates */
    float *exp_avg;      /* backend memory, hi - lo floats */
    float *exp_avg_sq;
    int64_t step;        /* updates done so far */
    float beta1, beta2, eps, weight_decay;
    /* Per parameter (params->items index): the bf16 copy each step also writes from the
     * weights it updates (mb_adamw_keep_bf16), or NULL; the array is NULL when none is. */
    uint16_t **bf16;
};

MB_MUST_CHECK int mb_adamw_init(struct mb_adamw *o, const struct mb_ops *ops,
                                const struct mb_param_table *params, int64_t lo, int64_t hi,
                                float beta1, float beta2, float eps, float weight_decay);
void mb_adamw_free(struct mb_adamw *o);
/* From now on each step also writes parameter I's bf16 copy COPY (backend memory, the
 * parameter's numel elements in its order) from the weights it updates: the bits the
 * ops' convert would give, without a pass over the weights of its own. The caller keeps
 * COPY alive. */
void mb_adamw_keep_bf16(struct mb_adamw *o, int i, uint16_t *copy);

/* One update of W[lo, hi) (W: the whole flat buffer) from G (hi - lo floats, the
 * gradients of that range) times GRAD_SCALE (mb_clip_coeff; G itself is not changed)
 * with learning rate LR. */
void mb_adamw_step(struct mb_adamw *o, float *w, const float *g, float grad_scale, float lr);

/* How much each parameter's gradient counts in the global norm (WEIGHT, params->count
 * entries): 0 for one the optimizer does not train, 0 on all TP ranks but the first for
 * one replicated across TP (its copies are equal: count it once; parallel.md 2.10), 0
 * for the last pipeline stage's copy of a tied embedding (parallel.md 4.6), else 1. Returns 1 when every weight is 1. */
int mb_grad_norm_weights(const struct mb_param_table *params, int tp_rank, double *weight);

/* The sum of squares of the gradients G of the range [lo, hi) of the flat buffer (G
 * indexed from lo), each parameter's part times WEIGHT[its index]; WEIGHT NULL: all 1,
 * summed in one pass over the range (bitwise the sum of the whole-buffer norm before
 * ranges existed). The caller sums it over the ranks holding the other ranges and
 * takes the square root. */
double mb_grad_sumsq(const struct mb_ops *ops, struct mb_exec *ex,
                     const struct mb_param_table *params, const float *g, int64_t lo, int64_t hi,
                     const double *weight);

/* The factor the gradients are scaled by for the global norm NORM: clip / (norm + 1e-6)
 * if CLIP > 0 and that is below 1, as Megatron's clip_grad_norm does; else 1. */
float mb_clip_coeff(double norm, double clip);

#endif /* MB_TRAIN_OPTIM_H */
