/* tests/unit/kern_cpu_ops.c - norms, activations, RoPE, cross-entropy and AdamW on the op
 * table (cpu, then cpu-guarded, through tests/lib/mirror.h) against plain double-precision
 * references. Every backward is compared with central finite
 * differences of the double reference forward (loss = sum(dy * f(x))). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/defs.h"
#include "kern/ops.h"
#include "tests/lib/mirror.h"
#include "tests/lib/oracle.h"
#include "tests/lib/tap.h"

static const struct mb_ops *ops;
static struct mb_exec *ex;
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *rand_buf(int64_t n, float amp)
{
    float *x = mirror_alloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = urand() * amp;
    return x;
}

static double *to64(const float *x, int64_t n)
{
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* A double-precision forward: writes f(inputs) to y (ny values). */
typedef void (*ref_fn)(double *y, void *ctx);

/* grad[i] (+= base[i]) = d sum(dy * f) / d x[i] by central differences, x an input of f. */
static double *fd_grad(ref_fn f, void *ctx, double *x, int64_t n, const float *dy, int64_t ny,
                       const float *base)
{
    double *g = malloc((size_t)n * sizeof *g), *y = malloc((size_t)ny * sizeof *y);
    for (int64_t i = 0; i < n; i++) {
        double keep = x[i], h = 1e-6 * fmax(1.0, fabs(keep)), lp = 0, lm = 0;
        x[i] = keep + h;
        f(y, ctx);
        for (int64_t j = 0; j < ny; j++)
            lp += dy[j] * y[j];
        x[i] = keep - h;
        f(y, ctx);
        for (int64_t j = 0; j < ny; j++)
            lm += dy[j] * y[j];
        x[i] = keep;
        g[i] = (lp - lm) / (2 * h) + (base ? base[i] : 0);
    }
    free(y);
    return g;
}

/* ---- norms ---- */

struct norm_ctx {
    int64_t rows, dim;
    double *x, *w, *b, eps;
    bool zc, layer;
};

static void norm_ref(double *y, void *p)
{
    struct norm_ctx *c = p;
    for (int64_t r = 0; r < c->rows; r++) {
        const double *x = c->x + r * c->dim;
        double mu = 0, ss = 0;
        if (c->layer) {
            for (int64_t i = 0; i < c->dim; i++)
                mu += x[i];
            mu /= c->dim;
        }
        for (int64_t i = 0; i < c->dim; i++)
            ss += (x[i] - mu) * (x[i] - mu);
        double rstd = 1 / sqrt(ss / c->dim + c->eps);
        for (int64_t i = 0; i < c->dim; i++) {
            double w = c->w[i] + (c->zc ? 1 : 0);
            y[r * c->dim + i] = (x[i] - mu) * rstd * w + (c->layer ? c->b[i] : 0);
        }
    }
}

static void test_norm(bool layer, bool zc)
{
    int64_t rows = 19, dim = 67, n = rows * dim;
    float *x = rand_buf(n, 2.0f), *w = rand_buf(dim, 1.0f), *b = rand_buf(dim, 1.0f);
    float *y = rand_buf(n, 1), *mean = rand_buf(rows, 1), *rstd = rand_buf(rows, 1);
    float *dy = rand_buf(n, 1), *dx = rand_buf(n, 1), *dw = rand_buf(dim, 1), *db = rand_buf(dim, 1);
    float *dx0 = rand_buf(n, 0), *dw0 = rand_buf(dim, 0), *db0 = rand_buf(dim, 0);
    struct norm_ctx c = {rows, dim, to64(x, n), to64(w, dim), to64(b, dim), 1e-5, zc, layer};
    double *want = malloc((size_t)n * sizeof *want);
    const char *name = layer ? "layernorm" : zc ? "rmsnorm (zero-centered)" : "rmsnorm";
    char what[128];

    ops->copy(ex, M(dx0), M(dx), n);
    mirror_back();
    ops->copy(ex, M(dw0), M(dw), dim);
    mirror_back();
    ops->copy(ex, M(db0), M(db), dim);
    mirror_back();
    norm_ref(want, &c);
    if (layer)
        ops->layernorm_fwd(ex, M(y), M(mean), M(rstd), M(x), M(w), M(b), rows, dim, 1e-5f);
    else
        ops->rmsnorm_fwd(ex, M(y), M(rstd), M(x), M(w), rows, dim, 1e-5f, zc);
    mirror_back();
    snprintf(what, sizeof what, "%s fwd", name);
    tap_close_to(what, y, want, n, 1e-5, 1e-6);
    if (layer)
        ops->layernorm_bwd(ex, M(dx), M(dw), M(db), M(dy), M(x), M(w), M(mean), M(rstd), rows, dim);
    else
        ops->rmsnorm_bwd(ex, M(dx), M(dw), M(dy), M(x), M(w), M(rstd), rows, dim, zc);
    mirror_back();
    double *gx = fd_grad(norm_ref, &c, c.x, n, dy, n, dx0);
    double *gw = fd_grad(norm_ref, &c, c.w, dim, dy, n, dw0);
    snprintf(what, sizeof what, "%s bwd dx (accumulated) vs finite differences", name);
    tap_close_to(what, dx, gx, n, 1e-4, 1e-5);
    snprintf(what, sizeof what, "%s bwd dw (accumulated) vs finite differences", name);
    tap_close_to(what, dw, gw, dim, 1e-4, 1e-5);
    if (layer) {
        double *gb = fd_grad(norm_ref, &c, c.b, dim, dy, n, db0);
        tap_close_to("layernorm bwd db (accumulated) vs finite differences", db, gb, dim, 1e-4,
                     1e-5);
        free(gb);
    }
    free(gx);
    free(gw);
    free(want);
    free(c.x);
    free(c.w);
    free(c.b);
    float *bufs[] = {x, w, b, y, mean, rstd, dy, dx, dw, db, dx0, dw0, db0};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        mirror_free(bufs[i]);
}

/* ---- activations ---- */

struct act_ctx {
    int kind; /* 0 swiglu, 1 geglu, 2 gelu */
    int64_t rows, inner;
    double *x;
};

static double gelu64(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void act_ref(double *y, void *p)
{
    struct act_ctx *c = p;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t i = 0; i < c->inner; i++) {
            if (c->kind == 2) {
                y[r * c->inner + i] = gelu64(c->x[r * c->inner + i]);
                continue;
            }
            double g = c->x[r * 2 * c->inner + i], u = c->x[r * 2 * c->inner + c->inner + i];
            double a = c->kind == 0 ? g / (1 + exp(-g)) : gelu64(g);
            y[r * c->inner + i] = a * u;
        }
}

static void test_act(int kind)
{
    static const char *names[] = {"swiglu", "geglu", "gelu"};
    int64_t rows = 13, inner = 37, nin = rows * inner * (kind == 2 ? 1 : 2), ny = rows * inner;
    float *x = rand_buf(nin, 4.0f), *y = rand_buf(ny, 1), *dy = rand_buf(ny, 1);
    float *dx = rand_buf(nin, 1);
    struct act_ctx c = {kind, rows, inner, to64(x, nin)};
    double *want = malloc((size_t)ny * sizeof *want);
    char what[96];

    act_ref(want, &c);
    if (kind == 0) {
        ops->swiglu_fwd(ex, M(y), M(x), rows, inner);
        mirror_back();
        ops->swiglu_bwd(ex, M(dx), M(dy), M(x), rows, inner);
        mirror_back();
    } else if (kind == 1) {
        ops->geglu_fwd(ex, M(y), M(x), rows, inner);
        mirror_back();
        ops->geglu_bwd(ex, M(dx), M(dy), M(x), rows, inner);
        mirror_back();
    } else {
        ops->gelu_fwd(ex, M(y), M(x), ny);
        mirror_back();
        ops->gelu_bwd(ex, M(dx), M(dy), M(x), ny);
        mirror_back();
    }
    snprintf(what, sizeof what, "%s fwd", names[kind]);
    tap_close_to(what, y, want, ny, 1e-5, 1e-6);
    double *g = fd_grad(act_ref, &c, c.x, nin, dy, ny, NULL);
    snprintf(what, sizeof what, "%s bwd (overwrites) vs finite differences", names[kind]);
    tap_close_to(what, dx, g, nin, 1e-4, 1e-6);
    free(g);
    free(want);
    free(c.x);
    mirror_free(x);
    mirror_free(y);
    mirror_free(dy);
    mirror_free(dx);
}

/* ---- RoPE ---- */

struct rope_ctx {
    int64_t B, H, T, E, R;
    const int32_t *pos;
    const float *cs;
    double *x;
};

static void rope_ref(double *y, void *p)
{
    struct rope_ctx *c = p;
    int64_t half = c->R / 2;
    for (int64_t r = 0; r < c->B * c->H * c->T; r++) {
        const double *x = c->x + r * c->E;
        double *o = y + r * c->E;
        int32_t ps = c->pos[r / (c->H * c->T) * c->T + r % c->T];
        memcpy(o, x, (size_t)c->E * sizeof *o);
        for (int64_t j = 0; j < half; j++) {
            double co = c->cs[(ps * half + j) * 2], si = c->cs[(ps * half + j) * 2 + 1];
            o[j] = x[j] * co - x[j + half] * si; /* x cos + rotate_half(x) sin */
            o[j + half] = x[j + half] * co + x[j] * si;
        }
    }
}

static void test_rope(void)
{
    int64_t B = 2, H = 3, T = 7, E = 10, R = 6, maxpos = 40, n = B * H * T * E;
    float *cs = rand_buf(maxpos * R, 0), *x = rand_buf(n, 1), *dy = rand_buf(n, 1);
    int32_t *pos = mirror_alloc(14 * sizeof *pos);
    for (int64_t p = 0; p < maxpos; p++)
        for (int64_t j = 0; j < R / 2; j++) {
            double ang = p / pow(10000.0, 2.0 * j / R);
            cs[(p * R / 2 + j) * 2] = (float)cos(ang);
            cs[(p * R / 2 + j) * 2 + 1] = (float)sin(ang);
        }
    for (int i = 0; i < 14; i++)
        pos[i] = (int32_t)((i * 11 + 3) % maxpos);
    struct rope_ctx c = {B, H, T, E, R, pos, cs, to64(x, n)};
    double *want = malloc((size_t)n * sizeof *want);

    rope_ref(want, &c);
    ops->rope_fwd(ex, M(x), M(cs), M(pos), B, H, T, E, R);
    mirror_back();
    tap_close_to("rope_fwd (partial rotary 6 of 10)", x, want, n, 1e-6, 1e-7);
    double *g = fd_grad(rope_ref, &c, c.x, n, dy, n, NULL);
    ops->rope_bwd(ex, M(dy), M(cs), M(pos), B, H, T, E, R);
    mirror_back();
    tap_close_to("rope_bwd vs finite differences", dy, g, n, 1e-5, 1e-7);
    free(g);
    free(want);
    free(c.x);
    mirror_free(cs);
    mirror_free(x);
    mirror_free(dy);
    mirror_free(pos);
}

/* ---- cross-entropy ---- */

struct xent_ctx {
    int64_t rows, vocab;
    const int32_t *target;
    const float *mask;
    double *z, cap, scale;
};

/* y[r] = weight_r * loss_r * scale */
static void xent_ref(double *y, void *p)
{
    struct xent_ctx *c = p;
    for (int64_t r = 0; r < c->rows; r++) {
        double mx = -INFINITY, s = 0, *zc = malloc((size_t)c->vocab * sizeof *zc);
        for (int64_t i = 0; i < c->vocab; i++) {
            double z = c->z[r * c->vocab + i];
            zc[i] = c->cap > 0 ? c->cap * tanh(z / c->cap) : z;
            mx = fmax(mx, zc[i]);
        }
        for (int64_t i = 0; i < c->vocab; i++)
            s += exp(zc[i] - mx);
        int32_t t = c->target[r];
        double loss = t < 0 ? 0 : mx + log(s) - zc[t];
        y[r] = c->scale < 0 ? loss : loss * (c->mask ? c->mask[r] : 1) * c->scale;
        free(zc);
    }
}

static void test_xent(float cap)
{
    int64_t rows = 7, vocab = 301, n = rows * vocab;
    static const int32_t target0[7] = {0, 300, -1, 17, 150, 42, 299};
    static const float mask0[7] = {1, 0.5f, 1, 0, 1, 2, 1};
    int32_t *target = mirror_alloc(sizeof target0);
    float *mask = mirror_alloc(sizeof mask0);
    memcpy(target, target0, sizeof target0);
    memcpy(mask, mask0, sizeof mask0);
    float *z = rand_buf(n, 8.0f), *z0 = rand_buf(n, 0), *loss = rand_buf(rows, 1);
    float ones[7] = {1, 1, 1, 1, 1, 1, 1};
    struct xent_ctx c = {rows, vocab, target, mask, to64(z, n), cap, -1};
    double want[7];
    char what[96];

    ops->copy(ex, M(z0), M(z), n);
    mirror_back();
    xent_ref(want, &c);
    ops->xent(ex, M(z), M(loss), M(target), M(mask), rows, vocab, cap, 0.0f);
    mirror_back();
    snprintf(what, sizeof what, "xent loss (cap %g; target -1 row is 0)", cap);
    tap_close_to(what, loss, want, rows, 2e-6, 1e-6);
    ok(memcmp(z, z0, (size_t)n * sizeof *z) == 0, "xent with grad_scale 0 leaves the logits");
    c.scale = 0.25;
    double *g = fd_grad(xent_ref, &c, c.z, n, ones, rows, NULL);
    ops->xent(ex, M(z), M(loss), M(target), M(mask), rows, vocab, cap, 0.25f);
    mirror_back();
    snprintf(what, sizeof what, "xent gradient in place (cap %g, mask, grad_scale) vs FD", cap);
    tap_close_to(what, z, g, n, 1e-4, 1e-7);
    int zero = 1;
    for (int64_t i = 0; i < vocab; i++)
        zero &= z[2 * vocab + i] == 0.0f && z[3 * vocab + i] == 0.0f;
    ok(zero, "xent: rows with target -1 or mask 0 get exactly zero gradient");
    free(g);
    free(c.z);
    mirror_free(z);
    mirror_free(z0);
    mirror_free(loss);
    mirror_free(target);
    mirror_free(mask);
}

/* ---- AdamW ---- */

static void test_adamw(void)
{
    int64_t n = 40000 + 3;
    float *p = rand_buf(n, 1), *g = rand_buf(n, 1), *m = rand_buf(n, 0), *v = rand_buf(n, 0);
    double *p64 = to64(p, n), *m64 = calloc((size_t)n, sizeof *m64);
    double *v64 = calloc((size_t)n, sizeof *v64);
    struct mb_adamw_args a = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0, 1.0f};

    for (int step = 1; step <= 3; step++) {
        a.step = step;
        for (int64_t i = 0; i < n; i++)
            g[i] = urand();
        ops->adamw(ex, M(p), M(g), M(m), M(v), n, &a, NULL);
        mirror_back();
        double bc1 = 1 - pow(a.beta1, step), bc2 = 1 - pow(a.beta2, step);
        for (int64_t i = 0; i < n; i++) {
            p64[i] *= 1 - (double)a.lr * a.weight_decay;
            m64[i] = a.beta1 * m64[i] + (1 - (double)a.beta1) * g[i];
            v64[i] = a.beta2 * v64[i] + (1 - (double)a.beta2) * g[i] * g[i];
            p64[i] -= a.lr / bc1 * m64[i] / (sqrt(v64[i]) / sqrt(bc2) + a.eps);
        }
    }
    tap_close_to("adamw: 3 steps of p vs double reference", p, p64, n, 1e-6, 1e-7);
    tap_close_to("adamw: m", m, m64, n, 1e-5, 1e-7);
    tap_close_to("adamw: v", v, v64, n, 1e-5, 1e-9);
    free(p64);
    free(m64);
    free(v64);
    mirror_free(p);
    mirror_free(g);
    mirror_free(m);
    mirror_free(v);
}

/* Two AdamW states (p, m, v of N zeros each) to run side by side, and their release. */
static void adamw_pair_alloc(float *p[2], float *m[2], float *v[2], int64_t n)
{
    for (int k = 0; k < 2; k++) {
        p[k] = rand_buf(n, 0);
        m[k] = rand_buf(n, 0);
        v[k] = rand_buf(n, 0);
    }
}

static void adamw_pair_free(float *p[2], float *m[2], float *v[2])
{
    for (int k = 0; k < 2; k++) {
        mirror_free(p[k]);
        mirror_free(m[k]);
        mirror_free(v[k]);
    }
}

/* grad_scale (clipping folded into the update) gives the bits of scaling g first (the
 * float product, formed here on the host) and updating with grad_scale 1; 0 and values
 * of 1 and above leave g as it is. */
static void test_adamw_grad_scale(void)
{
    int64_t n = 20000 + 5;
    float *g = rand_buf(n, 3), *gs = rand_buf(n, 0), *p[2], *m[2], *v[2];
    const float coeff = 0.3137f, as_is[] = {0.0f, 1.0f, 1.5f};
    struct mb_adamw_args a = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1.0f};

    adamw_pair_alloc(p, m, v, n);
    for (int64_t i = 0; i < n; i++) {
        p[0][i] = p[1][i] = urand();
        m[0][i] = m[1][i] = urand() * 0.1f;
        v[0][i] = v[1][i] = fabsf(urand()) * 0.01f;
        gs[i] = g[i] * coeff; /* the float product a scaling pass would store */
    }
    ops->adamw(ex, M(p[0]), M(gs), M(m[0]), M(v[0]), n, &a, NULL);
    a.grad_scale = coeff;
    ops->adamw(ex, M(p[1]), M(g), M(m[1]), M(v[1]), n, &a, NULL);
    mirror_back();
    ok(memcmp(p[0], p[1], (size_t)n * sizeof *p[0]) == 0 &&
       memcmp(m[0], m[1], (size_t)n * sizeof *m[0]) == 0 &&
       memcmp(v[0], v[1], (size_t)n * sizeof *v[0]) == 0,
       "adamw: grad_scale %g gives the bits of scale(g) then adamw", coeff);
    int same = 1;
    for (int c = 0; c < 3; c++) {
        a.grad_scale = as_is[c];
        a.step = 2 + c;
        ops->adamw(ex, M(p[0]), M(g), M(m[0]), M(v[0]), n, &a, NULL);
        a.grad_scale = 1.0f;
        ops->adamw(ex, M(p[1]), M(g), M(m[1]), M(v[1]), n, &a, NULL);
        mirror_back();
        same &= memcmp(p[0], p[1], (size_t)n * sizeof *p[0]) == 0;
    }
    ok(same, "adamw: grad_scale 0, 1 and 1.5 leave g as it is");
    adamw_pair_free(p, m, v);
    mirror_free(g);
    mirror_free(gs);
}

/* AdamW writing the bf16 copy of p as it goes (pb): the same p, m, v as without, and pb
 * the bits convert gives from the new p, NaN included; both lerp forms (beta1 0.9 and
 * 0.3), over more than one chunk. */
static void test_adamw_bf16_copy(void)
{
    int64_t n = 20000 + 5;
    float *g = rand_buf(n, 3), *p[2], *m[2], *v[2];
    uint16_t *pb = mirror_alloc((size_t)n * sizeof *pb), *want = mirror_alloc((size_t)n * sizeof *want);
    const float beta1s[] = {0.9f, 0.3f};

    adamw_pair_alloc(p, m, v, n);
    g[7] = NAN;
    for (int b = 0; b < 2; b++) {
        struct mb_adamw_args a = {3e-3f, beta1s[b], 0.95f, 1e-8f, 0.1f, 1, 1.0f};
        for (int64_t i = 0; i < n; i++) {
            p[0][i] = p[1][i] = urand() * (i % 11 == 0 ? 300.0f : 1.0f);
            m[0][i] = m[1][i] = urand() * 0.1f;
            v[0][i] = v[1][i] = fabsf(urand()) * 0.01f;
        }
        ops->adamw(ex, M(p[0]), M(g), M(m[0]), M(v[0]), n, &a, M(pb));
        ops->adamw(ex, M(p[1]), M(g), M(m[1]), M(v[1]), n, &a, NULL);
        ops->convert(ex, M(want), MB_DTYPE_BF16, M(p[1]), MB_DTYPE_F32, n);
        mirror_back();
        ok(memcmp(p[0], p[1], (size_t)n * sizeof *p[0]) == 0 &&
           memcmp(m[0], m[1], (size_t)n * sizeof *m[0]) == 0 &&
           memcmp(v[0], v[1], (size_t)n * sizeof *v[0]) == 0 &&
           memcmp(pb, want, (size_t)n * sizeof *pb) == 0 && isnan(p[0][7]),
           "adamw with a bf16 copy, beta1 %g: p, m, v as without it, the copy bitwise convert's "
           "(a NaN weight included)", beta1s[b]);
    }
    adamw_pair_free(p, m, v);
    mirror_free(g);
    mirror_free(pb);
    mirror_free(want);
}

/* AdamW against torch.optim.AdamW(foreach=False) itself (the oracle venv must exist):
 * 3 steps on the same float32 inputs. m and v agree to the last bit or so. p is held to
 * 4 ulp of max(|p|, lr), the size of an update: torch's CPU sqrt is not always correctly
 * rounded (on an AMD EPYC a fifth of its results are 1 ulp off IEEE sqrt; on the Xeons
 * we had none), and where p is small after a near-cancelling update, that 1 ulp of the
 * denominator is many ulp of p. */
static const char adamw_py[] =
    "import sys, numpy as np, torch\n"
    "n, lr, b1, b2, eps, wd = int(sys.argv[1]), *map(float, sys.argv[2:7])\n"
    "d = np.fromfile('adamw.in', dtype=np.float32)\n"
    "p = torch.nn.Parameter(torch.from_numpy(d[:n].copy()))\n"
    "opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd,"
    " foreach=False, fused=False)\n"
    "for s in range(3):\n"
    "    p.grad = torch.from_numpy(d[n * (s + 1):n * (s + 2)].copy())\n"
    "    opt.step()\n"
    "st = opt.state[p]\n"
    "np.concatenate([p.detach().numpy(), st['exp_avg'].numpy(),"
    " st['exp_avg_sq'].numpy()]).astype(np.float32).tofile('adamw.out')\n";

static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    ia = ia < 0 ? INT32_MIN - ia : ia;
    ib = ib < 0 ? INT32_MIN - ib : ib;
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

static void test_adamw_torch(void)
{
    const char *py = oracle_python();
    char cmd[PATH_MAX + 200];
    FILE *f = fopen(py, "r");
    if (!ok(f != NULL, "the oracle venv's python %s exists (make check installs it: "
            "scripts/install-deps.sh)", py))
        return;
    fclose(f);
    int64_t n = 4099;
    struct mb_adamw_args a = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0, 1.0f};
    float *d = rand_buf(4 * n, 1.0f), *m = rand_buf(n, 0), *v = rand_buf(n, 0);
    float *got = malloc(3 * (size_t)n * sizeof *got);
    for (int64_t i = n; i < 4 * n; i++)
        d[i] *= (i % 7 == 0) ? 1e-4f : 1.0f; /* some tiny gradients: eps matters */
    f = fopen("adamw.in", "wb");
    fwrite(d, sizeof *d, (size_t)(4 * n), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' -c \"$MB_ADAMW_PY\" %lld %.9g %.9g %.9g %.9g %.9g", py,
             (long long)n, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay);
    setenv("MB_ADAMW_PY", adamw_py, 1);
    int rc = system(cmd);
    f = fopen("adamw.out", "rb");
    if (rc != 0 || !f || fread(got, sizeof *got, 3 * (size_t)n, f) != 3 * (size_t)n) {
        ok(0, "torch AdamW oracle ran (rc %d)", rc);
        tap_skip(2, "no oracle output");
    } else {
        for (int s = 1; s <= 3; s++) {
            a.step = s;
            ops->adamw(ex, M(d), M(d + s * n), M(m), M(v), n, &a, NULL);
            mirror_back();
        }
        const float *moments[2] = {m, v};
        const char *names[2] = {"exp_avg", "exp_avg_sq"};
        double worst_p = 0;
        for (int64_t i = 0; i < n; i++) {
            double scale = FLT_EPSILON * fmax(fabs(got[i]), a.lr);
            worst_p = fmax(worst_p, fabs((double)d[i] - got[i]) / scale);
        }
        ok(worst_p <= 4, "adamw vs torch.optim.AdamW, 3 steps: p within %.2f ulp of "
           "max(|p|, lr)", worst_p);
        for (int t = 0; t < 2; t++) {
            int64_t worst = 0;
            for (int64_t i = 0; i < n; i++)
                worst = MB_MAX(worst, ulps(moments[t][i], got[(t + 1) * n + i]));
            ok(worst <= 1, "adamw vs torch.optim.AdamW, 3 steps: %s within %lld ulp", names[t],
               (long long)worst);
        }
    }
    if (f)
        fclose(f);
    free(got);
    mirror_free(d);
    mirror_free(m);
    mirror_free(v);
}

int main(void)
{
    omp_set_num_threads(2);
    tap_enter_scratch_dir();
    const char *backends[] = { "cpu", "cpu-guarded" };
    for (int b = 0; b < 2; b++) {
        ops = mb_ops_find(backends[b], "test");
        ex = ops->exec;
        mirror_use(ops);
        tap_diag("backend %s", backends[b]);
        test_norm(false, false);
        test_norm(false, true);
        test_norm(true, false);
        for (int k = 0; k < 3; k++)
            test_act(k);
        test_rope();
        test_xent(0.0f);
        test_xent(5.0f);
        test_adamw();
        test_adamw_grad_scale();
        test_adamw_bf16_copy();
        test_adamw_torch();
    }
    return tap_done();
}
