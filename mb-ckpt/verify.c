/* mb-ckpt/verify.c - `mb-ckpt verify CKPT`: is this checkpoint whole and sound?
 *
 * Structure: every parameter nn/params.h lays out for the stored model_config is under
 * /model with its shape and a float dtype, and nothing else is; /optim, when present,
 * has step, exp_avg and exp_avg_sq of every parameter (fp32, same shape) and master
 * copies exactly when the model tensor is not fp32; /train has its three int64
 * counters. Values: every float dataset is finite (the first bad element is named); the
 * counters are in range (iteration 0 to 9999999, the others not negative).
 * Everything the other tools read is read here the way they read it, so a file that
 * verifies cannot make info, mb-generate, mb-convert or a resume fail on its HDF5
 * structure: every dataset, the root attributes of a resume (format, mb_version,
 * model_config, recipe, tokenizer), the JSON ones parsed, and the HF items carried into
 * later checkpoints (hf_* attributes, /hf blobs, the .json files among them parsed),
 * and the tokenizer files among them loaded as mb-generate loads them.
 * Checksums: per dataset CRC-32C of the stored bytes (little-endian elements), one line
 * "%08x PATH" each, written with --write-checksums or checked with --checksums.
 * Each dataset is read once, for the finite check and the checksum together. Every
 * problem is printed on stdout as "problem: WHERE: WHAT" (findings.c); the result is -1
 * if any. HF directories are verified by hf.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck.h"
#include "core/cli.h"
#include "core/crc32c.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "nn/params.h"
#include "tok/tokenizer.h"

struct verify_opts {
    const char *checksums;
    const char *write_checksums;
    char **args;
    int nargs;
};

static const struct mb_opt verify_options[] = {
    { "checksums", 0, MB_OPT_STR, offsetof(struct verify_opts, checksums), "FILE",
      "also check every dataset against the CRC-32C list in FILE", 0, 0 },
    { "write-checksums", 0, MB_OPT_STR, offsetof(struct verify_opts, write_checksums), "FILE",
      "write the CRC-32C list of every dataset to FILE (only when all else verifies)", 0, 0 },
};

static const struct mb_cli verify_cli = {
    .tool = "mb-ckpt verify",
    .synopsis = "CKPT [--checksums FILE | --write-checksums FILE]",
    .summary = "Check that a checkpoint is complete, its shapes match its config and every "
               "value is finite.\nExit status 0 when it verifies, 1 when problems are found "
               "(each is listed).",
    .opts = verify_options,
    .nopts = 2,
    .args_offset = offsetof(struct verify_opts, args),
    .nargs_offset = offsetof(struct verify_opts, nargs),
};

struct vctx {
    mb_ckpt_reader *r;
    const char *file;
    struct ck_verify f;
    int64_t vocab_size; /* of the stored model_config; 0 if it does not parse */
};

static int same_shape(const struct mb_ckpt_info *it, const struct mb_param *p)
{
    if (it->ndim != p->ndim)
        return 0;
    for (int d = 0; d < p->ndim; d++)
        if (it->shape[d] != p->shape[d])
            return 0;
    return 1;
}

/* Dataset GROUP/<p->name> must exist with P's shape and a dtype allowed by WANT_F32. */
static const struct mb_ckpt_info *expect(struct vctx *v, const char *group,
                                         const struct mb_param *p, int want_f32)
{
    char *path = mb_ckpt_dataset_path(group, p->name);
    const struct mb_ckpt_info *it = path ? mb_ckpt_reader_find(v->r, path) : NULL;
    char want[128], got[128];

    mb_ckpt_shape_str(want, sizeof want, p->ndim, p->shape);
    if (!it) {
        ck_problem(&v->f, path ? path : p->name, "missing (expected %s)", want);
    } else if (!same_shape(it, p)) {
        mb_ckpt_shape_str(got, sizeof got, it->ndim, it->shape);
        ck_problem(&v->f, path, "shape %s, expected %s for the stored model_config", got, want);
    } else if (want_f32 ? it->dtype != MB_CKPT_F32 : !ck_is_float(it->dtype)) {
        ck_problem(&v->f, path, "dtype %s, expected %s", mb_ckpt_dtype_name(it->dtype),
                want_f32 ? "fp32" : "fp32, bf16 or fp16");
    }
    free(path);
    return it;
}

/* Int64 scalar PATH, read as a resume reads it, within [0, MAX]. */
static void expect_scalar(struct vctx *v, const char *path, int64_t max)
{
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(v->r, path);
    int64_t value;

    if (!it) {
        ck_problem(&v->f, path, "missing");
    } else if (it->dtype != MB_CKPT_I64 || it->numel != 1 || it->ndim > 1) {
        ck_problem(&v->f, path, "not an int64 scalar (%s, %d dimensions)",
                mb_ckpt_dtype_name(it->dtype), it->ndim);
    } else if (mb_ckpt_reader_read_i64(v->r, path, &value) != 0) {
        ck_problem(&v->f, path, "cannot read: %s", mb_err_what());
        mb_err_clear();
    } else if (value < 0 || value > max) {
        ck_problem(&v->f, path, "%lld is out of range (0 to %lld)", (long long)value,
                   (long long)max);
    }
}

/* Count of datasets under GROUP that the expected lists did not claim. */
static void unexpected(struct vctx *v, const char *group, const char *const *claimed, int n)
{
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++) {
        const char *path = mb_ckpt_reader_info(v->r, i)->path;
        if (!ck_under(path, group))
            continue;
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = strcmp(claimed[k], path) == 0;
        if (!found)
            ck_problem(&v->f, path, "unexpected dataset for the stored model_config");
    }
}

static void check_model(struct vctx *v, const struct mb_param_table *t)
{
    char **claimed = mb_xcalloc((size_t)t->count, sizeof *claimed);

    for (int i = 0; i < t->count; i++) {
        expect(v, "/model", &t->items[i], 0);
        claimed[i] = mb_ckpt_dataset_path("/model", t->items[i].name);
        if (!claimed[i])
            claimed[i] = mb_xstrdup("");
    }
    unexpected(v, "/model", (const char *const *)claimed, t->count);
    for (int i = 0; i < t->count; i++)
        free(claimed[i]);
    free(claimed);
}

/* /optim: moments of every parameter, masters exactly where /model is not fp32. */
static void check_optim(struct vctx *v, const struct mb_param_table *t)
{
    static const char *const groups[] = { "/optim/exp_avg", "/optim/exp_avg_sq",
                                          "/optim/master" };
    char **claimed = mb_xcalloc((size_t)t->count * 3 + 1, sizeof *claimed);
    int n = 0;

    claimed[n++] = mb_xstrdup("/optim/step");
    expect_scalar(v, "/optim/step", INT64_MAX);
    for (int i = 0; i < t->count; i++) {
        char *mpath = mb_ckpt_dataset_path("/model", t->items[i].name);
        const struct mb_ckpt_info *m = mpath ? mb_ckpt_reader_find(v->r, mpath) : NULL;
        int need_master = m && m->dtype != MB_CKPT_F32;
        free(mpath);
        for (int g = 0; g < 3; g++) {
            char *path = mb_ckpt_dataset_path(groups[g], t->items[i].name);
            if (g < 2 || need_master) {
                expect(v, groups[g], &t->items[i], 1);
                claimed[n++] = path;
            } else {
                free(path); /* present when not needed: reported as unexpected */
            }
        }
    }
    unexpected(v, "/optim", (const char *const *)claimed, n);
    for (int i = 0; i < n; i++)
        free(claimed[i]);
    free(claimed);
}

static void check_structure(struct vctx *v)
{
    struct mb_model_config cfg;
    struct mb_param_table t;

    if (ck_model_config(v->r, v->file, &cfg) != 0) {
        ck_problem(&v->f, v->file, "model_config: %s%s%s", mb_err_where(),
                *mb_err_where() ? ": " : "", mb_err_what());
        mb_err_clear();
    } else {
        v->vocab_size = cfg.vocab_size;
        mb_param_table_build(&t, &cfg);
        check_model(v, &t);
        for (int i = 0; i < mb_ckpt_reader_count(v->r); i++)
            if (ck_under(mb_ckpt_reader_info(v->r, i)->path, "/optim")) {
                check_optim(v, &t);
                break;
            }
    }
    expect_scalar(v, "/train/iteration", MB_CKPT_MAX_ITERATION);
    expect_scalar(v, "/train/consumed_train_samples", INT64_MAX);
    expect_scalar(v, "/train/consumed_valid_samples", INT64_MAX);
}

/* Root attribute NAME as the tools read it: a string, JSON when IS_JSON. Missing is a
 * problem only when REQUIRED. */
static void check_attr(struct vctx *v, const char *name, int required, int is_json)
{
    char *text;
    char where[600];

    snprintf(where, sizeof where, "attribute '%s'", name);
    if (!ck_attr_opt(v->r, name, &text)) {
        if (required || mb_ckpt_reader_has_attr(v->r, name))
            ck_problem(&v->f, where, "missing or not a readable string");
        return;
    }
    mb_json *j = is_json ? mb_json_parse(text, strlen(text), where) : NULL;
    if (is_json && !j) {
        ck_problem(&v->f, where, "not JSON: %s", mb_err_what());
        mb_err_clear();
    }
    mb_json_free(j);
    free(text);
}

/* The JSON files an HF export writes and mb-generate reads (tokenizer.json ...) parse. */
static void check_hf_json(struct vctx *v)
{
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++) {
        const char *path = mb_ckpt_reader_info(v->r, i)->path;
        size_t n = strlen(path), len;
        void *data;
        if (!ck_under(path, "/hf/files") || n < 5 || strcmp(path + n - 5, ".json") != 0)
            continue;
        if (mb_ckpt_reader_read_blob(v->r, path, &data, &len) != 0) {
            mb_err_clear(); /* reported with the other datasets */
            continue;
        }
        mb_json *j = mb_json_parse(data ? data : "", len, path);
        if (!j) {
            ck_problem(&v->f, path, "not JSON: %s", mb_err_what());
            mb_err_clear();
        }
        mb_json_free(j);
        free(data);
    }
}

/* Blob /hf/files/NAME of R into DIR/NAME, if there is one. */
static int extract(mb_ckpt_reader *r, const char *dir, const char *name)
{
    char *path = mb_xasprintf("/hf/files/%s", name), *file = mb_xasprintf("%s/%s", dir, name);
    void *data = NULL;
    size_t len = 0;
    int rc = 0;

    if (mb_ckpt_reader_find(r, path) && (rc = mb_ckpt_reader_read_blob(r, path, &data, &len)) == 0) {
        FILE *f = fopen(file, "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
            rc = mb_err_errno(file, "cannot write");
    }
    free(data);
    free(path);
    free(file);
    return rc;
}

/* The tokenizer files carried in /hf/files load as mb-generate loads them (from a
 * temporary directory), fit the model's vocabulary and decode. */
static void check_hf_tokenizer(struct vctx *v)
{
    static const char *const names[] = { "tokenizer.json", "tokenizer_config.json" };
    const char *tmp = getenv("TMPDIR");
    char *dir = mb_xasprintf("%s/mb-ckpt-verify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    mb_tokenizer *tok = NULL;
    int rc = 0;

    if (!mb_ckpt_reader_find(v->r, "/hf/files/tokenizer.json") || !mkdtemp(dir)) {
        free(dir);
        return;
    }
    for (size_t i = 0; rc == 0 && i < MB_ARRAY_LEN(names); i++)
        rc = extract(v->r, dir, names[i]);
    if (rc == 0)
        tok = mb_tokenizer_load(dir);
    if (!tok || mb_tokenizer_can_decode(tok) != 0) {
        ck_problem(&v->f, "/hf/files/tokenizer.json", "not a usable tokenizer: %s",
                   mb_err_what());
        mb_err_clear();
    } else if (v->vocab_size > 0 && mb_tokenizer_vocab_size(tok) > v->vocab_size) {
        ck_problem(&v->f, "/hf/files/tokenizer.json", "%lld tokens, more than the model's "
                   "vocabulary of %lld", (long long)mb_tokenizer_vocab_size(tok),
                   (long long)v->vocab_size);
    }
    mb_tokenizer_free(tok);
    for (size_t i = 0; i < MB_ARRAY_LEN(names); i++) {
        char *file = mb_xasprintf("%s/%s", dir, names[i]);
        unlink(file);
        free(file);
    }
    rmdir(dir);
    free(dir);
}

/* What a resume reads besides tensors and counters, and what it carries on. */
static void check_meta(struct vctx *v)
{
    static const struct { const char *name; int required, json; } attrs[] = {
        { "format", 1, 0 }, { "mb_version", 1, 0 }, { "recipe", 1, 1 }, { "tokenizer", 1, 0 },
        { "hf_config", 0, 1 }, { "hf_architecture", 0, 0 }, { "hf_weight_map", 0, 1 },
        { "hf_metadata", 0, 1 }, { "hf_omitted_prefix", 0, 0 },
    };
    static const char *const blobs[] = { "/train/rng_state", "/train/data_state" };
    struct mb_ckpt_extra *x;
    int n;

    for (size_t i = 0; i < MB_ARRAY_LEN(attrs); i++)
        check_attr(v, attrs[i].name, attrs[i].required, attrs[i].json);
    for (size_t i = 0; i < MB_ARRAY_LEN(blobs); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_find(v->r, blobs[i]);
        if (!it)
            ck_problem(&v->f, blobs[i], "missing");
        else if (it->dtype != MB_CKPT_U8 || it->ndim != 1)
            ck_problem(&v->f, blobs[i], "not a byte string (%s, %d dimensions)",
                       mb_ckpt_dtype_name(it->dtype), it->ndim);
    }
    if (mb_ckpt_reader_extras(v->r, &x, &n) != 0) {
        ck_problem(&v->f, v->file, "HF items: %s", mb_err_what());
        mb_err_clear();
    } else {
        mb_ckpt_extras_free(x, n);
    }
    check_hf_json(v);
    check_hf_tokenizer(v);
}

/* One pass over every dataset: finite check of floats, CRC-32C of the stored bytes. */
static void check_values(struct vctx *v)
{
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(v->r, i);
        size_t len;
        if (it->dtype == MB_CKPT_OTHER) {
            ck_problem(&v->f, it->path, "element type not one of fp32, bf16, fp16, int64, uint8");
            continue;
        }
        void *raw = ck_read_raw(v->r, it, &len);
        if (!raw) {
            ck_problem(&v->f, it->path, "cannot read: %s", mb_err_what());
            mb_err_clear();
            continue;
        }
        if (ck_is_float(it->dtype))
            ck_check_finite(&v->f, it->path, it->dtype, raw, it->ndim, it->shape, it->numel);
        v->f.crc[i] = mb_crc32c(0, raw, len);
        free(raw);
    }
}

static int verify_mb(const char *arg, const struct verify_opts *o)
{
    struct vctx v = { 0 };
    char *file;

    v.r = ck_open(arg, &file);
    if (!v.r)
        return -1;
    v.file = file;
    v.f.n = mb_ckpt_reader_count(v.r);
    v.f.names = mb_xcalloc((size_t)v.f.n + 1, sizeof *v.f.names);
    v.f.crc = mb_xcalloc((size_t)v.f.n + 1, sizeof *v.f.crc);
    for (int i = 0; i < v.f.n; i++)
        v.f.names[i] = mb_ckpt_reader_info(v.r, i)->path; /* sorted by the reader */
    check_structure(&v);
    check_meta(&v);
    check_values(&v);
    int rc = ck_verify_finish(&v.f, file, o->checksums, o->write_checksums);
    free(v.f.names);
    free(v.f.crc);
    free(file);
    mb_ckpt_reader_close(v.r);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    struct verify_opts o = { 0 };
    int rc = mb_cli_parse(&verify_cli, argc, argv, &o);

    if (rc == 0 && o.nargs != 1)
        rc = mb_err_set(MB_E_USAGE, NULL, "verify takes one checkpoint (got %d arguments)",
                        o.nargs);
    if (rc == 0 && o.checksums && o.write_checksums)
        rc = mb_err_set(MB_E_USAGE, NULL, "give --checksums or --write-checksums, not both");
    if (rc == 0 && ck_is_hf_dir(o.args[0]))
        rc = ck_verify_hf(o.args[0], o.checksums, o.write_checksums);
    else if (rc == 0)
        rc = verify_mb(o.args[0], &o);
    free(o.args);
    return rc;
}
