/* nn/linear.h - a linear layer y = x W^T (+ b) and its tensor-parallel communication.
 *
 * Every projection of the model goes through one of these. A layer holds its local shape
 * (this rank's rows or columns of W), its parallel mode and its weight, bias and their
 * gradients; the forward and backward do the TP-group collectives of Megatron's
 * ColumnParallelLinear and RowParallelLinear (parallel.md 2.2-2.3):
 *
 *   none:   no communication.
 *   column: W holds out/TP rows; the output stays sharded on its last dim. Backward:
 *           all-reduce of dx over TP (each rank's dx is a partial sum).
 *   row:    W holds in/TP columns and x is sharded on its last dim. Forward: all-reduce
 *           of the partial y over TP, then the (replicated) bias is added once.
 *
 * With sequence parallelism (parallel.md 2.2-2.4) the rows of x and y outside the layer
 * are this rank's block of the N token rows: a column layer all-gathers x before its
 * GEMM (and reduce-scatters dx), a row layer reduce-scatters y (and all-gathers dy).
 * Weights are [out, in] as Megatron keeps them. Groups of one communicate nothing, so a
 * single process runs exactly the GEMMs it always ran.
 *
 * bf16 mixed precision (DESIGN.md 5): with wb set, the three GEMMs take x, dy and W in
 * bf16 and give fp32 (ops->matmul_bf16); communication, bias, adapters and every
 * gradient stay fp32.
 */
#ifndef MB_NN_LINEAR_H
#define MB_NN_LINEAR_H

#include <stdbool.h>
#include <stdint.h>

#include "dist/pstate.h"
#include "kern/ops.h"
#include "peft/peft.h"

enum mb_linear_mode { MB_LINEAR_NONE, MB_LINEAR_COLUMN, MB_LINEAR_ROW };

struct mb_linear {
    enum mb_linear_mode mode;
    bool sequence_parallel;
    int64_t in, out;        /* this rank's sizes: W is [out, in] */
    const float *w, *b;     /* b NULL: no bias */
    float *gw, *gb;         /* accumulated gradients (NULL: forward only) */
    const struct mb_ops *ops;
    struct mb_exec *ex;     /* the context its ops run in (kern/ops.h) */
    const struct mb_group *tp;
    /* Sequence parallelism: a scratch of N x max(in, out) floats (N the full token
     * rows) for the gathered x or dy; NULL without it. */
    float *gathered;
    /* A LoRA or DoRA adapter attached to the layer (peft/peft.h); adapter.rank 0: none.
     * With one, gw and gb are NULL (the base is frozen) but dx still flows. */
    struct mb_adapter adapter;
    /* bf16 GEMMs: wb is the bf16 shadow of w (NULL: fp32 GEMMs, none of the below used).
     * The forward converts x (gathered, under sequence parallelism) into xb [n, in]; with
     * xb_kept that copy is what the caller keeps for the backward, which then reads it
     * and not x (x may be NULL), else the backward converts x again. dyb: [n, out]
     * scratch for the bf16 dy; with dyb_given it already holds the bf16 dy and the
     * backward reads only that (the head's, converted in place over its fp32 one: no
     * bias, no adapter, no sequence-parallel gather). With xb_given the caller has put
     * the bf16 x in xb before the forward, which then reads only that (x may be NULL;
     * no adapter, no sequence-parallel gather). */
    const uint16_t *wb;
    uint16_t *xb, *dyb;
    bool xb_kept, dyb_given, xb_given;
    /* When not NULL and true, gw holds nothing of this step yet (it was not zeroed): the
     * weight-gradient GEMM writes dy^T x (beta 0) and sets it false (nn/model.h). */
    bool *gw_fresh;
};

/* Y [n, out] from X [n, in], where n is the full token rows (the rows of x and y outside
 * the layer are n / TP under sequence parallelism). */
void mb_linear_forward(const struct mb_linear *l, float *y, const float *x, int64_t n);

/* In bf16, for a layer whose output only bf16 consumers read: YB [n, out] = bf16(x W^T),
 * rounded once from the fp32 sums (matmul_bf16_rounded): the bits mb_linear_forward and
 * a convert would give. A column-parallel (or unsplit) layer without bias or adapter. */
void mb_linear_forward_bf16(const struct mb_linear *l, uint16_t *yb, const float *x, int64_t n);

/* From DY (the gradient of y, as forward left it): gw += dy^T x, gb += sum dy, and, when
 * DX is not NULL, dx = dy W (overwritten). X is the forward's input. GW and GB NULL: no
 * weight gradients (a frozen layer). An adapter adds its gradients and its part of dx. */
void mb_linear_backward(const struct mb_linear *l, float *dx, const float *dy, const float *x,
                        int64_t n);

#endif /* MB_NN_LINEAR_H */
