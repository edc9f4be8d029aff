/* train/state.c - save and resume a run through ckpt/: weights, Adam moments, counters. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
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

/* The tensors of a checkpoint of this run, in the whole model's order on every pipeline
 * stage (ckpt/ckpt.h mb_ckpt_tensors_of): the weights W (all of them, whatever the
 * stage: the ones of other stages are empty parts), with COUNT of them, of which the
 * checkpoint holds [FIRST, COUNT): the adapters only, with adapters. */
struct ckpt_list {
    struct mb_param_table whole;
    struct mb_ckpt_tensor *w;
    int first, count;
};

/* The weights and this rank's range of the Adam moments as host code (HDF5) sees them:
 * the backend's buffers on host memory, else host copies (kern/ops.h mb_host_view). */
struct host_state {
    float *w, *m, *v;
};

static void host_state_begin(const struct mb_trainer *t, struct host_state *h)
{
    const struct mb_ops *o = t->model.ops;
    size_t wb = (size_t)t->model.params.total * sizeof(float);
    size_t mb = (size_t)(t->opt.hi - t->opt.lo) * sizeof(float);
    h->w = mb_host_view(o, t->model.ex, t->model.w, wb);
    h->m = mb_host_view(o, t->model.ex, t->opt.exp_avg, mb);
    h->v = mb_host_view(o, t->model.ex, t->opt.exp_avg_sq, mb);
}

/* With LOADED, what was read into the host copies goes to the backend. */
static void host_state_end(struct mb_trainer *t, struct host_state *h, bool loaded)
{
    const struct mb_ops *o = t->model.ops;
    size_t wb = (size_t)t->model.params.total * sizeof(float);
    size_t mb = (size_t)(t->opt.hi - t->opt.lo) * sizeof(float);
    mb_host_view_end(o, t->model.ex, t->model.w, h->w, wb, loaded);
    mb_host_view_end(o, t->model.ex, t->opt.exp_avg, h->m, mb, loaded);
    mb_host_view_end(o, t->model.ex, t->opt.exp_avg_sq, h->v, mb, loaded);
}

static void ckpt_list_make(const struct mb_trainer *t, const struct host_state *h,
                           struct ckpt_list *l)
{
    const struct mb_param_table *p = &t->model.params;
    mb_ckpt_whole_table(&l->whole, p, &t->model.cfg, &t->model.peft);
    l->w = mb_ckpt_tensors_of(p, &l->whole, h->w);
    l->count = l->whole.count;
    /* the table lays the frozen base out first */
    l->first = 0;
    while (t->peft.kind != MB_PEFT_NONE && l->first < l->count &&
           !l->whole.items[l->first].trainable)
        l->first++;
    /* adapter-only checkpoints keep the adapters under /adapter */
    for (int i = l->first; t->peft.kind != MB_PEFT_NONE && i < l->count; i++)
        l->w[i].group = "/adapter";
}

/* The Adam moment MOMENT (the optimizer's range [lo, hi) of the flat buffer) as the
 * parts of the logical tensors of L it holds: all of this stage's without the
 * distributed optimizer, this rank's shard with it, which the save writes and the load
 * reads as hyperslabs. */
static struct mb_ckpt_tensor *moment_tensors(const struct mb_trainer *t,
                                             const struct host_state *h,
                                             const struct ckpt_list *l, float *moment)
{
    const struct mb_param_table *p = &t->model.params;
    struct mb_ckpt_tensor *x = mb_ckpt_tensors_of(p, &l->whole, h->w);
    mb_ckpt_tensors_part(x, l->count, p, t->opt.lo, t->opt.hi, moment);
    return x;
}

/* The extras of a save: the carried HF side, and for adapters the peft and
 * base_checkpoint attributes (malloc'd; *N their count). */
static struct mb_ckpt_extra *save_extras(const struct mb_trainer *t, int *n)
{
    int k = t->n_extras;
    struct mb_ckpt_extra *x = mb_xcalloc((size_t)k + 2, sizeof(*x));
    for (int i = 0; i < k; i++)
        x[i] = t->extras[i];
    if (t->peft.kind != MB_PEFT_NONE) {
        char *base = t->pretrained ? realpath(t->pretrained, NULL) : NULL;
        x[k].name = "peft";
        x[k].value = mb_peft_config_to_json(&t->peft);
        x[k + 1].name = "base_checkpoint";
        x[k + 1].value = base ? base : mb_xstrdup("");
        x[k].len = strlen(x[k].value);
        x[k + 1].len = strlen(x[k + 1].value);
        k += 2;
    }
    *n = k;
    return x;
}

static void free_save_extras(const struct mb_trainer *t, struct mb_ckpt_extra *x, int n)
{
    for (int i = t->n_extras; i < n; i++)
        free(x[i].value);
    free(x);
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
static int check_finite(const struct mb_trainer *t, const struct host_state *h)
{
    int64_t n = t->model.params.total, shard = t->opt.hi - t->opt.lo;
    if (!t->check_nonfinite ||
        (all_finite(h->w, n) && all_finite(h->m, shard) && all_finite(h->v, shard)))
        return 0;
    return mb_err_set(MB_E_INVALID, mb_config_str(t->cfg, "checkpoint.save"),
                      "iteration %lld: the weights or Adam moments are not finite; the run "
                      "diverged and is not saved", (long long)t->iteration);
}

/* The save of mb_train_save from the host state H. */
static int save(struct mb_trainer *t, const struct host_state *h)
{
    int bad = check_finite(t, h) < 0;
    if (!mb_dist_all_ok(t->dist, !bad))
        return bad ? -1 : mb_err_set(MB_E_INVALID, "checkpoint", "another rank failed");
    enum mb_ckpt_dtype dtype = MB_CKPT_F32;
    if (parse_dtype(t->cfg, &dtype) < 0 || mb_train_carry_tokenizer(t) < 0)
        return -1;
    if (t->peft.kind != MB_PEFT_NONE) /* adapters are small: always exact */
        dtype = MB_CKPT_F32;
    bool optim = mb_config_bool(t->cfg, "checkpoint.save_optim");
    struct ckpt_list l;
    ckpt_list_make(t, h, &l);
    int first = l.first, n_extra = 0;
    struct mb_ckpt_extra *extras = save_extras(t, &n_extra);
    struct mb_ckpt_tensor *m = optim ? moment_tensors(t, h, &l, h->m) : NULL;
    struct mb_ckpt_tensor *v = optim ? moment_tensors(t, h, &l, h->v) : NULL;
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
    st.extra = extras;
    st.n_extra = n_extra;
    /* the layout of this run, for mb-ckpt info (a resume need not match it) */
    st.layout = (struct mb_ckpt_layout){ t->ps.tp, t->ps.cp, t->ps.dp, t->ps.pp,
                                         t->gsync.distributed };
    char *saved = NULL;
    double start = mb_now();
    int rc = mb_ckpt_save(t->dist, mb_config_str(t->cfg, "checkpoint.save"), l.w + first,
                          l.count - first, m ? m + first : NULL, v ? v + first : NULL, dtype,
                          &st, &saved);
    if (rc == 0 && t->dist->rank == 0)
        mb_log_info("saved checkpoint %s at iteration %lld in %.2f s", saved,
                    (long long)t->iteration, mb_now() - start);
    free(saved);
    free(model_json);
    free(recipe_json);
    free_save_extras(t, extras, n_extra);
    free(l.w);
    free(m);
    free(v);
    return rc;
}

int mb_train_save(struct mb_trainer *t)
{
    struct host_state h;
    host_state_begin(t, &h);
    int rc = save(t, &h);
    host_state_end(t, &h, false);
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
    struct host_state h;
    struct ckpt_list l;
    host_state_begin(t, &h);
    ckpt_list_make(t, &h, &l);
    int n = t->peft.kind != MB_PEFT_NONE ? l.first : l.count; /* the base only */
    int rc = mb_ckpt_load(t->dist, file, l.w, n, NULL, NULL, NULL);
    host_state_end(t, &h, rc == 0);
    if (rc == 0 && t->dist->rank == 0)
        mb_log_info("loaded the weights of %s; optimizer and counters start fresh%s", file,
                    n < l.count ? " (the base of the adapters, frozen)" : "");
    free(l.w);
    return rc;
}

/* The peft attribute of checkpoint FILE into *PC (kind NONE when it has none), and its
 * base_checkpoint into *BASE. */
static int file_peft(const struct mb_dist *d, const char *file, struct mb_peft_config *pc,
                     char **base)
{
    mb_ckpt_reader *r = mb_ckpt_reader_open(d, file);
    if (!r)
        return -1;
    int rc = mb_ckpt_reader_peft(r, file, pc, base);
    mb_ckpt_reader_close(r);
    return rc;
}

/* The adapters of FILE must be the ones this run has (peft.*). */
static int check_peft(const struct mb_trainer *t, const char *file)
{
    struct mb_peft_config pc;
    char *base = NULL;
    if (file_peft(t->dist, file, &pc, &base) < 0)
        return -1;
    free(base);
    if (pc.kind == MB_PEFT_NONE && t->peft.kind == MB_PEFT_NONE)
        return 0;
    if (t->peft.kind == MB_PEFT_NONE)
        return mb_err_set(MB_E_INVALID, file,
                          "checkpoint.load: an adapter-only checkpoint (%s adapters); resume "
                          "it with peft.peft=%s and its other peft.* keys",
                          mb_peft_kind_name(pc.kind), mb_peft_kind_name(pc.kind));
    if (pc.kind == MB_PEFT_NONE)
        return mb_err_set(MB_E_INVALID, file,
                          "checkpoint.load: not an adapter-only checkpoint, but peft.peft=%s "
                          "(start from its weights with checkpoint.pretrained_checkpoint)",
                          mb_peft_kind_name(t->peft.kind));
    if (!mb_peft_config_same(&pc, &t->peft)) {
        char *mine = mb_peft_config_to_json(&t->peft), *theirs = mb_peft_config_to_json(&pc);
        mb_err_set(MB_E_INVALID, file,
                   "checkpoint.load: its adapters %s differ from the peft.* keys of this run "
                   "%s", theirs, mine);
        free(mine);
        free(theirs);
        return -1;
    }
    return 0;
}

int mb_train_resolve_base(struct mb_trainer *t)
{
    const char *key = "checkpoint.load";
    char *file = NULL, *base = NULL;
    struct mb_peft_config pc;
    if (t->peft.kind == MB_PEFT_NONE || !mb_config_has(t->cfg, key))
        return 0;
    if (mb_ckpt_resolve(mb_config_str(t->cfg, key), &file) < 0)
        return -1;
    int rc = file ? file_peft(t->dist, file, &pc, &base) : 0;
    if (rc == 0 && base && base[0]) {
        if (mb_fs_exists(base)) {
            free(t->pretrained);
            t->pretrained = base;
            base = NULL;
        } else if (!t->pretrained) {
            rc = mb_err_set(MB_E_INVALID, file,
                            "base_checkpoint %s: no such file (name the base with "
                            "checkpoint.pretrained_checkpoint)", base);
        } else if (t->dist->rank == 0) {
            mb_log_warn("%s: base_checkpoint %s is gone; the base is "
                        "checkpoint.pretrained_checkpoint %s", file, base, t->pretrained);
        }
    }
    free(base);
    free(file);
    return rc;
}

int mb_train_resume(struct mb_trainer *t, const char *file)
{
    if (check_peft(t, file) < 0)
        return -1;
    /* each rank reads its own parts (its shard of the moments with the distributed
     * optimizer): any layout resumes any other */
    struct host_state h;
    struct ckpt_list l;
    host_state_begin(t, &h);
    ckpt_list_make(t, &h, &l);
    struct mb_ckpt_tensor *m = moment_tensors(t, &h, &l, h.m);
    struct mb_ckpt_tensor *v = moment_tensors(t, &h, &l, h.v);
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    int first = l.first;
    int rc = mb_ckpt_load(t->dist, file, l.w + first, l.count - first, m + first, v + first,
                          &st);
    host_state_end(t, &h, rc == 0);
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
    free(l.w);
    free(m);
    free(v);
    return rc;
}
