/* ckpt/model.c - a checkpoint's weights into a model, adapters and their base included. */
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"
#include "nn/model.h"

int mb_ckpt_reader_peft(mb_ckpt_reader *r, const char *file, struct mb_peft_config *pc,
                        char **base)
{
    memset(pc, 0, sizeof(*pc));
    *base = NULL;
    if (mb_ckpt_reader_has_attr(r, "peft") != 1)
        return 0;
    char *json = NULL;
    int rc = mb_ckpt_reader_attr(r, "peft", &json);
    if (rc == 0)
        rc = mb_peft_config_from_json(pc, json, file);
    free(json);
    if (rc == 0 && mb_ckpt_reader_has_attr(r, "base_checkpoint") == 1)
        rc = mb_ckpt_reader_attr(r, "base_checkpoint", base);
    if (rc == 0 && !*base)
        *base = mb_xstrdup("");
    return rc;
}

/* The file of M's frozen base: BASE, or FILE's base_checkpoint. */
static int base_of(const char *file, const char *base, char **out)
{
    struct mb_peft_config pc;
    *out = NULL;
    if (base) {
        *out = mb_xstrdup(base);
        return 0;
    }
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, file);
    int rc = r ? mb_ckpt_reader_peft(r, file, &pc, out) : -1;
    mb_ckpt_reader_close(r);
    if (rc == 0 && (!*out || !**out || !mb_fs_exists(*out)))
        rc = mb_err_set(MB_E_INVALID, file,
                        "an adapter-only checkpoint whose base_checkpoint '%s' is not there",
                        *out ? *out : "");
    return rc;
}

int mb_ckpt_load_model(const char *file, const char *base, struct mb_model *m)
{
    const struct mb_param_table *p = &m->params;
    char *base_file = NULL;
    if (m->peft.kind != MB_PEFT_NONE && base_of(file, base, &base_file) < 0)
        return -1;
    int64_t largest = 0;
    for (int i = 0; i < p->count; i++)
        largest = MB_MAX(largest, p->items[i].numel);
    float *host = mb_xmalloc((size_t)largest * sizeof(float));
    struct mb_ckpt_tensor *t = mb_ckpt_tensors_of(p, NULL, host);
    int rc = 0;
    for (int i = 0; rc == 0 && i < p->count; i++) {
        bool frozen_base = base_file && !p->items[i].trainable;
        t[i].data = host;
        t[i].group = base_file && !frozen_base ? "/adapter" : NULL;
        rc = mb_ckpt_load(NULL, frozen_base ? base_file : file, &t[i], 1, NULL, NULL, NULL);
        if (rc == 0)
            mb_from_host_f32(m->ops, m->ex, m->w + p->items[i].offset, host, p->items[i].numel);
    }
    free(t);
    free(host);
    free(base_file);
    if (rc == 0 && !m->g) /* weights that will not change: DoRA's norms once */
        mb_model_fix_norms(m);
    return rc;
}
