/* tests/unit/train_sched.c - LR schedule shapes at their corners, Megatron's checks, and
 * the config path. (Every iteration is compared with megatron-core in t3002.) */
#include <math.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "tests/lib/tap.h"
#include "train/schema.h"
#include "train/sched.h"

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-15 + 1e-13 * fabs(b);
}

static void shapes(void)
{
    struct mb_lr_schedule s = { .decay = MB_LR_COSINE, .max_lr = 1.0, .min_lr = 0.1,
                                .warmup_init = 0.0, .warmup_iters = 10, .decay_iters = 110,
                                .batch = 4 };

    ok(mb_lr_schedule_check(&s) == 0, "cosine schedule is valid");
    ok(mb_lr_at(&s, 0) == 0.0, "warmup starts at lr_warmup_init");
    ok(near(mb_lr_at(&s, 5), 0.5), "half-way through warmup: half the peak");
    ok(mb_lr_at(&s, 10) == 1.0, "peak at the end of warmup");
    ok(near(mb_lr_at(&s, 60), 0.55), "cosine half-way: mean of peak and min");
    ok(near(mb_lr_at(&s, 110), 0.1), "min_lr at lr_decay_iters");
    ok(mb_lr_at(&s, 500) == 0.1, "min_lr after the decay");

    s.decay = MB_LR_LINEAR;
    ok(near(mb_lr_at(&s, 35), 1.0 - 0.9 * 0.25), "linear a quarter of the way");
    s.decay = MB_LR_CONSTANT;
    ok(mb_lr_at(&s, 500) == 1.0, "constant stays at the peak, even after decay_iters");

    s.decay = MB_LR_WSD;
    s.wsd_decay_iters = 20;
    s.wsd_decay = MB_LR_WSD_LINEAR;
    ok(mb_lr_at(&s, 90) == 1.0, "WSD: stable until the last wsd_decay_iters");
    ok(near(mb_lr_at(&s, 100), 0.55), "WSD linear half-way through the anneal");
    s.wsd_decay = MB_LR_WSD_EXPONENTIAL;
    ok(near(mb_lr_at(&s, 100), 0.1 + 0.9 * (2.0 * sqrt(0.5) - 1.0)), "WSD exponential");
    s.wsd_decay = MB_LR_WSD_MINUS_SQRT;
    ok(near(mb_lr_at(&s, 100), 0.1 + 0.9 * (1.0 - sqrt(0.5))), "WSD minus_sqrt");
    s.wsd_decay = MB_LR_WSD_COSINE;
    ok(near(mb_lr_at(&s, 110), 0.1), "WSD cosine ends at min_lr");

    s.decay = MB_LR_INVERSE_SQRT;
    ok(near(mb_lr_at(&s, 40), 0.5), "inverse square root: peak x sqrt(warmup / step)");
}

static void checks(void)
{
    struct mb_lr_schedule s = { .decay = MB_LR_LINEAR, .max_lr = 1e-3, .min_lr = 1e-4,
                                .warmup_iters = 10, .decay_iters = 10, .batch = 1 };

    ok(mb_lr_schedule_check(&s) == -1 && strcmp(mb_err_where(), "lr_warmup_iters") == 0,
       "warmup must end before the decay does");
    s.decay_iters = 20;
    s.min_lr = 1e-2;
    ok(mb_lr_schedule_check(&s) == -1 && strcmp(mb_err_where(), "lr") == 0, "min_lr above lr");
    s.min_lr = 0;
    s.warmup_init = 1.0;
    ok(mb_lr_schedule_check(&s) == -1, "warmup start above the peak");
    s.warmup_init = 0;
    s.decay = MB_LR_WSD;
    ok(mb_lr_schedule_check(&s) == -1, "WSD needs lr_wsd_decay_iters");
    s.wsd_decay_iters = 5;
    ok(mb_lr_schedule_check(&s) == 0, "then it is valid");
    is_int(mb_lr_decay_parse("inverse-square-root"), MB_LR_INVERSE_SQRT, "decay names");
    is_int(mb_lr_decay_parse("wsd"), -1, "names are case-sensitive, as in Megatron");
    is_int(mb_lr_wsd_decay_parse("minus_sqrt"), MB_LR_WSD_MINUS_SQRT, "WSD decay names");
}

static void from_config(void)
{
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);
    mb_config *cfg = mb_config_new(schema, n);
    struct mb_lr_schedule s;

    ok(mb_lr_schedule_from_config(&s, cfg, 8) == -1, "optimizer.lr is required");
    is_str(mb_err_where(), "optimizer.lr", "the missing key is named");
    ok(mb_config_override(cfg, "optimizer.lr=3e-4") == 0 &&
       mb_config_override(cfg, "scheduler.lr_decay_style=cosine") == 0 &&
       mb_config_override(cfg, "scheduler.lr_warmup_iters=10") == 0, "set up");
    ok(mb_lr_schedule_from_config(&s, cfg, 8) == -1 &&
       strcmp(mb_err_where(), "train.train_iters") == 0,
       "without lr_decay_iters, train.train_iters is required");
    ok(mb_config_override(cfg, "train.train_iters=100") == 0, "set train_iters");
    ok(mb_lr_schedule_from_config(&s, cfg, 8) == 0, "schedule built");
    ok(s.decay == MB_LR_COSINE && s.decay_iters == 100 && s.warmup_iters == 10 &&
       s.max_lr == 3e-4 && s.min_lr == 0.0 && s.batch == 8, "fields from the config");
    ok(mb_config_override(cfg, "train.train_iters=5") == 0, "train_iters below warmup");
    ok(mb_lr_schedule_from_config(&s, cfg, 8) == -1, "refused");
    is_str(mb_err_where(), "command line: scheduler.lr_warmup_iters=10", "error names where warmup was set");
    is_str(mb_err_what(),
           "scheduler.lr_warmup_iters 10 must be at least 0 and less than lr_decay_iters 5",
           "and the decay length taken from train_iters");
    mb_config_free(cfg);
}

int main(void)
{
    shapes();
    checks();
    from_config();
    return tap_done();
}
