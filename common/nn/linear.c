/* nn/linear.c - the linear layer and its TP communication (nn/linear.h). */
#include "nn/linear.h"

static bool sp(const struct mb_linear *l)
{
    return l->sequence_parallel && l->tp->size > 1 && l->mode != MB_LINEAR_NONE;
}

/* y[n, out] = x[n, in] W^T */
static void gemm_fwd(const struct mb_linear *l, float *y, const float *x, int64_t n)
{
    l->ops->matmul(false, true, n, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
}

void mb_linear_forward(const struct mb_linear *l, float *y, const float *x, int64_t n)
{
    int64_t shard = n / l->tp->size; /* token rows per rank under sequence parallelism */
    int64_t rows = n;
    if (l->mode == MB_LINEAR_COLUMN && sp(l)) {
        mb_group_all_gather_f32(l->tp, x, l->gathered, shard * l->in);
        x = l->gathered;
    }
    if (l->mode == MB_LINEAR_ROW && sp(l)) {
        gemm_fwd(l, l->gathered, x, n);
        mb_group_reduce_scatter_f32(l->tp, l->gathered, y, shard * l->out);
        rows = shard;
    } else {
        gemm_fwd(l, y, x, n);
        if (l->mode == MB_LINEAR_ROW)
            mb_group_sum_f32(l->tp, y, n * l->out);
    }
    if (l->b)
        l->ops->add_bias(y, l->b, rows, l->out);
}

/* dx[n, in] = dy W; dW += dy^T x (both n rows) */
static void gemm_dx(const struct mb_linear *l, float *dx, const float *dy, int64_t n)
{
    l->ops->matmul(false, false, n, l->in, l->out, 1.0f, dy, l->out, l->w, l->in, 0.0f, dx,
                   l->in);
}

static void gemm_dw(const struct mb_linear *l, const float *dy, const float *x, int64_t n)
{
    l->ops->matmul(true, false, l->out, l->in, n, 1.0f, dy, l->out, x, l->in, 1.0f, l->gw,
                   l->in);
}

static void column_backward(const struct mb_linear *l, float *dx, const float *dy,
                            const float *x, int64_t n)
{
    if (!sp(l)) {
        if (dx) {
            gemm_dx(l, dx, dy, n);
            if (l->mode == MB_LINEAR_COLUMN)
                mb_group_sum_f32(l->tp, dx, n * l->in);
        }
        gemm_dw(l, dy, x, n);
    } else {
        /* only the shard of x was kept: gather it again, then reduce-scatter dx */
        int64_t shard = n / l->tp->size;
        mb_group_all_gather_f32(l->tp, x, l->gathered, shard * l->in);
        gemm_dw(l, dy, l->gathered, n);
        if (dx) {
            gemm_dx(l, l->gathered, dy, n);
            mb_group_reduce_scatter_f32(l->tp, l->gathered, dx, shard * l->in);
        }
    }
    if (l->gb)
        l->ops->bias_grad(l->gb, dy, n, l->out);
}

static void row_backward(const struct mb_linear *l, float *dx, const float *dy, const float *x,
                         int64_t n)
{
    const float *dy_full = dy;
    if (sp(l)) {
        int64_t shard = n / l->tp->size;
        mb_group_all_gather_f32(l->tp, dy, l->gathered, shard * l->out);
        dy_full = l->gathered;
        /* this rank's tokens only: the bias gradient is summed over TP afterwards */
        if (l->gb)
            l->ops->bias_grad(l->gb, dy, shard, l->out);
    } else if (l->gb) {
        l->ops->bias_grad(l->gb, dy, n, l->out);
    }
    if (dx)
        gemm_dx(l, dx, dy_full, n);
    gemm_dw(l, dy_full, x, n);
}

void mb_linear_backward(const struct mb_linear *l, float *dx, const float *dy, const float *x,
                        int64_t n)
{
    if (l->mode == MB_LINEAR_ROW)
        row_backward(l, dx, dy, x, n);
    else
        column_backward(l, dx, dy, x, n); /* none: a column layer whose group is not used */
}
