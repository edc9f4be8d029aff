/* mb-ckpt/convert_dtype.c - `mb-ckpt convert-dtype CKPT --dtype T -o OUT`.
 *
 * Every float tensor under /model is widened exactly to fp32 and rounded to nearest even
 * into T (bf16, fp16 or fp32; values beyond fp16's range become infinities). The rest
 * is copied byte for byte, tensor by tensor, except /optim: its master weights and
 * moments belong to the model as it was trained, so they are kept only when the model
 * was fp32 and stays fp32. OUT is written as OUT.tmp and renamed when complete.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck.h"
#include "core/cli.h"
#include "core/err.h"

struct cd_opts {
    const char *dtype;
    const char *output;
    char **args;
    int nargs;
};

static const struct mb_opt cd_options[] = {
    { "dtype", 0, MB_OPT_STR, offsetof(struct cd_opts, dtype), "bf16|fp16|fp32",
      "element type of the /model tensors in OUT (required)", 0, 0 },
    { "output", 'o', MB_OPT_STR, offsetof(struct cd_opts, output), "OUT",
      "checkpoint file to write (required)", 0, 0 },
};

static const struct mb_cli cd_cli = {
    .tool = "mb-ckpt convert-dtype",
    .synopsis = "CKPT --dtype bf16|fp16|fp32 -o OUT",
    .summary = "Cast the /model tensors of a checkpoint (round to nearest even); copy the "
               "rest.\n/optim is dropped unless the model is fp32 and stays fp32.",
    .opts = cd_options,
    .nopts = 2,
    .args_offset = offsetof(struct cd_opts, args),
    .nargs_offset = offsetof(struct cd_opts, nargs),
};

static int parse_dtype(const char *s, enum mb_ckpt_dtype *t)
{
    static const enum mb_ckpt_dtype kinds[] = { MB_CKPT_F32, MB_CKPT_BF16, MB_CKPT_F16 };

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(s, mb_ckpt_dtype_name(kinds[i])) == 0) {
            *t = kinds[i];
            return 0;
        }
    return mb_err_set(MB_E_USAGE, "--dtype", "'%s' is not bf16, fp16 or fp32", s);
}

/* 1 when every float tensor under /model is fp32. */
static int model_is_f32(mb_ckpt_reader *r)
{
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        if (ck_under(it->path, "/model") && ck_is_float(it->dtype) && it->dtype != MB_CKPT_F32)
            return 0;
    }
    return 1;
}

static int cast_tensor(mb_ckpt_reader *r, mb_ckpt_writer *w, const struct mb_ckpt_info *it,
                       enum mb_ckpt_dtype to)
{
    float *x = ck_read_f32(r, it);

    if (!x)
        return -1;
    void *out = ck_narrow(x, it->numel, to);
    int rc = ck_write_whole(w, it->path, to, it->ndim, it->shape, out);
    free(out);
    free(x);
    return rc;
}

static int convert(const char *arg, enum mb_ckpt_dtype to, const char *output)
{
    char *file;
    mb_ckpt_reader *r = ck_open_whole(arg, &file, "convert-dtype");

    if (!r)
        return -1;
    int keep_optim = to == MB_CKPT_F32 && model_is_f32(r);
    mb_ckpt_writer *w = mb_ckpt_writer_open(NULL, output);
    int rc = w ? ck_copy_attrs(r, w) : -1;
    for (int i = 0; rc == 0 && i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        if (ck_under(it->path, "/model") && ck_is_float(it->dtype))
            rc = cast_tensor(r, w, it, to);
        else if (keep_optim || !ck_under(it->path, "/optim"))
            rc = ck_copy_dataset(r, w, it);
    }
    if (rc != 0)
        mb_ckpt_writer_abort(w);
    else
        rc = mb_ckpt_writer_commit(w, NULL);
    if (rc == 0)
        printf("%s -> %s: /model as %s%s\n", file, output, mb_ckpt_dtype_name(to),
               keep_optim ? ", optimizer state kept" : "");
    mb_ckpt_reader_close(r);
    free(file);
    return rc;
}

int cmd_convert_dtype(int argc, char **argv)
{
    struct cd_opts o = { 0 };
    enum mb_ckpt_dtype to = MB_CKPT_F32;
    int rc = mb_cli_parse(&cd_cli, argc, argv, &o);

    if (rc == 0 && o.nargs != 1)
        rc = mb_err_set(MB_E_USAGE, NULL, "convert-dtype takes one checkpoint (got %d)",
                        o.nargs);
    if (rc == 0 && (!o.dtype || !o.output))
        rc = mb_err_set(MB_E_USAGE, NULL, "convert-dtype needs --dtype T and -o OUT");
    if (rc == 0)
        rc = parse_dtype(o.dtype, &to);
    if (rc == 0)
        rc = convert(o.args[0], to, o.output);
    free(o.args);
    return rc;
}
