/* peft_adapter - one linear layer with a LoRA or DoRA adapter (nn/linear.h, peft/peft.h)
 * against a float64 reference written from the formulas of finetune.md 1.1 and 2.1.
 *
 * The reference forward is y = g (W x + s B A x) + b with g = m / n (DoRA; g = 1 and no
 * m for LoRA), n the row norms of W + s B A. The gradients are checked against central
 * finite differences of L = sum(c * y) for a fixed random c, in float64, with n held at
 * its value (the norm is detached, as PEFT and Bridge do): dA, dB, dm and dx, with the
 * base frozen (the layer has no weight or bias gradient). LoRA with dropout: the
 * reference drops x by the mask mb_adapter_dropout_keep gives (and the mask keeps 1 - p
 * of the elements). Also: the peft attribute's JSON round trip.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "kern/ops.h"
#include "nn/linear.h"
#include "peft/peft.h"
#include "tests/lib/tap.h"

#define N 5   /* token rows */
#define IN 7
#define OUT 6
#define R 3

static const struct mb_group one = { .rank = 0, .size = 1, .name = "tp", .kind = MB_GROUP_TP };

static double uniform(uint64_t key)
{
    return (double)(mb_splitmix64(key) >> 40) / (double)(1 << 24) - 0.5;
}

struct layer {
    double w[OUT * IN], b[OUT], a[R * IN], bb[OUT * R], m[OUT], x[N * IN], c[N * OUT];
    double norm[OUT]; /* the detached row norms, from the unperturbed weights */
    double scale;
    int dora;
    const struct mb_adapter_dropout *drop; /* LoRA dropout, NULL: none */
};

#define SEQ 2     /* positions per sample, for the dropout mask */
#define SITE 9
#define COL0 3

/* x[t, i] as the adapter sees it: dropped and rescaled with dropout. */
static double adapter_x(const struct layer *k, int t, int i)
{
    const struct mb_adapter_dropout *d = k->drop;
    if (!d)
        return k->x[t * IN + i];
    int keep = mb_adapter_dropout_keep(d, d->sample0 + t / SEQ, t % SEQ, SITE, COL0 + i);
    return keep ? k->x[t * IN + i] / (1.0 - d->p) : 0.0;
}

/* Row norms of W + s B A. */
static void norms(const struct layer *k, double *out)
{
    for (int o = 0; o < OUT; o++) {
        double ss = 0;
        for (int i = 0; i < IN; i++) {
            double v = k->w[o * IN + i];
            for (int j = 0; j < R; j++)
                v += k->scale * k->bb[o * R + j] * k->a[j * IN + i];
            ss += v * v;
        }
        out[o] = sqrt(ss);
    }
}

/* y from the formula, with k->norm as the (detached) norm; returns sum(c * y). */
static double forward_ref(const struct layer *k, double *y)
{
    double loss = 0;
    for (int t = 0; t < N; t++)
        for (int o = 0; o < OUT; o++) {
            double z = 0;
            for (int i = 0; i < IN; i++)
                z += k->w[o * IN + i] * k->x[t * IN + i];
            for (int j = 0; j < R; j++) {
                double ax = 0;
                for (int i = 0; i < IN; i++)
                    ax += k->a[j * IN + i] * adapter_x(k, t, i);
                z += k->scale * k->bb[o * R + j] * ax;
            }
            double g = k->dora ? k->m[o] / k->norm[o] : 1.0;
            y[t * OUT + o] = g * z + k->b[o];
            loss += k->c[t * OUT + o] * y[t * OUT + o];
        }
    return loss;
}

/* d loss / d P[i] by central differences. */
static double fd(struct layer *k, double *p, int i)
{
    double y[N * OUT], h = 1e-6, keep = p[i];
    p[i] = keep + h;
    double up = forward_ref(k, y);
    p[i] = keep - h;
    double down = forward_ref(k, y);
    p[i] = keep;
    return (up - down) / (2 * h);
}

static void fill(double *p, int n, uint64_t key, double scale)
{
    for (int i = 0; i < n; i++)
        p[i] = scale * uniform(key * 7919 + (uint64_t)i);
}

static float *f32(const double *p, int n)
{
    float *f = mb_xmalloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++)
        f[i] = (float)p[i];
    return f;
}

static void check(int dora, const struct mb_adapter_dropout *drop)
{
    struct layer k;
    memset(&k, 0, sizeof k);
    k.dora = dora;
    k.drop = drop;
    k.scale = 16.0 / R;
    fill(k.w, OUT * IN, 1, 0.6);
    fill(k.b, OUT, 2, 0.4);
    fill(k.a, R * IN, 3, 0.5);
    fill(k.bb, OUT * R, 4, 0.3); /* not zero: the adapter matters */
    fill(k.x, N * IN, 5, 2.0);
    fill(k.c, N * OUT, 6, 2.0);
    norms(&k, k.norm);
    for (int o = 0; o < OUT; o++)
        k.m[o] = k.norm[o] * (1.0 + 0.3 * uniform(700 + (uint64_t)o));

    float *w = f32(k.w, OUT * IN), *b = f32(k.b, OUT), *a = f32(k.a, R * IN);
    float *bb = f32(k.bb, OUT * R), *m = f32(k.m, OUT), *x = f32(k.x, N * IN);
    float *dy = f32(k.c, N * OUT);
    float ga[R * IN] = { 0 }, gb[OUT * R] = { 0 }, gm[OUT] = { 0 }, nrm[OUT];
    float y[N * OUT], dx[N * IN];
    struct mb_adapter_scratch scratch = { .ops = mb_ops_cpu(), .ex = mb_ops_cpu()->exec };
    struct mb_linear l = { .mode = MB_LINEAR_NONE, .in = IN, .out = OUT, .w = w, .b = b,
                           .ops = mb_ops_cpu(), .ex = mb_ops_cpu()->exec, .tp = &one };
    l.adapter = (struct mb_adapter){ .rank = R, .dora = dora, .scale = (float)k.scale, .a = a,
                                     .b = bb, .mag = dora ? m : NULL, .ga = ga, .gb = gb,
                                     .gmag = dora ? gm : NULL, .norm = nrm,
                                     .scratch = &scratch, .dropout = drop, .site = SITE,
                                     .col0 = COL0 };
    const char *kind = drop ? "LoRA with dropout" : dora ? "DoRA" : "LoRA";
    double want_y[N * OUT];
    forward_ref(&k, want_y);
    mb_linear_forward(&l, y, x, N);
    char what[64];
    snprintf(what, sizeof what, "%s: forward", kind);
    tap_close_to(what, y, want_y, N * OUT, 1e-5, 1e-5);
    mb_linear_backward(&l, dx, dy, x, N);

    double want[OUT * IN > N * IN ? OUT * IN : N * IN];
    for (int i = 0; i < R * IN; i++)
        want[i] = fd(&k, k.a, i);
    snprintf(what, sizeof what, "%s: the gradient of A", kind);
    tap_close_to(what, ga, want, R * IN, 1e-4, 1e-5);
    for (int i = 0; i < OUT * R; i++)
        want[i] = fd(&k, k.bb, i);
    snprintf(what, sizeof what, "%s: the gradient of B", kind);
    tap_close_to(what, gb, want, OUT * R, 1e-4, 1e-5);
    for (int i = 0; i < N * IN; i++)
        want[i] = fd(&k, k.x, i);
    snprintf(what, sizeof what, "%s: the input gradient through the frozen base", kind);
    tap_close_to(what, dx, want, N * IN, 1e-4, 1e-5);
    if (dora) {
        for (int i = 0; i < OUT; i++)
            want[i] = fd(&k, k.m, i);
        tap_close_to("DoRA: the gradient of m", gm, want, OUT, 1e-4, 1e-5);
    }
    mb_adapter_scratch_release(&scratch);
    free(w), free(b), free(a), free(bb), free(m), free(x), free(dy);
}

static void json_round_trip(void)
{
    struct mb_peft_config pc = { .kind = MB_PEFT_DORA, .dim = 16, .alpha = 64 };
    pc.target[MB_PEFT_QKV] = pc.target[MB_PEFT_FC2] = true;
    char *json = mb_peft_config_to_json(&pc);
    is_str(json,
           "{\"peft\": \"dora\", \"dim\": 16, \"alpha\": 64.0, \"dropout\": 0.0, "
           "\"target_modules\": [\"linear_qkv\", \"linear_fc2\"]}",
           "the peft attribute");
    struct mb_peft_config back;
    ok(mb_peft_config_from_json(&back, json, "test") == 0 && mb_peft_config_same(&back, &pc),
       "it reads back as the same adapters");
    free(json);
    ok(mb_peft_config_from_json(&back, "{\"peft\": \"lora\", \"dim\": 4, \"target_modules\": "
                                "[\"linear_foo\"]}", "test") < 0,
       "an unknown target module in the attribute is an error");
}

/* The mask keeps 1 - p of the elements. */
static void dropout_rate(const struct mb_adapter_dropout *d)
{
    int64_t kept = 0, n = 200000;
    for (int64_t e = 0; e < n; e++)
        kept += mb_adapter_dropout_keep(d, e / 1000, e % 7, e % 13, e % 1000);
    double rate = (double)kept / (double)n;
    ok(fabs(rate - (1.0 - d->p)) < 0.005, "the dropout mask keeps %.4f of the elements (p %.2f)",
       rate, d->p);
}

int main(void)
{
    struct mb_adapter_dropout drop = { .p = 0.3f, .key = 12345, .seq = SEQ, .sample0 = 40 };
    check(0, NULL);
    check(1, NULL);
    check(0, &drop);
    dropout_rate(&drop);
    json_round_trip();
    return tap_done();
}
