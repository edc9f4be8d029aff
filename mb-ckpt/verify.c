/* mb-ckpt/verify.c - `mb-ckpt verify CKPT`: is this checkpoint whole and sound?
 *
 * Structure: every parameter nn/params.h lays out for the stored model_config is under
 * /model with its shape and a float dtype, and nothing else is; /optim, when present,
 * has step, exp_avg and exp_avg_sq of every parameter (fp32, same shape) and master
 * copies exactly when the model tensor is not fp32; /train has its three int64
 * counters. Values: every float dataset is finite (the first bad element is named).
 * Checksums: per dataset CRC-32C of the stored bytes (little-endian elements), one line
 * "%08x PATH" each, written with --write-checksums or checked with --checksums.
 * Each dataset is read once, for the finite check and the checksum together. Every
 * problem is printed on stdout as "problem: WHERE: WHAT"; the result is -1 if any.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/cli.h"
#include "core/crc32c.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/mem.h"
#include "nn/params.h"

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
    int problems;
    uint32_t *crc; /* [count of datasets] */
};

MB_PRINTF(3, 4) static void problem(struct vctx *v, const char *where, const char *fmt, ...)
{
    va_list ap;

    printf("problem: %s: ", where);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    v->problems++;
}

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

    ck_shape_str(want, sizeof want, p->ndim, p->shape);
    if (!it) {
        problem(v, path ? path : p->name, "missing (expected %s)", want);
    } else if (!same_shape(it, p)) {
        ck_shape_str(got, sizeof got, it->ndim, it->shape);
        problem(v, path, "shape %s, expected %s for the stored model_config", got, want);
    } else if (want_f32 ? it->dtype != MB_CKPT_F32 : !ck_is_float(it->dtype)) {
        problem(v, path, "dtype %s, expected %s", mb_ckpt_dtype_name(it->dtype),
                want_f32 ? "fp32" : "fp32, bf16 or fp16");
    }
    free(path);
    return it;
}

static void expect_scalar(struct vctx *v, const char *path)
{
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(v->r, path);

    if (!it)
        problem(v, path, "missing");
    else if (it->dtype != MB_CKPT_I64 || it->numel != 1 || it->ndim > 1)
        problem(v, path, "not an int64 scalar (%s, %d dimensions)",
                mb_ckpt_dtype_name(it->dtype), it->ndim);
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
            problem(v, path, "unexpected dataset for the stored model_config");
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
    expect_scalar(v, "/optim/step");
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
        problem(v, v->file, "model_config: %s%s%s", mb_err_where(),
                *mb_err_where() ? ": " : "", mb_err_what());
        mb_err_clear();
    } else {
        mb_param_table_build(&t, &cfg);
        check_model(v, &t);
        for (int i = 0; i < mb_ckpt_reader_count(v->r); i++)
            if (ck_under(mb_ckpt_reader_info(v->r, i)->path, "/optim")) {
                check_optim(v, &t);
                break;
            }
    }
    expect_scalar(v, "/train/iteration");
    expect_scalar(v, "/train/consumed_train_samples");
    expect_scalar(v, "/train/consumed_valid_samples");
}

static float widen(enum mb_ckpt_dtype t, const void *raw, int64_t i)
{
    if (t == MB_CKPT_F32) {
        float x;
        memcpy(&x, (const char *)raw + 4 * i, 4);
        return x;
    }
    uint16_t h;
    memcpy(&h, (const char *)raw + 2 * i, 2);
    return t == MB_CKPT_BF16 ? mb_ckpt_f32_from_bf16(h) : mb_ckpt_f32_from_f16(h);
}

static void check_finite(struct vctx *v, const struct mb_ckpt_info *it, const void *raw)
{
    int64_t bad = 0, first = -1;

    for (int64_t i = 0; i < it->numel; i++)
        if (!isfinite(widen(it->dtype, raw, i)) && bad++ == 0)
            first = i;
    if (bad) {
        char idx[128];
        float x = widen(it->dtype, raw, first);
        ck_index_str(idx, sizeof idx, it->ndim, it->shape, first);
        problem(v, it->path, "%lld non-finite values; the first is %s at index %s (flat %lld)",
                (long long)bad, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf", idx, (long long)first);
    }
}

/* One pass over every dataset: finite check of floats, CRC-32C of the stored bytes. */
static void check_values(struct vctx *v)
{
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(v->r, i);
        size_t len;
        if (it->dtype == MB_CKPT_OTHER) {
            problem(v, it->path, "element type not one of fp32, bf16, fp16, int64, uint8");
            continue;
        }
        void *raw = ck_read_raw(v->r, it, &len);
        if (!raw) {
            problem(v, it->path, "cannot read: %s", mb_err_what());
            mb_err_clear();
            continue;
        }
        if (ck_is_float(it->dtype))
            check_finite(v, it, raw);
        v->crc[i] = mb_crc32c(0, raw, len);
        free(raw);
    }
}

static int write_checksums(struct vctx *v, const char *path)
{
    struct mb_outfile of = MB_OUTFILE_INIT;

    if (mb_outfile_open(&of, path) != 0)
        return -1;
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++)
        fprintf(of.fp, "%08x %s\n", (unsigned)v->crc[i], mb_ckpt_reader_info(v->r, i)->path);
    return mb_outfile_commit(&of);
}

/* One "%08x PATH" line: the dataset's index in the reader, or a problem. */
static void check_line(struct vctx *v, const char *where, char *line, char *seen)
{
    char *sp = strchr(line, ' ');
    char *end;
    unsigned long crc = sp ? strtoul(line, &end, 16) : 0;

    if (!sp || end != sp || sp - line != 8 || sp[1] != '/') {
        problem(v, where, "not a checksum line (8 hex digits, a space, /path)");
        return;
    }
    const struct mb_ckpt_info *it = mb_ckpt_reader_find(v->r, sp + 1);
    if (!it) {
        problem(v, sp + 1, "listed in the checksum file but missing from the checkpoint");
        return;
    }
    int i = (int)(it - mb_ckpt_reader_info(v->r, 0));
    seen[i] = 1;
    if (v->crc[i] != (uint32_t)crc)
        problem(v, sp + 1, "checksum %08x, expected %08lx", (unsigned)v->crc[i], crc);
}

static int check_checksums(struct vctx *v, const char *path)
{
    char *text;
    size_t len;

    if (mb_fs_read_all(path, &text, &len) != 0)
        return -1;
    char *seen = mb_xcalloc((size_t)mb_ckpt_reader_count(v->r) + 1, 1);
    char *save = NULL;
    long long lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        check_line(v, mb_at_line(path, ++lineno), line, seen);
    for (int i = 0; i < mb_ckpt_reader_count(v->r); i++)
        if (!seen[i])
            problem(v, mb_ckpt_reader_info(v->r, i)->path, "not in the checksum file %s", path);
    free(seen);
    free(text);
    return 0;
}

static int verify_mb(const char *arg, const struct verify_opts *o)
{
    struct vctx v = { 0 };
    char *file;

    v.r = ck_open(arg, &file);
    if (!v.r)
        return -1;
    v.file = file;
    v.crc = mb_xcalloc((size_t)mb_ckpt_reader_count(v.r) + 1, sizeof *v.crc);
    check_structure(&v);
    check_values(&v);
    int rc = 0;
    if (o->checksums)
        rc = check_checksums(&v, o->checksums);
    if (rc == 0 && v.problems)
        rc = mb_err_set(MB_E_INVALID, file, "%d problem%s found", v.problems,
                        v.problems == 1 ? "" : "s");
    if (rc == 0 && o->write_checksums)
        rc = write_checksums(&v, o->write_checksums);
    if (rc == 0)
        printf("verified: %s: %d datasets, structure complete, values finite%s\n", file,
               mb_ckpt_reader_count(v.r), o->checksums ? ", checksums match" : "");
    free(v.crc);
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
    if (rc == 0)
        rc = verify_mb(o.args[0], &o);
    free(o.args);
    return rc;
}
