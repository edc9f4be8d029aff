/* train/state.c - save and resume a run through ckpt/: weights, Adam moments, counters. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/time.h"

static int parse_dtype(const mb_config *cfg, enum mb_ckpt_dtype *out)
{
    const char *s = mb_config_str(cfg, "checkpoint.ckpt_dtype");
    if (strcmp(s, "fp32") == 0)
        *out = MB_CKPT_F32;
    else if (strcmp(s, "bf16") == 0)
        *out = MB_CKPT_BF16;
    else
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "checkpoint.ckpt_dtype"),
                          "checkpoint.ckpt_dtype '%s': use fp32 or bf16", s);
    return 0;
}

/* The Adam moment MOMENT (the optimizer's range [lo, hi) of the flat buffer) as the
 * parts of the logical tensors it holds: all of them without the distributed optimizer,
 * this rank's shard with it, which the save writes and the load reads as hyperslabs. */
static struct mb_ckpt_tensor *moment_tensors(const struct mb_trainer *t, float *moment)
{
    const struct mb_param_table *p = &t->model.params;
    struct mb_ckpt_tensor *x = mb_ckpt_tensors_of(p, t->model.w);
    mb_ckpt_tensors_part(x, p, t->opt.lo, t->opt.hi, moment);
    return x;
}

static bool all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

/* With train.check_for_nan_in_loss_and_grad, a checkpoint never holds NaN or inf: an
 * update can still overflow the weights or the moments with finite gradients. */
static int check_finite(const struct mb_trainer *t)
{
    int64_t n = t->model.params.total, shard = t->opt.hi - t->opt.lo;
    if (!t->check_nonfinite ||
        (all_finite(t->model.w, n) && all_finite(t->opt.exp_avg, shard) &&
         all_finite(t->opt.exp_avg_sq, shard)))
        return 0;
    return mb_err_set(MB_E_INVALID, mb_config_str(t->cfg, "checkpoint.save"),
                      "iteration %lld: the weights or Adam moments are not finite; the run "
                      "diverged and is not saved", (long long)t->iteration);
}

int mb_train_save(struct mb_trainer *t)
{
    const struct mb_param_table *p = &t->model.params;
    int bad = check_finite(t) < 0;
    if (!mb_dist_all_ok(t->dist, !bad))
        return bad ? -1 : mb_err_set(MB_E_INVALID, "checkpoint", "another rank failed");
    enum mb_ckpt_dtype dtype = MB_CKPT_F32;
    if (parse_dtype(t->cfg, &dtype) < 0 || mb_train_carry_tokenizer(t) < 0)
        return -1;
    bool optim = mb_config_bool(t->cfg, "checkpoint.save_optim");
    struct mb_ckpt_tensor *w = mb_ckpt_tensors_of(p, t->model.w);
    struct mb_ckpt_tensor *m = optim ? moment_tensors(t, t->opt.exp_avg) : NULL;
    struct mb_ckpt_tensor *v = optim ? moment_tensors(t, t->opt.exp_avg_sq) : NULL;
    char *model_json = mb_model_config_to_json(&t->model.cfg);
    char *recipe_json = mb_config_to_json(t->cfg);
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    st.iteration = t->iteration;
    st.consumed_train_samples = t->consumed_train;
    st.consumed_valid_samples = t->consumed_valid;
    st.optim_step = t->opt.step;
    /* The only randomness of a run is the seed (initialisation, data order), so the seed
     * is the whole RNG state; there is no dropout. */
    int64_t seed = mb_config_i64(t->cfg, "train.seed");
    st.rng_state = &seed;
    st.rng_state_len = sizeof(seed);
    /* The data position is consumed_*_samples; the data state says what they count in. */
    char data_state[512];
    snprintf(data_state, sizeof(data_state),
             "{\"seq_length\": %lld, \"global_batch_size\": %lld, \"seed\": %lld, "
             "\"mock\": %s}",
             (long long)t->seq, (long long)t->global_batch, (long long)seed,
             mb_config_bool(t->cfg, "data.mock") ? "true" : "false");
    st.data_state = data_state;
    st.data_state_len = strlen(data_state);
    st.model_config_json = model_json;
    st.recipe_json = recipe_json;
    st.tokenizer = t->tok->name ? t->tok->name : "";
    st.extra = t->extras;
    st.n_extra = t->n_extras;
    /* the layout of this run, for mb-ckpt info (a resume need not match it) */
    st.layout = (struct mb_ckpt_layout){ t->ps.tp, t->ps.cp, t->ps.dp, t->ps.pp,
                                         t->gsync.distributed };
    char *saved = NULL;
    double start = mb_now();
    int rc = mb_ckpt_save(t->dist, mb_config_str(t->cfg, "checkpoint.save"), w, p->count, m, v,
                          dtype, &st, &saved);
    if (rc == 0 && t->dist->rank == 0)
        mb_log_info("saved checkpoint %s at iteration %lld in %.2f s", saved,
                    (long long)t->iteration, mb_now() - start);
    free(saved);
    free(model_json);
    free(recipe_json);
    free(w);
    free(m);
    free(v);
    return rc;
}

int mb_train_keep_extras(struct mb_trainer *t, const char *file)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(t->dist, file);
    if (!r)
        return -1;
    int rc = mb_ckpt_reader_extras(r, &t->extras, &t->n_extras);
    mb_ckpt_reader_close(r);
    return rc;
}

int mb_train_pretrained_config(const struct mb_dist *d, const char *file,
                               struct mb_model_config *mc)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(d, file);
    if (!r)
        return -1;
    char *text = NULL;
    int rc = mb_ckpt_reader_attr(r, "model_config", &text);
    mb_ckpt_reader_close(r);
    if (rc < 0)
        return -1;
    mb_json *obj = mb_json_parse(text, strlen(text), file);
    rc = obj ? mb_model_config_from_json(mc, obj, file) : -1;
    mb_json_free(obj);
    free(text);
    return rc;
}

int mb_train_load_pretrained(struct mb_trainer *t, const char *file)
{
    const struct mb_param_table *p = &t->model.params;
    struct mb_ckpt_tensor *w = mb_ckpt_tensors_of(p, t->model.w);
    int rc = mb_ckpt_load(t->dist, file, w, p->count, NULL, NULL, NULL);
    if (rc == 0 && t->dist->rank == 0)
        mb_log_info("loaded the weights of %s; optimizer and counters start fresh", file);
    free(w);
    return rc;
}

int mb_train_resume(struct mb_trainer *t, const char *file)
{
    const struct mb_param_table *p = &t->model.params;
    /* each rank reads its own parts (its shard of the moments with the distributed
     * optimizer): any layout resumes any other */
    struct mb_ckpt_tensor *w = mb_ckpt_tensors_of(p, t->model.w);
    struct mb_ckpt_tensor *m = moment_tensors(t, t->opt.exp_avg);
    struct mb_ckpt_tensor *v = moment_tensors(t, t->opt.exp_avg_sq);
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    int rc = mb_ckpt_load(t->dist, file, w, p->count, m, v, &st);
    if (rc == 0)
        rc = mb_train_check_schedule(t, file, st.recipe_json);
    if (rc == 0) {
        t->iteration = st.iteration;
        t->consumed_train = st.consumed_train_samples;
        t->consumed_valid = st.consumed_valid_samples;
        t->opt.step = st.optim_step;
        if (t->dist->rank == 0)
            mb_log_info("resumed from %s: iteration %lld, %lld samples consumed", file,
                        (long long)t->iteration, (long long)t->consumed_train);
    }
    mb_ckpt_state_release(&st);
    free(w);
    free(m);
    free(v);
    return rc;
}
