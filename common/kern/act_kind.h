/* kern/act_kind.h - the MLP activations a model can have: the model config's
 * `activation` (nn/config.h) and the op table's bf16 activation ops (kern/ops.h) name
 * them with the same enum. */
#ifndef MB_KERN_ACT_KIND_H
#define MB_KERN_ACT_KIND_H

#include <stdint.h>

enum mb_act_kind { MB_ACT_SWIGLU, MB_ACT_GEGLU, MB_ACT_GELU };

/* Elements per row of an activation's input: the gated ones read [gate | up]. */
static inline int64_t mb_act_x_cols(enum mb_act_kind kind, int64_t inner)
{
    return kind == MB_ACT_GELU ? inner : 2 * inner;
}

#endif /* MB_KERN_ACT_KIND_H */
