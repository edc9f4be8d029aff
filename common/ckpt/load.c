/* ckpt/load.c - read a checkpoint into the caller's tensors, checking names, shapes
 * and dtypes. Each rank reads the logical hyperslabs of its own part of every tensor
 * (shard.c), so a file saved under any layout loads under any other: collectively where
 * the ranks' parts differ, independently where every rank reads the whole tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/internal.h"
#include "core/hash.h"
#include "core/mem.h"

/* All ranks learn whether every rank succeeded; one that did not fail itself says so. */
static int agree(const struct mb_dist *d, const char *file, int rc)
{
    static const struct mb_dist single = { 0, 1, 0 };

    if (mb_dist_all_ok(d ? d : &single, rc == 0))
        return 0;
    if (rc == 0)
        mb_err_set(MB_E_IO, file, "another rank failed to load the checkpoint");
    return -1;
}

/* Check dataset PATH against T: there, and of T's logical shape. */
static int check_dataset(mb_ckpt_reader *r, const char *file, const char *path,
                         const struct mb_ckpt_tensor *t)
{
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(r, path);
    int rc = 0;

    if (!it) {
        rc = mb_err_set(MB_E_INVALID, file, "tensor '%s': no dataset '%s'", t->name, path);
    } else if (it->ndim != t->ndim || memcmp(it->shape, t->shape,
                                             (size_t)t->ndim * sizeof *t->shape) != 0) {
        char have[128], want[128];
        mb_ckpt_shape_str(have, sizeof have, it->ndim, it->shape);
        mb_ckpt_shape_str(want, sizeof want, t->ndim, t->shape);
        rc = mb_err_set(MB_E_INVALID, file, "tensor '%s': shape %s in the checkpoint, %s "
                        "expected", t->name, have, want);
    }
    return rc;
}

/* Read this rank's part of dataset GROUP/<name of T> into T's data, after checking it
 * on every rank (the read is collective when COLL). */
static int load_tensor(const struct mb_dist *d, mb_ckpt_reader *r, const char *file,
                       const char *group, const struct mb_ckpt_tensor *t, int coll)
{
    char *path = mb_ckpt_dataset_path(group, t->name);
    int rc = path ? check_dataset(r, file, path, t) : -1;
    int64_t lo, hi;

    if (rc == 0)
        rc = ckpt_shard_check(t, group);
    ckpt_held(t, &lo, &hi);
    if (rc == 0 && !t->data && hi > lo)
        rc = mb_err_set(MB_E_INVALID, t->name, "%s: no room for the data", group);
    if (agree(d, file, rc) == 0)
        rc = agree(d, file, ckpt_reader_read_part(r, path, t, lo, hi, t->data, coll));
    else
        rc = -1;
    free(path);
    return rc;
}

/* MODEL[I]'s name and logical shape with the part and data of X (the moments are
 * described by the weights). */
static struct mb_ckpt_tensor named_like(const struct mb_ckpt_tensor *model,
                                        const struct mb_ckpt_tensor *x)
{
    struct mb_ckpt_tensor t = *x;

    t.name = model->name;
    t.ndim = model->ndim;
    memcpy(t.shape, model->shape, sizeof t.shape);
    return t;
}

/* The reads are collective: every rank must ask for the same tensors in the same order
 * (and with or without the moments). -1 on every rank when one does not. */
static int same_request(const struct mb_dist *d, const char *file,
                        const struct mb_ckpt_tensor *model, int n, int optim)
{
    static const struct mb_dist single = { 0, 1, 0 };
    const struct mb_dist *w = d ? d : &single;
    uint64_t h = mb_hash_bytes(&n, sizeof n) ^ (uint64_t)optim;

    for (int i = 0; i < n; i++)
        h = mb_splitmix64(h ^ mb_hash_bytes(model[i].name ? model[i].name : "",
                                            model[i].name ? strlen(model[i].name) : 0));
    int64_t mine = (int64_t)(h >> 1); /* both collectives on every rank */
    int64_t most = mb_dist_max_i64(w, mine), least = -mb_dist_max_i64(w, -mine);
    if (most != least)
        return mb_err_set(MB_E_INVALID, file, "the ranks ask for different tensors");
    return 0;
}

static int load_tensors(const struct mb_dist *d, mb_ckpt_reader *r, const char *file,
                        struct mb_ckpt_tensor *model, int n, struct mb_ckpt_tensor *m1,
                        struct mb_ckpt_tensor *m2)
{
    if (same_request(d, file, model, n, m1 != NULL) != 0)
        return -1;
    int has_optim = mb_ckpt_reader_find(r, "/optim/step") != NULL;
    int has_master = 0;

    for (int i = 0; i < mb_ckpt_reader_count(r) && !has_master; i++)
        has_master = strncmp(mb_ckpt_reader_info(r, i)->path, "/optim/master/", 14) == 0;
    if ((m1 || m2) && !has_optim) /* the same file on every rank: they all see it */
        return mb_err_set(MB_E_INVALID, file, "checkpoint holds no optimizer state");
    int *coll = mb_xcalloc(3 * (size_t)n + 1, sizeof *coll), rc = 0;
    ckpt_shard_collective(d, model, n, coll);
    if (m1)
        ckpt_shard_collective(d, m1, n, coll + n);
    if (m2)
        ckpt_shard_collective(d, m2, n, coll + 2 * n);
    for (int i = 0; i < n && rc == 0; i++) {
        const char *g = model[i].group ? model[i].group
                        : has_master  ? "/optim/master"
                                      : "/model";
        struct mb_ckpt_tensor x1 = m1 ? named_like(&model[i], &m1[i]) : model[i];
        struct mb_ckpt_tensor x2 = m2 ? named_like(&model[i], &m2[i]) : model[i];
        if (load_tensor(d, r, file, g, &model[i], coll[i]) != 0 ||
            (m1 && load_tensor(d, r, file, "/optim/exp_avg", &x1, coll[n + i]) != 0) ||
            (m2 && load_tensor(d, r, file, "/optim/exp_avg_sq", &x2, coll[2 * n + i]) != 0))
            rc = -1;
    }
    free(coll);
    return rc;
}

/* Counters a resume can trust (the stored bytes of a dataset carry no checksum). */
static int check_counters(const char *file, const struct mb_ckpt_state *st)
{
    const struct { const char *path; int64_t v, max; } c[] = {
        { "/train/iteration", st->iteration, MB_CKPT_MAX_ITERATION },
        { "/train/consumed_train_samples", st->consumed_train_samples, INT64_MAX },
        { "/train/consumed_valid_samples", st->consumed_valid_samples, INT64_MAX },
        { "/optim/step", st->optim_step, INT64_MAX },
    };

    for (size_t i = 0; i < MB_ARRAY_LEN(c); i++)
        if (c[i].v < 0 || c[i].v > c[i].max)
            return mb_err_set(MB_E_PARSE, file, "dataset '%s' holds %lld, "
                              "out of range (0 to %lld): damaged", c[i].path,
                              (long long)c[i].v, (long long)c[i].max);
    return 0;
}

static int load_state(mb_ckpt_reader *r, const char *file, struct mb_ckpt_state *st,
                      int optim)
{
    char *cfg = NULL, *recipe = NULL, *tok = NULL, *ver = NULL;
    void *rng = NULL, *data = NULL;
    int rc = 0;

    memset(st, 0, sizeof *st);
    rc = rc ? rc : mb_ckpt_reader_read_i64(r, "/train/iteration", &st->iteration);
    rc = rc ? rc : mb_ckpt_reader_read_i64(r, "/train/consumed_train_samples",
                                           &st->consumed_train_samples);
    rc = rc ? rc : mb_ckpt_reader_read_i64(r, "/train/consumed_valid_samples",
                                           &st->consumed_valid_samples);
    if (optim)
        rc = rc ? rc : mb_ckpt_reader_read_i64(r, "/optim/step", &st->optim_step);
    rc = rc ? rc : mb_ckpt_reader_read_blob(r, "/train/rng_state", &rng, &st->rng_state_len);
    rc = rc ? rc : mb_ckpt_reader_read_blob(r, "/train/data_state", &data, &st->data_state_len);
    rc = rc ? rc : mb_ckpt_reader_attr(r, "model_config", &cfg);
    rc = rc ? rc : mb_ckpt_reader_attr(r, "recipe", &recipe);
    rc = rc ? rc : mb_ckpt_reader_attr(r, "tokenizer", &tok);
    rc = rc ? rc : mb_ckpt_reader_attr(r, "mb_version", &ver);
    rc = rc ? rc : mb_ckpt_reader_layout(r, &st->layout);
    rc = rc ? rc : check_counters(file, st);
    st->rng_state = rng;
    st->data_state = data;
    st->model_config_json = cfg;
    st->recipe_json = recipe;
    st->tokenizer = tok;
    st->mb_version = ver;
    if (rc != 0)
        mb_ckpt_state_release(st);
    return rc;
}

void mb_ckpt_state_release(struct mb_ckpt_state *st)
{
    if (!st)
        return;
    free((void *)st->rng_state);
    free((void *)st->data_state);
    free((void *)st->model_config_json);
    free((void *)st->recipe_json);
    free((void *)st->tokenizer);
    free((void *)st->mb_version);
    memset(st, 0, sizeof *st);
}

int mb_ckpt_load(const struct mb_dist *d, const char *file, struct mb_ckpt_tensor *model, int n,
                 struct mb_ckpt_tensor *exp_avg, struct mb_ckpt_tensor *exp_avg_sq,
                 struct mb_ckpt_state *st)
{
    static const struct mb_dist single = { 0, 1, 0 };
    mb_ckpt_reader *r = mb_ckpt_reader_open(d, file);
    int rc = r ? 0 : -1;

    if (st)
        memset(st, 0, sizeof *st);
    if (agree(d, file, rc) != 0)
        rc = -1;
    else
        rc = load_tensors(d, r, file, model, n, exp_avg, exp_avg_sq);
    if (rc == 0 && st)
        rc = load_state(r, file, st, mb_ckpt_reader_find(r, "/optim/step") != NULL);
    mb_ckpt_reader_close(r);
    if (!mb_dist_all_ok(d ? d : &single, rc == 0)) {
        if (rc == 0)
            rc = mb_err_set(MB_E_IO, file, "another rank failed to load the checkpoint");
        if (st)
            mb_ckpt_state_release(st);
    }
    return rc;
}
