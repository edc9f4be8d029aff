/* kern/act_kind.h - the MLP activations a model can have: the model config's
 * `activation` (nn/config.h) and the op table's bf16 activation ops (kern/ops.h) name
 * them with the same enum. */
#ifndef MB_KERN_ACT_KIND_H
#define MB_KERN_ACT_KIND_H

enum mb_act_kind { MB_ACT_SWIGLU, MB_ACT_GEGLU, MB_ACT_GELU };

#endif /* MB_KERN_ACT_KIND_H */
