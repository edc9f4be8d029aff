/* kern/cpu/xent.c - softmax cross-entropy over a chunk of logit rows, gradient in place.
 *
 * Per row: z (capped: z = cap tanh(z / cap) when softcap > 0), m = max z,
 * lse = m + log(sum exp(z - m)) (sum in double), loss = lse - z[target].
 * Gradient of w * loss * grad_scale: (softmax(z) - onehot(target)) * w * grad_scale, times
 * the cap's derivative 1 - (z / cap)^2. Rows run in parallel; each is independent.
 * A logit of -inf (a masked vocabulary row) gets probability 0 and gradient 0, capped
 * or not.
 */
#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "kern/cpu/internal.h"

MB_CPU_CLONES static float row_max(const float *restrict z, int64_t n)
{
    float m = -INFINITY;

#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; i++)
        m = z[i] > m ? z[i] : m;
    return m;
}

/* Sum of exp(z - m) in float vector lanes per block of 4096, blocks added in double. */
MB_CPU_CLONES static double row_sumexp(const float *restrict z, float m, int64_t n)
{
    double s = 0;

    for (int64_t i0 = 0; i0 < n; i0 += 4096) {
        int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int64_t i = i0; i < i1; i++)
            part += mb_cpu_expf(z[i] - m);
        s += part;
    }
    return s;
}

/* z[i] <- exp(z[i] - lse) * f */
MB_CPU_CLONES static void row_softmax_scaled(float *restrict z, float lse, float f, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        z[i] = mb_cpu_expf(z[i] - lse) * f;
}

/* A masked logit (-inf: a padded vocabulary row, nn/loss.c) stays -inf. */
static float cap(float z, float c)
{
    return z == -INFINITY ? z : c * tanhf(z / c);
}

/* Capped rows go through a scratch copy, so the logits stay untouched when there is no
 * gradient to write. */
static void xent_row(float *z, float *scratch, float *loss, int32_t target, float w,
                     int64_t vocab, float softcap, float grad_scale)
{
    const float *zc = z;

    if (softcap > 0) {
        for (int64_t i = 0; i < vocab; i++)
            scratch[i] = cap(z[i], softcap);
        zc = scratch;
    }
    float m = row_max(zc, vocab);
    float lse = m + (float)log(row_sumexp(zc, m, vocab));
    MB_ASSERT(target < vocab);
    if (loss)
        *loss = target >= 0 ? lse - zc[target] : 0.0f;
    if (grad_scale == 0)
        return;
    float f = target >= 0 ? w * grad_scale : 0.0f;
    if (f == 0) {
        memset(z, 0, (size_t)vocab * sizeof *z);
        return;
    }
    if (softcap > 0) {
        row_softmax_scaled(scratch, lse, f, vocab);
        scratch[target] -= f;
        for (int64_t i = 0; i < vocab; i++) {
            float t = cap(z[i], softcap) / softcap;
            z[i] = z[i] == -INFINITY ? 0.0f : scratch[i] * (1.0f - t * t);
        }
    } else {
        row_softmax_scaled(z, lse, f, vocab);
        z[target] -= f;
    }
}

void mb_cpu_xent(struct mb_exec *ex, float *logits, float *loss, const int32_t *target,
                 const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                 float grad_scale)
{
    mb_cpu_scratch_ready(ex);
#pragma omp parallel if (rows * vocab > MB_CPU_CHUNK)
    {
        float *scratch = softcap > 0 ? mb_cpu_scratch(ex, (size_t)vocab * sizeof *scratch) : NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            xent_row(logits + (size_t)r * vocab, scratch, loss ? loss + r : NULL, target[r],
                     loss_mask ? loss_mask[r] : 1.0f, vocab, softcap, grad_scale);
    }
}

/* The vocabulary-parallel steps (kern/ops.h): the same per-row formulas as xent_row, on
 * a rank's columns, with the max and the sums made global by the caller in between. */
void mb_cpu_xent_max(float *logits, float *max, int64_t rows, int64_t vocab, float softcap)
{
#pragma omp parallel for schedule(static) if (rows * vocab > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        float *z = logits + (size_t)r * vocab;
        for (int64_t i = 0; softcap > 0 && i < vocab; i++)
            z[i] = cap(z[i], softcap);
        max[r] = row_max(z, vocab);
    }
}

/* Column of global id TARGET among this rank's [start, start + vocab), or -1. */
static int64_t local_column(int32_t target, int64_t start, int64_t vocab)
{
    int64_t t = (int64_t)target - start;
    return target >= 0 && t >= 0 && t < vocab ? t : -1;
}

void mb_cpu_xent_sumexp(const float *logits, const float *max, const int32_t *target,
                        int64_t start, double *sumexp, float *ztarget, int64_t rows,
                        int64_t vocab)
{
#pragma omp parallel for schedule(static) if (rows * vocab > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * vocab;
        int64_t t = local_column(target[r], start, vocab);
        sumexp[r] = row_sumexp(z, max[r], vocab);
        ztarget[r] = t >= 0 ? z[t] : 0.0f;
    }
}

/* The gradient of one row of capped logits Z: (softmax - onehot) * f times the cap's
 * derivative 1 - (z / cap)^2, computed from the capped value itself. */
static void finish_row(float *z, float lse, float f, int64_t t, int64_t vocab, float softcap)
{
    if (f == 0) {
        memset(z, 0, (size_t)vocab * sizeof *z);
        return;
    }
    if (softcap > 0) {
        for (int64_t i = 0; i < vocab; i++) {
            float c = z[i] / softcap;
            float g = mb_cpu_expf(z[i] - lse) * f;
            if (i == t)
                g -= f;
            z[i] = z[i] == -INFINITY ? 0.0f : g * (1.0f - c * c);
        }
        return;
    }
    row_softmax_scaled(z, lse, f, vocab);
    if (t >= 0)
        z[t] -= f;
}

void mb_cpu_xent_finish(float *logits, float *loss, const float *max, const double *sumexp,
                        const float *ztarget, const int32_t *target, int64_t start,
                        const float *loss_mask, int64_t rows, int64_t vocab, float softcap,
                        float grad_scale)
{
#pragma omp parallel for schedule(static) if (rows * vocab > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        float lse = max[r] + (float)log(sumexp[r]);
        if (loss)
            loss[r] = target[r] >= 0 ? lse - ztarget[r] : 0.0f;
        if (grad_scale == 0)
            continue;
        float w = loss_mask ? loss_mask[r] : 1.0f;
        float f = target[r] >= 0 ? w * grad_scale : 0.0f;
        finish_row(logits + (size_t)r * vocab, lse, f, local_column(target[r], start, vocab),
                   vocab, softcap);
    }
}
