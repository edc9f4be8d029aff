/* train/sched.c - Megatron's learning-rate schedule, formula for formula.
 *
 * The arithmetic follows megatron/core/optimizer_param_scheduler.py get_lr() in the
 * same order of operations (e.g. warmup is init + (max - init) * n / w, not
 * init + (max - init) * (n / w)), in samples rather than iterations, so results agree
 * bit for bit with Python floats on the same libm.
 */
#include "train/sched.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static const char *decay_names[] = { "constant", "linear", "cosine", "inverse-square-root",
                                     "WSD" };
static const char *wsd_names[] = { "linear", "cosine", "exponential", "minus_sqrt" };

int mb_lr_decay_parse(const char *name)
{
    for (size_t k = 0; k < MB_ARRAY_LEN(decay_names); k++)
        if (strcmp(name, decay_names[k]) == 0)
            return (int)k;
    return -1;
}

int mb_lr_wsd_decay_parse(const char *name)
{
    for (size_t k = 0; k < MB_ARRAY_LEN(wsd_names); k++)
        if (strcmp(name, wsd_names[k]) == 0)
            return (int)k;
    return -1;
}

/* WSD: 1 until the last wsd_decay steps of the decay, then the annealing shape. */
static double wsd_coeff(const struct mb_lr_schedule *s, int64_t n, int64_t decay)
{
    int64_t wsd = s->wsd_decay_iters * s->batch;
    int64_t anneal_start = decay - wsd;

    if (n <= anneal_start)
        return 1.0;
    double r = (double)(n - anneal_start) / (double)wsd;
    switch (s->wsd_decay) {
    case MB_LR_WSD_LINEAR:
        return 1.0 - r;
    case MB_LR_WSD_COSINE:
        return 0.5 * (cos(M_PI * r) + 1.0);
    case MB_LR_WSD_EXPONENTIAL:
        return 2.0 * pow(0.5, r) - 1.0;
    case MB_LR_WSD_MINUS_SQRT:
        return 1.0 - sqrt(r);
    }
    MB_ASSERT(!"known WSD decay style");
    return 0.0;
}

double mb_lr_at(const struct mb_lr_schedule *s, int64_t iteration)
{
    int64_t n = iteration * s->batch;
    int64_t warmup = s->warmup_iters * s->batch;
    int64_t decay = s->decay_iters * s->batch;

    if (warmup > 0 && n <= warmup)
        return s->warmup_init + (s->max_lr - s->warmup_init) * (double)n / (double)warmup;
    if (s->decay == MB_LR_CONSTANT)
        return s->max_lr;
    if (n > decay)
        return s->min_lr;
    if (s->decay == MB_LR_INVERSE_SQRT) {
        double lr = s->max_lr * sqrt((double)MB_MAX(warmup, 1)) / sqrt((double)MB_MAX(n, 1));
        return MB_MAX(s->min_lr, lr);
    }
    double ratio = (double)(n - warmup) / (double)(decay - warmup);
    double coeff;
    switch (s->decay) {
    case MB_LR_LINEAR:
        coeff = 1.0 - ratio;
        break;
    case MB_LR_COSINE:
        coeff = 0.5 * (cos(M_PI * ratio) + 1.0);
        break;
    default:
        coeff = wsd_coeff(s, n, decay);
        break;
    }
    return s->min_lr + coeff * (s->max_lr - s->min_lr);
}

int mb_lr_schedule_check(const struct mb_lr_schedule *s)
{
    if (!(s->min_lr >= 0.0))
        return mb_err_set(MB_E_INVALID, "min_lr", "%g must not be negative", s->min_lr);
    if (!(s->max_lr >= s->min_lr))
        return mb_err_set(MB_E_INVALID, "lr", "%g is below min_lr %g", s->max_lr, s->min_lr);
    if (!(s->warmup_init <= s->max_lr))
        return mb_err_set(MB_E_INVALID, "lr_warmup_init", "%g is above lr %g", s->warmup_init,
                          s->max_lr);
    if (s->decay_iters <= 0)
        return mb_err_set(MB_E_INVALID, "lr_decay_iters", "must be positive, not %lld",
                          (long long)s->decay_iters);
    if (s->warmup_iters < 0 || s->warmup_iters >= s->decay_iters)
        return mb_err_set(MB_E_INVALID, "lr_warmup_iters",
                          "%lld must be at least 0 and less than lr_decay_iters %lld",
                          (long long)s->warmup_iters, (long long)s->decay_iters);
    if (s->decay == MB_LR_WSD && s->wsd_decay_iters <= 0)
        return mb_err_set(MB_E_INVALID, "lr_wsd_decay_iters",
                          "the WSD schedule needs a positive lr_wsd_decay_iters");
    if (s->batch < 1)
        return mb_err_set(MB_E_INVALID, "global batch size", "must be positive, not %lld",
                          (long long)s->batch);
    return 0;
}

/* The config key that holds the field a failed check named. */
static const char *key_of_field(const char *field)
{
    static const char *map[][2] = {
        { "min_lr", "optimizer.min_lr" },
        { "lr", "optimizer.lr" },
        { "lr_warmup_init", "scheduler.lr_warmup_init" },
        { "lr_decay_iters", "scheduler.lr_decay_iters" },
        { "lr_warmup_iters", "scheduler.lr_warmup_iters" },
        { "lr_wsd_decay_iters", "scheduler.lr_wsd_decay_iters" },
    };
    for (size_t k = 0; k < MB_ARRAY_LEN(map); k++)
        if (strcmp(field, map[k][0]) == 0)
            return map[k][1];
    return NULL;
}

static int required(const mb_config *cfg, const char *key)
{
    if (mb_config_has(cfg, key))
        return 0;
    return mb_err_set(MB_E_INVALID, key, "is required (set it in the recipe or as %s=...)",
                      key);
}

int mb_lr_schedule_from_config(struct mb_lr_schedule *s, const mb_config *cfg, int64_t batch)
{
    static const char *keys[] = { "optimizer.lr", "scheduler.lr_decay_style",
                                  "scheduler.lr_wsd_decay_style" };
    for (size_t k = 0; k < MB_ARRAY_LEN(keys); k++)
        if (required(cfg, keys[k]) != 0)
            return -1;
    *s = (struct mb_lr_schedule){
        .decay = mb_lr_decay_parse(mb_config_str(cfg, "scheduler.lr_decay_style")),
        .wsd_decay = mb_lr_wsd_decay_parse(mb_config_str(cfg, "scheduler.lr_wsd_decay_style")),
        .max_lr = mb_config_double(cfg, "optimizer.lr"),
        .min_lr = mb_config_double(cfg, "optimizer.min_lr"),
        .warmup_init = mb_config_double(cfg, "scheduler.lr_warmup_init"),
        .warmup_iters = mb_config_i64(cfg, "scheduler.lr_warmup_iters"),
        .decay_iters = mb_config_i64(cfg, "scheduler.lr_decay_iters"),
        .wsd_decay_iters = mb_config_i64(cfg, "scheduler.lr_wsd_decay_iters"),
        .batch = batch,
    };
    /* the schema's choices admit only names these parsers know */
    MB_ASSERT((int)s->decay >= 0 && (int)s->wsd_decay >= 0);
    const char *decay_key = "scheduler.lr_decay_iters";
    if (s->decay_iters == 0) {
        if (required(cfg, "train.train_iters") != 0)
            return -1;
        s->decay_iters = mb_config_i64(cfg, "train.train_iters");
        decay_key = "train.train_iters";
    }
    if (mb_lr_schedule_check(s) == 0)
        return 0;
    const char *key = key_of_field(mb_err_where());
    if (!key)
        return -1;
    if (strcmp(key, "scheduler.lr_decay_iters") == 0)
        key = decay_key;
    char what[1200];
    snprintf(what, sizeof what, "%s %s", key, mb_err_what());
    return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key), "%s", what);
}
