/* bridge/adapter.h - an adapter-only checkpoint, as mb-convert --to peft and mb-ckpt
 * merge-adapter read it.
 *
 * The file is an mb checkpoint without /model (ckpt.h). For each targeted module, e.g.
 * decoder.layers.self_attention.linear_qkv, it holds, fp32, layers stacked first:
 *
 *   /adapter/<module>/adapter/linear_in/weight    A  [L, r, in]
 *   /adapter/<module>/adapter/linear_out/weight   B  [L, out, r]   rows in the base
 *                                                    weight's fused order
 *   /adapter/<module>/adapter/weight_magnitude    m  [L, out]      DoRA only
 *
 * and the root attributes model_config (the base's), peft (JSON: {"peft": "lora" |
 * "dora", "dim": r, "alpha": a, "dropout": p, "target_modules": [...]}) and
 * base_checkpoint (the base file it was trained on). The adapted layer computes
 * W x + (alpha / r) B A x (LoRA), or m / ||W + s B A||_row * (W + s B A) x (DoRA), with
 * W [out, in] the base weight of layer l (finetune.md 1.1, 2.1).
 */
#ifndef MB_BRIDGE_ADAPTER_H
#define MB_BRIDGE_ADAPTER_H

#include <stdint.h>

#include "bridge/bridge.h"
#include "ckpt/ckpt.h"
#include "core/defs.h"
#include "nn/config.h"
#include "nn/params.h"

#define MB_BRIDGE_ADAPTER_MODULES 4

struct mb_bridge_adapter_module {
    const char *target;          /* "linear_qkv" (a peft.target_modules name) */
    const char *name;            /* "decoder.layers.self_attention.linear_qkv" */
    const struct mb_param *base; /* its weight in the adapter's table: [L, out, in] */
    int64_t out, in;
    char *a, *b, *m;             /* the dataset paths; M NULL without DoRA */
};

struct mb_bridge_adapter {
    char *file;
    int dora;
    int64_t dim;
    double alpha, dropout;
    char *base_checkpoint; /* NULL when the attribute is absent */
    struct mb_model_config cfg;
    struct mb_param_table pt;
    /* in peft.target_modules order */
    struct mb_bridge_adapter_module mod[MB_BRIDGE_ADAPTER_MODULES];
    int n;
};

/* Read the adapter checkpoint open in R (FILE names it in errors) and check it whole:
 * the peft attribute, every target a module of the model, every /adapter dataset one of
 * a target's tensors of the shape the model config and r give, none missing. -1 with
 * mb_err naming FILE and the attribute, module or tensor. */
MB_MUST_CHECK int mb_bridge_adapter_open(struct mb_bridge_adapter *a, mb_ckpt_reader *r,
                                         const char *file);
void mb_bridge_adapter_release(struct mb_bridge_adapter *a);

/* The module name of the I-th target an adapter may have ("linear_qkv" ->
 * "decoder.layers.self_attention.linear_qkv", then linear_proj, linear_fc1, linear_fc2),
 * NULL for I out of range. */
const char *mb_bridge_adapter_module_name(int i);

/* alpha / r, the LoRA scale. */
double mb_bridge_adapter_scale(const struct mb_bridge_adapter *a);

/* Module M's A [L, r, in], B [L, out, r] and, with DoRA, m [L, out] (else *MAG NULL),
 * whole, fp32, malloc'd. -1 with mb_err naming the file and dataset. */
MB_MUST_CHECK int mb_bridge_adapter_read(const struct mb_bridge_adapter *a, mb_ckpt_reader *r,
                                         int m, float **A, float **B, float **mag);

/* The rows of SRC [ROWS, COLS] (rows in the Megatron weight's fused order, such as B
 * [out, r] or m [out, 1]) that RULE's HF tensor holds, in HF order, into DST; returns
 * their number. The row moves of the bridge without its Conv1D transposes: a LoRA
 * matrix is [out, r] in PEFT whether or not the base weight is stored transposed. TMP:
 * scratch of ROWS x COLS floats. */
int64_t mb_bridge_adapter_hf_rows(const struct mb_bridge_rule *rule,
                                  const struct mb_model_config *c, const float *src,
                                  int64_t rows, int64_t cols, float *dst, float *tmp);

/* The number of those rows for a Megatron weight of ROWS rows. */
int64_t mb_bridge_adapter_hf_row_count(const struct mb_bridge_rule *rule,
                                       const struct mb_model_config *c, int64_t rows);

#endif /* MB_BRIDGE_ADAPTER_H */
