/* train/optim.h - AdamW over the flat parameter buffer, and global-norm gradient clipping.
 *
 * The moments live in two flat buffers with the parameters' layout. Weight decay is
 * decoupled (AdamW) and skipped for norms and biases (nn/params.h: no_weight_decay), as
 * Megatron does.
 */
#ifndef MB_TRAIN_OPTIM_H
#define MB_TRAIN_OPTIM_H

#include <stdint.h>

#include "core/defs.h"
#include "kern/ops.h"
#include "nn/params.h"

struct mb_adamw {
    const struct mb_ops *ops;
    const struct mb_param_table *params;
    float *exp_avg;      /* backend memory, params->total floats */
    float *exp_avg_sq;
    int64_t step;        /* updates done so far */
    float beta1, beta2, eps, weight_decay;
};

MB_MUST_CHECK int mb_adamw_init(struct mb_adamw *o, const struct mb_ops *ops,
                                const struct mb_param_table *params, float beta1, float beta2,
                                float eps, float weight_decay);
void mb_adamw_free(struct mb_adamw *o);

/* One update of W from G with learning rate LR. */
void mb_adamw_step(struct mb_adamw *o, float *w, const float *g, float lr);

/* The global L2 norm of G (params->total floats). If CLIP > 0 and the norm exceeds it,
 * G is scaled by clip / (norm + 1e-6), as Megatron's clip_grad_norm does. */
double mb_clip_grad_norm(const struct mb_ops *ops, float *g, int64_t n, double clip);
/* The clipping of mb_clip_grad_norm for a global norm NORM computed by the caller (over
 * several ranks' shards). */
void mb_clip_grad_to(const struct mb_ops *ops, float *g, int64_t n, double norm, double clip);

#endif /* MB_TRAIN_OPTIM_H */
