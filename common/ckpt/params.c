/* ckpt/params.c - a model's parameter table as checkpoint tensors. */
#include "ckpt/ckpt.h"
#include "core/mem.h"

struct mb_ckpt_tensor *mb_ckpt_tensors_of(const struct mb_param_table *p, float *base)
{
    struct mb_ckpt_tensor *t = mb_xcalloc((size_t)p->count, sizeof(*t));
    for (int i = 0; i < p->count; i++) {
        t[i].name = p->items[i].name;
        t[i].ndim = p->items[i].ndim;
        for (int d = 0; d < p->items[i].ndim; d++)
            t[i].shape[d] = p->items[i].shape[d];
        t[i].data = base + p->items[i].offset;
    }
    return t;
}
