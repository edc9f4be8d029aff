/* tests/unit/kern_cpu_magnitude.c - every kernel of the CPU op table at real-model and
 * extreme magnitudes, against PyTorch's own ops (tests/oracle/kern_torch.py).
 *
 * Each case writes its float32 inputs as .npy (magnitudes from 1e-4 to 1e4, plus values
 * near the float limits where the op is defined: denormals, 1e20-1e38), runs the mb kernel
 * and keeps its outputs. One Python process then evaluates PyTorch's op on the same
 * inputs in float32 (what a PyTorch user gets) and float64 (the exact answer to those
 * inputs), backward by autograd. For every output the test requires:
 *   - no inf or NaN where PyTorch's float32 op has none;
 *   - |mb - torch64| <= rtol |torch64| + atol_i, where the stated rtol is a few ulp and
 *     atol_i is the error bound the inputs imply (a few ulp of the sum of magnitudes
 *     that make up the element, and for exp-based ops the condition of exp: eps times
 *     the largest score or logit, or the soft-cap). Elements whose exact value is
 *     outside the float range are left to the first rule.
 * The worst ratio to that tolerance is printed, with PyTorch float32's own for scale.
 * Covered: matmul, add, scale, sumsq, add_bias, bias_grad, rmsnorm and layernorm
 * fwd/bwd, embedding fwd/bwd, rope fwd/bwd (and nn/rope.c's table at position 131071),
 * attention fwd/bwd and attention_kv (soft-cap, window, GQA), swiglu, geglu and gelu
 * fwd/bwd, xent (soft-cap), adamw. Not here: zero, copy, to_host, from_host, qkv_split
 * and qkv_merge move bits without arithmetic (kern_cpu_basic checks them).
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "io/npy.h"
#include "kern/ops.h"
#include "nn/config.h"
#include "nn/rope.h"
#include "tests/lib/oracle.h"
#include "tests/lib/tap.h"

#define EPS ((double)FLT_EPSILON)
#define MAX_OUT 5

static const struct mb_ops *ops;
static struct mb_exec *ex;
static FILE *manifest;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* ------------------------------------------------------------------ inputs */

static double unif(void) /* [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static float sym(double amp) /* uniform in (-amp, amp) */
{
    return (float)((2 * unif() - 1) * amp);
}

/* Random sign, magnitude log-uniform in [10^lo, 10^hi]. */
static float logu(double lo, double hi)
{
    float m = (float)pow(10.0, lo + (hi - lo) * unif());
    return unif() < 0.5 ? -m : m;
}

static float *fbuf(int64_t n)
{
    float *x = calloc((size_t)n, sizeof *x);
    if (!x)
        abort();
    return x;
}

static double *dbuf(int64_t n)
{
    double *x = calloc((size_t)n, sizeof *x);
    if (!x)
        abort();
    return x;
}

/* ------------------------------------------------------------------ cases */

/* What is compared for one output of a case. */
struct out {
    const char *what;
    int64_t n;
    double *mb;     /* mb's result, widened */
    double rtol;
    double atol;    /* used where atolv is NULL */
    double *atolv;  /* [n] per-element bound, or NULL */
    double normwise; /* plus normwise * max |torch64| (bounds relative to the largest) */
};

struct kcase {
    char name[40];
    char title[120];
    int nout;
    struct out out[MAX_OUT];
};

static struct kcase cases[64];
static int ncases;

static struct kcase *new_case(const char *op, const char *params, const char *title)
{
    struct kcase *c = &cases[ncases];
    snprintf(c->name, sizeof c->name, "c%02d_%s", ncases, op);
    snprintf(c->title, sizeof c->title, "%s", title);
    fprintf(manifest, "%s %s %s\n", c->name, op, params);
    ncases++;
    return c;
}

static void input(const struct kcase *c, int k, enum mb_npy_dtype dt, int ndim,
                  const int64_t *shape, const void *data)
{
    char path[96];
    snprintf(path, sizeof path, "%s.in.%d.npy", c->name, k);
    if (mb_npy_write(path, dt, ndim, shape, data) < 0)
        abort();
}

static void input_f(const struct kcase *c, int k, int ndim, const int64_t *shape,
                    const float *data)
{
    input(c, k, MB_NPY_F4, ndim, shape, data);
}

/* Adds output WHAT of N values; returns it for the per-element bounds. */
static struct out *output(struct kcase *c, const char *what, const float *mb, int64_t n,
                          double rtol, double atol)
{
    struct out *o = &c->out[c->nout++];
    o->what = what;
    o->n = n;
    o->mb = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        o->mb[i] = mb[i];
    o->rtol = rtol;
    o->atol = atol;
    o->atolv = NULL;
    o->normwise = 0;
    return o;
}

static double *load_f8(const char *name, const char *tag, int k, int64_t n)
{
    char path[96];
    struct mb_npy a;
    snprintf(path, sizeof path, "%s.%s.%d.npy", name, tag, k);
    if (mb_npy_read(path, &a) < 0 || a.dtype != MB_NPY_F8 || a.count != n) {
        tap_diag("%s: missing or not %lld float64 values", path, (long long)n);
        if (a.data)
            mb_npy_free(&a);
        return NULL;
    }
    double *d = dbuf(n);
    memcpy(d, a.data, (size_t)n * sizeof *d);
    mb_npy_free(&a);
    return d;
}

static double tol_at(const struct out *o, int64_t i, double want, double big)
{
    return o->rtol * fabs(want) + (o->atolv ? o->atolv[i] : o->atol) + o->normwise * big;
}

static void check_out(const struct kcase *c, int k)
{
    const struct out *o = &c->out[k];
    double *t32 = load_f8(c->name, "t32", k, o->n), *t64 = load_f8(c->name, "t64", k, o->n);
    if (!t32 || !t64) {
        ok(0, "%s: %s: torch output read", c->title, o->what);
        free(t32);
        free(t64);
        return;
    }
    int64_t bad_finite = 0, worst_i = 0;
    double worst = 0, worst32 = 0, big = 0;
    for (int64_t i = 0; i < o->n; i++)
        if (fabs(t64[i]) <= FLT_MAX)
            big = fmax(big, fabs(t64[i]));
    for (int64_t i = 0; i < o->n; i++) {
        if (isfinite(t32[i]) && !isfinite(o->mb[i]))
            bad_finite++;
        if (!isfinite(t64[i]) || fabs(t64[i]) > FLT_MAX)
            continue;
        double tol = tol_at(o, i, t64[i], big);
        double diff = fabs(o->mb[i] - t64[i]), r = diff == 0 ? 0 : diff / tol;
        if (!(r <= worst)) { /* NaN counts as worst */
            worst = isnan(r) ? INFINITY : r;
            worst_i = i;
        }
        if (isfinite(t32[i]) && t32[i] != t64[i])
            worst32 = fmax(worst32, fabs(t32[i] - t64[i]) / tol);
    }
    ok(bad_finite == 0 && worst <= 1,
       "%s: %s: %lld non-finite where torch is finite; within rtol %.2g + atol of torch fp64 "
       "(worst %.3g of tol; torch fp32 %.3g)",
       c->title, o->what, (long long)bad_finite, o->rtol, worst, worst32);
    if (worst > 1)
        tap_diag("  element %lld: mb %.9g, torch64 %.9g, torch32 %.9g, tol %.3g",
                 (long long)worst_i, o->mb[worst_i], t64[worst_i], t32[worst_i],
                 tol_at(o, worst_i, t64[worst_i], big));
    free(t32);
    free(t64);
}

/* ------------------------------------------------------------------ activations */

/* Pre-activations crossing the old overflow (about 10), up to the float limits. */
static const float act_special[] = {
    0.0f, -0.0f, 1e-40f, -1e-40f, 1e-30f, 5.0f, -5.0f, 9.5f, 9.9f, 10.0f, 10.5f, 11.0f, 12.0f,
    15.0f, 20.0f, 50.0f, 88.0f, 88.8f, 100.0f, -9.9f, -10.5f, -11.0f, -20.0f, -88.8f, -100.0f,
    1e4f, -1e4f, 1e12f, -1e12f, 1e13f, -1e13f, 1e20f, -1e20f, 1e30f, -1e30f, 3e38f, -3e38f,
    FLT_MAX, -FLT_MAX,
};
#define N_SPECIAL ((int64_t)(sizeof act_special / sizeof act_special[0]))

static void fill_act(float *x, int64_t n, double hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = i < N_SPECIAL ? act_special[i] : logu(-4, hi);
}

/* |gelu'(x)| is a sum of two terms that cancel near its zero (x = -0.75): the bound for a
 * gradient element is a few ulp of the sum of their magnitudes. */
static double gelu_grad_terms(double x)
{
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), th = tanh(u);
    if (fabs(x) > 1e10)
        return 1;
    return 0.5 * (1 + th) + fabs(0.5 * x * (1 - th * th) * 0.7978845608028654 *
                                 (1 + 3 * 0.044715 * x * x));
}

static double silu_grad_terms(double x)
{
    double sg = 1 / (1 + exp(-x));
    return sg * (1 + fabs(x) * (1 - sg));
}

static void case_gelu(void)
{
    int64_t n = 4000, shape[1] = {n};
    float *x = fbuf(n), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    fill_act(x, n, 4);
    for (int64_t i = 0; i < n; i++)
        dy[i] = sym(2);
    struct kcase *c = new_case("gelu", "", "gelu (tanh) fwd/bwd, |x| 1e-4..1e4 and to FLT_MAX");
    input_f(c, 0, 1, shape, x);
    input_f(c, 1, 1, shape, dy);
    ops->gelu_fwd(ex, y, x, n);
    ops->gelu_bwd(ex, dx, dy, x, n);
    /* rtol: exp's condition, |2u| eps with |2u| <= 87.3 where e^(2u) is not flushed;
     * atol: the flushed tail (|y| < 1e-37) */
    output(c, "y", y, n, 8e-6, 1e-35);
    struct out *o = output(c, "dx", dx, n, 8e-6, 0);
    o->atolv = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        o->atolv[i] = 8 * EPS * fabs(dy[i]) * gelu_grad_terms(x[i]) + 1e-35;
    free(x), free(dy), free(y), free(dx);
}

/* Away from the far negative tail (where e^(2u) amplifies the rounding of u), a few ulp. */
static void case_gelu_core(void)
{
    int64_t n = 4000, shape[1] = {n};
    float *x = fbuf(n), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = i % 2 ? sym(3) : fabsf(logu(-4, 4));
        dy[i] = 1.0f;
    }
    struct kcase *c = new_case("gelu", "", "gelu (tanh) fwd/bwd, x in [-3, 1e4]");
    input_f(c, 0, 1, shape, x);
    input_f(c, 1, 1, shape, dy);
    ops->gelu_fwd(ex, y, x, n);
    ops->gelu_bwd(ex, dx, dy, x, n);
    output(c, "y", y, n, 8 * EPS, 0);
    struct out *o = output(c, "dx", dx, n, 8 * EPS, 0);
    o->atolv = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        o->atolv[i] = 8 * EPS * gelu_grad_terms(x[i]);
    free(x), free(dy), free(y), free(dx);
}

static void case_gated(const char *act, bool geglu)
{
    int64_t rows = 3, inner = 700, shape[2] = {rows, 2 * inner}, yshape[2] = {rows, inner};
    float *gu = fbuf(rows * 2 * inner), *dy = fbuf(rows * inner);
    float *y = fbuf(rows * inner), *dgu = fbuf(rows * 2 * inner);
    for (int64_t r = 0; r < rows; r++) {
        fill_act(gu + r * 2 * inner, inner, 3);
        for (int64_t i = 0; i < inner; i++) {
            gu[r * 2 * inner + i] = fminf(fmaxf(gu[r * 2 * inner + i], -1e30f), 1e30f);
            gu[r * 2 * inner + inner + i] = logu(-2, 2);
            dy[r * inner + i] = sym(2);
        }
    }
    char params[40], title[120];
    snprintf(params, sizeof params, "act=%s", act);
    snprintf(title, sizeof title, "%s fwd/bwd, gate |x| 1e-4..1e3 and to 1e30", act);
    struct kcase *c = new_case("gated", params, title);
    input_f(c, 0, 2, shape, gu);
    input_f(c, 1, 2, yshape, dy);
    if (geglu) {
        ops->geglu_fwd(ex, y, gu, rows, inner);
        ops->geglu_bwd(ex, dgu, dy, gu, rows, inner);
    } else {
        ops->swiglu_fwd(ex, y, gu, rows, inner);
        ops->swiglu_bwd(ex, dgu, dy, gu, rows, inner);
    }
    output(c, "y", y, rows * inner, 8e-6, 1e-34);
    struct out *o = output(c, "dgate_up", dgu, rows * 2 * inner, 8e-6, 0);
    o->atolv = dbuf(rows * 2 * inner);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < inner; i++) {
            double g = gu[r * 2 * inner + i], u = gu[r * 2 * inner + inner + i];
            double terms = geglu ? gelu_grad_terms(g) : silu_grad_terms(g);
            o->atolv[r * 2 * inner + i] = 8 * EPS * fabs(dy[r * inner + i] * u) * terms + 1e-34;
            o->atolv[r * 2 * inner + inner + i] = 1e-34;
        }
    free(gu), free(dy), free(y), free(dgu);
}

/* ------------------------------------------------------------------ norms */

/* Row scales: eps-dominated, ordinary, large, x^2 past FLT_MAX, near FLT_MAX, denormal. */
static const double row_scale[] = {1e-30, 1e-3, 1.0, 1e4, 1e18, 1e25, 1e36, 1e38, 1e-40};
#define NROWS ((int64_t)(sizeof row_scale / sizeof row_scale[0]))

static void case_rmsnorm(bool zc)
{
    int64_t dim = 257, n = NROWS * dim, shape[2] = {NROWS, dim}, wshape[1] = {dim};
    float *x = fbuf(n), *w = fbuf(dim), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    float *dw = fbuf(dim), *rstd = fbuf(NROWS);
    float eps = 1e-6f;
    for (int64_t r = 0; r < NROWS; r++)
        for (int64_t i = 0; i < dim; i++) {
            x[r * dim + i] = (float)(row_scale[r] * (2 * unif() - 1));
            dy[r * dim + i] = sym(1);
        }
    for (int64_t i = 0; i < dim; i++)
        w[i] = zc ? sym(0.5) : 1.0f + sym(0.5);
    struct kcase *c = new_case("rmsnorm", zc ? "eps=1e-6 zc=1" : "eps=1e-6 zc=0",
                               zc ? "rmsnorm (zero-centred gamma), rows 1e-40..1e38"
                                  : "rmsnorm, rows 1e-40..1e38");
    input_f(c, 0, 2, shape, x);
    input_f(c, 1, 1, wshape, w);
    input_f(c, 2, 2, shape, dy);
    ops->rmsnorm_fwd(ex, y, rstd, x, w, NROWS, dim, eps, zc);
    ops->rmsnorm_bwd(ex, dx, dw, dy, x, w, rstd, NROWS, dim, zc);
    output(c, "y", y, n, 1e-5, 0);
    /* dx = r w' dy - x r^3 mean(dy w' x): bound from the two terms' magnitudes; dw: from the
     * sum over rows of |dy x r| */
    struct out *odx = output(c, "dx", dx, n, 1e-5, 0);
    struct out *odw = output(c, "dw", dw, dim, 1e-5, 0);
    odx->atolv = dbuf(n);
    odw->atolv = dbuf(dim);
    for (int64_t r = 0; r < NROWS; r++) {
        double ss = 0, dot = 0;
        for (int64_t i = 0; i < dim; i++)
            ss += (double)x[r * dim + i] * x[r * dim + i];
        double rr = 1 / sqrt(ss / dim + eps);
        for (int64_t i = 0; i < dim; i++)
            dot += fabs((double)dy[r * dim + i] * (w[i] + zc) * x[r * dim + i]);
        for (int64_t i = 0; i < dim; i++) {
            double xi = x[r * dim + i];
            odx->atolv[r * dim + i] = 16 * EPS * (rr * fabs(dy[r * dim + i] * (w[i] + zc)) +
                                                  fabs(xi) * rr * rr * rr * dot / dim) + 1e-37;
            odw->atolv[i] += 16 * EPS * fabs(dy[r * dim + i] * xi * rr);
        }
    }
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(rstd);
}

static void case_layernorm(void)
{
    int64_t rows = NROWS + 1, dim = 257, n = rows * dim, shape[2] = {rows, dim};
    int64_t wshape[1] = {dim};
    float *x = fbuf(n), *w = fbuf(dim), *b = fbuf(dim), *dy = fbuf(n), *y = fbuf(n);
    float *dx = fbuf(n), *dw = fbuf(dim), *db = fbuf(dim), *mean = fbuf(rows), *rstd = fbuf(rows);
    float eps = 1e-5f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < dim; i++) {
            /* the last row: a large mean (1e4) with a small spread (1e-1) */
            x[r * dim + i] = r < NROWS ? (float)(row_scale[r] * (2 * unif() - 0.7))
                                       : (float)(1e4 + 0.1 * (2 * unif() - 1));
            dy[r * dim + i] = sym(1);
        }
    for (int64_t i = 0; i < dim; i++) {
        w[i] = 1.0f + sym(0.5);
        b[i] = sym(0.5);
    }
    struct kcase *c = new_case("layernorm", "eps=1e-5",
                               "layernorm, rows 1e-40..1e38 and mean 1e4 +- 0.1");
    input_f(c, 0, 2, shape, x);
    input_f(c, 1, 1, wshape, w);
    input_f(c, 2, 1, wshape, b);
    input_f(c, 3, 2, shape, dy);
    ops->layernorm_fwd(ex, y, mean, rstd, x, w, b, rows, dim, eps);
    ops->layernorm_bwd(ex, dx, dw, db, dy, x, w, mean, rstd, rows, dim);
    struct out *oy = output(c, "y", y, n, 1e-5, 0);
    struct out *odx = output(c, "dx", dx, n, 1e-5, 0);
    struct out *odw = output(c, "dw", dw, dim, 1e-5, 0);
    struct out *odb = output(c, "db", db, dim, 1e-5, 0);
    oy->atolv = dbuf(n), odx->atolv = dbuf(n), odw->atolv = dbuf(dim), odb->atolv = dbuf(dim);
    /* the mean is known to eps |mean| in float: (x - mean) r carries that, relative to the
     * spread; dx, dw likewise */
    for (int64_t r = 0; r < rows; r++) {
        double s = 0, ss = 0, sg = 0;
        for (int64_t i = 0; i < dim; i++)
            s += x[r * dim + i];
        double mu = s / dim;
        for (int64_t i = 0; i < dim; i++)
            ss += ((double)x[r * dim + i] - mu) * ((double)x[r * dim + i] - mu);
        double rr = 1 / sqrt(ss / dim + eps);
        for (int64_t i = 0; i < dim; i++)
            sg += fabs((double)dy[r * dim + i] * w[i]);
        for (int64_t i = 0; i < dim; i++) {
            size_t at = (size_t)(r * dim + i);
            double xh = (fabs((double)x[at]) + fabs(mu)) * rr;
            oy->atolv[at] = 8 * EPS * (xh * fabs(w[i]) + fabs(b[i])) + 1e-37;
            odx->atolv[at] = 16 * EPS * rr * (fabs(dy[at] * w[i]) + sg / dim * (1 + xh * xh)) +
                             1e-37;
            odw->atolv[i] += 16 * EPS * fabs(dy[at]) * xh;
            odb->atolv[i] += 16 * EPS * fabs(dy[at]);
        }
    }
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(mean),
        free(rstd);
}

/* ------------------------------------------------------------------ rope */

static struct mb_model_config rope_config(int64_t maxpos, int64_t dim)
{
    struct mb_model_config mc;
    memset(&mc, 0, sizeof mc);
    mc.kv_channels = dim;
    mc.rotary_percent = 1.0;
    mc.max_position_embeddings = maxpos;
    mc.rotary_base = 500000.0;
    mc.rope_scaling_type = MB_ROPE_SCALING_LLAMA3;
    mc.rope_scaling_factor = 8.0;
    mc.rope_scaling_low_freq_factor = 1.0;
    mc.rope_scaling_high_freq_factor = 4.0;
    mc.rope_scaling_original_max_position_embeddings = 8192;
    return mc;
}

/* mb's table (angles in double) against LlamaRotaryEmbedding's float32 table and the same
 * formulas in float64, at positions up to 131071: mb within 1 ulp of 1 of the exact
 * values; transformers' own float32 table is printed for scale (its angles are rounded
 * products pos * inv_freq in float32). */
static void case_rope_table(const float *table, int64_t maxpos, int64_t dim)
{
    static const int32_t pos[] = {0, 1, 2, 4095, 8191, 8192, 32768, 65535, 100000, 131071};
    int64_t np = sizeof pos / sizeof pos[0], half = dim / 2, shape[1] = {np};
    float *got = fbuf(np * half * 2);
    char params[160];
    snprintf(params, sizeof params,
             "dim=%lld maxpos=%lld theta=500000 factor=8 low=1 high=4 orig=8192", (long long)dim,
             (long long)maxpos);
    struct kcase *c = new_case("rope_table", params,
                               "rope table, theta 5e5, llama3 x8, positions to 131071");
    input(c, 0, MB_NPY_I4, 1, shape, pos);
    for (int64_t p = 0; p < np; p++)
        memcpy(got + p * half * 2, table + (size_t)pos[p] * half * 2,
               (size_t)half * 2 * sizeof *got);
    output(c, "cos/sin", got, np * half * 2, 0, EPS);
    free(got);
}

static void case_rope(void)
{
    int64_t maxpos = 131072, d = 32, B = 2, H = 3, T = 5, rot = 32;
    int64_t n = B * H * T * d, shape[4] = {B, H, T, d};
    struct mb_model_config mc = rope_config(maxpos, d);
    float *table = fbuf(maxpos * d);
    mb_rope_table(table, &mc, false);
    case_rope_table(table, maxpos, d);

    static const int32_t pos[] = {0, 1, 8191, 65536, 131071, 131070, 100000, 7, 2, 131071};
    float *x = fbuf(n), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = logu(-4, 4);
        dy[i] = logu(-4, 4);
    }
    for (int pass = 0; pass < 2; pass++) {
        int64_t r = pass ? 16 : rot; /* full and partial rotary (the rest passes through) */
        char params[40];
        snprintf(params, sizeof params, "rot=%lld", (long long)r);
        struct kcase *c = new_case("rope", params, pass ? "rope fwd/bwd, partial (16 of 32), "
                                                          "positions to 131071, |x| to 1e4"
                                                        : "rope fwd/bwd, positions to 131071, "
                                                          "|x| to 1e4");
        float *tab = table;
        struct mb_model_config pc = rope_config(maxpos, d);
        if (pass) {
            pc.rotary_percent = 0.5;
            tab = fbuf(maxpos * r);
            mb_rope_table(tab, &pc, false);
        }
        int64_t tshape[3] = {maxpos, r / 2, 2}, pshape[1] = {B * T};
        input_f(c, 0, 4, shape, x);
        input_f(c, 1, 3, tshape, tab);
        input(c, 2, MB_NPY_I4, 1, pshape, pos);
        input_f(c, 3, 4, shape, dy);
        memcpy(y, x, (size_t)n * sizeof *y);
        memcpy(dx, dy, (size_t)n * sizeof *dx);
        ops->rope_fwd(ex, y, tab, pos, B, H, T, d, r);
        ops->rope_bwd(ex, dx, tab, pos, B, H, T, d, r);
        struct out *oy = output(c, "y", y, n, 2 * EPS, 0);
        struct out *odx = output(c, "dx", dx, n, 2 * EPS, 0);
        oy->atolv = dbuf(n), odx->atolv = dbuf(n);
        for (int64_t i = 0; i < n; i++) { /* a c - b s: a few ulp of |a| + |b| */
            int64_t j = i % d, h = r / 2, mate = j < h ? i + h : i - h;
            bool rotated = j < r;
            oy->atolv[i] = rotated ? 4 * EPS * (fabs(x[i]) + fabs(x[mate])) : 0;
            odx->atolv[i] = rotated ? 4 * EPS * (fabs(dy[i]) + fabs(dy[mate])) : 0;
        }
        if (pass)
            free(tab);
    }
    free(table), free(x), free(dy), free(y), free(dx);
}

/* ------------------------------------------------------------------ attention */

struct attn_case {
    const char *title;
    double qk_amp;   /* |q|, |k| log-uniform up to this */
    double v_amp;
    float cap;
    int64_t window;
};

static double max_abs(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* The largest |score| a query can see (sum_c |q_c k_c| * scale, over every key). */
static double score_bound(const float *q, const float *k, const struct mb_attn_shape *s)
{
    int64_t T = s->seq, d = s->head_dim, g = s->heads / s->kv_heads;
    double m = 0;
    for (int64_t bh = 0; bh < s->batch * s->heads; bh++) {
        const float *K = k + (size_t)(bh / s->heads * s->kv_heads + bh % s->heads / g) * T * d;
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j <= t; j++) {
                double a = 0;
                for (int64_t c = 0; c < d; c++)
                    a += fabs((double)q[((size_t)bh * T + t) * d + c] * K[j * d + c]);
                m = fmax(m, a * s->scale);
            }
    }
    return m;
}

static void case_attention(const struct attn_case *ac)
{
    struct mb_attn_shape s = {.batch = 1, .seq = 70, .heads = 4, .kv_heads = 2, .head_dim = 16,
                              .scale = 0.25f, .softcap = ac->cap, .window = ac->window};
    int64_t nq = s.batch * s.heads * s.seq * s.head_dim, nk = nq / 2;
    int64_t qshape[4] = {1, 4, 70, 16}, kshape[4] = {1, 2, 70, 16}, oshape[4] = {1, 70, 4, 16};
    float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *dout = fbuf(nq), *out = fbuf(nq);
    float *lse = fbuf(s.batch * s.heads * s.seq), *dq = fbuf(nq), *dk = fbuf(nk), *dv = fbuf(nk);
    double lo = log10(ac->qk_amp) - 3;
    for (int64_t i = 0; i < nq; i++) {
        q[i] = logu(lo, log10(ac->qk_amp));
        dout[i] = sym(1);
    }
    for (int64_t i = 0; i < nk; i++) {
        k[i] = logu(lo, log10(ac->qk_amp));
        v[i] = sym(ac->v_amp);
    }
    char params[80];
    snprintf(params, sizeof params, "scale=%.9g cap=%.9g window=%lld", s.scale, s.softcap,
             (long long)s.window);
    struct kcase *c = new_case("attention", params, ac->title);
    input_f(c, 0, 4, qshape, q);
    input_f(c, 1, 4, kshape, k);
    input_f(c, 2, 4, kshape, v);
    input_f(c, 3, 4, oshape, dout);
    ops->attention_fwd(ex, out, lse, q, k, v, &s);
    ops->attention_bwd(ex, dq, dk, dv, dout, q, k, v, out, lse, &s);
    /* exp's condition: a score known to eps S (S the largest |score|, or the cap, which
     * bounds the error after tanh) moves a probability by eps S relative; each output is a
     * mix of values (|v|); the gradients are held normwise (to that times their largest) */
    double S = s.softcap > 0 ? s.softcap : score_bound(q, k, &s);
    double cond = 16 * EPS * (1 + S), V = max_abs(v, nk);
    output(c, "out", out, nq, 1e-5, cond * V);
    output(c, "lse", lse, s.batch * s.heads * s.seq, 1e-6, cond);
    /* plus, for dq and dk, the rounding of dP - D (dot products of d terms |dout| |v|)
     * times |k| or |q| and the scale: the whole gradient where softmax is one-hot */
    double dpd = 16 * EPS * s.head_dim * max_abs(dout, nq) * V * s.scale;
    output(c, "dq", dq, nq, 1e-5, dpd * max_abs(k, nk))->normwise = cond;
    output(c, "dk", dk, nk, 1e-5, dpd * max_abs(q, nq) * s.seq)->normwise = cond;
    output(c, "dv", dv, nk, 1e-5, 0)->normwise = cond;
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
}

static void case_attention_kv(const struct attn_case *ac)
{
    int64_t tmax = 80, p0 = 67, Tq = 3;
    struct mb_attn_shape s = {.batch = 1, .seq = Tq, .heads = 4, .kv_heads = 2, .head_dim = 16,
                              .scale = 0.25f, .softcap = ac->cap, .window = ac->window};
    int64_t nq = 4 * Tq * 16, nk = 2 * tmax * 16;
    int64_t qshape[4] = {1, 4, Tq, 16}, kshape[4] = {1, 2, tmax, 16};
    float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *out = fbuf(nq);
    double lo = log10(ac->qk_amp) - 3;
    for (int64_t i = 0; i < nq; i++)
        q[i] = logu(lo, log10(ac->qk_amp));
    for (int64_t i = 0; i < nk; i++) {
        k[i] = logu(lo, log10(ac->qk_amp));
        v[i] = sym(ac->v_amp);
    }
    char params[100], title[140];
    snprintf(params, sizeof params, "scale=%.9g cap=%.9g window=%lld p0=%lld", s.scale,
             s.softcap, (long long)s.window, (long long)p0);
    snprintf(title, sizeof title, "attention_kv: %s", ac->title);
    struct kcase *c = new_case("attention_kv", params, title);
    input_f(c, 0, 4, qshape, q);
    input_f(c, 1, 4, kshape, k);
    input_f(c, 2, 4, kshape, v);
    ops->attention_kv(ex, out, q, k, v, &s, p0, tmax);
    double S = s.softcap > 0 ? s.softcap : sqrt(16.0) * ac->qk_amp * ac->qk_amp * 4 * s.scale;
    output(c, "out", out, nq, 1e-5, 16 * EPS * (1 + S) * max_abs(v, nk));
    free(q), free(k), free(v), free(out);
}

/* ------------------------------------------------------------------ cross-entropy */

static void case_xent(float cap)
{
    static const double scale[] = {1e-30, 1.0, 1e2, 1e4, 1e30, 1e38, 3.0};
    int64_t rows = sizeof scale / sizeof scale[0], V = 300, n = rows * V;
    int64_t shape[2] = {rows, V}, rshape[1] = {rows};
    float *z = fbuf(n), *g = fbuf(n), *loss = fbuf(rows), *mask = fbuf(rows);
    int32_t *tgt = calloc((size_t)rows, sizeof *tgt);
    float gs = 1.0f / 6;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < V; i++)
            z[r * V + i] = (float)(scale[r] * (2 * unif() - 1));
        tgt[r] = r == rows - 1 ? -100 : (int32_t)(unif() * V);
        mask[r] = r == 2 ? 0.0f : (r == 3 ? 0.5f : 1.0f);
    }
    char params[40];
    snprintf(params, sizeof params, "cap=%.9g gs=%.9g", cap, gs);
    struct kcase *c = new_case("xent", params, cap > 0 ? "xent, final soft-cap 30, rows 1e-30..1e38"
                                                       : "xent, rows 1e-30..1e38");
    input_f(c, 0, 2, shape, z);
    input(c, 1, MB_NPY_I4, 1, rshape, tgt);
    input_f(c, 2, 1, rshape, mask);
    memcpy(g, z, (size_t)n * sizeof *g);
    ops->xent(ex, g, loss, tgt, mask, rows, V, cap, gs);
    struct out *ol = output(c, "loss", loss, rows, 1e-6, 0);
    struct out *og = output(c, "dlogits", g, n, 1e-6, 0);
    ol->atolv = dbuf(rows), og->atolv = dbuf(n);
    for (int64_t r = 0; r < rows; r++) { /* exp's condition: eps times the largest logit */
        double Z = cap > 0 ? cap : max_abs(z + r * V, V);
        ol->atolv[r] = 8 * EPS * (1 + Z);
        for (int64_t i = 0; i < V; i++)
            og->atolv[r * V + i] = 8 * EPS * (1 + Z) * gs + 1e-37;
    }
    free(z), free(g), free(loss), free(mask), free(tgt);
}

/* ------------------------------------------------------------------ embedding, bias, sums */

static void case_embedding(void)
{
    int64_t vocab = 50, dim = 33, rows = 40, shape[2] = {vocab, dim}, oshape[2] = {rows, dim};
    int64_t ishape[1] = {rows};
    float *table = fbuf(vocab * dim), *dout = fbuf(rows * dim), *out = fbuf(rows * dim);
    float *dtable = fbuf(vocab * dim);
    int32_t *ids = calloc((size_t)rows, sizeof *ids);
    float scale = 8.0f; /* Gemma's sqrt(hidden) */
    for (int64_t i = 0; i < vocab * dim; i++)
        table[i] = i < N_SPECIAL ? fminf(fmaxf(act_special[i], -1e37f), 1e37f) : logu(-4, 4);
    for (int64_t r = 0; r < rows; r++)
        ids[r] = (int32_t)(unif() * 7); /* many repeats */
    for (int64_t i = 0; i < rows * dim; i++)
        dout[i] = logu(-4, 4);
    struct kcase *c = new_case("embedding", "scale=8",
                               "embedding fwd/bwd, |w| to 1e37, repeated ids");
    input_f(c, 0, 2, shape, table);
    input(c, 1, MB_NPY_I4, 1, ishape, ids);
    input_f(c, 2, 2, oshape, dout);
    ops->embedding_fwd(ex, out, table, ids, rows, dim, scale, false);
    ops->embedding_bwd(ex, dtable, dout, ids, rows, dim, scale);
    output(c, "out", out, rows * dim, 0.5 * EPS, 0);
    struct out *od = output(c, "dtable", dtable, vocab * dim, 0.5 * EPS, 0);
    od->atolv = dbuf(vocab * dim);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < dim; i++)
            od->atolv[ids[r] * dim + i] += rows * EPS * fabs(dout[r * dim + i] * scale);
    free(table), free(dout), free(out), free(dtable), free(ids);
}

static void case_bias(void)
{
    int64_t rows = 40, cols = 70, n = rows * cols, shape[2] = {rows, cols}, bshape[1] = {cols};
    float *y = fbuf(n), *b = fbuf(cols), *dy = fbuf(n), *out = fbuf(n), *db = fbuf(cols);
    for (int64_t i = 0; i < n; i++) {
        y[i] = i < N_SPECIAL ? act_special[i] : logu(-4, 4);
        dy[i] = i < N_SPECIAL ? fminf(fmaxf(act_special[i], -1e36f), 1e36f) : logu(-4, 4);
    }
    for (int64_t i = 0; i < cols; i++)
        b[i] = logu(-4, 4);
    b[N_SPECIAL - 1] = FLT_MAX; /* -FLT_MAX + FLT_MAX: 0 */
    struct kcase *c = new_case("bias", "", "add_bias / bias_grad, |y| to FLT_MAX");
    input_f(c, 0, 2, shape, y);
    input_f(c, 1, 1, bshape, b);
    input_f(c, 2, 2, shape, dy);
    memcpy(out, y, (size_t)n * sizeof *out);
    ops->add_bias(ex, out, b, rows, cols);
    ops->bias_grad(ex, db, dy, rows, cols);
    output(c, "y + b", out, n, 0.5 * EPS, 0);
    struct out *od = output(c, "db", db, cols, 0.5 * EPS, 0);
    od->atolv = dbuf(cols);
    for (int64_t i = 0; i < n; i++)
        od->atolv[i % cols] += rows * EPS * fabs(dy[i]);
    free(y), free(b), free(dy), free(out), free(db);
}

static void case_elementwise(void)
{
    int64_t n = 3000, shape[1] = {n};
    float *y = fbuf(n), *x = fbuf(n), *sum = fbuf(n);
    for (int64_t i = 0; i < n; i++) {
        y[i] = i < N_SPECIAL ? act_special[i] : logu(-40, 38);
        x[i] = logu(-40, 38);
    }
    struct kcase *c = new_case("elementwise", "", "add, |x| 1e-40..1e38");
    input_f(c, 0, 1, shape, y);
    input_f(c, 1, 1, shape, x);
    memcpy(sum, y, (size_t)n * sizeof *sum);
    ops->add(ex, sum, x, n);
    output(c, "y + x", sum, n, 0.5 * EPS, 1e-45);
    free(y), free(x), free(sum);
}

static void case_sumsq(void)
{
    int64_t n = 20000, shape[1] = {n};
    float *x = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = i < N_SPECIAL ? act_special[i] : logu(-40, 30);
    struct kcase *c = new_case("sumsq", "", "sumsq, |x| 1e-40..FLT_MAX");
    input_f(c, 0, 1, shape, x);
    double got = ops->sumsq(ex, x, n);
    struct out *o = output(c, "sum x^2", (float[]){0}, 1, 1e-12, 0);
    o->mb[0] = got;
    free(x);
}

static void case_matmul(void)
{
    int64_t m = 17, k = 33, n = 19, ashape[2] = {m, k}, bshape[2] = {k, n};
    float *a = fbuf(m * k), *b = fbuf(k * n), *cc = fbuf(m * n);
    for (int64_t i = 0; i < m * k; i++)
        a[i] = logu(-4, 4);
    for (int64_t i = 0; i < k * n; i++)
        b[i] = logu(-4, 4);
    struct kcase *c = new_case("matmul", "", "matmul, |a|, |b| 1e-4..1e4");
    input_f(c, 0, 2, ashape, a);
    input_f(c, 1, 2, bshape, b);
    ops->matmul(ex, false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, cc, n);
    struct out *o = output(c, "c", cc, m * n, 0, 0);
    o->atolv = dbuf(m * n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t x = 0; x < k; x++)
                o->atolv[i * n + j] += 2 * k * EPS * fabs((double)a[i * k + x] * b[x * n + j]);
    free(a), free(b), free(cc);
}

static void case_adamw(void)
{
    int64_t n = 3000, steps = 3, shape[1] = {n}, gshape[2] = {steps, n};
    struct mb_adamw_args a = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0, 1.0f};
    float *p = fbuf(n), *g = fbuf(steps * n), *m = fbuf(n), *v = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = logu(-4, 4);
    for (int64_t i = 0; i < steps * n; i++)
        g[i] = logu(-30, 15); /* g^2 from 1e-60 (underflows, as in torch) to 1e30 */
    struct kcase *c = new_case("adamw", "lr=1e-3 b1=0.9 b2=0.95 eps=1e-8 wd=0.1",
                               "adamw, 3 steps, |g| 1e-30..1e15, |p| to 1e4");
    input_f(c, 0, 1, shape, p);
    input_f(c, 1, 2, gshape, g);
    for (int s = 1; s <= steps; s++) {
        a.step = s;
        ops->adamw(ex, p, g + (s - 1) * n, m, v, n, &a, NULL);
    }
    /* m and v sum steps of either sign: a few ulp of the sum of |terms| */
    output(c, "p", p, n, 4 * EPS, 4 * EPS * a.lr);
    struct out *om = output(c, "exp_avg", m, n, 4 * EPS, 0);
    struct out *ov = output(c, "exp_avg_sq", v, n, 4 * EPS, 0);
    om->atolv = dbuf(n), ov->atolv = dbuf(n);
    for (int64_t s = 0; s < steps; s++)
        for (int64_t i = 0; i < n; i++) {
            double gi = g[s * n + i];
            om->atolv[i] += 4 * EPS * fabs(gi) + 1e-37;
            ov->atolv[i] += 4 * EPS * gi * gi + 1e-37;
        }
    free(p), free(g), free(m), free(v);
}

/* ------------------------------------------------------------------ main */

static const struct attn_case attn_cases[] = {
    {"attention fwd/bwd, scores to ~1e3, GQA, T 70", 8, 100, 0, 0},
    {"attention fwd/bwd, soft-cap 50, scores to ~1e5, window 20", 80, 100, 50, 20},
    {"attention fwd/bwd, |q|, |k| 1e-7..1e-4 (uniform softmax)", 1e-4, 1e4, 0, 0},
    {"attention fwd/bwd, scores to ~1e8 (one-hot), window 9", 3e3, 10, 0, 9},
};

int main(void)
{
    char script[PATH_MAX];
    omp_set_num_threads(2);
    ops = mb_ops_cpu();
    ex = ops->exec;
    if (!realpath("tests/oracle/kern_torch.py", script)) {
        ok(0, "tests/oracle/kern_torch.py found (run from the repository root)");
        return tap_done();
    }
    tap_enter_scratch_dir();
    manifest = fopen("manifest.txt", "w");
    case_gelu();
    case_gelu_core();
    case_gated("geglu", true);
    case_gated("swiglu", false);
    case_rmsnorm(false);
    case_rmsnorm(true);
    case_layernorm();
    case_rope();
    for (size_t i = 0; i < sizeof attn_cases / sizeof attn_cases[0]; i++) {
        case_attention(&attn_cases[i]);
        case_attention_kv(&attn_cases[i]);
    }
    case_xent(0.0f);
    case_xent(30.0f);
    case_embedding();
    case_bias();
    case_elementwise();
    case_sumsq();
    case_matmul();
    case_adamw();
    fclose(manifest);
    int rc = oracle_run(script, "manifest.txt");
    ok(rc == 0, "PyTorch oracle ran (tests/oracle/kern_torch.py, rc %d)", rc);
    for (int i = 0; i < ncases; i++)
        for (int k = 0; k < cases[i].nout; k++) {
            check_out(&cases[i], k);
            free(cases[i].out[k].mb);
            free(cases[i].out[k].atolv);
        }
    return tap_done();
}
