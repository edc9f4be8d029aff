/* mb-ckpt/merge_adapter.c - `mb-ckpt merge-adapter BASE ADAPTER OUT`: the adapter of an
 * adapter-only checkpoint folded into the weights of its base model.
 *
 * For every adapted module and layer, with W [out, in] the base weight, A [r, in],
 * B [out, r], s = alpha / r, in fp32 (finetune.md 3.5 and 2.1):
 *
 *   LoRA   W' = W + s (B A)
 *   DoRA   W' = m / ||W + s (B A)||_row * (W + s (B A))      (row norms in fp64)
 *
 * W' is stored in W's dtype (round to nearest even). Everything else of BASE is copied
 * byte for byte (the other /model tensors, /train, /hf, the attributes that describe
 * the model and its HF side) except /optim: those moments belong to the unmerged model.
 * OUT is a normal checkpoint, so `mb-convert --to hf` makes a full HF model of it: a
 * file (*.h5), or a directory given iter_%07d.h5 (BASE's iteration) and `latest`;
 * written as a temporary and renamed when complete. Peak memory: one adapter and one
 * layer of one base weight.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge/adapter.h"
#include "ck.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"

struct ma_opts {
    char **args;
    int nargs;
};

static const struct mb_opt ma_options[] = { { 0 } };

static const struct mb_cli ma_cli = {
    .tool = "mb-ckpt merge-adapter",
    .synopsis = "BASE ADAPTER OUT",
    .summary = "Fold the LoRA or DoRA adapter of an adapter-only checkpoint into the weights "
               "of its base\nmodel (fp32, stored in the base's dtype); the rest of BASE is "
               "copied, without /optim.\nOUT is a checkpoint file (*.h5) or a directory "
               "(iter_*.h5 and 'latest').",
    .opts = ma_options,
    .nopts = 0,
    .args_offset = offsetof(struct ma_opts, args),
    .nargs_offset = offsetof(struct ma_opts, nargs),
};

struct merge {
    mb_ckpt_reader *base, *ad;
    char *base_file, *ad_file;
    struct mb_bridge_adapter a;
    mb_ckpt_writer *w;
};

/* Every adapted weight is in BASE with the shape the adapter was trained on. */
static int check_base(struct merge *j)
{
    for (int k = 0; k < j->a.n; k++) {
        const struct mb_param *p = j->a.mod[k].base;
        char *path = mb_ckpt_dataset_path("/model", p->name), have[96], want[96];
        const struct mb_ckpt_info *it = mb_ckpt_reader_find(j->base, path);
        int rc = 0;
        free(path);
        if (!it)
            return mb_err_set(MB_E_INVALID, j->base_file, "missing tensor '%s' (the adapter %s "
                              "adapts it; is this a model checkpoint?)", p->name, j->ad_file);
        mb_ckpt_shape_str(have, sizeof have, it->ndim, it->shape);
        mb_ckpt_shape_str(want, sizeof want, p->ndim, p->shape);
        if (it->ndim != p->ndim || memcmp(it->shape, p->shape, sizeof(int64_t) * 3) != 0)
            rc = mb_err_set(MB_E_INVALID, j->base_file, "tensor '%s' is %s, but the adapter %s "
                            "was trained on a base where it is %s", p->name, have, j->ad_file,
                            want);
        else if (!ck_is_float(it->dtype))
            rc = mb_err_set(MB_E_UNSUPPORTED, j->base_file, "tensor '%s' is %s", p->name,
                            mb_ckpt_dtype_name(it->dtype));
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The attributes of BASE that describe the model and where it came from. */
static int copy_attrs(struct merge *j)
{
    static const char *const names[] = { "model_config", "recipe", "tokenizer" };
    struct mb_ckpt_extra *x = NULL;
    int n = 0, rc = 0;

    for (size_t i = 0; rc == 0 && i < MB_ARRAY_LEN(names); i++) {
        char *value;
        if (ck_attr_opt(j->base, names[i], &value))
            rc = mb_ckpt_writer_attr(j->w, names[i], value);
        free(value);
    }
    if (rc == 0)
        rc = mb_ckpt_reader_extras(j->base, &x, &n);
    for (int i = 0; rc == 0 && i < n; i++)
        if (x[i].name[0] != '/') /* the /hf datasets are copied with the others */
            rc = mb_ckpt_writer_attr(j->w, x[i].name, x[i].value);
    mb_ckpt_extras_free(x, n);
    return rc;
}

/* W[out, in] = W + s (B A), or its DoRA form with the magnitudes MAG[out]. */
static void merge_layer(float *W, const float *A, const float *B, const float *mag, int64_t out,
                        int64_t in, int64_t r, float s, float *row)
{
    for (int64_t o = 0; o < out; o++) {
        float *w = W + o * in;
        for (int64_t i = 0; i < in; i++)
            row[i] = 0.0f;
        for (int64_t k = 0; k < r; k++) {
            float b = B[o * r + k];
            const float *a = A + k * in;
            for (int64_t i = 0; i < in; i++)
                row[i] += b * a[i];
        }
        double norm = 0.0;
        for (int64_t i = 0; i < in; i++) {
            w[i] += s * row[i];
            norm += (double)w[i] * (double)w[i];
        }
        if (!mag)
            continue;
        /* a zero row stays zero, as it would in any form of the layer */
        float g = norm > 0.0 ? (float)((double)mag[o] / sqrt(norm)) : 0.0f;
        for (int64_t i = 0; i < in; i++)
            w[i] *= g;
    }
}

/* Widen N stored elements of TYPE at RAW to fp32 in X, and back. */
static void widen(const void *raw, enum mb_ckpt_dtype type, float *x, int64_t n)
{
    const uint16_t *h = raw;

    if (type == MB_CKPT_F32)
        memcpy(x, raw, sizeof(float) * (size_t)n);
    for (int64_t i = 0; type != MB_CKPT_F32 && i < n; i++)
        x[i] = type == MB_CKPT_BF16 ? mb_ckpt_f32_from_bf16(h[i]) : mb_ckpt_f32_from_f16(h[i]);
}

static void narrow(const float *x, enum mb_ckpt_dtype type, void *raw, int64_t n)
{
    uint16_t *h = raw;

    if (type == MB_CKPT_F32)
        memcpy(raw, x, sizeof(float) * (size_t)n);
    for (int64_t i = 0; type != MB_CKPT_F32 && i < n; i++)
        h[i] = type == MB_CKPT_BF16 ? mb_ckpt_bf16_from_f32(x[i]) : mb_ckpt_f16_from_f32(x[i]);
}

/* Module K merged into its base weight IT, one layer at a time. */
static int merge_module(struct merge *j, int k, const struct mb_ckpt_info *it)
{
    const struct mb_bridge_adapter_module *m = &j->a.mod[k];
    int64_t L = it->shape[0], out = m->out, in = m->in, r = j->a.dim, n = out * in;
    float *A, *B, *mag;

    if (mb_bridge_adapter_read(&j->a, j->ad, k, &A, &B, &mag) != 0)
        return -1;
    void *raw = mb_xmalloc((size_t)n * sizeof(float));
    float *W = mb_xmalloc((size_t)n * sizeof(float)), *row = mb_xmalloc((size_t)in * sizeof(float));
    int rc = mb_ckpt_writer_create(j->w, it->path, it->dtype, it->ndim, it->shape);
    for (int64_t l = 0; rc == 0 && l < L; l++) {
        rc = mb_ckpt_reader_read_rows(j->base, it->path, l, 1, raw);
        if (rc != 0)
            break;
        widen(raw, it->dtype, W, n);
        merge_layer(W, A + l * r * in, B + l * out * r, mag ? mag + l * out : NULL, out, in, r,
                    (float)mb_bridge_adapter_scale(&j->a), row);
        narrow(W, it->dtype, raw, n);
        rc = mb_ckpt_writer_write_rows(j->w, it->path, l, 1, raw);
    }
    free(raw);
    free(W);
    free(row);
    free(A);
    free(B);
    free(mag);
    return rc;
}

/* The adapter module whose base weight is the dataset PATH, or -1. */
static int module_at(const struct merge *j, const char *path)
{
    for (int k = 0; k < j->a.n; k++) {
        char *p = mb_ckpt_dataset_path("/model", j->a.mod[k].base->name);
        int same = strcmp(p, path) == 0;
        free(p);
        if (same)
            return k;
    }
    return -1;
}

static int write_all(struct merge *j)
{
    int rc = copy_attrs(j);

    for (int i = 0; rc == 0 && i < mb_ckpt_reader_count(j->base); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(j->base, i);
        int k = module_at(j, it->path);
        if (k >= 0)
            rc = merge_module(j, k, it);
        else if (!ck_under(it->path, "/optim"))
            rc = ck_copy_dataset(j->base, j->w, it);
    }
    return rc;
}

/* OUT: a .h5 file, or a directory (created) given the file of BASE's iteration. */
static char *output_file(struct merge *j, const char *out, int *is_dir, int *made_dir)
{
    struct stat sb;
    size_t n = strlen(out);
    int64_t iter = 0;

    *is_dir = !(n > 3 && strcmp(out + n - 3, ".h5") == 0);
    if (!*is_dir)
        return mb_xstrdup(out);
    if (mb_ckpt_reader_find(j->base, "/train/iteration") &&
        mb_ckpt_reader_read_i64(j->base, "/train/iteration", &iter) != 0)
        return NULL;
    *made_dir = stat(out, &sb) != 0;
    if (mb_fs_mkdirs(out, "checkpoint directory") != 0)
        return NULL;
    return mb_xasprintf("%s/iter_%07lld.h5", out, (long long)iter);
}

/* BASE is not the checkpoint the adapter names: said, not refused (a copy of it, or a
 * converted one, is as good; the shapes are checked). */
static void note_other_base(const struct merge *j)
{
    char *want = j->a.base_checkpoint ? realpath(j->a.base_checkpoint, NULL) : NULL;
    char *have = realpath(j->base_file, NULL);

    if (j->a.base_checkpoint && (!want || !have || strcmp(want, have) != 0))
        mb_log_warn("%s was trained on %s; merging it into %s", j->ad_file, j->a.base_checkpoint,
                    j->base_file);
    free(want);
    free(have);
}

static int merge(const char *base, const char *adapter, const char *out)
{
    struct merge j = { 0 };
    int rc = 0, is_dir = 0, made_dir = 0;
    char *file = NULL;

    if (!(j.base = ck_open(base, &j.base_file)) || !(j.ad = ck_open(adapter, &j.ad_file)))
        rc = -1;
    if (rc == 0)
        rc = mb_bridge_adapter_open(&j.a, j.ad, j.ad_file);
    if (rc == 0)
        rc = check_base(&j);
    if (rc == 0) {
        note_other_base(&j);
        file = output_file(&j, out, &is_dir, &made_dir);
        if (!file || !(j.w = mb_ckpt_writer_open(NULL, file)))
            rc = -1;
    }
    if (rc == 0 && write_all(&j) != 0) {
        mb_ckpt_writer_abort(j.w);
        rc = -1;
    } else if (rc == 0) {
        rc = mb_ckpt_writer_commit(j.w, is_dir ? out : NULL);
    }
    if (rc != 0 && made_dir)
        rmdir(out); /* only if still empty */
    if (rc == 0)
        printf("merged the %s adapter %s (r %lld, alpha %g, %d modules) into %s: %s\n",
               j.a.dora ? "DoRA" : "LoRA", j.ad_file, (long long)j.a.dim, j.a.alpha, j.a.n,
               j.base_file, file);
    mb_bridge_adapter_release(&j.a);
    mb_ckpt_reader_close(j.base);
    mb_ckpt_reader_close(j.ad);
    free(j.base_file);
    free(j.ad_file);
    free(file);
    return rc;
}

int cmd_merge_adapter(int argc, char **argv)
{
    struct ma_opts o = { 0 };
    int rc = mb_cli_parse(&ma_cli, argc, argv, &o);

    if (rc == 0 && o.nargs != 3)
        rc = mb_err_set(MB_E_USAGE, NULL, "merge-adapter takes BASE ADAPTER OUT (got %d "
                        "argument%s)", o.nargs, o.nargs == 1 ? "" : "s");
    if (rc == 0)
        rc = merge(o.args[0], o.args[1], o.args[2]);
    free(o.args);
    return rc;
}
