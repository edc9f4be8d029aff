/* train/report.c - the log line, the validation line and the TensorBoard scalars. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/time.h"

static double peak_rss_gib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KiB */
}

void mb_train_log_start(struct mb_trainer *t)
{
    t->log_start = mb_now();
    t->log_iters = 0;
    t->log_skipped = 0;
    t->log_loss_sum = 0;
}

static void tb_scalar(struct mb_trainer *t, const char *tag, double value)
{
    if (t->tb && mb_tb_scalar(t->tb, tag, t->iteration, value) < 0) {
        mb_log_error_record();
        mb_log_warn("TensorBoard logging stopped");
        mb_tb_close(t->tb);
        t->tb = NULL;
    }
}

void mb_train_log_iteration(struct mb_trainer *t, double loss, double grad_norm, double lr,
                            bool skipped)
{
    t->log_iters++;
    if (skipped)
        t->log_skipped++;
    else
        t->log_loss_sum += loss;
    if (!skipped)
        tb_scalar(t, "lm loss", loss);
    tb_scalar(t, "learning-rate", lr);
    tb_scalar(t, "grad-norm", grad_norm);
    int64_t interval = mb_config_i64(t->cfg, "logger.log_interval");
    if (interval <= 0 || (t->iteration % interval != 0 && t->iteration != t->train_iters))
        return;
    double now = mb_now(), elapsed = now - t->log_start;
    double tokens = (double)(t->log_iters * t->global_batch * t->seq);
    double tok_s = elapsed > 0 ? tokens / elapsed : 0;
    double tflops = tok_s * mb_model_flops_per_token(&t->model, t->seq) / 1e12;
    double peak = mb_config_double(t->cfg, "logger.peak_tflops") * t->dist->size;
    char mfu[32] = "-";
    if (peak > 0)
        snprintf(mfu, sizeof(mfu), "%.1f%%", 100.0 * tflops / peak);
    tb_scalar(t, "throughput/tokens-per-sec", tok_s);
    /* Megatron's "number of skipped iterations", shown only when there were some */
    char skips[48] = "";
    if (t->log_skipped > 0)
        snprintf(skips, sizeof skips, " | skipped %lld", (long long)t->log_skipped);
    int64_t applied = t->log_iters - t->log_skipped;
    double mean = applied > 0 ? t->log_loss_sum / (double)applied : NAN;
    if (t->dist->rank == 0)
        mb_log_info("iter %6lld/%lld | loss %.6E | lr %.4E | grad_norm %.4E | tok/s %.1f | "
                    "TFLOP/s %.4f | MFU %s | mem %.2f GiB%s",
                    (long long)t->iteration, (long long)t->train_iters, mean, lr, grad_norm,
                    tok_s, tflops, mfu, peak_rss_gib(), skips);
    t->log_start = now;
    t->log_iters = 0;
    t->log_skipped = 0;
    t->log_loss_sum = 0;
}

void mb_train_log_eval(struct mb_trainer *t, double loss)
{
    tb_scalar(t, "lm loss validation", loss);
    if (t->dist->rank == 0)
        mb_log_info("validation at iter %lld | loss %.6E | ppl %.4E", (long long)t->iteration,
                    loss, exp(loss < 700 ? loss : 700));
}
