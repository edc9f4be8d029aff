/* train/optim.c - AdamW and gradient clipping. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

int mb_adamw_init(struct mb_adamw *o, const struct mb_ops *ops,
                  const struct mb_param_table *params, int64_t lo, int64_t hi, float beta1,
                  float beta2, float eps, float weight_decay)
{
    memset(o, 0, sizeof(*o));
    o->ops = ops;
    o->ex = ops->exec;
    o->params = params;
    o->lo = lo;
    o->hi = hi;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    size_t bytes = (size_t)(hi > lo ? hi - lo : 1) * sizeof(float);
    o->exp_avg = ops->alloc(o->ex, bytes);
    o->exp_avg_sq = ops->alloc(o->ex, bytes);
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
    o->ops->free(o->ex, o->exp_avg);
    o->ops->free(o->ex, o->exp_avg_sq);
    o->exp_avg = o->exp_avg_sq = NULL;
    free(o->bf16);
    o->bf16 = NULL;
}

void mb_adamw_keep_bf16(struct mb_adamw *o, int i, uint16_t *copy)
{
    if (!o->bf16)
        o->bf16 = mb_xcalloc((size_t)o->params->count, sizeof *o->bf16);
    o->bf16[i] = copy;
}

/* The part [*S, *E) of parameter P inside [lo, hi); false when none. */
static bool piece(const struct mb_param *p, int64_t lo, int64_t hi, int64_t *s, int64_t *e)
{
    *s = p->offset > lo ? p->offset : lo;
    *e = p->offset + p->numel < hi ? p->offset + p->numel : hi;
    return *s < *e;
}

void mb_adamw_step(struct mb_adamw *o, float *w, const float *g, float grad_scale, float lr)
{
    o->step++;
    for (int i = 0; i < o->params->count; i++) {
        const struct mb_param *p = &o->params->items[i];
        int64_t s, e;
        if (!piece(p, o->lo, o->hi, &s, &e))
            continue;
        struct mb_adamw_args a = {
            .lr = lr,
            .beta1 = o->beta1,
            .beta2 = o->beta2,
            .eps = o->eps,
            .weight_decay = p->no_weight_decay ? 0.0f : o->weight_decay,
            .step = o->step,
            .grad_scale = grad_scale,
        };
        int64_t at = s - o->lo;
        uint16_t *pb = o->bf16 && o->bf16[i] ? o->bf16[i] + (s - p->offset) : NULL;
        o->ops->adamw(o->ex, w + s, g + at, o->exp_avg + at, o->exp_avg_sq + at, e - s, &a, pb);
    }
}

int mb_grad_norm_weights(const struct mb_param_table *params, int tp_rank, double *weight)
{
    int all_one = 1;
    for (int i = 0; i < params->count; i++) {
        const struct mb_param *p = &params->items[i];
        bool once = !p->pp_shared && (!p->tp_replicated || tp_rank == 0);
        weight[i] = p->trainable && once ? 1.0 : 0.0;
        all_one &= weight[i] == 1.0;
    }
    return all_one;
}

double mb_grad_sumsq(const struct mb_ops *ops, struct mb_exec *ex,
                     const struct mb_param_table *params, const float *g, int64_t lo, int64_t hi,
                     const double *weight)
{
    if (!weight)
        return hi > lo ? ops->sumsq(ex, g, hi - lo) : 0.0;
    double sum = 0;
    for (int i = 0; i < params->count; i++) {
        int64_t s, e;
        if (weight[i] != 0 && piece(&params->items[i], lo, hi, &s, &e))
            sum += weight[i] * ops->sumsq(ex, g + (s - lo), e - s);
    }
    return sum;
}

float mb_clip_coeff(double norm, double clip)
{
    double coeff = clip > 0 ? clip / (norm + 1e-6) : 1.0;
    return coeff < 1.0 ? (float)coeff : 1.0f;
}
