/* ckpt/params.c - a model's parameter table as checkpoint tensors, whole or cut to a
 * distributed optimizer's run of the flat buffer, in the order of the whole model's
 * parameters on every pipeline stage. */
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/mem.h"

void mb_ckpt_whole_table(struct mb_param_table *whole, const struct mb_param_table *p,
                         const struct mb_model_config *cfg, const struct mb_peft_config *pc)
{
    mb_param_table_build_tp(whole, cfg, p->loc.tp, p->loc.tp_rank);
    if (pc)
        mb_param_table_add_adapters(whole, cfg, pc);
}

/* Parameter IT of a table as the tensor T over BASE. */
static void tensor_of(struct mb_ckpt_tensor *t, const struct mb_param *it, float *base)
{
    t->name = it->name;
    t->ndim = it->ndim;
    for (int d = 0; d < it->ndim; d++) {
        t->shape[d] = it->global_shape[d];
        t->local_shape[d] = it->shape[d];
    }
    t->data = base + it->offset;
    t->axis = it->shard_axis < 0 ? 0 : it->shard_axis;
    t->nslab = it->nslab;
    for (int k = 0; k < it->nslab; k++)
        t->slab[k] = it->slab[k];
    t->nlayer_slab = it->nlayer_slab;
    for (int k = 0; k < it->nlayer_slab; k++)
        t->layer_slab[k] = it->layer_slab[k];
    t->copy = it->pp_shared;
}

/* The parameter of P named NAME, or NULL when P's stage has none. */
static const struct mb_param *find(const struct mb_param_table *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return &p->items[i];
    return NULL;
}

struct mb_ckpt_tensor *mb_ckpt_tensors_of(const struct mb_param_table *p,
                                          const struct mb_param_table *whole, float *base)
{
    const struct mb_param_table *all = whole ? whole : p;
    struct mb_ckpt_tensor *t = mb_xcalloc((size_t)all->count + 1, sizeof(*t));
    for (int i = 0; i < all->count; i++) {
        const struct mb_param *it = find(p, all->items[i].name);
        if (it) {
            tensor_of(&t[i], it, base);
            continue;
        }
        tensor_of(&t[i], &all->items[i], base); /* the name and logical shape */
        t[i].nslab = t[i].nlayer_slab = 0;       /* ... and nothing of it */
        t[i].part = 1;
        t[i].data = NULL;
    }
    return t;
}

void mb_ckpt_tensors_part(struct mb_ckpt_tensor *t, int n, const struct mb_param_table *p,
                          int64_t lo, int64_t hi, float *shard)
{
    for (int i = 0; i < n; i++) {
        const struct mb_param *it = find(p, t[i].name);
        int64_t at = it ? it->offset : 0, len = it ? it->numel : 0;
        int64_t a = lo > at ? lo : at, b = hi < at + len ? hi : at + len;
        t[i].part = 1;
        t[i].part_start = b > a ? a - at : 0;
        t[i].part_count = b > a ? b - a : 0;
        t[i].data = b > a ? shard + (a - lo) : NULL;
    }
}
