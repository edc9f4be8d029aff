/* train/report.c - the start-up layout line, the log line, the validation line, their
 * TensorBoard scalars and metrics_jsonl objects. */
#include "train/internal.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/time.h"

static double peak_rss_gib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KiB */
}

void mb_train_log_layout(const struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    int64_t dp = t->ps.dp;
    mb_log_info("world size %d, data-parallel size %lld, tensor/pipeline/context-parallel size "
                "%lld/%lld/%lld; micro-batches per step %lld (global batch %lld = micro-batch "
                "%lld x data-parallel %lld x %lld); threads per rank %d",
                t->dist->size, (long long)dp,
                (long long)mb_config_i64(cfg, "dist.tensor_model_parallel_size"),
                (long long)mb_config_i64(cfg, "dist.pipeline_model_parallel_size"),
                (long long)mb_config_i64(cfg, "dist.context_parallel_size"),
                (long long)t->batches.count, (long long)t->global_batch,
                (long long)t->micro_batch, (long long)dp, (long long)t->batches.count,
                omp_get_max_threads()); /* what the CPU kernels' parallel regions use */
}

/* What one pipeline stage reports (mb_train_log_pipeline), as doubles so that the
 * stages' rows can be summed into every rank's table. */
enum { PIPE_WARMUP, PIPE_IN_FLIGHT, PIPE_ACT_BYTES, PIPE_CHUNKS, PIPE_LAYERS, PIPE_ROW };

static void log_stage(const struct mb_trainer *t, int r, const double *row)
{
    char layers[256] = "";
    size_t used = 0;
    for (int j = 0; j < (int)row[PIPE_CHUNKS] && used < sizeof layers; j++) {
        double first = row[PIPE_LAYERS + 2 * j], n = row[PIPE_LAYERS + 2 * j + 1];
        used += (size_t)snprintf(layers + used, sizeof layers - used, "%s%.0f-%.0f",
                                 j ? ", " : "", first, first + n - 1);
    }
    mb_log_info("pipeline stage %d of %d: layers %s; %s schedule, %.0f warm-up forwards, at "
                "most %.0f micro-batch chunk%s of activations in flight (%.2f MiB)",
                r, t->ps.pp, layers, t->pipe.vp > 1 ? "interleaved" : "1F1B", row[PIPE_WARMUP],
                row[PIPE_IN_FLIGHT], row[PIPE_IN_FLIGHT] == 1 ? "" : "s",
                row[PIPE_ACT_BYTES] / (1 << 20));
}

void mb_train_log_pipeline(const struct mb_trainer *t)
{
    if (t->ps.pp == 1)
        return;
    /* every stage's row, summed over the PP group: each rank fills its own */
    int width = PIPE_LAYERS + 2 * MB_STAGE_MAX_CHUNKS, p = t->ps.pp;
    double *rows = mb_xcalloc((size_t)(p * width), sizeof(double));
    double *mine = rows + t->ps.pp_rank * width;
    const struct mb_stage *st = &t->model.stage;
    mine[PIPE_WARMUP] = t->pipe.warmup;
    mine[PIPE_IN_FLIGHT] = t->pipe.max_in_flight;
    mine[PIPE_ACT_BYTES] = (double)t->pipe_act_bytes;
    mine[PIPE_CHUNKS] = st->chunks;
    for (int j = 0; j < st->chunks; j++) {
        mine[PIPE_LAYERS + 2 * j] = (double)st->chunk_global[j];
        mine[PIPE_LAYERS + 2 * j + 1] = (double)st->chunk_layers[j];
    }
    mb_group_sum_f64(mb_pstate_group(&t->ps, MB_GROUP_PP), rows, p * width);
    for (int r = 0; r < p; r++)
        log_stage(t, r, rows + r * width);
    free(rows);
}

void mb_train_log_pipeline_time(const struct mb_trainer *t)
{
    if (t->ps.pp == 1)
        return;
    int p = t->ps.pp;
    double *rows = mb_xcalloc((size_t)(2 * p), sizeof(double));
    rows[2 * t->ps.pp_rank] = t->pipe_wall_s;
    rows[2 * t->ps.pp_rank + 1] = t->pipe_busy_s;
    mb_group_sum_f64(mb_pstate_group(&t->ps, MB_GROUP_PP), rows, 2 * p);
    double m = (double)t->batches.count, v = t->pipe.vp, wall = 0, busy = 0;
    double ideal = (p - 1) / (v * m + p - 1);
    for (int r = 0; r < p; r++) {
        double w = rows[2 * r], b = rows[2 * r + 1];
        mb_log_info("pipeline stage %d: %.3f s in the training schedules (from a start to an "
                    "end common to the stages), %.3f s of it in forward and backward passes: "
                    "bubble %.1f%%", r, w, b,
                    w > 0 ? 100 * (w - b) / w : 0.0);
        wall += w, busy += b;
    }
    mb_log_info("pipeline bubble %.1f%% over the stages; ideal %.1f%% = (p-1)/(v m+p-1) with p "
                "%d, v %.0f, m %.0f", wall > 0 ? 100 * (wall - busy) / wall : 0.0, 100 * ideal,
                p, v, m);
    free(rows);
}

/* Seconds since the epoch, for metrics lines. */
static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    /* the first iteration of the process is always shown: the run is alive, at this pace */
    int64_t interval = mb_config_i64(t->cfg, "logger.log_interval");
    bool due = interval > 0 && (t->iteration % interval == 0 || t->iteration == t->train_iters);
    if (!due && t->logged)
        return;
    t->logged = true;
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
    struct mb_buf b = MB_BUF_INIT;
    mb_metrics_begin(&b, "train", t->iteration);
    mb_metrics_int(&b, "train_iters", t->train_iters);
    mb_metrics_int(&b, "consumed_samples", t->consumed_train);
    mb_metrics_real(&b, "loss", mean);
    mb_metrics_real(&b, "lr", lr);
    mb_metrics_real(&b, "grad_norm", grad_norm);
    mb_metrics_real(&b, "tokens_per_sec", tok_s);
    mb_metrics_real(&b, "tflops", tflops);
    mb_metrics_real(&b, "mfu", peak > 0 ? tflops / peak : NAN);
    mb_metrics_real(&b, "mem_gib", peak_rss_gib());
    mb_metrics_int(&b, "iterations", t->log_iters);
    mb_metrics_int(&b, "skipped", t->log_skipped);
    mb_metrics_real(&b, "time", wall_clock());
    mb_train_metrics_emit(t, &b);
    t->log_start = now;
    t->log_iters = 0;
    t->log_skipped = 0;
    t->log_loss_sum = 0;
}

void mb_train_log_eval(struct mb_trainer *t, double loss)
{
    tb_scalar(t, "lm loss validation", loss);
    double ppl = exp(loss < 700 ? loss : 700);
    if (t->dist->rank == 0)
        mb_log_info("validation at iter %lld | loss %.6E | ppl %.4E", (long long)t->iteration,
                    loss, ppl);
    struct mb_buf b = MB_BUF_INIT;
    mb_metrics_begin(&b, "validation", t->iteration);
    mb_metrics_int(&b, "consumed_samples", t->consumed_train);
    mb_metrics_int(&b, "consumed_valid_samples", t->consumed_valid);
    mb_metrics_real(&b, "loss", loss);
    mb_metrics_real(&b, "ppl", ppl);
    mb_metrics_real(&b, "time", wall_clock());
    mb_train_metrics_emit(t, &b);
}

/* Bytes of this rank's model and optimizer state. */
struct state_bytes {
    int64_t params, grads, moments, total;
};

static struct state_bytes state_bytes(const struct mb_trainer *t)
{
    struct state_bytes b;
    b.params = t->model.params.total * (int64_t)sizeof(float);
    /* the trainable range only (a frozen base has none); the distributed optimizer's
     * summed shard is a view into it */
    b.grads = (t->model.params.total - t->model.params.frozen) * (int64_t)sizeof(float);
    b.moments = 2 * (t->opt.hi - t->opt.lo) * (int64_t)sizeof(float);
    b.total = b.params + b.grads + b.moments;
    return b;
}

static double mib(int64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* Bytes one rank sends in a ring all-reduce of BYTES over a group of T: 2 (t-1)/t of
 * them; in an all-gather or reduce-scatter whose whole (gathered) tensor is BYTES:
 * (t-1)/t (parallel.md section 0; dist/pstate.c counts the same). */
static double ring_all_reduce(int64_t t, double bytes)
{
    return 2.0 * (double)(t - 1) / (double)t * bytes;
}

static double ring_gather(int64_t t, double bytes)
{
    return (double)(t - 1) / (double)t * bytes;
}

/* Floats of the TP-replicated parameters whose gradients each TP rank holds only a part
 * of, summed over TP once per step (parallel.md 2.5): the q/k norms always (each rank
 * normalises its own heads); under sequence parallelism every norm and the row-parallel
 * biases too (each rank saw its own tokens). */
static double tp_partial_grads(const struct mb_model_config *c, bool sp)
{
    int64_t h = c->hidden_size, per_norm = c->normalization == MB_NORM_LAYER ? 2 * h : h;
    int64_t layer = c->qk_layernorm ? 2 * c->kv_channels : 0;
    if (!sp)
        return (double)(c->num_layers * layer);
    layer += 2 * per_norm;                  /* input and pre-MLP norms */
    layer += c->sandwich_norm ? 2 * h : 0;  /* post-attention and post-MLP norms (RMS) */
    layer += c->add_bias_linear ? 2 * h : 0; /* linear_proj, linear_fc2 biases */
    return (double)(c->num_layers * layer + per_norm); /* and the final norm */
}

/* Bytes one rank sends per iteration in TP collectives, from the sizes (parallel.md 2.4,
 * 2.7, 2.8, section 9, as nn/ does them). Per micro-batch of n tokens, X = 4 n h bytes:
 *   no SP: forward, linear_proj's and linear_fc2's all-reduces per layer and the
 *          embedding's; backward, linear_qkv's and linear_fc1's dX all-reduces per layer
 *          and the output layer's:                         (4 L + 2) all-reduces of X;
 *   SP:    the embedding's all-reduce of X, then all-gathers and reduce-scatters of X:
 *          4 per layer forward (qkv, fc1 gather; proj, fc2 scatter), 6 per layer backward
 *          (fc2, proj gather dY; qkv, fc1 gather X again and scatter dX), and the head's
 *          gather, its dX scatter and the embedding's gather of dY: 10 L + 3;
 * and the cross-entropy's all-reduces of the n row maxima (float), target logits (float)
 * and exp-sums (double): 16 n bytes. Per step, the sums of the partial gradients. */
static double tp_traffic_analytic(const struct mb_trainer *t)
{
    const struct mb_model_config *c = &t->model.cfg;
    int64_t tp = t->ps.tp, n = t->micro_batch * t->seq, nl = c->num_layers;
    double x = 4.0 * (double)n * (double)c->hidden_size;
    bool sp = t->model.sequence_parallel;
    double micro = ring_all_reduce(tp, 16.0 * (double)n);
    if (sp)
        micro += ring_all_reduce(tp, x) + (double)(10 * nl + 3) * ring_gather(tp, x);
    else
        micro += (double)(4 * nl + 2) * ring_all_reduce(tp, x);
    return (double)t->batches.count * micro +
           ring_all_reduce(tp, 4.0 * tp_partial_grads(c, sp));
}

void mb_train_log_memory(const struct mb_trainer *t)
{
    if (t->dist->rank != 0)
        return;
    bool dist = t->gsync.distributed;
    struct state_bytes b = state_bytes(t);
    int64_t p = t->model.params.total, d = t->ps.dp;
    /* fp32 params and grads (parallel.md 5.7): 16 B per parameter, or 4 + 4 for the
     * parameter and its gradient plus 8 / d for the sharded Adam moments */
    double formula = dist ? (8.0 + 8.0 / (double)d) * (double)p : 16.0 * (double)p;
    mb_log_info("memory per rank: parameters %lld B, gradients %lld B, Adam moments %lld B: "
                "%lld B (%.1f MiB); Megatron's formula for fp32, %s: %s x %lld parameters = "
                "%.0f B (%.1f MiB)",
                (long long)b.params, (long long)b.grads, (long long)b.moments,
                (long long)b.total, mib(b.total),
                dist ? "distributed optimizer" : "replicated optimizer",
                dist ? "(8 + 8/d) B" : "16 B", (long long)p, formula,
                formula / (1024.0 * 1024.0));
    if (t->model.params.frozen > 0)
        mb_log_info("adapters (peft.peft=%s): %lld trainable parameters on this rank of %lld; "
                    "the %lld base parameters are frozen (no gradients, no Adam moments)",
                    mb_peft_kind_name(t->model.peft.kind),
                    (long long)(p - t->model.params.frozen), (long long)p,
                    (long long)t->model.params.frozen);
    if (t->ps.tp > 1)
        mb_log_info("tensor-parallel traffic per iteration per rank, analytic: %.0f B "
                    "(%s; ring volumes as dist/pstate.c counts them)",
                    tp_traffic_analytic(t),
                    t->model.sequence_parallel ? "sequence parallel" : "no sequence parallel");
}

void mb_train_log_finish(const struct mb_trainer *t, int64_t iterations)
{
    struct rusage ru;
    int64_t rss_kib = getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_maxrss : 0;
    int64_t largest = mb_dist_max_i64(t->dist, rss_kib);
    if (t->dist->rank != 0)
        return;
    double per = iterations > 0 ? 1.0 / (double)iterations : 0.0;
    mb_log_info("peak RSS %.1f MiB on rank 0, %.1f MiB the largest over ranks (model and "
                "optimizer state %.1f MiB); data-parallel traffic %.0f B per iteration per "
                "rank, tensor-parallel traffic %.0f B per iteration per rank, over %lld "
                "iteration%s",
                (double)rss_kib / 1024.0, (double)largest / 1024.0, mib(state_bytes(t).total),
                (double)t->dp_traffic * per, (double)t->tp_traffic * per,
                (long long)iterations, iterations == 1 ? "" : "s");
}
