/* ckpt/params.c - a model's parameter table as checkpoint tensors, whole or cut to a
 * distributed optimizer's run of the flat buffer. */
#include "ckpt/ckpt.h"
#include "core/mem.h"

struct mb_ckpt_tensor *mb_ckpt_tensors_of(const struct mb_param_table *p, float *base)
{
    struct mb_ckpt_tensor *t = mb_xcalloc((size_t)p->count, sizeof(*t));
    for (int i = 0; i < p->count; i++) {
        const struct mb_param *it = &p->items[i];
        t[i].name = it->name;
        t[i].ndim = it->ndim;
        for (int d = 0; d < it->ndim; d++) {
            t[i].shape[d] = it->global_shape[d];
            t[i].local_shape[d] = it->shape[d];
        }
        t[i].data = base + it->offset;
        t[i].axis = it->shard_axis;
        t[i].nslab = it->nslab;
        for (int k = 0; k < it->nslab; k++)
            t[i].slab[k] = it->slab[k];
    }
    return t;
}

void mb_ckpt_tensors_part(struct mb_ckpt_tensor *t, const struct mb_param_table *p, int64_t lo,
                          int64_t hi, float *shard)
{
    for (int i = 0; i < p->count; i++) {
        int64_t n = 1, at = p->items[i].offset;
        for (int d = 0; d < t[i].ndim; d++)
            n *= t[i].local_shape[d];
        int64_t a = lo > at ? lo : at, b = hi < at + n ? hi : at + n;
        t[i].part = 1;
        t[i].part_start = b > a ? a - at : 0;
        t[i].part_count = b > a ? b - a : 0;
        t[i].data = b > a ? shard + (a - lo) : NULL;
    }
}
