/* mb-ckpt/average.c - `mb-ckpt average A B ... -o OUT`: element-wise mean of the models.
 *
 * The inputs must store the same model_config and the same /model datasets (paths,
 * shapes and dtypes). Each /model tensor is read from every input in turn (one input's
 * tensor in memory at a time, plus the fp64 sum), summed in fp64 in the order of the
 * arguments, divided by the number of inputs, rounded to fp32 and then, for bf16 or
 * fp16 tensors, to the stored dtype (round to nearest even both times). Everything else
 * comes from the first input (attributes, /train, /hf) except /optim, which is not
 * written: the optimizer state of an average means nothing. OUT is written as OUT.tmp
 * and renamed when complete; on failure nothing is left.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/mem.h"

struct avg_opts {
    const char *output;
    char **args;
    int nargs;
};

static const struct mb_opt avg_options[] = {
    { "output", 'o', MB_OPT_STR, offsetof(struct avg_opts, output), "OUT",
      "checkpoint file to write (required)", 0, 0 },
};

static const struct mb_cli avg_cli = {
    .tool = "mb-ckpt average",
    .synopsis = "A B ... -o OUT",
    .summary = "Average the /model tensors of checkpoints with the same config and tensors "
               "(fp64 sums,\nstored in the inputs' dtype); the rest comes from the first, "
               "without /optim.",
    .opts = avg_options,
    .nopts = 1,
    .args_offset = offsetof(struct avg_opts, args),
    .nargs_offset = offsetof(struct avg_opts, nargs),
};

struct avg {
    int n;
    mb_ckpt_reader **r; /* [n] */
    char **file;        /* [n] */
};

/* The /model datasets of R, in path order, into LIST (at most COUNT(R) entries). */
static int model_list(mb_ckpt_reader *r, const struct mb_ckpt_info **list)
{
    int n = 0;

    for (int i = 0; i < mb_ckpt_reader_count(r); i++)
        if (ck_under(mb_ckpt_reader_info(r, i)->path, "/model"))
            list[n++] = mb_ckpt_reader_info(r, i);
    return n;
}

static int same_info(const struct mb_ckpt_info *x, const struct mb_ckpt_info *y)
{
    if (strcmp(x->path, y->path) != 0 || x->dtype != y->dtype || x->ndim != y->ndim)
        return 0;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] != y->shape[d])
            return 0;
    return 1;
}

/* Input K holds what input 0 holds: the same config text and /model datasets. */
static int check_same(const struct avg *a, int k)
{
    char *c0 = NULL, *ck = NULL;
    int rc = 0;

    if (mb_ckpt_reader_attr(a->r[0], "model_config", &c0) != 0 ||
        mb_ckpt_reader_attr(a->r[k], "model_config", &ck) != 0)
        rc = -1;
    else if (strcmp(c0, ck) != 0)
        rc = mb_err_set(MB_E_INVALID, a->file[k], "model_config differs from that of %s",
                        a->file[0]);
    free(c0);
    free(ck);
    if (rc != 0)
        return rc;
    const struct mb_ckpt_info **l0 =
        mb_xcalloc((size_t)mb_ckpt_reader_count(a->r[0]) + 1, sizeof *l0);
    const struct mb_ckpt_info **lk =
        mb_xcalloc((size_t)mb_ckpt_reader_count(a->r[k]) + 1, sizeof *lk);
    int n0 = model_list(a->r[0], l0), nk = model_list(a->r[k], lk);
    for (int i = 0; rc == 0 && i < (n0 > nk ? n0 : nk); i++) {
        const struct mb_ckpt_info *x = i < n0 ? l0[i] : NULL, *y = i < nk ? lk[i] : NULL;
        if (!x || !y || !same_info(x, y))
            rc = mb_err_set(MB_E_INVALID, a->file[k], "tensor '%s' differs from %s in "
                            "presence, shape or dtype", (y ? y : x)->path, a->file[0]);
    }
    free(l0);
    free(lk);
    return rc;
}

/* Mean of /model tensor IT over the inputs, written in IT's dtype. */
static int average_tensor(const struct avg *a, mb_ckpt_writer *w, const struct mb_ckpt_info *it)
{
    size_t n = (size_t)it->numel;
    double *sum = mb_xcalloc(n ? n : 1, sizeof *sum);
    int rc = 0;

    for (int k = 0; rc == 0 && k < a->n; k++) {
        float *x = ck_read_f32(a->r[k], mb_ckpt_reader_find(a->r[k], it->path));
        if (!x) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            sum[i] += (double)x[i];
        free(x);
    }
    if (rc == 0) {
        float *mean = mb_xmalloc(sizeof(float) * (n ? n : 1));
        for (size_t i = 0; i < n; i++)
            mean[i] = (float)(sum[i] / a->n);
        void *out = ck_narrow(mean, it->numel, it->dtype);
        rc = ck_write_whole(w, it->path, it->dtype, it->ndim, it->shape, out);
        free(out);
        free(mean);
    }
    free(sum);
    return rc;
}

static int write_average(const struct avg *a, const char *output)
{
    mb_ckpt_writer *w = mb_ckpt_writer_open(NULL, output);

    if (!w)
        return -1;
    int rc = ck_copy_attrs(a->r[0], w);
    for (int i = 0; rc == 0 && i < mb_ckpt_reader_count(a->r[0]); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(a->r[0], i);
        if (ck_under(it->path, "/model") && ck_is_float(it->dtype))
            rc = average_tensor(a, w, it);
        else if (!ck_under(it->path, "/optim"))
            rc = ck_copy_dataset(a->r[0], w, it);
    }
    if (rc != 0) {
        mb_ckpt_writer_abort(w);
        return -1;
    }
    return mb_ckpt_writer_commit(w, NULL);
}

static int average(char **inputs, int n, const char *output)
{
    struct avg a = { .n = n };
    int rc = 0;

    a.r = mb_xcalloc((size_t)n, sizeof *a.r);
    a.file = mb_xcalloc((size_t)n, sizeof *a.file);
    for (int k = 0; rc == 0 && k < n; k++)
        if (!(a.r[k] = ck_open_whole(inputs[k], &a.file[k], "average")))
            rc = -1;
    for (int k = 1; rc == 0 && k < n; k++)
        rc = check_same(&a, k);
    if (rc == 0)
        rc = write_average(&a, output);
    if (rc == 0)
        printf("averaged %d checkpoints into %s\n", n, output);
    for (int k = 0; k < n; k++) {
        mb_ckpt_reader_close(a.r[k]);
        free(a.file[k]);
    }
    free(a.r);
    free(a.file);
    return rc;
}

int cmd_average(int argc, char **argv)
{
    struct avg_opts o = { 0 };
    int rc = mb_cli_parse(&avg_cli, argc, argv, &o);

    if (rc == 0 && o.nargs < 2)
        rc = mb_err_set(MB_E_USAGE, NULL, "average takes two or more checkpoints (got %d)",
                        o.nargs);
    if (rc == 0 && !o.output)
        rc = mb_err_set(MB_E_USAGE, NULL, "average needs an output file: -o OUT");
    if (rc == 0)
        rc = average(o.args, o.nargs, o.output);
    free(o.args);
    return rc;
}
