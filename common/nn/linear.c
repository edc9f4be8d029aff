/* nn/linear.c - the linear layer and its TP communication (nn/linear.h). */
#include "nn/linear.h"

#include "core/err.h"
#include "dist/devcomm.h"

static bool sp(const struct mb_linear *l)
{
    return l->sequence_parallel && l->tp->size > 1 && l->mode != MB_LINEAR_NONE;
}

static bool adapted(const struct mb_linear *l)
{
    return l->adapter.rank > 0;
}

/* What the adapter needs of its base layer. */
static struct mb_adapter_base adapter_base(const struct mb_linear *l)
{
    struct mb_adapter_base b = { l->ops, l->ex, l->tp, l->mode == MB_LINEAR_ROW,
                                 l->in, l->out, l->w };
    return b;
}

/* y[n, out] = x[n, in] W^T; in bf16, x goes to l->xb first (unless it is there) */
static void gemm_fwd(const struct mb_linear *l, float *y, const float *x, int64_t n)
{
    if (!l->wb) {
        l->ops->matmul(l->ex, false, true, n, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y,
                       l->out);
        return;
    }
    if (!l->xb_given)
        l->ops->convert(l->ex, l->xb, MB_DTYPE_BF16, x, MB_DTYPE_F32, n * l->in);
    l->ops->matmul_bf16(l->ex, false, true, n, l->out, l->in, 1.0f, l->xb, l->in, l->wb, l->in, 0.0f,
                        y, l->out);
}

void mb_linear_forward(const struct mb_linear *l, float *y, const float *x, int64_t n)
{
    int64_t shard = n / l->tp->size; /* token rows per rank under sequence parallelism */
    int64_t rows = n, row0 = 0;
    if (l->mode == MB_LINEAR_COLUMN && sp(l)) {
        mb_dev_all_gather_f32(l->ops, l->ex, l->tp, x, l->gathered, shard * l->in);
        x = l->gathered;
    }
    if (l->mode == MB_LINEAR_ROW && sp(l)) {
        gemm_fwd(l, l->gathered, x, n);
        mb_dev_reduce_scatter_f32(l->ops, l->ex, l->tp, l->gathered, y, shard * l->out);
        rows = shard;
        row0 = l->tp->rank * shard;
    } else {
        gemm_fwd(l, y, x, n);
        if (l->mode == MB_LINEAR_ROW)
            mb_dev_sum_f32(l->ops, l->ex, l->tp, y, n * l->out);
    }
    if (adapted(l)) {
        struct mb_adapter_base base = adapter_base(l);
        mb_adapter_forward(&l->adapter, &base, y, row0, rows, x, n);
    }
    if (l->b)
        l->ops->add_bias(l->ex, y, l->b, rows, l->out);
}

void mb_linear_forward_bf16(const struct mb_linear *l, uint16_t *yb, const float *x, int64_t n)
{
    MB_ASSERT(l->wb && !l->b && !adapted(l) && l->mode != MB_LINEAR_ROW);
    if (sp(l)) {
        mb_dev_all_gather_f32(l->ops, l->ex, l->tp, x, l->gathered, n / l->tp->size * l->in);
        x = l->gathered;
    }
    if (!l->xb_given)
        l->ops->convert(l->ex, l->xb, MB_DTYPE_BF16, x, MB_DTYPE_F32, n * l->in);
    l->ops->matmul_bf16_rounded(l->ex, false, true, n, l->out, l->in, l->xb, l->in, l->wb, l->in, yb,
                                l->out);
}

/* The gradient of y as the backward GEMMs take it: fp32, and in bf16 its converted copy
 * (made once for both GEMMs). */
struct dy_pair {
    const float *f32;
    const uint16_t *bf16;
};

static struct dy_pair dy_of(const struct mb_linear *l, const float *dy, int64_t n)
{
    struct dy_pair d = { dy, NULL };
    if (l->dyb_given) {
        MB_ASSERT(l->wb && !l->gb && !adapted(l) && !sp(l));
        d.f32 = NULL;
        d.bf16 = l->dyb;
    } else if (l->wb) {
        l->ops->convert(l->ex, l->dyb, MB_DTYPE_BF16, dy, MB_DTYPE_F32, n * l->out);
        d.bf16 = l->dyb;
    }
    return d;
}

/* dx[n, in] = dy W; dW += dy^T x (both n rows) */
static void gemm_dx(const struct mb_linear *l, float *dx, struct dy_pair dy, int64_t n)
{
    if (!l->wb)
        l->ops->matmul(l->ex, false, false, n, l->in, l->out, 1.0f, dy.f32, l->out, l->w, l->in, 0.0f,
                       dx, l->in);
    else
        l->ops->matmul_bf16(l->ex, false, false, n, l->in, l->out, 1.0f, dy.bf16, l->out, l->wb, l->in,
                            0.0f, dx, l->in);
}

static void gemm_dw(const struct mb_linear *l, struct dy_pair dy, const float *x, int64_t n)
{
    if (!l->gw) /* frozen */
        return;
    if (!l->wb) {
        l->ops->matmul(l->ex, true, false, l->out, l->in, n, 1.0f, dy.f32, l->out, x, l->in, 1.0f,
                       l->gw, l->in);
        return;
    }
    if (!l->xb_kept) /* the forward's copy is gone: convert x again (the same bits) */
        l->ops->convert(l->ex, l->xb, MB_DTYPE_BF16, x, MB_DTYPE_F32, n * l->in);
    float beta = 1.0f; /* add to the sum; the step's first product is written */
    if (l->gw_fresh && *l->gw_fresh) {
        beta = 0.0f;
        *l->gw_fresh = false;
    }
    l->ops->matmul_bf16(l->ex, true, false, l->out, l->in, n, 1.0f, dy.bf16, l->out, l->xb, l->in, beta,
                        l->gw, l->in);
}

/* The adapter's gradients from DY and X (all N rows); returns the gradient the base's
 * GEMMs use (DY, or DoRA's scaled copy). */
static const float *adapter_backward(const struct mb_linear *l, const float *dy, const float *x,
                                     int64_t n)
{
    if (!adapted(l))
        return dy;
    struct mb_adapter_base base = adapter_base(l);
    return mb_adapter_backward(&l->adapter, &base, dy, x, n);
}

/* The adapter's part of DX [N, in], after the base's dx = dy W. */
static void adapter_dx(const struct mb_linear *l, float *dx, int64_t n)
{
    if (!adapted(l))
        return;
    struct mb_adapter_base base = adapter_base(l);
    mb_adapter_backward_dx(&l->adapter, &base, dx, n);
}

static void column_backward(const struct mb_linear *l, float *dx, const float *dy,
                            const float *x, int64_t n)
{
    const float *bias_dy = dy; /* the bias is outside DoRA's scaling */
    if (!sp(l)) {
        struct dy_pair d = dy_of(l, adapter_backward(l, dy, x, n), n);
        if (dx) {
            gemm_dx(l, dx, d, n);
            adapter_dx(l, dx, n);
            if (l->mode == MB_LINEAR_COLUMN)
                mb_dev_sum_f32(l->ops, l->ex, l->tp, dx, n * l->in);
        }
        gemm_dw(l, d, x, n);
    } else {
        /* only the shard of x was kept: gather it again, then reduce-scatter dx */
        int64_t shard = n / l->tp->size;
        mb_dev_all_gather_f32(l->ops, l->ex, l->tp, x, l->gathered, shard * l->in);
        struct dy_pair d = dy_of(l, adapter_backward(l, dy, l->gathered, n), n);
        gemm_dw(l, d, l->gathered, n);
        if (dx) {
            gemm_dx(l, l->gathered, d, n);
            adapter_dx(l, l->gathered, n);
            mb_dev_reduce_scatter_f32(l->ops, l->ex, l->tp, l->gathered, dx, shard * l->in);
        }
    }
    if (l->gb)
        l->ops->bias_grad(l->ex, l->gb, bias_dy, n, l->out);
}

static void row_backward(const struct mb_linear *l, float *dx, const float *dy, const float *x,
                         int64_t n)
{
    const float *dy_full = dy;
    if (sp(l)) {
        int64_t shard = n / l->tp->size;
        mb_dev_all_gather_f32(l->ops, l->ex, l->tp, dy, l->gathered, shard * l->out);
        dy_full = l->gathered;
        /* this rank's tokens only: the bias gradient is summed over TP afterwards */
        if (l->gb)
            l->ops->bias_grad(l->ex, l->gb, dy, shard, l->out);
    } else if (l->gb) {
        l->ops->bias_grad(l->ex, l->gb, dy, n, l->out);
    }
    struct dy_pair d = dy_of(l, adapter_backward(l, dy_full, x, n), n);
    if (dx) {
        gemm_dx(l, dx, d, n);
        adapter_dx(l, dx, n);
    }
    gemm_dw(l, d, x, n);
}

void mb_linear_backward(const struct mb_linear *l, float *dx, const float *dy, const float *x,
                        int64_t n)
{
    if (l->mode == MB_LINEAR_ROW)
        row_backward(l, dx, dy, x, n);
    else
        column_backward(l, dx, dy, x, n); /* none: a column layer whose group is not used */
}
