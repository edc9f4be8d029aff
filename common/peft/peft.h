/* peft/peft.h - LoRA and DoRA adapters on the model's linear layers (finetune.md 1-2).
 *
 * An adapter is an attachment of a linear layer y = W x + b (nn/linear.h) that turns it
 * into
 *
 *   LoRA:  y = W x + b + s B A x                         s = alpha / dim
 *   DoRA:  y = g * (W x + s B A x) + b                   g = m / ||W + s B A||_row
 *
 * with A [r, in], B [out, r], the magnitude m [out] and the row norm detached (no
 * gradient through it, as PEFT and Megatron Bridge do). The base W and b are frozen; the
 * layer still computes the input gradient through them. On a fused layer (linear_qkv,
 * linear_fc1) there is one adapter: A is shared by q/k/v (gate/up) and B's rows follow
 * the fused weight's row order (finetune.md 1.5).
 *
 * Tensor parallelism follows the base layer (finetune.md 1.6):
 *   column-parallel base (W: this rank's rows): A whole on every rank, B and m this
 *     rank's rows; the gradient of A is a partial sum over TP (summed afterwards, like
 *     the QK-norm weights), the input gradient goes through the base's all-reduce.
 *   row-parallel base (W: this rank's columns): A this rank's columns, A x summed over
 *     TP; B and m whole on every rank; DoRA's row norms summed over TP.
 * Under sequence parallelism the adapter sees the gathered rows as the base does.
 *
 * This module knows nothing of the model: the model lays the adapter tensors out in
 * its parameter table (nn/params.h) and hands each linear layer a struct mb_adapter
 * view of its layer's slices. Host loops do DoRA's per-row scaling and LoRA's dropout
 * mask (the CPU backend).
 */
#ifndef MB_PEFT_PEFT_H
#define MB_PEFT_PEFT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/defs.h"
#include "dist/pstate.h"
#include "kern/ops.h"

enum mb_peft_kind { MB_PEFT_NONE, MB_PEFT_LORA, MB_PEFT_DORA };

/* The projections an adapter may target, by Megatron Bridge's names. */
enum mb_peft_module { MB_PEFT_QKV, MB_PEFT_PROJ, MB_PEFT_FC1, MB_PEFT_FC2, MB_PEFT_MODULES };

/* How A or B starts (finetune.md 1.2, Megatron Bridge's lora_*_init_method). */
enum mb_peft_init {
    MB_PEFT_INIT_XAVIER,  /* N(0, sqrt(2 / (fan_in + fan_out))) */
    MB_PEFT_INIT_NORMAL,  /* N(0, 0.2) */
    MB_PEFT_INIT_KAIMING, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    MB_PEFT_INIT_ZERO,
};

/* The peft.* keys. */
struct mb_peft_config {
    enum mb_peft_kind kind;
    int64_t dim;                   /* r */
    double alpha;
    double dropout;                /* LoRA only: on the adapter's input (position pre) */
    bool target[MB_PEFT_MODULES];
    enum mb_peft_init a_init, b_init;
};

/* "linear_qkv", "linear_proj", "linear_fc1", "linear_fc2". */
const char *mb_peft_module_name(enum mb_peft_module m);
/* "none", "lora", "dora". */
const char *mb_peft_kind_name(enum mb_peft_kind k);
/* alpha / dim. */
float mb_peft_scale(const struct mb_peft_config *pc);

/* The peft.* keys of CFG into PC. -1 with mb_err naming the key: an unknown kind, a
 * module that is not one of the four, dim < 1, dropout outside [0, 1), dropout with DoRA
 * or with dropout_position post, an unknown init. */
MB_MUST_CHECK int mb_peft_config_from(struct mb_peft_config *pc, const mb_config *cfg);
/* The checkpoint attribute `peft` (ckpt/ckpt.h): {"peft": "lora", "dim": r, "alpha": a,
 * "dropout": p, "target_modules": [...]}, malloc'd. */
char *mb_peft_config_to_json(const struct mb_peft_config *pc);
/* Its inverse (inits: Bridge's defaults). -1 with mb_err naming WHERE. */
MB_MUST_CHECK int mb_peft_config_from_json(struct mb_peft_config *pc, const char *json,
                                           const char *where);
/* 1 when A and B hold the same adapter shape and kind (dim, alpha, targets, kind). */
bool mb_peft_config_same(const struct mb_peft_config *a, const struct mb_peft_config *b);

/* Scratch shared by the adapters of one model (grown as needed, backend memory). */
struct mb_adapter_scratch {
    const struct mb_ops *ops;
    struct mb_exec *ex; /* the context its ops run in (kern/ops.h) */
    float *ax, *dax;  /* [N, r] */
    float *xd;        /* [N, in]: the input after dropout, then d(A x) A */
    float *wide;      /* [N, out]: DoRA's W x + s B A x, then its gradient */
    float *ba;        /* [out, in]: DoRA's W + s B A */
    int64_t cap_ax, cap_dax, cap_wide, cap_ba, cap_xd;
};
void mb_adapter_scratch_release(struct mb_adapter_scratch *s);

/* LoRA's dropout on the adapter input, x -> x * keep / (1 - p), in training steps. The
 * keep mask of an element depends only on KEY, the global index of its sample, its
 * position, the layer and module (the adapter's site) and its global input column, so
 * every parallel layout and a resumed run drop the same elements. */
struct mb_adapter_dropout {
    float p;
    uint64_t key;         /* from the seed */
    int64_t seq;          /* positions per sample: token row t is sample t / seq */
    int64_t sample0;      /* global index of the micro-batch's first sample */
};
/* 1 when element (SAMPLE, POS, SITE, COL) is kept. */
int mb_adapter_dropout_keep(const struct mb_adapter_dropout *d, int64_t sample, int64_t pos,
                            int64_t site, int64_t col);

/* One layer's adapter on one linear layer (RANK 0: none). Shapes are this rank's. */
struct mb_adapter {
    int64_t rank;         /* r */
    bool dora;
    float scale;          /* alpha / r */
    const float *a;       /* [r, in] */
    const float *b;       /* [out, r] */
    const float *mag;     /* DoRA: [out] */
    float *ga, *gb, *gmag; /* gradients (+=); NULL: no backward */
    float *norm;          /* DoRA: [out], the row norms of the last forward */
    bool norm_fixed;      /* DoRA: NORM holds the norms of these weights already */
    struct mb_adapter_scratch *scratch;
    const struct mb_adapter_dropout *dropout; /* NULL: none (p 0, or not training) */
    int64_t site;         /* layer * MB_PEFT_MODULES + module, for the dropout mask */
    int64_t col0;         /* global index of this rank's first input column */
};

/* The linear layer an adapter is attached to. */
struct mb_adapter_base {
    const struct mb_ops *ops;
    struct mb_exec *ex;   /* the context its ops run in (kern/ops.h) */
    const struct mb_group *tp;
    bool row;             /* row-parallel: x, W and A cut on the input dimension */
    int64_t in, out;      /* this rank's W is [out, in] */
    const float *w;
};

/* After the base's GEMM (and, row-parallel, its reduction over TP), before its bias: Y
 * holds ROWS rows of W x starting at token row ROW0 (ROW0 > 0 only for a row-parallel
 * layer under sequence parallelism), X the N rows the GEMM read. Adds the adapter. */
void mb_adapter_forward(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                        float *y, int64_t row0, int64_t rows, const float *x, int64_t n);
/* Backward, first half: from DY [N, out] (all N rows) and X [N, in] accumulate the
 * gradients of A, B (and m), and keep d(A x) for the second half. Returns the gradient
 * the base GEMMs must use for d(W x): DY for LoRA, g * DY for DoRA. */
const float *mb_adapter_backward(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                                 const float *dy, const float *x, int64_t n);
/* Second half: DX [N, in] += d(A x) A (before the base reduces DX over TP). */
void mb_adapter_backward_dx(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                            float *dx, int64_t n);

/* NORMS[out] = the row norms of W (+ s B A when B is not NULL), summed over TP for a
 * row-parallel base. SCRATCH holds W + s B A. */
void mb_adapter_row_norms(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                          bool with_adapter, float *norms);

#endif /* MB_PEFT_PEFT_H */
