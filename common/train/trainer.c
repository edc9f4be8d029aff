/* train/trainer.c - build the run from the config, then iterate. */
#include "train/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/time.h"
#include "ckpt/ckpt.h"
#include "dist/devcomm.h"
#include "ckpt/stale.h"
#include "kern/ops.h"
#include "train/limits.h"
#include "train/setup.h"

/* 0 when RC is 0 on every rank, else -1: with this rank's own error, or, on a rank
 * that was fine, "another rank failed" at WHERE. Every rank must call it. */
static int agree(const struct mb_dist *dist, int rc, const char *where)
{
    if (mb_dist_all_ok(dist, rc == 0))
        return 0;
    return rc < 0 ? -1 : mb_err_set(MB_E_INVALID, where, "another rank failed");
}

/* The TP x CP x DP x PP layout of the world from the dist.* sizes (dist/pstate.h). */
static int parallel_state(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    int64_t size[3];
    const char *key[3] = { "dist.tensor_model_parallel_size", "dist.context_parallel_size",
                           "dist.pipeline_model_parallel_size" };
    for (int i = 0; i < 3; i++) {
        size[i] = mb_config_i64(cfg, key[i]);
        if (size[i] < 1 || size[i] > t->dist->size)
            return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key[i]),
                              "%s must be between 1 and the world size %d, not %lld", key[i],
                              t->dist->size, (long long)size[i]);
    }
    return mb_pstate_init(&t->ps, t->dist, (int)size[0], (int)size[1], (int)size[2],
                          mb_config_where(cfg, key[0]));
}

/* The backend of dist.device; when the key is not given, of $MB_DEVICE (else auto). NULL
 * with mb_err naming the key or the variable. */
static const struct mb_ops *backend(const mb_config *cfg)
{
    const char *key = "dist.device", *where = mb_config_where(cfg, key);
    if (strcmp(where, "default") != 0)
        return mb_ops_find(mb_config_str(cfg, key), where);
    const char *env = getenv("MB_DEVICE");
    return mb_ops_find(mb_ops_default_name(), env && *env ? "MB_DEVICE" : key);
}

static int check_sizes(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    t->train_iters = mb_config_i64(cfg, "train.train_iters");
    t->micro_batch = mb_config_i64(cfg, "train.micro_batch_size");
    t->global_batch = mb_config_i64(cfg, "train.global_batch_size");
    t->seq = mb_config_i64(cfg, "data.seq_length");
    int64_t dp = t->ps.dp;
    if (t->global_batch == 0)
        t->global_batch = t->micro_batch * dp;
    if (t->train_iters < 0 || t->micro_batch <= 0 || t->seq <= 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "train.micro_batch_size"),
                          "train.train_iters, train.micro_batch_size and data.seq_length must "
                          "be positive");
    if (t->global_batch % (t->micro_batch * dp) != 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "train.global_batch_size"),
                          "train.global_batch_size %lld is not a multiple of "
                          "micro_batch_size %lld x data-parallel size %lld",
                          (long long)t->global_batch, (long long)t->micro_batch, (long long)dp);
    const char *cp = "dist.context_parallel_size";
    if (mb_config_i64(cfg, cp) != 1)
        return mb_err_set(MB_E_UNSUPPORTED, mb_config_where(cfg, cp),
                          "%s: only 1 is supported so far (tensor, pipeline and data "
                          "parallelism)", cp);
    if (t->ps.tp > 1 && mb_config_bool(cfg, "dist.sequence_parallel") &&
        t->seq % t->ps.tp != 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "dist.sequence_parallel"),
                          "dist.sequence_parallel: data.seq_length %lld is not a multiple of "
                          "dist.tensor_model_parallel_size %d", (long long)t->seq, t->ps.tp);
    return backend(cfg) ? 0 : -1;
}

static int64_t eval_samples(const struct mb_trainer *t)
{
    int64_t interval = mb_config_i64(t->cfg, "train.eval_interval");
    int64_t iters = mb_config_i64(t->cfg, "train.eval_iters");
    if (interval <= 0 || iters <= 0)
        return 0;
    return (t->train_iters / interval + 1) * iters * t->global_batch;
}

static int open_data(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    if (t->tok->sft)
        return agree(t->dist, mb_train_open_sft(t), "data");
    struct mb_gpt_data_config dc;
    memset(&dc, 0, sizeof(dc));
    const char **paths = NULL;
    double *weights = NULL;
    dc.mock = mb_config_bool(cfg, "data.mock");
    if (!dc.mock) {
        int n = mb_setup_blend(cfg, &paths, &weights);
        if (n < 0)
            return -1;
        dc.paths = paths;
        dc.weights = weights;
        dc.n_paths = n;
    }
    snprintf(dc.split, sizeof(dc.split), "%s", mb_config_str(cfg, "data.split"));
    dc.seq_length = t->seq;
    dc.seed = (uint64_t)mb_config_i64(cfg, "train.seed");
    dc.mock_vocab = mb_model_real_vocab(&t->model.cfg);
    dc.eod_mask_loss = mb_config_bool(cfg, "data.eod_mask_loss");
    dc.reset_position_ids = mb_config_bool(cfg, "data.reset_position_ids");
    int64_t eod = mb_config_i64(cfg, "tokenizer.eod_id");
    dc.eod_id = (int32_t)(eod >= 0 ? eod : t->tok->eod_id);
    dc.pad_id = -1;
    dc.cache_dir = mb_config_has(cfg, "data.path_to_cache")
                       ? mb_config_str(cfg, "data.path_to_cache")
                       : NULL;
    int64_t test_iters = mb_config_i64(cfg, "train.eval_iters");
    dc.num_samples[MB_SPLIT_TRAIN] = t->train_iters * t->global_batch;
    dc.num_samples[MB_SPLIT_VALID] = eval_samples(t);
    dc.num_samples[MB_SPLIT_TEST] = test_iters > 0 ? test_iters * t->global_batch : 0;
    /* rank 0 builds the index caches; the others then load them */
    int rc = 0;
    if (t->dist->rank == 0)
        rc = mb_gpt_data_open(&t->data, &dc);
    if (mb_dist_all_ok(t->dist, rc == 0) && t->dist->rank != 0)
        rc = mb_gpt_data_open(&t->data, &dc);
    free(paths);
    free(weights);
    return agree(t->dist, rc, "data");
}

static int alloc_batches(struct mb_trainer *t)
{
    struct mb_train_batches *b = &t->batches;
    b->micro = t->micro_batch;
    b->seq = t->seq;
    b->count = t->global_batch / (t->micro_batch * t->ps.dp);
    size_t n = (size_t)(b->count * b->micro * b->seq);
    b->tokens = mb_xmalloc(n * sizeof(int32_t));
    b->labels = mb_xmalloc(n * sizeof(int32_t));
    b->position_ids = mb_xmalloc(n * sizeof(int32_t));
    b->loss_mask = mb_xmalloc(n * sizeof(float));
    return 0;
}

/* The model configuration: the pretrained checkpoint's when there is one (its model.*
 * keys are what the weights were made for), else the recipe's. */
static int model_config(struct mb_trainer *t, struct mb_model_config *mc)
{
    if (!t->pretrained)
        return mb_setup_model_config(t->cfg, t->tok->vocab_size, mc);
    if (mb_train_pretrained_config(t->dist, t->pretrained, mc) < 0)
        return -1;
    if (t->tok->vocab_size > mc->vocab_size)
        return mb_err_set(MB_E_INVALID, t->pretrained,
                          "the model's vocabulary (%lld) is smaller than the tokenizer's (%lld)",
                          (long long)mc->vocab_size, (long long)t->tok->vocab_size);
    if (t->dist->rank == 0)
        mb_log_info("model configuration from %s (the recipe's model.* keys are not used)",
                    t->pretrained);
    return 0;
}

/* The layers of this rank's pipeline stage (nn/stage.h) from the dist.* keys. */
static int plan_stage(const struct mb_trainer *t, const struct mb_model_config *mc,
                      struct mb_stage *stage)
{
    const mb_config *cfg = t->cfg;
    const char *vp_key = "dist.virtual_pipeline_model_parallel_size";
    const char *first = "dist.num_layers_in_first_pipeline_stage";
    const char *last = "dist.num_layers_in_last_pipeline_stage";
    int64_t vp = mb_config_i64(cfg, vp_key);
    if (vp < 1 || vp > MB_STAGE_MAX_CHUNKS)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, vp_key),
                          "%s must be between 1 and %d, not %lld", vp_key, MB_STAGE_MAX_CHUNKS,
                          (long long)vp);
    bool uneven = mb_config_i64(cfg, first) != 0 || mb_config_i64(cfg, last) != 0;
    const char *where = mb_config_where(cfg, uneven ? (mb_config_i64(cfg, first) ? first : last)
                                                    : vp > 1 ? vp_key
                                                             : "dist.pipeline_model_parallel_size");
    return mb_stage_plan(stage, mc->num_layers, t->ps.pp, t->ps.pp_rank, (int)vp,
                         mb_config_i64(cfg, first), mb_config_i64(cfg, last), where);
}

/* mixed_precision (the schema allows fp32 and bf16_mixed): the model's GEMMs in bf16
 * (mb_model_set_bf16), said once at the start. */
static int precision(struct mb_trainer *t)
{
    bool bf16 = strcmp(mb_config_str(t->cfg, "mixed_precision"), "bf16_mixed") == 0;
    if (t->dist->rank == 0)
        mb_log_info("mixed_precision %s: %s", bf16 ? "bf16_mixed" : "fp32",
                    bf16 ? "GEMMs of the linear layers and the output layer on bf16 weights "
                           "and inputs with fp32 results; fp32 master weights, gradients, "
                           "norms, attention, loss and optimizer"
                         : "everything in fp32");
    return bf16 ? mb_model_set_bf16(&t->model) : 0;
}

/* The model: this rank's tensor-parallel shards of its pipeline stage of MC. */
static int build_model(struct mb_trainer *t, const struct mb_model_config *mc)
{
    const char *key = "dist.tensor_model_parallel_size";
    if (mb_local_sizes_check(mc, t->ps.tp, mb_config_where(t->cfg, key)) < 0)
        return -1;
    struct mb_stage stage;
    if (plan_stage(t, mc, &stage) < 0)
        return -1;
    const struct mb_ops *ops = backend(t->cfg);
    if (!ops)
        return -1;
    if (mb_model_init_stage(&t->model, mc, ops, mb_pstate_group(&t->ps, MB_GROUP_TP),
                            mb_config_bool(t->cfg, "dist.sequence_parallel"), &t->peft,
                            &stage) < 0)
        return -1;
    return precision(t);
}

/* Under pipeline parallelism: this rank's schedule over the iteration's micro-batches,
 * and the activations of as many as it keeps in flight. */
static int pipeline_setup(struct mb_trainer *t)
{
    if (t->ps.pp == 1)
        return 0;
    struct mb_model *m = &t->model;
    const char *key = m->stage.chunks > 1 ? "dist.virtual_pipeline_model_parallel_size"
                                           : "train.global_batch_size";
    if (mb_pipe_sched_build(&t->pipe, t->ps.pp, t->ps.pp_rank, m->stage.chunks,
                            (int)t->batches.count, mb_config_where(t->cfg, key)) < 0)
        return -1;
    return mb_model_pipe_reserve(m, MB_MAX(t->pipe.max_in_flight, 1), t->micro_batch, t->seq,
                                 &t->pipe_act_bytes);
}

/* The gradient reduction and the optimizer's range from the ddp.* keys, and the
 * weights of the parameters in the gradient norm. */
static int grad_sync(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    const char *bucket = "ddp.bucket_size";
    int64_t bucket_size = mb_config_i64(cfg, bucket);
    if (bucket_size < 0 || bucket_size > ((int64_t)1 << 30)) /* MPI counts are ints */
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, bucket),
                          "%s must be 0 (Megatron's default) or between 1 and 2^30 floats, "
                          "not %lld", bucket, (long long)bucket_size);
    struct mb_model *m = &t->model;
    const char *where = mb_config_where(cfg, "ddp.use_distributed_optimizer");
    if (mb_grad_sync_init(&t->gsync, mb_pstate_group(&t->ps, MB_GROUP_DP), m->ops, &m->params,
                          m->stage.layers, m->g,
                          mb_config_bool(cfg, "ddp.use_distributed_optimizer"),
                          mb_config_bool(cfg, "ddp.overlap_grad_reduce"), bucket_size,
                          where) < 0)
        return -1;
    t->norm_weight = mb_xmalloc((size_t)m->params.count * sizeof(double));
    if (mb_grad_norm_weights(&m->params, t->ps.tp_rank, t->norm_weight)) {
        free(t->norm_weight); /* all 1: one pass over the range, as without weights */
        t->norm_weight = NULL;
    }
    return 0;
}

/* Where this rank's optimizer updates all the trainable weights (no distributed
 * optimizer, or one DP rank), it writes their bf16 copies too as it updates them. */
static void optimizer_keeps_bf16(struct mb_trainer *t)
{
    const struct mb_model *m = &t->model;
    if (t->gsync.lo != 0 || t->gsync.hi != t->gsync.total)
        return;
    for (int i = 0; i < m->params.count; i++) {
        uint16_t *copy = mb_model_bf16_weight(m, m->params.items[i].id, 0);
        if (copy)
            mb_adamw_keep_bf16(&t->opt, i, copy);
    }
}

static int setup(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    struct mb_model_config mc;
    const char *timeout = "dist.timeout_minutes"; /* the watchdog of the collectives */
    if (mb_dist_set_timeout(mb_config_double(cfg, timeout), mb_config_where(cfg, timeout)) < 0)
        return -1;
    if (parallel_state(t) < 0 || check_sizes(t) < 0 || model_config(t, &mc) < 0)
        return -1;
    if (t->seq > mc.max_position_embeddings)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "data.seq_length"),
                          "data.seq_length %lld exceeds model.max_position_embeddings %lld",
                          (long long)t->seq, (long long)mc.max_position_embeddings);
    if (build_model(t, &mc) < 0)
        return -1;
    mb_model_init_weights(&t->model, (uint64_t)mb_config_i64(cfg, "train.seed"));
    if (grad_sync(t) < 0)
        return -1;
    int64_t frozen = t->model.params.frozen; /* the optimizer's range in the flat buffer */
    if (mb_adamw_init(&t->opt, t->model.ops, &t->model.params, frozen + t->gsync.lo,
                      frozen + t->gsync.hi,
                      (float)mb_config_double(cfg, "optimizer.adam_beta1"),
                      (float)mb_config_double(cfg, "optimizer.adam_beta2"),
                      (float)mb_config_double(cfg, "optimizer.adam_eps"),
                      (float)mb_config_double(cfg, "optimizer.weight_decay")) < 0)
        return -1;
    optimizer_keeps_bf16(t);
    if (mb_lr_schedule_from_config(&t->sched, cfg, t->global_batch) < 0)
        return -1;
    t->clip_grad = mb_config_double(cfg, "optimizer.clip_grad");
    t->check_nonfinite = mb_config_bool(cfg, "train.check_for_nan_in_loss_and_grad");
    t->skip_nonfinite = mb_config_i64(cfg, "train.skip_nonfinite_steps");
    if (t->skip_nonfinite < 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "train.skip_nonfinite_steps"),
                          "train.skip_nonfinite_steps must be 0 or positive");
    if (alloc_batches(t) < 0 || agree(t->dist, pipeline_setup(t), "pipeline") < 0)
        return -1;
    mb_train_log_layout(t);
    mb_train_log_pipeline(t);
    mb_train_log_memory(t);
    if (open_data(t) < 0)
        return -1;
    if (t->dist->rank == 0 && mb_config_has(cfg, "logger.tensorboard_dir") &&
        mb_tb_open(&t->tb, mb_config_str(cfg, "logger.tensorboard_dir")) < 0)
        return -1;
    if (mb_train_metrics_open(t) < 0)
        return -1;
    return 0;
}

/* Read this rank's slices of the micro-batches of SPLIT that start at global sample
 * FIRST; agreed over the ranks. */
static int fill(struct mb_trainer *t, int split, int64_t first)
{
    struct mb_train_batches *b = &t->batches;
    int64_t dp = t->ps.dp, r = t->ps.dp_rank;
    int rc = 0;
    for (int64_t j = 0; j < b->count && rc == 0; j++) {
        for (int64_t i = 0; i < b->micro && rc == 0; i++) {
            int64_t k = first + (j * dp + r) * b->micro + i;
            int64_t at = (j * b->micro + i) * b->seq;
            rc = mb_train_sample(t, split, k, at);
        }
    }
    return agree(t->dist, rc, "data");
}

struct mb_batch mb_train_micro_batch(const struct mb_trainer *t, int64_t j)
{
    const struct mb_train_batches *b = &t->batches;
    int64_t at = j * b->micro * b->seq;
    struct mb_batch mb = { b->micro, b->seq, b->tokens + at, b->labels + at,
                           b->loss_mask + at, b->position_ids + at,
                           b->segment_ids ? b->segment_ids + at : NULL };
    return mb;
}

/* Tokens that count for the loss in this rank's micro-batches. */
static double local_mask_sum(const struct mb_trainer *t)
{
    const struct mb_train_batches *b = &t->batches;
    double s = 0;
    for (int64_t i = 0; i < b->count * b->micro * b->seq; i++)
        if (b->labels[i] >= 0)
            s += b->loss_mask[i];
    return s;
}

/* The model finished the backward of local LAYER (the layers held: the head) of the
 * last micro-batch: start reducing the buckets that are now final. */
void mb_train_grad_ready(void *ctx, int64_t layer)
{
    struct mb_grad_sync *s = ctx;
    mb_grad_sync_ready(s, mb_grad_stage_of_layer(s->num_layers, layer));
}

/* LoRA dropout for training micro-batch J of this rank (its samples start at the
 * global index the data path gives it), or off (J < 0: evaluation). */
void mb_train_adapter_dropout(struct mb_trainer *t, int64_t j)
{
    struct mb_model *m = &t->model;
    m->peft_dropout_on = j >= 0 && t->peft.dropout > 0;
    if (!m->peft_dropout_on)
        return;
    m->peft_dropout.p = (float)t->peft.dropout;
    m->peft_dropout.key = mb_splitmix64((uint64_t)mb_config_i64(t->cfg, "train.seed") ^
                                        0x6c6f7261ull /* "lora" */);
    m->peft_dropout.seq = t->batches.seq;
    /* as fill() numbers them */
    m->peft_dropout.sample0 =
        t->consumed_train + (j * t->ps.dp + t->ps.dp_rank) * t->batches.micro;
}

/* The micro-batches one after another, each forward and backward (no pipeline):
 * their loss sum in *SUM. */
static int run_micro_batches(struct mb_trainer *t, bool training, float grad_scale,
                             double *sum)
{
    int rc = 0;
    for (int64_t j = 0; j < t->batches.count && rc == 0; j++) {
        struct mb_batch mb = mb_train_micro_batch(t, j);
        double ls, ms;
        bool last = j == t->batches.count - 1;
        if (training && last && t->gsync.overlap) { /* its gradients are the final ones */
            t->model.grad_ready = mb_train_grad_ready;
            t->model.grad_ready_ctx = &t->gsync;
        }
        mb_train_adapter_dropout(t, training ? j : -1);
        rc = mb_model_step(&t->model, &mb, grad_scale, &ls, &ms, NULL);
        t->model.grad_ready = NULL;
        *sum += ls;
    }
    mb_train_adapter_dropout(t, -1);
    return rc;
}

/* The micro-batches through the pipeline (train/pipeline.c): every rank checks all of
 * them first, since a stage that stopped mid-schedule would leave its neighbours
 * waiting; the loss, computed on the last stage, is then summed over the stages. */
static int run_pipeline(struct mb_trainer *t, bool training, float grad_scale, double *sum)
{
    int rc = 0;
    for (int64_t j = 0; j < t->batches.count && rc == 0; j++) {
        struct mb_batch mb = mb_train_micro_batch(t, j);
        rc = mb_model_check_batch(&t->model, &mb);
    }
    if (agree(t->dist, rc, "batch") < 0)
        return -1;
    rc = mb_train_pipeline(t, training, grad_scale, sum);
    mb_group_sum_f64(mb_pstate_group(&t->ps, MB_GROUP_PP), sum, 1);
    return rc;
}

/* Forward (and backward when TRAINING) over this rank's micro-batches; returns the
 * global mean loss in *LOSS and, when SUMS is not NULL, the global sums of the masked
 * token losses and of the mask in SUMS[0], SUMS[1]. */
static int run_batches(struct mb_trainer *t, bool training, double *loss, double *sums)
{
    const struct mb_group *dp = mb_pstate_group(&t->ps, MB_GROUP_DP);
    double totals[2] = { 0, local_mask_sum(t) };
    mb_group_sum_f64(dp, &totals[1], 1);
    float grad_scale = training && totals[1] > 0 ? (float)(1.0 / totals[1]) : 0.0f;
    double sum = 0;
    int rc = t->ps.pp > 1 ? run_pipeline(t, training, grad_scale, &sum)
                          : run_micro_batches(t, training, grad_scale, &sum);
    if (agree(t->dist, rc, "batch") < 0)
        return -1;
    totals[0] = sum;
    mb_group_sum_f64(dp, totals, 1);
    *loss = totals[1] > 0 ? totals[0] / totals[1] : 0.0;
    if (sums) {
        sums[0] = totals[0];
        sums[1] = totals[1];
    }
    return 0;
}

/* What went non-finite in an iteration, agreed by every rank: 0, or these bits. */
enum { BAD_GRAD = 1, BAD_LOSS = 2 };

static int nonfinite(const struct mb_trainer *t, double loss, double norm)
{
    int64_t bad = (isfinite(loss) ? 0 : BAD_LOSS) | (isfinite(norm) ? 0 : BAD_GRAD);
    return (int)mb_dist_max_i64(t->dist, bad);
}

/* X for a message: "NaN", "inf", "-inf" or its %g. */
static const char *num(char *buf, size_t cap, double x)
{
    if (isnan(x))
        return "NaN";
    snprintf(buf, cap, "%g", x);
    return buf;
}

/* A non-finite iteration (BAD bits): skipped while train.skip_nonfinite_steps allows,
 * else the error that stops the run (0 to skip, -1 to stop). */
static int skip_or_stop(struct mb_trainer *t, int bad, double loss, double norm)
{
    const char *what = bad == (BAD_LOSS | BAD_GRAD) ? "the loss and the gradient norm are"
                       : bad == BAD_LOSS            ? "the loss is"
                                                    : "the gradient norm is";
    char where[48], l[32], g[32];
    snprintf(where, sizeof where, "iteration %lld", (long long)t->iteration + 1);
    if (t->skipped < t->skip_nonfinite) {
        t->skipped++;
        mb_log_warn("%s: %s not finite (loss %s, grad norm %s): skipped, no update (%lld of "
                    "train.skip_nonfinite_steps %lld)", where, what, num(l, sizeof l, loss),
                    num(g, sizeof g, norm), (long long)t->skipped, (long long)t->skip_nonfinite);
        return 0;
    }
    return mb_err_set(MB_E_INVALID, where,
                      "%s not finite (loss %s, grad norm %s): the run diverged; stopping "
                      "without applying or saving it%s", what, num(l, sizeof l, loss),
                      num(g, sizeof g, norm),
                      t->skip_nonfinite ? " (more than train.skip_nonfinite_steps skipped)"
                                        : "");
}

/* The global L2 norm of the summed gradients G of the optimizer's range: with the
 * distributed optimizer the shards' sums of squares are summed over DP. (Under tensor
 * parallelism the sum also goes over TP: the tp-pp group without the distributed
 * optimizer, the world with it; parallel.md 2.10.) */
static double grad_norm(const struct mb_trainer *t, const float *g)
{
    const struct mb_model *m = &t->model;
    double sq = mb_grad_sumsq(m->ops, m->ex, &m->params, g, t->opt.lo, t->opt.hi, t->norm_weight);
    /* parallel.md 2.10: the shards of the distributed optimizer summed over DP, then the
     * tensor-parallel shards over the model-parallel group (TP-replicated gradients are
     * weighted 0 on TP ranks other than 0, so they count once) */
    if (t->gsync.distributed)
        mb_group_sum_f64(mb_pstate_group(&t->ps, MB_GROUP_DP), &sq, 1);
    mb_group_sum_f64(mb_pstate_group(&t->ps, MB_GROUP_MP), &sq, 1);
    return sqrt(sq);
}

/* This rank's copy of a word embedding tied to the output layer across pipeline stages
 * (parallel.md 4.6: one on the first stage, one on the last), or NULL. */
static const struct mb_param *tied_copy(const struct mb_trainer *t)
{
    const struct mb_model *m = &t->model;
    const struct mb_param *p = mb_param_get(&m->params, MB_P_WORD_EMB);
    if (t->ps.pp == 1 || !m->cfg.share_embeddings_and_output_weights || !p || !p->trainable)
        return NULL;
    return p;
}

/* The two copies' gradients are summed over the first and last stage, before the DP
 * reduction (the sums are then the same on both, and so are the updates). */
static void sum_tied_embedding(struct mb_trainer *t)
{
    const struct mb_param *p = tied_copy(t);
    if (p)
        mb_dev_sum_f32(t->model.ops, t->model.ex, mb_pstate_group(&t->ps, MB_GROUP_EMB),
                       mb_model_grad_of(&t->model, p), p->numel);
}

/* The two copies got the same summed gradient, but through DP reductions of other
 * shapes on the two stages; over more than 2 DP ranks MPI may sum in another order, so
 * the first stage's updated copy is copied to the last, which keeps them equal (with 2,
 * a + b == b + a: nothing to do). Returns the copy when it was overwritten, else NULL. */
static const struct mb_param *align_tied_embedding(struct mb_trainer *t)
{
    const struct mb_param *p = tied_copy(t);
    if (!p || t->ps.dp <= 2)
        return NULL;
    mb_dev_broadcast(t->model.ops, t->model.ex, mb_pstate_group(&t->ps, MB_GROUP_EMB),
                     t->model.w + p->offset, p->numel * (int64_t)sizeof(float), 0);
    return p;
}

/* The bf16 weight copies after a step: all converted again where the optimizer did not
 * write them (it updated a shard, the others came by the gather), else only those of
 * ALIGNED (NULL: none), a tied embedding whose broadcast overwrote the weights the
 * optimizer had rounded. */
static void refresh_bf16_weights(struct mb_trainer *t, const struct mb_param *aligned)
{
    struct mb_model *m = &t->model;
    if (!t->opt.bf16)
        mb_model_weights_changed(m);
    else if (aligned)
        mb_model_weight_changed(m, aligned->id);
}

static int train_iteration(struct mb_trainer *t)
{
    if (fill(t, MB_SPLIT_TRAIN, t->consumed_train) < 0)
        return -1;
    const struct mb_group *dp = mb_pstate_group(&t->ps, MB_GROUP_DP);
    const struct mb_group *tp = mb_pstate_group(&t->ps, MB_GROUP_TP);
    int64_t traffic = mb_group_traffic(dp), tp_traffic = mb_group_traffic(tp);
    struct mb_model *m = &t->model;
    mb_model_zero_grad(m);
    mb_grad_sync_begin(&t->gsync);
    double loss;
    if (run_batches(t, true, &loss, NULL) < 0) {
        if (t->gsync.overlap) /* complete the buckets the ranks that did not fail started */
            mb_grad_sync_finish(&t->gsync);
        return -1;
    }
    mb_model_finish_grads(m); /* TP sums (done per stage already when overlapping) */
    sum_tied_embedding(t);
    mb_grad_sync_finish(&t->gsync);
    float *g = mb_grad_sync_grads(&t->gsync); /* of the optimizer's range */
    double norm = grad_norm(t, g);
    double lr = mb_lr_at(&t->sched, t->iteration);
    int bad = t->check_nonfinite ? nonfinite(t, loss, norm) : 0;
    if (bad && skip_or_stop(t, bad, loss, norm) < 0)
        return -1;
    if (!bad) {
        mb_adamw_step(&t->opt, m->w, g, mb_clip_coeff(norm, t->clip_grad), (float)lr);
        mb_grad_sync_gather(&t->gsync, m->w + m->params.frozen);
        refresh_bf16_weights(t, align_tied_embedding(t));
    }
    t->dp_traffic += mb_group_traffic(dp) - traffic;
    t->tp_traffic += mb_group_traffic(tp) - tp_traffic;
    t->iteration++;
    t->consumed_train += t->global_batch;
    mb_train_log_iteration(t, loss, norm, lr, bad != 0);
    return 0;
}

static int evaluate(struct mb_trainer *t)
{
    int64_t iters = mb_config_i64(t->cfg, "train.eval_iters");
    if (mb_train_data_size(t, MB_SPLIT_VALID) <= 0 || iters <= 0)
        return 0;
    /* the loss over every loss-masked token of the eval_iters batches, as Megatron sums
     * [loss, tokens] over them (batches of SFT rows hold different numbers of tokens) */
    double total[2] = { 0, 0 };
    for (int64_t i = 0; i < iters; i++) {
        double loss, sums[2];
        if (fill(t, MB_SPLIT_VALID, t->consumed_valid) < 0)
            return -1;
        if (run_batches(t, false, &loss, sums) < 0)
            return -1;
        total[0] += sums[0];
        total[1] += sums[1];
        t->consumed_valid += t->global_batch;
    }
    mb_train_log_eval(t, total[1] > 0 ? total[0] / total[1] : 0.0);
    return 0;
}

static bool every(int64_t iteration, int64_t interval)
{
    return interval > 0 && iteration % interval == 0;
}

/* Say why the run stops early (REASON from mb_train_stop_check) and what was saved. */
static void log_stop(const struct mb_trainer *t, int reason, bool saved)
{
    char what[96];
    if (saved)
        snprintf(what, sizeof what, "saved iteration %lld", (long long)t->iteration);
    else
        snprintf(what, sizeof what, "iteration %lld not saved (no checkpoint.save)",
                 (long long)t->iteration);
    if (reason == MB_TRAIN_STOP_DURATION)
        mb_log_info("train.exit_duration_in_mins %g reached (up %.2f min): %s, exiting",
                    t->stop.limit_s / 60.0, (mb_now() - t->stop.start) / 60.0, what);
    else
        mb_log_info("exit signal %s received: %s, exiting", mb_train_signal_name(reason), what);
}

static int loop(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    int64_t eval_interval = mb_config_i64(cfg, "train.eval_interval");
    int64_t save_interval = mb_config_i64(cfg, "checkpoint.save_interval");
    int64_t exit_interval = mb_config_i64(cfg, "train.exit_interval");
    bool save = mb_config_has(cfg, "checkpoint.save");
    int64_t first = t->iteration;
    mb_train_log_start(t);
    while (t->iteration < t->train_iters) {
        if (train_iteration(t) < 0)
            return -1;
        if (every(t->iteration, eval_interval) && evaluate(t) < 0)
            return -1;
        bool last = t->iteration == t->train_iters;
        bool stop = every(t->iteration, exit_interval);
        int reason = mb_train_stop_check(&t->stop, t->dist);
        bool saving = save && (every(t->iteration, save_interval) || last || stop || reason);
        if (saving && mb_train_save(t) < 0)
            return -1;
        if (saving && !reason) /* a signal during that save: it is the one to stop at */
            reason = mb_train_stop_check(&t->stop, t->dist);
        if (reason) {
            log_stop(t, reason, save);
            break;
        }
        if (stop) {
            mb_log_info("exit_interval %lld reached at iteration %lld", (long long)exit_interval,
                        (long long)t->iteration);
            break;
        }
    }
    mb_train_log_finish(t, t->iteration - first);
    mb_train_log_pipeline_time(t);
    return 0;
}

static void teardown(struct mb_trainer *t)
{
    mb_tb_close(t->tb);
    mb_train_metrics_close(t);
    mb_gpt_data_close(t->data);
    mb_sft_close(t->sft);
    mb_adamw_free(&t->opt);
    mb_grad_sync_free(&t->gsync);
    free(t->norm_weight);
    mb_model_free(&t->model);
    mb_pipe_sched_free(&t->pipe);
    mb_pstate_free(&t->ps);
    free(t->batches.tokens);
    free(t->batches.labels);
    free(t->batches.position_ids);
    free(t->batches.loss_mask);
    free(t->batches.segment_ids);
    free(t->pretrained);
    mb_ckpt_extras_free(t->extras, t->n_extras);
}

/* checkpoint.pretrained_checkpoint as a file in t->pretrained, or NULL when unset. */
static int resolve_pretrained(struct mb_trainer *t)
{
    const char *key = "checkpoint.pretrained_checkpoint";
    if (!mb_config_has(t->cfg, key))
        return 0;
    const char *spec = mb_config_str(t->cfg, key);
    if (mb_ckpt_resolve(spec, &t->pretrained) < 0)
        return -1;
    if (!t->pretrained)
        return mb_err_set(MB_E_INVALID, mb_config_where(t->cfg, key),
                          "%s: no checkpoint there (no such file, or no 'latest')", spec);
    return 0;
}

/* peft.*, and the base of the adapters an adapter-only checkpoint.load was trained on. */
static int resolve_peft(struct mb_trainer *t)
{
    if (mb_peft_config_from(&t->peft, t->cfg) < 0)
        return -1;
    return mb_train_resolve_base(t);
}

/* Rank 0 removes what killed saves left in checkpoint.save (the others wait). */
static int remove_stale(const struct mb_trainer *t)
{
    if (t->dist->rank != 0 || !mb_config_has(t->cfg, "checkpoint.save"))
        return 0;
    return mb_ckpt_remove_stale(mb_config_str(t->cfg, "checkpoint.save")) < 0 ? -1 : 0;
}

/* Resume from checkpoint.load if it holds a checkpoint; else start from the pretrained
 * weights, if any; else from the initialisation. */
static int maybe_resume(struct mb_trainer *t)
{
    char *file = NULL;
    if (mb_config_has(t->cfg, "checkpoint.load")) {
        if (mb_ckpt_resolve(mb_config_str(t->cfg, "checkpoint.load"), &file) < 0)
            return -1;
        if (!file && t->dist->rank == 0)
            mb_log_info("checkpoint.load %s has no 'latest': %s",
                        mb_config_str(t->cfg, "checkpoint.load"),
                        t->pretrained ? "starting from the pretrained checkpoint"
                                      : "starting from scratch");
    }
    int rc = 0;
    bool adapters = t->peft.kind != MB_PEFT_NONE;
    if (file && adapters && t->pretrained) /* the frozen base, then the adapters */
        rc = mb_train_load_pretrained(t, t->pretrained);
    if (rc == 0 && file)
        rc = mb_train_resume(t, file);
    else if (rc == 0 && t->pretrained)
        rc = mb_train_load_pretrained(t, t->pretrained);
    if (rc == 0 && !file) /* DoRA's magnitudes start as the base's row norms */
        mb_model_init_magnitudes(&t->model);
    if (rc == 0 && !file && adapters && !t->pretrained && t->dist->rank == 0)
        mb_log_warn("peft.peft=%s without checkpoint.pretrained_checkpoint: the frozen base "
                    "is the seeded initialisation", mb_peft_kind_name(t->peft.kind));
    if (rc == 0 && (file || t->pretrained))
        rc = mb_train_keep_extras(t, file ? file : t->pretrained);
    if (rc == 0) /* the loaded weights (and DoRA's magnitudes) */
        mb_model_weights_changed(&t->model);
    free(file);
    return rc;
}

int mb_train_run(const struct mb_dist *dist, const mb_config *cfg,
                 const struct mb_train_tokenizer *tok)
{
    struct mb_trainer t;
    memset(&t, 0, sizeof(t));
    t.dist = dist;
    t.cfg = cfg;
    t.tok = tok;
    int rc = agree(dist, mb_train_stop_init(&t.stop, cfg), "train.exit_signal");
    if (rc == 0)
        rc = agree(dist, remove_stale(&t), "checkpoint.save");
    if (rc == 0)
        rc = agree(dist, resolve_pretrained(&t), "checkpoint.pretrained_checkpoint");
    if (rc == 0)
        rc = agree(dist, resolve_peft(&t), "peft");
    if (rc == 0)
        rc = agree(dist, setup(&t), "setup");
    if (rc == 0)
        rc = maybe_resume(&t);
    if (rc == 0)
        rc = loop(&t);
    teardown(&t);
    return rc;
}

int mb_train_checked_run(const struct mb_dist *dist, const mb_config *cfg,
                         const struct mb_train_tokenizer *tok, int rc)
{
    if (rc == 0)
        rc = mb_train_check_limits(cfg, dist->size, tok->vocab_size);
    if (mb_dist_all_ok(dist, rc == 0))
        return mb_train_run(dist, cfg, tok);
    return rc < 0 ? -1 : mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
}
