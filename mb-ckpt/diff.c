/* mb-ckpt/diff.c - `mb-ckpt diff A B [--atol X] [--rtol Y]`: where two checkpoints differ.
 *
 * Walks the union of both dataset lists in path order, one dataset of each file in
 * memory at a time. Float datasets are compared as fp32 widened exactly from whatever
 * each file stores, differences in fp64: an element differs when
 * |a - b| > atol + rtol * |b| (numpy.isclose's rule, B the reference); NaN equals NaN,
 * and an infinity equals only the same infinity. max_rel is max |a - b| / |b| over the
 * elements (infinite where b = 0 and a != 0). int64 datasets follow the same rule; uint8
 * blobs must be byte-identical. Float datasets of different float dtypes (a bf16 copy
 * against its fp32 original) are compared by value like the others, the dtypes shown.
 * A dataset present in one file only, a shape difference, other dtype differences
 * (float against int64) or a different model_config attribute is a difference whatever
 * the tolerances.
 *
 * Output, one line per dataset:  STATUS PATH [max_abs X max_rel Y] [detail]  with STATUS
 * same, differs, only-a, only-b, shape or dtype; then a summary line.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/str.h"

struct diff_opts {
    double atol;
    double rtol;
    char **args;
    int nargs;
};

static const struct mb_opt diff_options[] = {
    { "atol", 0, MB_OPT_DOUBLE, offsetof(struct diff_opts, atol), "X",
      "absolute tolerance (default 0: exact)", 0, 0 },
    { "rtol", 0, MB_OPT_DOUBLE, offsetof(struct diff_opts, rtol), "Y",
      "relative tolerance, times |B| (default 0: exact)", 0, 0 },
};

static const struct mb_cli diff_cli = {
    .tool = "mb-ckpt diff",
    .synopsis = "A B [--atol X] [--rtol Y]",
    .summary = "Compare two checkpoints dataset by dataset: max absolute and relative "
               "difference.\nExit status 1 when any differs beyond |a-b| <= atol + rtol*|b|, "
               "or in presence or shape.",
    .opts = diff_options,
    .nopts = 2,
    .args_offset = offsetof(struct diff_opts, args),
    .nargs_offset = offsetof(struct diff_opts, nargs),
};

struct dctx {
    mb_ckpt_reader *a, *b;
    double atol, rtol;
    int differ;  /* datasets that differ */
    int same;
};

/* Largest differences over N value pairs and whether any is beyond the tolerance. */
struct stats {
    double max_abs, max_rel;
    int64_t beyond;
};

static void compare_pair(const struct dctx *c, double x, double y, struct stats *s)
{
    if (isnan(x) && isnan(y))
        return;
    if (x == y) /* also equal infinities */
        return;
    double d = fabs(x - y); /* inf or NaN when one side is not finite */
    if (isnan(d))
        d = INFINITY;
    double rel = y != 0 ? d / fabs(y) : INFINITY;
    s->max_abs = d > s->max_abs ? d : s->max_abs;
    s->max_rel = rel > s->max_rel ? rel : s->max_rel;
    if (!(d <= c->atol + c->rtol * fabs(y)))
        s->beyond++;
}

static int compare_floats(struct dctx *c, const struct mb_ckpt_info *ia,
                          const struct mb_ckpt_info *ib, struct stats *s)
{
    float *x = ck_read_f32(c->a, ia);
    float *y = x ? ck_read_f32(c->b, ib) : NULL;

    if (!y) {
        free(x);
        return -1;
    }
    for (int64_t i = 0; i < ia->numel; i++)
        compare_pair(c, x[i], y[i], s);
    free(x);
    free(y);
    return 0;
}

static int compare_ints(struct dctx *c, const struct mb_ckpt_info *ia,
                        const struct mb_ckpt_info *ib, struct stats *s)
{
    int64_t x, y;

    if (ia->numel != 1)
        return mb_err_set(MB_E_UNSUPPORTED, ia->path, "int64 datasets other than scalars");
    if (mb_ckpt_reader_read_i64(c->a, ia->path, &x) != 0 ||
        mb_ckpt_reader_read_i64(c->b, ib->path, &y) != 0)
        return -1;
    compare_pair(c, (double)x, (double)y, s);
    return 0;
}

static int compare_bytes(struct dctx *c, const struct mb_ckpt_info *ia,
                         const struct mb_ckpt_info *ib, struct stats *s)
{
    size_t la, lb;
    unsigned char *x = ck_read_raw(c->a, ia, &la);
    unsigned char *y = x ? ck_read_raw(c->b, ib, &lb) : NULL;

    if (!y) {
        free(x);
        return -1;
    }
    for (size_t i = 0; i < la; i++)
        if (x[i] != y[i]) {
            double d = fabs((double)x[i] - (double)y[i]);
            s->max_abs = d > s->max_abs ? d : s->max_abs;
            s->max_rel = INFINITY;
            s->beyond++;
        }
    free(x);
    free(y);
    return 0;
}

static int same_shape(const struct mb_ckpt_info *ia, const struct mb_ckpt_info *ib)
{
    if (ia->ndim != ib->ndim)
        return 0;
    for (int d = 0; d < ia->ndim; d++)
        if (ia->shape[d] != ib->shape[d])
            return 0;
    return 1;
}

static void report(struct dctx *c, const char *status, const char *path, const struct stats *s,
                   const char *detail)
{
    printf("%-8s %s", status, path);
    if (s)
        printf(" max_abs %.9g max_rel %.9g", s->max_abs, s->max_rel);
    if (detail && *detail)
        printf(" %s", detail);
    putchar('\n');
    if (strcmp(status, "same") == 0)
        c->same++;
    else
        c->differ++;
}

/* Both files hold PATH. */
static int compare_dataset(struct dctx *c, const struct mb_ckpt_info *ia,
                           const struct mb_ckpt_info *ib)
{
    char detail[300], sa[128], sb[128];
    struct stats s = { 0 };

    if (!same_shape(ia, ib)) {
        mb_ckpt_shape_str(sa, sizeof sa, ia->ndim, ia->shape);
        mb_ckpt_shape_str(sb, sizeof sb, ib->ndim, ib->shape);
        snprintf(detail, sizeof detail, "%s vs %s", sa, sb);
        report(c, "shape", ia->path, NULL, detail);
        return 0;
    }
    int fa = ck_is_float(ia->dtype), fb = ck_is_float(ib->dtype), rc;
    snprintf(detail, sizeof detail, "%s vs %s", mb_ckpt_dtype_name(ia->dtype),
             mb_ckpt_dtype_name(ib->dtype));
    if (fa && fb)
        rc = compare_floats(c, ia, ib, &s);
    else if (ia->dtype != ib->dtype)
        return report(c, "dtype", ia->path, NULL, detail), 0;
    else if (ia->dtype == MB_CKPT_I64)
        rc = compare_ints(c, ia, ib, &s);
    else
        rc = compare_bytes(c, ia, ib, &s);
    if (rc != 0)
        return -1;
    /* fp32 against bf16 or fp16: the values decide, the dtypes are shown */
    report(c, s.beyond ? "differs" : "same", ia->path, &s, ia->dtype != ib->dtype ? detail : "");
    return 0;
}

static void compare_config(struct dctx *c)
{
    char *x = NULL, *y = NULL;

    ck_attr_opt(c->a, "model_config", &x);
    ck_attr_opt(c->b, "model_config", &y);
    if (!x != !y || (x && strcmp(x, y) != 0))
        report(c, "differs", "attribute model_config", NULL, "");
    free(x);
    free(y);
}

/* Merge walk over the two sorted dataset lists. */
static int walk(struct dctx *c)
{
    int i = 0, j = 0, na = mb_ckpt_reader_count(c->a), nb = mb_ckpt_reader_count(c->b);

    compare_config(c);
    while (i < na || j < nb) {
        const struct mb_ckpt_info *ia = i < na ? mb_ckpt_reader_info(c->a, i) : NULL;
        const struct mb_ckpt_info *ib = j < nb ? mb_ckpt_reader_info(c->b, j) : NULL;
        int cmp = !ia ? 1 : !ib ? -1 : strcmp(ia->path, ib->path);
        if (cmp < 0) {
            report(c, "only-a", ia->path, NULL, "");
            i++;
        } else if (cmp > 0) {
            report(c, "only-b", ib->path, NULL, "");
            j++;
        } else {
            if (compare_dataset(c, ia, ib) != 0)
                return -1;
            i++;
            j++;
        }
    }
    return 0;
}

static int diff_files(const char *pa, const char *pb, const struct diff_opts *o)
{
    struct dctx c = { .atol = o->atol, .rtol = o->rtol };
    char *fa = NULL, *fb = NULL;
    int rc = -1;

    c.a = ck_open(pa, &fa);
    c.b = c.a ? ck_open(pb, &fb) : NULL;
    if (c.b)
        rc = walk(&c);
    if (rc == 0) {
        printf("%d dataset%s differ, %d the same (atol %g, rtol %g)\n", c.differ,
               c.differ == 1 ? "" : "s", c.same, c.atol, c.rtol);
        if (c.differ)
            rc = mb_err_set(MB_E_INVALID, NULL, "%s and %s differ in %d dataset%s", fa, fb,
                            c.differ, c.differ == 1 ? "" : "s");
    }
    mb_ckpt_reader_close(c.a);
    mb_ckpt_reader_close(c.b);
    free(fa);
    free(fb);
    return rc;
}

int cmd_diff(int argc, char **argv)
{
    struct diff_opts o = { 0 };
    int rc = mb_cli_parse(&diff_cli, argc, argv, &o);

    if (rc == 0 && o.nargs != 2)
        rc = mb_err_set(MB_E_USAGE, NULL, "diff takes two checkpoints (got %d arguments)",
                        o.nargs);
    if (rc == 0 && (!(o.atol >= 0) || !(o.rtol >= 0)))
        rc = mb_err_set(MB_E_USAGE, NULL, "--atol and --rtol must be non-negative numbers");
    if (rc == 0)
        rc = diff_files(o.args[0], o.args[1], &o);
    free(o.args);
    return rc;
}
