/* tests/helpers/sched_lr.c - print mb's learning rate for every iteration of the
 * schedules read from stdin, one per line, in the format tests/oracle/megatron_sched.py
 * reads and prints:
 *
 *   NAME STYLE WSD_STYLE LR MIN_LR WARMUP_INIT WARMUP_ITERS DECAY_ITERS WSD_ITERS
 *        TRAIN_ITERS GLOBAL_BATCH
 *
 * Each schedule goes through the config path (scheduler.* overrides on the mb-pretrain
 * schema, then mb_lr_schedule_from_config), so DECAY_ITERS 0 means train.train_iters.
 * Output: "NAME ITER LR" for ITER = 0 .. TRAIN_ITERS + 2, LR with 17 digits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/err.h"
#include "train/schema.h"
#include "train/sched.h"

static int one(const char *line)
{
    char name[64], style[32], wsd[32], lr[32], min_lr[32], init[32];
    long long warm, decay, wsd_iters, iters, batch;

    if (sscanf(line, "%63s %31s %31s %31s %31s %31s %lld %lld %lld %lld %lld", name, style, wsd,
               lr, min_lr, init, &warm, &decay, &wsd_iters, &iters, &batch) != 11)
        return mb_err_set(MB_E_USAGE, line, "expected 11 fields");
    char ov[8][96];
    snprintf(ov[0], sizeof ov[0], "scheduler.lr_decay_style=%s", style);
    snprintf(ov[1], sizeof ov[1], "scheduler.lr_wsd_decay_style=%s", wsd);
    snprintf(ov[2], sizeof ov[2], "optimizer.lr=%s", lr);
    snprintf(ov[3], sizeof ov[3], "optimizer.min_lr=%s", min_lr);
    snprintf(ov[4], sizeof ov[4], "scheduler.lr_warmup_init=%s", init);
    snprintf(ov[5], sizeof ov[5], "scheduler.lr_warmup_iters=%lld", warm);
    snprintf(ov[6], sizeof ov[6], "scheduler.lr_decay_iters=%lld", decay);
    snprintf(ov[7], sizeof ov[7], "scheduler.lr_wsd_decay_iters=%lld", wsd_iters);
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);
    mb_config *cfg = mb_config_new(schema, n);
    char train[64];
    snprintf(train, sizeof train, "train.train_iters=%lld", iters);
    int rc = mb_config_override(cfg, train);
    for (int k = 0; rc == 0 && k < 8; k++)
        rc = mb_config_override(cfg, ov[k]);
    struct mb_lr_schedule s;
    if (rc == 0)
        rc = mb_lr_schedule_from_config(&s, cfg, batch);
    for (long long it = 0; rc == 0 && it <= iters + 2; it++)
        printf("%s %lld %.17g\n", name, it, mb_lr_at(&s, it));
    mb_config_free(cfg);
    return rc;
}

int main(void)
{
    char line[512];

    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (one(line) != 0) {
            fprintf(stderr, "sched_lr: error: %s: %s\n", mb_err_where(), mb_err_what());
            return 1;
        }
    }
    return 0;
}
