/* mb-ckpt/ck.c - helpers shared by the subcommands: open, attributes, model config,
 * whole-dataset reads, shape strings. */
#include "ck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

mb_ckpt_reader *ck_open(const char *arg, char **file)
{
    *file = NULL;
    if (mb_ckpt_resolve(arg, file) != 0)
        return NULL;
    if (!*file) {
        mb_err_set(MB_E_INVALID, arg, "no checkpoint here (expected a checkpoint file, or a "
                   "directory with 'latest')");
        return NULL;
    }
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, *file);
    if (!r) {
        free(*file);
        *file = NULL;
    }
    return r;
}

mb_ckpt_reader *ck_open_whole(const char *arg, char **file, const char *what)
{
    mb_ckpt_reader *r = ck_open(arg, file);
    if (!r || mb_ckpt_reader_has_attr(r, "peft") != 1)
        return r;
    mb_err_set(MB_E_INVALID, *file, "an adapter-only checkpoint (LoRA/DoRA, no /model): %s "
               "works on whole models", what);
    mb_ckpt_reader_close(r);
    free(*file);
    *file = NULL;
    return NULL;
}

int ck_attr_opt(mb_ckpt_reader *r, const char *name, char **value)
{
    if (mb_ckpt_reader_attr(r, name, value) == 0)
        return 1;
    mb_err_clear();
    *value = NULL;
    return 0;
}

int ck_model_config(mb_ckpt_reader *r, const char *file, struct mb_model_config *cfg)
{
    char *text;

    if (mb_ckpt_reader_attr(r, "model_config", &text) != 0)
        return -1;
    char where[600];
    snprintf(where, sizeof where, "%s: attribute 'model_config'", file);
    mb_json *j = mb_json_parse(text, strlen(text), where);
    int rc = j ? mb_model_config_from_json(cfg, j, where) : -1;
    mb_json_free(j);
    free(text);
    return rc;
}

int ck_is_float(enum mb_ckpt_dtype t)
{
    return t == MB_CKPT_F32 || t == MB_CKPT_BF16 || t == MB_CKPT_F16;
}

int ck_under(const char *path, const char *group)
{
    size_t n = strlen(group);

    return strncmp(path, group, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

float *ck_read_f32(mb_ckpt_reader *r, const struct mb_ckpt_info *it)
{
    float *buf = mb_xmalloc(sizeof(float) * (size_t)(it->numel > 0 ? it->numel : 1));

    if (mb_ckpt_reader_read_f32(r, it->path, buf, it->numel) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

void *ck_read_raw(mb_ckpt_reader *r, const struct mb_ckpt_info *it, size_t *len)
{
    size_t n = mb_ckpt_dtype_size(it->dtype) * (size_t)it->numel;

    *len = 0;
    if (mb_ckpt_dtype_size(it->dtype) == 0) {
        mb_err_set(MB_E_UNSUPPORTED, it->path, "element type not readable");
        return NULL;
    }
    unsigned char *buf = mb_xmalloc(n > 0 ? n : 1);
    /* a scalar is one row; otherwise every row of the first axis */
    int64_t rows = it->ndim == 0 ? 1 : it->shape[0];
    if (n > 0 && mb_ckpt_reader_read_rows(r, it->path, 0, rows, buf) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int ck_write_whole(mb_ckpt_writer *w, const char *path, enum mb_ckpt_dtype dtype, int ndim,
                   const int64_t *shape, const void *data)
{
    if (mb_ckpt_writer_create(w, path, dtype, ndim, shape) != 0)
        return -1;
    /* a scalar is written as one row */
    return mb_ckpt_writer_write_rows(w, path, 0, ndim == 0 ? 1 : shape[0], data);
}

int ck_copy_dataset(mb_ckpt_reader *r, mb_ckpt_writer *w, const struct mb_ckpt_info *it)
{
    size_t len;
    void *raw = ck_read_raw(r, it, &len);

    if (!raw)
        return -1;
    int rc = ck_write_whole(w, it->path, it->dtype, it->ndim, it->shape, raw);
    free(raw);
    return rc;
}

int ck_copy_attrs(mb_ckpt_reader *r, mb_ckpt_writer *w)
{
    static const char *const names[] = { "model_config", "recipe", "tokenizer", "hf_config",
                                         "hf_architecture", "hf_weight_map", "hf_metadata" };
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
        char *value;
        if (ck_attr_opt(r, names[i], &value))
            rc = mb_ckpt_writer_attr(w, names[i], value);
        free(value);
    }
    return rc;
}

void *ck_narrow(const float *x, int64_t n, enum mb_ckpt_dtype dtype)
{
    size_t esize = mb_ckpt_dtype_size(dtype);
    void *out = mb_xmalloc(esize * (size_t)(n > 0 ? n : 1));

    if (dtype == MB_CKPT_F32) {
        memcpy(out, x, sizeof(float) * (size_t)n);
        return out;
    }
    uint16_t *h = out;
    for (int64_t i = 0; i < n; i++)
        h[i] = dtype == MB_CKPT_BF16 ? mb_ckpt_bf16_from_f32(x[i]) : mb_ckpt_f16_from_f32(x[i]);
    return out;
}

void ck_index_str(char *buf, size_t n, int ndim, const int64_t *shape, int64_t i)
{
    int64_t idx[MB_CKPT_MAX_DIM];

    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] > 0 ? i % shape[d] : 0;
        i = shape[d] > 0 ? i / shape[d] : 0;
    }
    mb_ckpt_shape_str(buf, n, ndim, idx);
}

void ck_json_str(struct mb_buf *b, const char *key, const char *s)
{
    mb_buf_addf(b, "\"%s\": ", key);
    if (s)
        mb_json_escape(b, s, strlen(s));
    else
        mb_buf_adds(b, "null");
}
