/* train/sched.h - learning-rate schedules with Megatron's OptimizerParamScheduler.get_lr
 * semantics (megatron-core 0.16): linear warmup from lr_warmup_init to the peak, then
 * constant, linear, cosine, inverse-square-root or WSD decay to min_lr, then min_lr.
 *
 * Like Megatron-LM, steps are counted in samples: iteration I is step I x batch, and the
 * warmup and decay lengths are given in iterations and multiplied by batch (the global
 * batch size), so the values match Megatron's to the last bit. The weight-decay
 * increment schedule is not provided (mb keeps weight decay constant).
 */
#ifndef MB_TRAIN_SCHED_H
#define MB_TRAIN_SCHED_H

#include <stdint.h>

#include "core/config.h"
#include "core/defs.h"

enum mb_lr_decay {
    MB_LR_CONSTANT,
    MB_LR_LINEAR,
    MB_LR_COSINE,
    MB_LR_INVERSE_SQRT,
    MB_LR_WSD,
};

/* The shape of WSD's final decay. */
enum mb_lr_wsd_decay {
    MB_LR_WSD_LINEAR,
    MB_LR_WSD_COSINE,
    MB_LR_WSD_EXPONENTIAL,
    MB_LR_WSD_MINUS_SQRT,
};

struct mb_lr_schedule {
    enum mb_lr_decay decay;
    enum mb_lr_wsd_decay wsd_decay;
    double max_lr;           /* peak, reached at the end of warmup */
    double min_lr;           /* after decay_iters */
    double warmup_init;      /* at iteration 0 when warmup_iters > 0 */
    int64_t warmup_iters;    /* < decay_iters */
    int64_t decay_iters;     /* > 0; counted from iteration 0, warmup included */
    int64_t wsd_decay_iters; /* WSD: the last wsd_decay_iters of decay_iters anneal */
    int64_t batch;           /* samples per iteration (global batch size), >= 1 */
};

/* The learning rate of the optimizer step taken at ITERATION (0-based: the first step
 * uses iteration 0; Megatron sets it before step 0 and after each step). S must have
 * passed mb_lr_schedule_check(). */
double mb_lr_at(const struct mb_lr_schedule *s, int64_t iteration);

/* Megatron's constructor checks: 0 <= min_lr <= max_lr, warmup_init <= max_lr,
 * decay_iters > 0, 0 <= warmup_iters < decay_iters, batch >= 1, and for WSD
 * wsd_decay_iters > 0. Returns 0, or -1 with mb_err set (MB_E_INVALID). */
MB_MUST_CHECK int mb_lr_schedule_check(const struct mb_lr_schedule *s);

/* Build and check a schedule from the mb-pretrain keys (optimizer.lr, optimizer.min_lr,
 * scheduler.*, train.train_iters for a zero lr_decay_iters) with BATCH samples per
 * iteration. Returns 0, or -1 with mb_err naming where the offending key was set. */
MB_MUST_CHECK int mb_lr_schedule_from_config(struct mb_lr_schedule *s, const mb_config *cfg,
                                             int64_t batch);

/* Decay style by Megatron name ("constant", "linear", "cosine", "inverse-square-root",
 * "WSD"), or -1. */
int mb_lr_decay_parse(const char *name);
/* WSD decay style by Megatron name ("linear", "cosine", "exponential", "minus_sqrt"),
 * or -1. */
int mb_lr_wsd_decay_parse(const char *name);

#endif /* MB_TRAIN_SCHED_H */
