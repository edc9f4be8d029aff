/* tests/unit/kern_cpu_attention.c - flash attention (cpu, then cpu-guarded, through
 * tests/lib/mirror.h) against a naive double-precision
 * attention with the full T x T scores (whose analytic backward is itself checked by
 * central finite differences): GQA, sliding window, soft-capping, T not a multiple of the
 * block, per-document masks of packed rows, and bitwise determinism across runs and
 * thread counts. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/ops.h"
#include "tests/lib/mirror.h"
#include "tests/lib/tap.h"

static const struct mb_ops *ops;
static struct mb_exec *ex;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* All tensors of one case, float inputs and double references. */
struct att {
    struct mb_attn_shape s;
    int64_t nq, nkv, no, nl;
    float *q, *k, *v, *dout, *out, *lse, *dq, *dk, *dv;
    double *q64, *k64, *v64, *out64, *lse64, *dq64, *dk64, *dv64;
};

static bool sees(const struct mb_attn_shape *s, int64_t b, int64_t t, int64_t key)
{
    return key <= t && (s->window <= 0 || t - key < s->window) &&
           (!s->doc_start || key >= s->doc_start[b * s->seq + t]);
}

static double capped(const struct mb_attn_shape *s, double x)
{
    return s->softcap > 0 ? s->softcap * tanh(x / s->softcap) : x;
}

/* Naive attention in double; with dout64 also the analytic backward. Returns the
 * probe loss sum(dout * out). */
static double naive(const struct mb_attn_shape *s, const double *q, const double *k,
                    const double *v, const float *dout, double *out, double *lse, double *dq,
                    double *dk, double *dv)
{
    int64_t B = s->batch, T = s->seq, H = s->heads, G = s->kv_heads, E = s->head_dim;
    double *raw = malloc((size_t)T * sizeof *raw), *p = malloc((size_t)T * sizeof *p), L = 0;

    if (dq) {
        memset(dq, 0, (size_t)B * H * T * E * sizeof *dq);
        memset(dk, 0, (size_t)B * G * T * E * sizeof *dk);
        memset(dv, 0, (size_t)B * G * T * E * sizeof *dv);
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                int64_t kv = b * G + h / (H / G);
                const double *qi = q + ((b * H + h) * T + t) * E;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j <= t; j++) {
                    if (!sees(s, b, t, j))
                        continue;
                    double d = 0;
                    for (int64_t c = 0; c < E; c++)
                        d += qi[c] * k[(kv * T + j) * E + c];
                    raw[j] = d * s->scale;
                    p[j] = capped(s, raw[j]);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j <= t; j++)
                    if (sees(s, b, t, j))
                        sum += exp(p[j] - mx);
                double l = mx + log(sum);
                double *o = out + ((b * T + t) * H + h) * E;
                const float *go = dout + ((b * T + t) * H + h) * E;
                memset(o, 0, (size_t)E * sizeof *o);
                for (int64_t j = 0; j <= t; j++) {
                    if (!sees(s, b, t, j))
                        continue;
                    p[j] = exp(p[j] - l);
                    for (int64_t c = 0; c < E; c++)
                        o[c] += p[j] * v[(kv * T + j) * E + c];
                }
                lse[(b * H + h) * T + t] = l;
                double D = 0;
                for (int64_t c = 0; c < E; c++)
                    D += go[c] * o[c];
                L += D;
                if (!dq)
                    continue;
                for (int64_t j = 0; j <= t; j++) {
                    if (!sees(s, b, t, j))
                        continue;
                    double dp = 0;
                    for (int64_t c = 0; c < E; c++) {
                        dp += go[c] * v[(kv * T + j) * E + c];
                        dv[(kv * T + j) * E + c] += p[j] * go[c];
                    }
                    double ds = p[j] * (dp - D) * s->scale;
                    if (s->softcap > 0) {
                        double th = tanh(raw[j] / s->softcap);
                        ds *= 1 - th * th;
                    }
                    for (int64_t c = 0; c < E; c++) {
                        dq[((b * H + h) * T + t) * E + c] += ds * k[(kv * T + j) * E + c];
                        dk[(kv * T + j) * E + c] += ds * qi[c];
                    }
                }
            }
    free(raw);
    free(p);
    return L;
}

static float *fill(int64_t n, double **d64, float amp)
{
    float *x = mirror_alloc((size_t)n * sizeof *x);
    if (d64)
        *d64 = malloc((size_t)n * sizeof **d64);
    for (int64_t i = 0; i < n; i++) {
        x[i] = urand() * amp;
        if (d64)
            (*d64)[i] = x[i];
    }
    return x;
}

static void att_init(struct att *a, int64_t B, int64_t T, int64_t H, int64_t G, int64_t E,
                     int64_t window, float softcap)
{
    a->s = (struct mb_attn_shape){B, T, H, G, E, (float)(1.0 / sqrt((double)E)), softcap,
                                  window, NULL};
    a->nq = B * H * T * E;
    a->nkv = B * G * T * E;
    a->no = a->nq;
    a->nl = B * H * T;
    a->q = fill(a->nq, &a->q64, 2.0f);
    a->k = fill(a->nkv, &a->k64, 2.0f);
    a->v = fill(a->nkv, &a->v64, 1.0f);
    a->dout = fill(a->no, NULL, 1.0f);
    a->out = fill(a->no, NULL, 0);
    a->lse = fill(a->nl, NULL, 0);
    a->dq = fill(a->nq, NULL, 9.0f); /* garbage: bwd must overwrite */
    a->dk = fill(a->nkv, NULL, 9.0f);
    a->dv = fill(a->nkv, NULL, 9.0f);
    a->out64 = malloc((size_t)a->no * sizeof(double));
    a->lse64 = malloc((size_t)a->nl * sizeof(double));
    a->dq64 = malloc((size_t)a->nq * sizeof(double));
    a->dk64 = malloc((size_t)a->nkv * sizeof(double));
    a->dv64 = malloc((size_t)a->nkv * sizeof(double));
}

static void att_release(struct att *a)
{
    float *f[] = {a->q, a->k, a->v, a->dout, a->out, a->lse, a->dq, a->dk, a->dv};
    double *d[] = {a->q64, a->k64, a->v64, a->out64, a->lse64, a->dq64, a->dk64, a->dv64};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        mirror_free(f[i]);
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        free(d[i]);
}

static void att_run(struct att *a)
{
    ops->attention_fwd(ex, M(a->out), M(a->lse), M(a->q), M(a->k), M(a->v), MS(&a->s));
    mirror_back();
    ops->attention_bwd(ex, M(a->dq), M(a->dk), M(a->dv), M(a->dout), M(a->q), M(a->k), M(a->v),
                       M(a->out), M(a->lse), MS(&a->s));
    mirror_back();
}

/* Central differences of the naive probe loss at a few elements of x (one of q64/k64/v64)
 * against the naive analytic gradient g. */
static void fd_check(struct att *a, const char *name, double *x, int64_t n, const double *g)
{
    double *o = malloc((size_t)a->no * sizeof *o), *l = malloc((size_t)a->nl * sizeof *l);
    double worst = 0, h = 1e-5;

    for (int i = 0; i < 12; i++) {
        int64_t at = (int64_t)((urand() + 1.0f) * 0.5f * (float)(n - 1));
        double keep = x[at];
        x[at] = keep + h;
        double lp = naive(&a->s, a->q64, a->k64, a->v64, a->dout, o, l, NULL, NULL, NULL);
        x[at] = keep - h;
        double lm = naive(&a->s, a->q64, a->k64, a->v64, a->dout, o, l, NULL, NULL, NULL);
        x[at] = keep;
        double fd = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(fd - g[at]) / (1e-7 + 1e-5 * fabs(g[at])));
    }
    ok(worst <= 1, "naive reference: d%s matches finite differences (worst %.3g)", name, worst);
    free(o);
    free(l);
}

static void att_case(const char *label, int64_t B, int64_t T, int64_t H, int64_t G, int64_t E,
                     int64_t window, float softcap, bool fd, const int32_t *docs)
{
    struct att a;
    char what[160];

    att_init(&a, B, T, H, G, E, window, softcap);
    a.s.doc_start = docs;
    naive(&a.s, a.q64, a.k64, a.v64, a.dout, a.out64, a.lse64, a.dq64, a.dk64, a.dv64);
    if (fd) {
        fd_check(&a, "q", a.q64, a.nq, a.dq64);
        fd_check(&a, "k", a.k64, a.nkv, a.dk64);
        fd_check(&a, "v", a.v64, a.nkv, a.dv64);
    }
    att_run(&a);
#define CHECK(buf, ref, n, rt, at)                                                           \
    snprintf(what, sizeof what, "%s: %s", label, #buf);                                     \
    tap_close_to(what, a.buf, a.ref, n, rt, at)
    CHECK(out, out64, a.no, 2e-5, 2e-6);
    CHECK(lse, lse64, a.nl, 2e-6, 2e-6);
    CHECK(dq, dq64, a.nq, 1e-4, 1e-5);
    CHECK(dk, dk64, a.nkv, 1e-4, 1e-5);
    CHECK(dv, dv64, a.nkv, 1e-4, 1e-5);
#undef CHECK
    att_release(&a);
}

static void determinism(void)
{
    struct att a;
    att_init(&a, 2, 150, 4, 2, 32, 0, 0);
    att_run(&a);
    size_t nq = (size_t)a.nq * 4, nkv = (size_t)a.nkv * 4;
    float *keep = malloc(2 * nq + 2 * nkv);
    memcpy(keep, a.out, nq);
    memcpy((char *)keep + nq, a.dq, nq);
    memcpy((char *)keep + 2 * nq, a.dk, nkv);
    memcpy((char *)keep + 2 * nq + nkv, a.dv, nkv);
    for (int threads = 2; threads >= 1; threads--) {
        omp_set_num_threads(threads);
        att_run(&a);
        ok(memcmp(keep, a.out, nq) == 0 && memcmp((char *)keep + nq, a.dq, nq) == 0 &&
           memcmp((char *)keep + 2 * nq, a.dk, nkv) == 0 &&
           memcmp((char *)keep + 2 * nq + nkv, a.dv, nkv) == 0,
           "same bits again with %d thread(s): out, dq, dk, dv", threads);
    }
    omp_set_num_threads(2);
    free(keep);
    att_release(&a);
}

int main(void)
{
    omp_set_num_threads(2);
    const char *backends[] = { "cpu", "cpu-guarded" };
    for (int b = 0; b < 2; b++) {
        ops = mb_ops_find(backends[b], "test");
        ex = ops->exec;
        mirror_use(ops);
        tap_diag("backend %s", backends[b]);
        att_case("MHA T=5 d=4", 1, 5, 2, 2, 4, 0, 0, true, NULL);
        att_case("GQA 4/2 T=130 d=16", 2, 130, 4, 2, 16, 0, 0, true, NULL);
        att_case("window 20 T=97 d=8", 1, 97, 4, 4, 8, 20, 0, true, NULL);
        att_case("softcap 5 MQA 2/1 T=70 d=64", 1, 70, 2, 1, 64, 0, 5.0f, true, NULL);
        att_case("GQA+window 70+softcap 3 T=150 d=12", 1, 150, 4, 2, 12, 70, 3.0f, false, NULL);
        att_case("window 1 (self only) T=66", 1, 66, 2, 1, 8, 1, 0, false, NULL);
        att_case("T=1", 2, 1, 4, 2, 8, 0, 0, false, NULL);
        /* packed rows: documents [0,40) [40,41) [41,130) [130,150) in row 0, [0,64) [64,150)
         * in row 1 (document boundaries inside and on the edges of the 64-wide blocks) */
        int32_t *docs = mirror_alloc(2 * 150 * sizeof *docs);
        for (int t = 0; t < 150; t++) {
            docs[t] = t < 40 ? 0 : t < 41 ? 40 : t < 130 ? 41 : 130;
            docs[150 + t] = t < 64 ? 0 : 64;
        }
        att_case("documents GQA 4/2 T=150 d=8", 2, 150, 4, 2, 8, 0, 0, true, docs);
        att_case("documents+window 30+softcap 4 T=150", 2, 150, 4, 1, 16, 30, 4.0f, false,
                 docs);
        mirror_free(docs);
        determinism();
    }
    return tap_done();
}
