/* mb-convert - HuggingFace model directories to mb checkpoints and back, bit-exact.
 *
 *   mb-convert --from hf --to h5 HF_DIR CKPT
 *   mb-convert --from h5 --to hf CKPT HF_DIR
 *   mb-convert --from h5 --to peft ADAPTER_CKPT PEFT_DIR   (an adapter-only checkpoint)
 *   mpirun -np N mb-convert --from hf --to h5 ...   (ranks write their layers)
 *
 * Options and dtype helpers here; the directions are to_h5.c, to_hf.c and to_peft.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/bridge.h"
#include "convert.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/tool.h"

static const struct mb_opt cv_options[] = {
    { "from", 0, MB_OPT_STR, offsetof(struct cv_opts, from), "hf|h5",
      "the input: a HuggingFace directory (hf) or an mb checkpoint (h5)", 0, 0 },
    { "to", 0, MB_OPT_STR, offsetof(struct cv_opts, to), "h5|hf|peft",
      "the output (peft: the HF PEFT adapter of an adapter-only checkpoint)", 0, 0 },
    { "dtype", 0, MB_OPT_STR, offsetof(struct cv_opts, dtype), "bf16|fp16|fp32",
      "cast the weights (default: keep the input's type)", 0, 0 },
    { "max-shard-size", 0, MB_OPT_STR, offsetof(struct cv_opts, max_shard_size), "SIZE",
      "--to hf: shard size limit, e.g. 5GB, 100MB (default: the input's own sharding, "
      "else 5GB)", 0, 0 },
};

static void version_extra(FILE *out)
{
    fprintf(out, "mpi: %s\n", mb_dist_library_version());
}

static const struct mb_cli cv_cli = {
    .tool = "mb-convert",
    .synopsis = "--from hf --to h5 HF_DIR CKPT | --from h5 --to hf CKPT HF_DIR | "
                "--from h5 --to peft CKPT PEFT_DIR",
    .summary = "Convert HuggingFace checkpoints to mb checkpoints and back, bit-exact.",
    .opts = cv_options,
    .nopts = MB_ARRAY_LEN(cv_options),
    .args_offset = offsetof(struct cv_opts, args),
    .nargs_offset = offsetof(struct cv_opts, nargs),
    .version_extra = version_extra,
};

/* "5GB" (10^9), "100MB", "2GiB" (2^30), "4096" bytes. */
static int parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        { "", 1 }, { "B", 1 }, { "KB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
        { "TB", 1000000000000ull }, { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 },
        { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
    };
    char *end;
    double v = strtod(s, &end);

    for (size_t i = 0; end != s && v > 0 && i < MB_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            *out = (uint64_t)(v * (double)units[i].mult);
            return *out ? 0 : -1;
        }
    }
    return mb_err_set(MB_E_USAGE, "--max-shard-size", "'%s' is not a size (e.g. 5GB, 100MB)", s);
}

static int check_opts(struct cv_opts *o)
{
    if (!o->from || !o->to)
        return mb_err_set(MB_E_USAGE, NULL, "give --from and --to (hf -> h5 or h5 -> hf)");
    int to_h5 = !strcmp(o->from, "hf") && !strcmp(o->to, "h5");
    int to_hf = !strcmp(o->from, "h5") && !strcmp(o->to, "hf");
    int to_peft = !strcmp(o->from, "h5") && !strcmp(o->to, "peft");
    if (!to_h5 && !to_hf && !to_peft)
        return mb_err_set(MB_E_USAGE, NULL, "--from %s --to %s: supported are --from hf --to h5, "
                          "--from h5 --to hf and --from h5 --to peft", o->from, o->to);
    if (o->nargs != 2)
        return mb_err_set(MB_E_USAGE, NULL, "expected two paths: %s", cv_cli.synopsis);
    if (o->dtype) {
        static const struct { const char *name; enum mb_st_dtype t; } types[] = {
            { "bf16", MB_ST_BF16 }, { "fp16", MB_ST_F16 }, { "fp32", MB_ST_F32 },
        };
        for (size_t i = 0; i < MB_ARRAY_LEN(types) && !o->cast; i++)
            if (strcmp(o->dtype, types[i].name) == 0) {
                o->out = types[i].t;
                o->cast = 1;
            }
        if (!o->cast)
            return mb_err_set(MB_E_USAGE, "--dtype", "'%s' is not bf16, fp16 or fp32", o->dtype);
    }
    if (o->max_shard_size && parse_size(o->max_shard_size, &o->max_shard_bytes) != 0)
        return -1;
    return 0;
}

enum mb_ckpt_dtype cv_ckpt_dtype(enum mb_st_dtype t)
{
    return t == MB_ST_F32 ? MB_CKPT_F32 : t == MB_ST_BF16 ? MB_CKPT_BF16
                                        : t == MB_ST_F16  ? MB_CKPT_F16 : MB_CKPT_OTHER;
}

int cv_open_ckpt(const char *src, char **file, mb_ckpt_reader **r)
{
    struct stat sb;
    *r = NULL;
    if (stat(src, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (mb_ckpt_resolve(src, file) < 0)
            return -1;
        if (!*file)
            return mb_err_set(MB_E_INVALID, src, "no checkpoint here (no 'latest' file)");
    } else {
        *file = mb_xstrdup(src);
    }
    *r = mb_ckpt_reader_open(NULL, *file);
    return *r ? 0 : -1;
}

int cv_st_dtype(enum mb_ckpt_dtype t, enum mb_st_dtype *out)
{
    switch (t) {
    case MB_CKPT_F32: *out = MB_ST_F32; return 0;
    case MB_CKPT_BF16: *out = MB_ST_BF16; return 0;
    case MB_CKPT_F16: *out = MB_ST_F16; return 0;
    default: return -1;
    }
}

const char *cv_dtypes_name(const enum mb_st_dtype *t, int n)
{
    for (int i = 1; i < n; i++)
        if (t[i] != t[0])
            return "mixed";
    return n ? mb_st_dtype_name(t[0]) : "-";
}

const char *cv_torch_dtype(enum mb_st_dtype t)
{
    return t == MB_ST_BF16 ? "bfloat16" : t == MB_ST_F16 ? "float16" : "float32";
}

static float to_f32(const void *src, enum mb_st_dtype t, size_t i)
{
    uint16_t h;
    float x;

    if (t == MB_ST_F32) {
        memcpy(&x, (const char *)src + 4 * i, 4);
        return x;
    }
    memcpy(&h, (const char *)src + 2 * i, 2);
    return t == MB_ST_BF16 ? mb_ckpt_f32_from_bf16(h) : mb_ckpt_f32_from_f16(h);
}

void cv_cast(const void *src, enum mb_st_dtype from, void *dst, enum mb_st_dtype to, size_t n)
{
    if (from == to) {
        memmove(dst, src, n * mb_st_dtype_size(to));
        return;
    }
    for (size_t i = 0; i < n; i++) { /* forward is safe in place only when narrowing */
        float x = to_f32(src, from, i);
        if (to == MB_ST_F32) {
            memcpy((char *)dst + 4 * i, &x, 4);
        } else {
            uint16_t h = to == MB_ST_BF16 ? mb_ckpt_bf16_from_f32(x) : mb_ckpt_f16_from_f32(x);
            memcpy((char *)dst + 2 * i, &h, 2);
        }
    }
}

int main(int argc, char **argv)
{
    struct cv_opts o = { 0 };
    struct mb_dist dist;

    mb_tool_start("mb-convert");
    int rc = mb_dist_init(&dist, &argc, &argv);
    if (rc == 0)
        rc = mb_cli_parse(&cv_cli, argc, argv, &o);
    if (rc == 0)
        rc = check_opts(&o);
    if (rc == 0 && strcmp(o.from, "hf") == 0)
        rc = mb_bridge_check_not_gguf(o.args[0]);
    if (rc == 0 && strcmp(o.to, "h5") == 0)
        rc = cv_hf_to_h5(&dist, &o, o.args[0], o.args[1]);
    else if (rc == 0 && strcmp(o.to, "hf") == 0)
        rc = cv_h5_to_hf(&dist, &o, o.args[0], o.args[1]);
    else if (rc == 0)
        rc = cv_h5_to_peft(&dist, &o, o.args[0], o.args[1]);
    free(o.args);
    int status = mb_tool_end(rc);
    mb_dist_finalize(&dist);
    return status;
}
