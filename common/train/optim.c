/* train/optim.c - AdamW and gradient clipping. */
#include "train/optim.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

int mb_adamw_init(struct mb_adamw *o, const struct mb_ops *ops,
                  const struct mb_param_table *params, float beta1, float beta2, float eps,
                  float weight_decay)
{
    memset(o, 0, sizeof(*o));
    o->ops = ops;
    o->params = params;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    size_t bytes = (size_t)params->total * sizeof(float);
    o->exp_avg = ops->alloc(bytes);
    o->exp_avg_sq = ops->alloc(bytes);
    if (!o->exp_avg || !o->exp_avg_sq) {
        mb_adamw_free(o);
        return mb_err_wrap("optimizer state");
    }
    return 0;
}

void mb_adamw_free(struct mb_adamw *o)
{
    if (!o->ops)
        return;
    o->ops->free(o->exp_avg);
    o->ops->free(o->exp_avg_sq);
    o->exp_avg = o->exp_avg_sq = NULL;
}

void mb_adamw_step(struct mb_adamw *o, float *w, const float *g, float lr)
{
    o->step++;
    for (int i = 0; i < o->params->count; i++) {
        const struct mb_param *p = &o->params->items[i];
        struct mb_adamw_args a = {
            .lr = lr,
            .beta1 = o->beta1,
            .beta2 = o->beta2,
            .eps = o->eps,
            .weight_decay = p->no_weight_decay ? 0.0f : o->weight_decay,
            .step = o->step,
        };
        o->ops->adamw(w + p->offset, g + p->offset, o->exp_avg + p->offset,
                      o->exp_avg_sq + p->offset, p->numel, &a);
    }
}

double mb_clip_grad_norm(const struct mb_ops *ops, float *g, int64_t n, double clip)
{
    double norm = sqrt(ops->sumsq(g, n));
    mb_clip_grad_to(ops, g, n, norm, clip);
    return norm;
}

void mb_clip_grad_to(const struct mb_ops *ops, float *g, int64_t n, double norm, double clip)
{
    double coeff = clip > 0 ? clip / (norm + 1e-6) : 1.0;
    if (coeff < 1.0)
        ops->scale(g, (float)coeff, n);
}
