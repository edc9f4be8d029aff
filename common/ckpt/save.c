/* ckpt/save.c - collective write of a checkpoint and its commit protocol (style B.7).
 *
 * Every rank runs the same sequence of HDF5 calls (creation of groups, datasets and
 * attributes is collective in parallel HDF5) and writes only its share of what it holds
 * of each tensor (shard.c: the hyperslabs of its part, split with the ranks that hold
 * the same part). After each step the ranks agree on success, so a failure anywhere
 * makes every rank stop at the same point and return -1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/internal.h"
#include "core/cli.h"
#include "core/fs.h"
#include "core/mem.h"

struct saver {
    const struct mb_dist *d;
    int rank;
    const char *tmp; /* the file being written, named in errors */
    struct ckpt_wfile f;
    hid_t file, dxpl, lcpl, bf16; /* file is f.h5 */
    int64_t *lo[3], *hi[3]; /* weights, exp_avg, exp_avg_sq: the local elements to write */
};

/* All ranks learn whether every rank succeeded; a rank that did not fail itself
 * records which step failed elsewhere. Returns 0 if all succeeded, else -1. */
static int agree(const struct saver *s, int rc, const char *step)
{
    static const struct mb_dist single = { 0, 1, 0 };

    if (mb_dist_all_ok(s->d ? s->d : &single, rc == 0))
        return 0;
    if (rc == 0)
        mb_err_set(MB_E_IO, s->tmp, "another rank failed while %s", step);
    return -1;
}

static int64_t numel(const struct mb_ckpt_tensor *t)
{
    int64_t n = 1;

    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static int check_tensor(const struct mb_ckpt_tensor *t, const struct mb_ckpt_tensor *like,
                        const char *what)
{
    const char *name = like->name;

    if (t->ndim < 1 || t->ndim > MB_CKPT_MAX_DIM)
        return mb_err_set(MB_E_INVALID, name, "%s has %d dimensions (1 to %d allowed)", what,
                          t->ndim, MB_CKPT_MAX_DIM);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || (t != like && t->shape[i] != like->shape[i]))
            return mb_err_set(MB_E_INVALID, name, "%s: bad or mismatched dimension %d", what, i);
    if (t != like && t->ndim != like->ndim)
        return mb_err_set(MB_E_INVALID, name, "%s has a different rank from the weight", what);
    if (ckpt_shard_check(t, what) != 0)
        return -1;
    int64_t lo, hi;
    ckpt_held(t, &lo, &hi);
    if (!t->data && hi > lo)
        return mb_err_set(MB_E_INVALID, name, "%s has no data", what);
    return 0;
}

static const char *weight_group(const struct mb_ckpt_tensor *t)
{
    return t->group ? t->group : "/model";
}

static int check_args(const struct mb_ckpt_tensor *model, int n,
                      const struct mb_ckpt_tensor *m1, const struct mb_ckpt_tensor *m2,
                      enum mb_ckpt_dtype dtype, const struct mb_ckpt_state *st)
{
    if (dtype != MB_CKPT_F32 && dtype != MB_CKPT_BF16)
        return mb_err_set(MB_E_INVALID, "", "checkpoint weights must be fp32 or bf16, not %s",
                          mb_ckpt_dtype_name(dtype));
    if (!st || st->iteration < 0 || st->iteration > MB_CKPT_MAX_ITERATION)
        return mb_err_set(MB_E_INVALID, "", "checkpoint iteration must be 0 to %d",
                          MB_CKPT_MAX_ITERATION);
    if ((m1 == NULL) != (m2 == NULL))
        return mb_err_set(MB_E_INVALID, "", "both Adam moments or neither must be given");
    if ((st->rng_state_len && !st->rng_state) || (st->data_state_len && !st->data_state))
        return mb_err_set(MB_E_INVALID, "", "state blob without data");
    for (int i = 0; i < n; i++) {
        char *path = mb_ckpt_dataset_path(weight_group(&model[i]), model[i].name);
        if (!path)
            return -1;
        free(path);
        if (check_tensor(&model[i], &model[i], "weight") != 0 ||
            (m1 && check_tensor(&m1[i], &model[i], "exp_avg") != 0) ||
            (m2 && check_tensor(&m2[i], &model[i], "exp_avg_sq") != 0))
            return -1;
    }
    return 0;
}

/* Select in FSPACE all of a dataset of NDIM dimensions (a scalar for 0) on rank 0 and
 * nothing elsewhere, and return a matching memory space of ROOT_COUNT elements. */
static hid_t select_root(const struct saver *s, hid_t fspace, int ndim, hsize_t root_count)
{
    hsize_t n = s->rank == 0 ? root_count : 0;
    hid_t mspace = H5Screate_simple(1, (hsize_t[]){ n ? n : 1 }, NULL);

    if (n == 0) {
        H5Sselect_none(mspace);
        H5Sselect_none(fspace);
    } else if (ndim > 0) {
        H5Sselect_all(fspace);
    }
    return mspace;
}

/* Create dataset PATH of FTYPE, a scalar (NDIM 0) or a blob of SHAPE[0], and write
 * rank 0's DATA (elements of MTYPE) into it. */
static int write_dataset(struct saver *s, const char *path, hid_t ftype, int ndim,
                         const int64_t *shape, const void *data, hid_t mtype)
{
    hsize_t dims[1] = { ndim ? (hsize_t)shape[0] : 1 };
    hid_t fspace = ndim ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dset = H5Dcreate2(s->file, path, ftype, fspace, s->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (dset < 0) { /* before any other HDF5 call clears the error stack */
        int rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot create dataset '%s'", path);
        H5Sclose(fspace);
        return rc;
    }
    hid_t mspace = select_root(s, fspace, ndim, dims[0]);
    static const char none; /* HDF5 wants a buffer even when nothing is selected */
    const void *src = H5Sget_select_npoints(mspace) > 0 ? data : &none;
    int rc = 0;
    /* an empty dataset has no storage to write to (and all ranks know it is empty) */
    if (H5Sget_simple_extent_npoints(fspace) > 0 &&
        H5Dwrite(dset, mtype, mspace, fspace, s->dxpl, src) < 0)
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot write dataset '%s'", path);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (H5Dclose(dset) < 0 && rc == 0) /* may flush buffered data */
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot write dataset '%s'", path);
    return rc;
}

/* Write the local elements [LO, HI) of T (fp32, or rounded to bf16) into DSET, a
 * dataset of T's logical shape: its logical hyperslabs, collectively. */
static int write_part(struct saver *s, const char *path, hid_t dset, const struct mb_ckpt_tensor *t,
                      int64_t lo, int64_t hi, int bf16)
{
    hid_t fspace = H5Dget_space(dset);
    hsize_t n = (hsize_t)(hi - lo);
    hid_t mspace = H5Screate_simple(1, (hsize_t[]){ n ? n : 1 }, NULL);
    int64_t held, held_end;
    static const float none; /* HDF5 wants a buffer even when nothing is selected */
    const void *src = &none;
    uint16_t *half = NULL;

    ckpt_held(t, &held, &held_end);
    if (n == 0) {
        H5Sselect_none(mspace);
    } else if (bf16) {
        half = mb_xmalloc(n * sizeof *half);
        for (hsize_t i = 0; i < n; i++)
            half[i] = mb_ckpt_bf16_from_f32(t->data[lo - held + (int64_t)i]);
        src = half;
    } else {
        src = t->data + (lo - held);
    }
    int rc = ckpt_shard_select(t, lo, hi, fspace);
    /* an empty dataset has no storage to write to (and all ranks know it is empty) */
    if (rc == 0 && H5Sget_simple_extent_npoints(fspace) > 0 &&
        H5Dwrite(dset, bf16 ? s->bf16 : H5T_NATIVE_FLOAT, mspace, fspace, s->dxpl, src) < 0)
        rc = -1;
    if (rc != 0)
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot write dataset '%s'", path);
    free(half);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return rc;
}

/* Create dataset GROUP/NAME of T's logical shape and write this rank's local elements
 * [LO, HI) of T into it. */
static int write_tensor(struct saver *s, const char *group, const char *name,
                        const struct mb_ckpt_tensor *t, int64_t lo, int64_t hi, int bf16)
{
    char *path = mb_ckpt_dataset_path(group, name);
    hsize_t dims[MB_CKPT_MAX_DIM];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = (hsize_t)t->shape[i];
    hid_t fspace = H5Screate_simple(t->ndim, dims, NULL);
    hid_t dset = H5Dcreate2(s->file, path, bf16 ? s->bf16 : H5T_IEEE_F32LE, fspace, s->lcpl,
                            H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;

    H5Sclose(fspace);
    if (dset < 0)
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot create dataset '%s'", path);
    else
        rc = write_part(s, path, dset, t, lo, hi, bf16);
    if (dset >= 0 && H5Dclose(dset) < 0 && rc == 0) /* may flush buffered data */
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot write dataset '%s'", path);
    rc = agree(s, rc, path);
    free(path);
    return rc;
}

static int write_i64(struct saver *s, const char *path, int64_t v)
{
    return write_dataset(s, path, H5T_STD_I64LE, 0, NULL, &v, H5T_NATIVE_INT64);
}

static int write_blob(struct saver *s, const char *path, const void *data, size_t len)
{
    int64_t shape[1] = { (int64_t)len };

    return write_dataset(s, path, H5T_STD_U8LE, 1, shape, data, H5T_NATIVE_UINT8);
}

static int write_attr(struct saver *s, const char *name, const char *value)
{
    return ckpt_h5_write_attr(s->file, s->tmp, name, value);
}

/* The layout as root attributes (struct mb_ckpt_layout), when the caller gave one. */
static int write_layout(struct saver *s, const struct mb_ckpt_layout *l)
{
    const struct { const char *name; int v; } sizes[] = {
        { "tensor_model_parallel_size", l->tp }, { "context_parallel_size", l->cp },
        { "data_parallel_size", l->dp }, { "pipeline_model_parallel_size", l->pp },
    };
    char v[16];

    if (l->tp <= 0)
        return 0;
    for (size_t i = 0; i < MB_ARRAY_LEN(sizes); i++) {
        snprintf(v, sizeof v, "%d", sizes[i].v > 0 ? sizes[i].v : 1);
        if (agree(s, write_attr(s, sizes[i].name, v), sizes[i].name) != 0)
            return -1;
    }
    return agree(s, write_attr(s, "use_distributed_optimizer",
                               l->distributed_optimizer ? "true" : "false"),
                 "use_distributed_optimizer");
}

/* Each step is followed by agreement, so ranks never drift apart in collective calls. */
static int write_meta(struct saver *s, const struct mb_ckpt_state *st, int optim)
{
    const struct { const char *path; int64_t v; } ints[] = {
        { "/train/iteration", st->iteration },
        { "/train/consumed_train_samples", st->consumed_train_samples },
        { "/train/consumed_valid_samples", st->consumed_valid_samples },
        { "/optim/step", st->optim_step },
    };
    const struct { const char *name, *value; } attrs[] = {
        { "format", MB_CKPT_FORMAT }, { "mb_version", mb_version() },
        { "model_config", st->model_config_json }, { "recipe", st->recipe_json },
        { "tokenizer", st->tokenizer },
    };

    for (size_t i = 0; i < MB_ARRAY_LEN(ints) - !optim; i++)
        if (agree(s, write_i64(s, ints[i].path, ints[i].v), ints[i].path) != 0)
            return -1;
    if (agree(s, write_blob(s, "/train/rng_state", st->rng_state, st->rng_state_len),
              "/train/rng_state") != 0 ||
        agree(s, write_blob(s, "/train/data_state", st->data_state, st->data_state_len),
              "/train/data_state") != 0)
        return -1;
    for (size_t i = 0; i < MB_ARRAY_LEN(attrs); i++)
        if (agree(s, write_attr(s, attrs[i].name, attrs[i].value), attrs[i].name) != 0)
            return -1;
    if (write_layout(s, &st->layout) != 0)
        return -1;
    for (int i = 0; i < st->n_extra; i++) {
        const struct mb_ckpt_extra *x = &st->extra[i];
        int rc = x->name[0] == '/' ? write_blob(s, x->name, x->value, x->len)
                                   : write_attr(s, x->name, x->value);
        if (agree(s, rc, x->name) != 0)
            return -1;
    }
    return 0;
}

/* /train, /optim with OPTIM, and /model unless every weight goes to another group. */
static int write_groups(struct saver *s, int optim, int model)
{
    static const char *groups[] = { "/train", "/optim", "/model" };
    int rc = 0;

    if (H5Tcommit2(s->file, "/bf16", s->bf16, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) < 0)
        rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot store the bf16 type");
    for (int i = 0; rc == 0 && i < 3; i++) {
        if ((i == 1 && !optim) || (i == 2 && !model))
            continue;
        hid_t g = H5Gcreate2(s->file, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            rc = ckpt_h5_err(MB_E_IO, s->tmp, "cannot create group '%s'", groups[i]);
        else
            H5Gclose(g);
    }
    return agree(s, rc, "creating groups");
}

static int write_all(struct saver *s, const struct mb_ckpt_tensor *model, int n,
                     const struct mb_ckpt_tensor *m1, const struct mb_ckpt_tensor *m2,
                     int bf16, const struct mb_ckpt_state *st)
{
    int in_model = 0;
    for (int i = 0; i < n; i++)
        in_model |= model[i].group == NULL;
    if (write_groups(s, m1 != NULL, in_model) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (write_tensor(s, weight_group(&model[i]), model[i].name, &model[i], s->lo[0][i],
                         s->hi[0][i], bf16) != 0)
            return -1;
    for (int i = 0; m1 && i < n; i++) {
        if ((bf16 && write_tensor(s, "/optim/master", model[i].name, &model[i], s->lo[0][i],
                                  s->hi[0][i], 0) != 0) ||
            write_tensor(s, "/optim/exp_avg", model[i].name, &m1[i], s->lo[1][i], s->hi[1][i],
                         0) != 0 ||
            write_tensor(s, "/optim/exp_avg_sq", model[i].name, &m2[i], s->lo[2][i],
                         s->hi[2][i], 0) != 0)
            return -1;
    }
    return write_meta(s, st, m1 != NULL);
}

/* Bytes the file will take, generously: data plus a few KiB of metadata per dataset. */
static int64_t estimate_bytes(const struct mb_ckpt_tensor *model, int n, int optim, int bf16,
                              const struct mb_ckpt_state *st)
{
    int64_t bytes = (1 << 20) + (int64_t)(st->rng_state_len + st->data_state_len);
    for (int i = 0; i < st->n_extra; i++)
        bytes += 4096 + (int64_t)st->extra[i].len;

    for (int i = 0; i < n; i++) {
        int64_t e = numel(&model[i]);
        bytes += 4096 * (optim ? 4 : 1) + e * (bf16 ? 2 : 4) + (optim ? e * (bf16 ? 12 : 8) : 0);
    }
    return bytes;
}

/* Create TMP collectively, write everything, flush and close (ckpt_wfile_close: a
 * failed file is closed so that HDF5 has nothing left to write). */
static int write_file(struct saver *s, const struct mb_ckpt_tensor *model, int n,
                      const struct mb_ckpt_tensor *m1, const struct mb_ckpt_tensor *m2,
                      int bf16, const struct mb_ckpt_state *st)
{
    int rc = ckpt_wfile_create(&s->f, s->d, s->tmp);

    if (rc == 0) /* a full disk is found before HDF5 writes anything */
        rc = ckpt_wfile_need(&s->f, estimate_bytes(model, n, m1 != NULL, bf16, st));
    s->file = s->f.h5;
    s->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (ckpt_mpi(s->d))
        H5Pset_dxpl_mpio(s->dxpl, H5FD_MPIO_COLLECTIVE);
    s->lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(s->lcpl, 1);
    s->bf16 = ckpt_h5_bf16_type();
    if (agree(s, rc, "creating the checkpoint file") == 0)
        rc = write_all(s, model, n, m1, m2, bf16, st);
    else
        rc = -1;
    H5Tclose(s->bf16);
    H5Pclose(s->lcpl);
    H5Pclose(s->dxpl);
    rc = ckpt_wfile_close(&s->f, rc != 0) != 0 || rc != 0 ? -1 : 0;
    return agree(s, rc, "writing the checkpoint file");
}

static void free_plan(struct saver *s)
{
    for (int k = 0; k < 3; k++) {
        free(s->lo[k]);
        free(s->hi[k]);
        s->lo[k] = s->hi[k] = NULL;
    }
}

/* Which local elements of each tensor this rank writes (ckpt_shard_plan), agreed. */
static int plan(struct saver *s, const struct mb_ckpt_tensor *model, int n,
                const struct mb_ckpt_tensor *m1, const struct mb_ckpt_tensor *m2)
{
    const struct mb_ckpt_tensor *list[3] = { model, m1, m2 };
    int rc = 0;

    for (int k = 0; k < 3 && list[k]; k++) {
        s->lo[k] = mb_xcalloc((size_t)n + 1, sizeof *s->lo[k]);
        s->hi[k] = mb_xcalloc((size_t)n + 1, sizeof *s->hi[k]);
        /* the moments are named after the weights */
        struct mb_ckpt_tensor *t = mb_xmalloc(((size_t)n + 1) * sizeof *t);
        memcpy(t, list[k], (size_t)n * sizeof *t);
        for (int i = 0; i < n; i++) {
            t[i].name = model[i].name;
            if (t[i].copy) { /* another rank writes it */
                t[i].part = 1;
                t[i].part_start = t[i].part_count = 0;
            }
        }
        rc = ckpt_shard_plan(s->d, t, n, s->lo[k], s->hi[k]);
        free(t);
        if (agree(s, rc, "planning the writes of every rank") != 0) {
            free_plan(s);
            return -1;
        }
    }
    return 0;
}

static char *join(const char *dir, const char *name, const char *suffix)
{
    char *p = mb_xmalloc(strlen(dir) + strlen(name) + strlen(suffix) + 2);

    sprintf(p, "%s/%s%s", dir, name, suffix);
    return p;
}

int mb_ckpt_save(const struct mb_dist *d, const char *dir, const struct mb_ckpt_tensor *model,
                 int n, const struct mb_ckpt_tensor *exp_avg,
                 const struct mb_ckpt_tensor *exp_avg_sq, enum mb_ckpt_dtype model_dtype,
                 const struct mb_ckpt_state *st, char **saved_path)
{
    struct saver s = { .d = d, .rank = d ? d->rank : 0, .tmp = dir };
    char name[32];

    ckpt_h5_quiet();
    if (saved_path)
        *saved_path = NULL;
    int rc = check_args(model, n, exp_avg, exp_avg_sq, model_dtype, st);
    if (agree(&s, rc, "checking the checkpoint arguments") != 0 ||
        plan(&s, model, n, exp_avg, exp_avg_sq) != 0)
        return -1;
    if (s.rank == 0)
        rc = mb_fs_mkdirs(dir, "checkpoint directory");
    if (agree(&s, rc, "creating the checkpoint directory") != 0) {
        free_plan(&s);
        return -1;
    }
    snprintf(name, sizeof name, "iter_%07lld.h5", (long long)st->iteration);
    char *final = join(dir, name, ""), *tmp = join(dir, name, ".tmp");
    s.tmp = tmp;
    mb_fs_register_temp(tmp);
    rc = write_file(&s, model, n, exp_avg, exp_avg_sq, model_dtype == MB_CKPT_BF16, st);
    if (rc == 0 && s.rank == 0)
        rc = ckpt_publish(tmp, final, dir);
    rc = agree(&s, rc, "committing the checkpoint");
    if (rc != 0 && s.rank == 0)
        unlink(tmp);
    mb_fs_forget_temp(tmp);
    free(tmp);
    free_plan(&s);
    if (rc == 0 && saved_path)
        *saved_path = final;
    else
        free(final);
    return rc;
}
