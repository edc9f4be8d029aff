/* peft/adapter.c - LoRA and DoRA forward and backward on a linear layer (peft/peft.h).
 *
 * Shapes: N token rows, this rank's W [out, in], A [r, in], B [out, r], s = alpha / r.
 *
 *   forward   ax = x A^T (summed over TP for a row-parallel base)
 *             LoRA  y += s ax B^T
 *             DoRA  y = g * (y + s ax B^T), g = m / ||W + s B A||_row
 *   backward  (DoRA: z = x W^T + s ax B^T, dm += sum_n dy z / norm, dz = g dy;
 *              LoRA: dz = dy)
 *             dB += s dz^T ax,  dax = s dz B,  dA += dax^T x,  dx += dax A
 *
 * LoRA's dropout replaces x by d(x) = x * keep / (1 - p) in ax and dA, and dax A by
 * (dax A) * keep / (1 - p) in dx; the mask is recomputed in the backward.
 */
#include "peft/peft.h"

#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/mem.h"
#include "dist/devcomm.h"

void mb_adapter_scratch_release(struct mb_adapter_scratch *s)
{
    if (!s || !s->ops)
        return;
    s->ops->free(s->ex, s->ax);
    s->ops->free(s->ex, s->dax);
    s->ops->free(s->ex, s->wide);
    s->ops->free(s->ex, s->ba);
    s->ops->free(s->ex, s->xd);
    s->ax = s->dax = s->wide = s->ba = s->xd = NULL;
    s->cap_ax = s->cap_dax = s->cap_wide = s->cap_ba = s->cap_xd = 0;
}

/* *BUF with room for N floats (grown, its contents lost). Out of memory aborts. */
static float *room(struct mb_adapter_scratch *s, float **buf, int64_t *cap, int64_t n)
{
    if (n <= *cap)
        return *buf;
    s->ops->free(s->ex, *buf);
    *buf = s->ops->alloc(s->ex, (size_t)n * sizeof(float));
    MB_ASSERT(*buf != NULL);
    *cap = n;
    return *buf;
}

/* The hash of a row's (sample, position, site), from which its columns' draws come. */
static uint64_t row_key(const struct mb_adapter_dropout *d, int64_t sample, int64_t pos,
                        int64_t site)
{
    uint64_t h = mb_splitmix64(d->key ^ mb_splitmix64((uint64_t)sample));
    h = mb_splitmix64(h ^ (uint64_t)pos);
    return mb_splitmix64(h ^ (uint64_t)site);
}

static int keep_at(const struct mb_adapter_dropout *d, uint64_t row, int64_t col)
{
    double u = (double)(mb_splitmix64(row ^ (uint64_t)col) >> 11) * 0x1.0p-53;
    return u >= d->p;
}

int mb_adapter_dropout_keep(const struct mb_adapter_dropout *d, int64_t sample, int64_t pos,
                            int64_t site, int64_t col)
{
    return keep_at(d, row_key(d, sample, pos, site), col);
}

/* DST[n, in] += or = SRC * keep / (1 - p), the mask of this adapter's elements (backend
 * memory, looped over on the host: kern/ops.h mb_host_view). */
static void apply_mask(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                       int64_t in, float *dev_dst, const float *dev_src, int64_t n,
                       bool accumulate)
{
    const struct mb_adapter_dropout *d = ad->dropout;
    float scale = 1.0f / (1.0f - d->p);
    size_t bytes = (size_t)(n * in) * sizeof(float);
    float *dst = accumulate ? mb_host_view(base->ops, base->ex, dev_dst, bytes)
                            : base->ops->host_memory ? dev_dst : mb_xmalloc(bytes + 1);
    const float *src = mb_host_view(base->ops, base->ex, dev_src, bytes);
    for (int64_t t = 0; t < n; t++) {
        uint64_t row = row_key(d, d->sample0 + t / d->seq, t % d->seq, ad->site);
        for (int64_t i = 0; i < in; i++) {
            float v = keep_at(d, row, ad->col0 + i) ? src[t * in + i] * scale : 0.0f;
            dst[t * in + i] = accumulate ? dst[t * in + i] + v : v;
        }
    }
    mb_host_view_end(base->ops, base->ex, (float *)dev_src, (float *)src, bytes, false);
    mb_host_view_end(base->ops, base->ex, dev_dst, dst, bytes, true);
}

/* The adapter's input: X, or d(X) with dropout (in the scratch). */
static const float *drop_input(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                               const float *x, int64_t n)
{
    if (!ad->dropout)
        return x;
    struct mb_adapter_scratch *s = ad->scratch;
    float *xd = room(s, &s->xd, &s->cap_xd, n * base->in);
    apply_mask(ad, base, base->in, xd, x, n, false);
    return xd;
}

/* ax [n, r] = x A^T, summed over TP when the base is row-parallel (x, A: its columns). */
static float *project_in(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                         const float *x, int64_t n)
{
    struct mb_adapter_scratch *s = ad->scratch;
    int64_t r = ad->rank;
    float *ax = room(s, &s->ax, &s->cap_ax, n * r);
    base->ops->matmul(base->ex, false, true, n, r, base->in, 1.0f, x, base->in, ad->a, base->in,
                      0.0f, ax, r);
    if (base->row)
        mb_dev_sum_f32(base->ops, base->ex, base->tp, ax, n * r);
    return ax;
}

void mb_adapter_row_norms(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                          bool with_adapter, float *norms)
{
    struct mb_adapter_scratch *s = ad->scratch;
    int64_t out = base->out, in = base->in;
    float *wp = room(s, &s->ba, &s->cap_ba, out * in);
    base->ops->copy(base->ex, wp, base->w, out * in);
    if (with_adapter)
        base->ops->matmul(base->ex, false, false, out, in, ad->rank, ad->scale, ad->b, ad->rank,
                          ad->a, in, 1.0f, wp, in);
    const struct mb_ops *ops = base->ops;
    size_t w_bytes = (size_t)(out * in) * sizeof(float), n_bytes = (size_t)out * sizeof(float);
    const float *hw = mb_host_view(ops, base->ex, wp, w_bytes);
    double *sq = mb_xmalloc((size_t)out * sizeof(double));
    for (int64_t o = 0; o < out; o++) {
        double acc = 0;
        for (int64_t i = 0; i < in; i++)
            acc += (double)hw[o * in + i] * hw[o * in + i];
        sq[o] = acc;
    }
    mb_host_view_end(ops, base->ex, wp, (float *)hw, w_bytes, false);
    if (base->row) /* this rank holds a block of every row's columns (host memory) */
        mb_group_sum_f64(base->tp, sq, out);
    float *hn = mb_host_view(ops, base->ex, norms, n_bytes);
    for (int64_t o = 0; o < out; o++)
        hn[o] = (float)sqrt(sq[o]);
    mb_host_view_end(ops, base->ex, norms, hn, n_bytes, true);
    free(sq);
}

/* DoRA's per-row factors g = m / norm of the OUT outputs, on the host (free them). */
static float *dora_gains(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                         int64_t out)
{
    size_t bytes = (size_t)out * sizeof(float);
    float *g = mb_xmalloc(bytes + 1);
    const float *mag = mb_host_view(base->ops, base->ex, ad->mag, bytes);
    const float *norm = mb_host_view(base->ops, base->ex, ad->norm, bytes);
    for (int64_t o = 0; o < out; o++)
        g[o] = mag[o] / norm[o];
    mb_host_view_end(base->ops, base->ex, (float *)ad->mag, (float *)mag, bytes, false);
    mb_host_view_end(base->ops, base->ex, ad->norm, (float *)norm, bytes, false);
    return g;
}

void mb_adapter_forward(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                        float *y, int64_t row0, int64_t rows, const float *x, int64_t n)
{
    int64_t r = ad->rank, out = base->out;
    const float *ax = project_in(ad, base, drop_input(ad, base, x, n), n);
    if (ad->dora && !ad->norm_fixed) /* of the weights as they are now; for the backward */
        mb_adapter_row_norms(ad, base, true, ad->norm);
    base->ops->matmul(base->ex, false, true, rows, out, r, ad->scale, ax + row0 * r, r, ad->b, r,
                      1.0f, y, out);
    if (!ad->dora)
        return;
    size_t bytes = (size_t)(rows * out) * sizeof(float);
    float *g = dora_gains(ad, base, out), *hy = mb_host_view(base->ops, base->ex, y, bytes);
    for (int64_t t = 0; t < rows; t++)
        for (int64_t o = 0; o < out; o++)
            hy[t * out + o] *= g[o];
    mb_host_view_end(base->ops, base->ex, y, hy, bytes, true);
    free(g);
}

/* DoRA: z = x W^T + s ax B^T into the wide scratch (the base's reduction included);
 * gm += sum over rows of dy z / norm; then the scratch becomes dz = g dy. */
static const float *dora_backward(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                                  const float *dy, const float *x, const float *ax, int64_t n)
{
    struct mb_adapter_scratch *s = ad->scratch;
    int64_t out = base->out, in = base->in, r = ad->rank;
    float *z = room(s, &s->wide, &s->cap_wide, n * out);
    base->ops->matmul(base->ex, false, true, n, out, in, 1.0f, x, in, base->w, in, 0.0f, z, out);
    if (base->row)
        mb_dev_sum_f32(base->ops, base->ex, base->tp, z, n * out);
    base->ops->matmul(base->ex, false, true, n, out, r, ad->scale, ax, r, ad->b, r, 1.0f, z, out);
    const struct mb_ops *ops = base->ops;
    size_t bytes = (size_t)(n * out) * sizeof(float), o_bytes = (size_t)out * sizeof(float);
    const float *hdy = mb_host_view(ops, base->ex, dy, bytes);
    float *hz = mb_host_view(ops, base->ex, z, bytes);
    if (ad->gmag) {
        double *acc = mb_xcalloc((size_t)out, sizeof(double));
        for (int64_t t = 0; t < n; t++)
            for (int64_t o = 0; o < out; o++)
                acc[o] += (double)hdy[t * out + o] * hz[t * out + o];
        float *gmag = mb_host_view(ops, base->ex, ad->gmag, o_bytes);
        const float *norm = mb_host_view(ops, base->ex, ad->norm, o_bytes);
        for (int64_t o = 0; o < out; o++)
            gmag[o] += (float)(acc[o] / norm[o]);
        mb_host_view_end(ops, base->ex, ad->norm, (float *)norm, o_bytes, false);
        mb_host_view_end(ops, base->ex, ad->gmag, gmag, o_bytes, true);
        free(acc);
    }
    float *g = dora_gains(ad, base, out);
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < out; o++)
            hz[t * out + o] = hdy[t * out + o] * g[o];
    free(g);
    mb_host_view_end(ops, base->ex, (float *)dy, (float *)hdy, bytes, false);
    mb_host_view_end(ops, base->ex, z, hz, bytes, true);
    return z;
}

const float *mb_adapter_backward(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                                 const float *dy, const float *x, int64_t n)
{
    struct mb_adapter_scratch *s = ad->scratch;
    int64_t r = ad->rank, out = base->out, in = base->in;
    const float *xd = drop_input(ad, base, x, n);
    const float *ax = project_in(ad, base, xd, n);
    const float *dz = ad->dora ? dora_backward(ad, base, dy, x, ax, n) : dy;
    const struct mb_ops *ops = base->ops;
    struct mb_exec *ex = base->ex;
    if (ad->gb)
        ops->matmul(ex, true, false, out, r, n, ad->scale, dz, out, ax, r, 1.0f, ad->gb, r);
    float *dax = room(s, &s->dax, &s->cap_dax, n * r);
    ops->matmul(ex, false, false, n, r, out, ad->scale, dz, out, ad->b, r, 0.0f, dax, r);
    if (ad->ga)
        ops->matmul(ex, true, false, r, in, n, 1.0f, dax, r, xd, in, 1.0f, ad->ga, in);
    return dz;
}

void mb_adapter_backward_dx(const struct mb_adapter *ad, const struct mb_adapter_base *base,
                            float *dx, int64_t n)
{
    struct mb_adapter_scratch *s = ad->scratch;
    int64_t in = base->in;
    if (!ad->dropout) {
        base->ops->matmul(base->ex, false, false, n, in, ad->rank, 1.0f, s->dax, ad->rank, ad->a,
                          in, 1.0f, dx, in);
        return;
    }
    float *t = room(s, &s->xd, &s->cap_xd, n * in); /* d(x) is no longer needed */
    base->ops->matmul(base->ex, false, false, n, in, ad->rank, 1.0f, s->dax, ad->rank, ad->a, in,
                      0.0f, t, in);
    apply_mask(ad, base, in, dx, t, n, true);
}
