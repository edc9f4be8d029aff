/* kern/cpu/act.c - SwiGLU, GeGLU and GELU (tanh approximation) forward and backward.
 *
 * gate_up rows are [gate | up] (the fused linear_fc1 output); y = act(gate) * up.
 * GELU-tanh is PyTorch's approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 *
 * The bf16 forms (act_fwd_bf16, act_bwd_bf16) run the same row kernels on a row widened
 * into the thread's scratch and round the row they produce: the same bits as the fp32 op
 * between two converts, with only the bf16 tensors in memory.
 */
#include "core/defs.h"
#include "kern/cpu/bf16.h"
#include "kern/cpu/internal.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* mb_cpu_expf stops at e^88: below SILU_LOW, g / (1 + e^-g) would be g e^-88 (-0.6 for
 * g = -1e38) where silu and its derivative are below 1e-36 in size: -0 there, as PyTorch
 * gives once e^-g overflows. */
#define SILU_LOW -88.0f

static inline float silu(float g)
{
    return g < SILU_LOW ? -0.0f : g / (1.0f + mb_cpu_expf(-g));
}

/* d silu / dg = sig (1 + g (1 - sig)) */
static inline float silu_grad(float g)
{
    float sig = 1.0f / (1.0f + mb_cpu_expf(-g));
    return g < SILU_LOW ? -0.0f : sig * (1.0f + g * (1.0f - sig));
}

/* With u = sqrt(2/pi) (x + 0.044715 x^3), e = e^(2u) and d = 1 / (1 + e):
 * 1 + tanh u = 2 e d and 1 - tanh^2 u = 4 e d^2, so
 *   gelu(x) = x e d,   gelu'(x) = e d (1 + 2 x d sqrt(2/pi) (1 + 3 * 0.044715 x^2)),
 * both free of cancellation and vectorisable (no tanhf call). Once 2u passes GELU_BIG
 * (x > 9.7), x e overflows (inf / inf); there gelu(x) = x (1 + e^-2u)^-1 and gelu'(x) =
 * 1 - O(x^3 e^-2u) are x and 1 to the last bit (e^-80 = 2e-35), so a select returns those.
 * For x < -16, e is 0 and x^3 overflows (0 * inf): the derivative takes x clamped there.
 * Elsewhere the operations are the original ones (same bits). */
#define GELU_BIG 80.0f

static inline float gelu(float x)
{
    float a = 2.0f * GELU_K * (x + GELU_A * x * x * x);
    float e = mb_cpu_expf(a);
    return a < GELU_BIG ? x * e / (1.0f + e) : x;
}

static inline float gelu_grad(float x)
{
    float a = 2.0f * GELU_K * (x + GELU_A * x * x * x);
    float e = mb_cpu_expf(a);
    float d = 1.0f / (1.0f + e);
    float xc = x < -16.0f ? -16.0f : x;
    return a < GELU_BIG ? e * d * (1.0f + 2.0f * xc * d * GELU_K * (1.0f + 3.0f * GELU_A * xc * xc))
                        : 1.0f;
}

MB_CPU_CLONES static void swiglu_fwd_row(float *restrict y, const float *restrict gu, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = silu(gu[i]) * gu[n + i];
}

MB_CPU_CLONES static void swiglu_bwd_row(float *restrict dgu, const float *restrict dy,
                                         const float *restrict gu, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = gu[i], u = gu[n + i];
        dgu[i] = dy[i] * u * silu_grad(g);
        dgu[n + i] = dy[i] * silu(g);
    }
}

MB_CPU_CLONES static void geglu_fwd_row(float *restrict y, const float *restrict gu, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = gelu(gu[i]) * gu[n + i];
}

MB_CPU_CLONES static void geglu_bwd_row(float *restrict dgu, const float *restrict dy,
                                        const float *restrict gu, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = gu[i], u = gu[n + i];
        dgu[i] = dy[i] * u * gelu_grad(g);
        dgu[n + i] = dy[i] * gelu(g);
    }
}

MB_CPU_CLONES static void gelu_fwd_k(float *restrict y, const float *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = gelu(x[i]);
}

MB_CPU_CLONES static void gelu_bwd_k(float *restrict dx, const float *restrict dy,
                                     const float *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dx[i] = dy[i] * gelu_grad(x[i]);
}

void mb_cpu_swiglu_fwd(float *y, const float *gate_up, int64_t rows, int64_t inner)
{
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        swiglu_fwd_row(y + (size_t)r * inner, gate_up + (size_t)r * 2 * inner, inner);
}

void mb_cpu_swiglu_bwd(float *dgate_up, const float *dy, const float *gate_up, int64_t rows,
                       int64_t inner)
{
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        swiglu_bwd_row(dgate_up + (size_t)r * 2 * inner, dy + (size_t)r * inner,
                       gate_up + (size_t)r * 2 * inner, inner);
}

void mb_cpu_geglu_fwd(float *y, const float *gate_up, int64_t rows, int64_t inner)
{
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        geglu_fwd_row(y + (size_t)r * inner, gate_up + (size_t)r * 2 * inner, inner);
}

void mb_cpu_geglu_bwd(float *dgate_up, const float *dy, const float *gate_up, int64_t rows,
                      int64_t inner)
{
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++)
        geglu_bwd_row(dgate_up + (size_t)r * 2 * inner, dy + (size_t)r * inner,
                      gate_up + (size_t)r * 2 * inner, inner);
}

void mb_cpu_gelu_fwd(float *y, const float *x, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        gelu_fwd_k(y + i0, x + i0, n - i0 < MB_CPU_CHUNK ? n - i0 : MB_CPU_CHUNK);
    }
}

void mb_cpu_gelu_bwd(float *dx, const float *dy, const float *x, int64_t n)
{
    int64_t nchunk = MB_CEIL_DIV(n, MB_CPU_CHUNK);

#pragma omp parallel for schedule(static) if (nchunk > 1)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t i0 = c * MB_CPU_CHUNK;
        gelu_bwd_k(dx + i0, dy + i0, x + i0, n - i0 < MB_CPU_CHUNK ? n - i0 : MB_CPU_CHUNK);
    }
}

static void act_fwd_row(enum mb_act_kind kind, float *y, const float *x, int64_t inner)
{
    switch (kind) {
    case MB_ACT_SWIGLU: swiglu_fwd_row(y, x, inner); break;
    case MB_ACT_GEGLU: geglu_fwd_row(y, x, inner); break;
    case MB_ACT_GELU: gelu_fwd_k(y, x, inner); break;
    }
}

static void act_bwd_row(enum mb_act_kind kind, float *dx, const float *dy, const float *x,
                        int64_t inner)
{
    switch (kind) {
    case MB_ACT_SWIGLU: swiglu_bwd_row(dx, dy, x, inner); break;
    case MB_ACT_GEGLU: geglu_bwd_row(dx, dy, x, inner); break;
    case MB_ACT_GELU: gelu_bwd_k(dx, dy, x, inner); break;
    }
}

void mb_cpu_act_fwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *y,
                         const uint16_t *x, int64_t rows, int64_t inner)
{
    int64_t xc = mb_act_x_cols(kind, inner);

    mb_cpu_scratch_ready(ex);
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        float *xw = mb_cpu_scratch(ex, (size_t)(xc + inner) * sizeof *xw), *yw = xw + xc;
        mb_cpu_bf16_widen_span(xw, x + r * xc, xc);
        act_fwd_row(kind, yw, xw, inner);
        mb_cpu_bf16_round_span(y + r * inner, yw, inner);
    }
}

void mb_cpu_act_bwd_bf16(struct mb_exec *ex, enum mb_act_kind kind, uint16_t *dx,
                         const float *dy, const uint16_t *x, int64_t rows, int64_t inner)
{
    int64_t xc = mb_act_x_cols(kind, inner);

    mb_cpu_scratch_ready(ex);
#pragma omp parallel for schedule(static) if (rows * inner > MB_CPU_CHUNK)
    for (int64_t r = 0; r < rows; r++) {
        float *xw = mb_cpu_scratch(ex, (size_t)2 * xc * sizeof *xw), *dxw = xw + xc;
        mb_cpu_bf16_widen_span(xw, x + r * xc, xc);
        act_bwd_row(kind, dxw, dy + r * inner, xw, inner);
        mb_cpu_bf16_round_span(dx + r * xc, dxw, xc);
    }
}
