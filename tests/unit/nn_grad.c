/* nn_grad - the whole model's backward pass against finite differences of its forward.
 *
 * For each family's test config and each parameter tensor, a random direction u within
 * that tensor gives the directional derivative two ways: g . u from the backward pass,
 * and (L(w + h u) - L(w - h u)) / 2h from two forward passes. fp32 forwards limit the
 * agreement to about 1e-3, so the tolerance is 1e-2 relative (a wrong gradient is off
 * by O(1)). Norm weights and biases are moved off 1 and 0 first.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "kern/ops.h"
#include "nn/model.h"
#include "tests/lib/tap.h"

#define B 2
#define T 12

static float uniform(uint64_t key)
{
    return (float)(mb_splitmix64(key) >> 40) / (float)(1 << 24) - 0.5f;
}

struct fixture {
    struct mb_model m;
    int32_t tokens[B * T], labels[B * T];
    float mask[B * T];
    struct mb_batch batch;
    double mask_sum;
};

static double loss_at(struct fixture *f)
{
    double ls, ms;
    if (mb_model_step(&f->m, &f->batch, 0.0f, &ls, &ms, NULL) < 0)
        return NAN;
    return ls / ms;
}

static int setup(struct fixture *f, const char *path)
{
    mb_json *j = mb_json_parse_file(path);
    struct mb_model_config cfg;
    if (!j || mb_model_config_from_json(&cfg, j, path) < 0)
        return -1;
    mb_json_free(j);
    if (mb_model_init(&f->m, &cfg, mb_ops_cpu()) < 0)
        return -1;
    mb_model_init_weights(&f->m, 11);
    for (int i = 0; i < f->m.params.count; i++) {
        const struct mb_param *p = &f->m.params.items[i];
        if (p->init == MB_INIT_ONES || p->init == MB_INIT_ZEROS)
            for (int64_t e = 0; e < p->numel; e++)
                f->m.w[p->offset + e] += 0.3f * uniform((uint64_t)(i * 1000003 + e));
    }
    f->mask_sum = 0;
    for (int i = 0; i < B * T; i++) {
        f->tokens[i] = (int32_t)(mb_splitmix64((uint64_t)i) % (uint64_t)cfg.vocab_size);
        f->labels[i] = (int32_t)(mb_splitmix64((uint64_t)i + 1) % (uint64_t)cfg.vocab_size);
        f->mask[i] = i % 7 == 2 ? 0.0f : 1.0f;
        f->mask_sum += f->mask[i];
    }
    f->batch = (struct mb_batch){ B, T, f->tokens, f->labels, f->mask, NULL, NULL };
    return 0;
}

/* Directional check of parameter P; returns the relative error. */
static double check_param(struct fixture *f, const struct mb_param *p, int idx)
{
    float *w = f->m.w + p->offset;
    const float *g = f->m.g + p->offset;
    float *u = mb_xmalloc((size_t)p->numel * sizeof(float));
    double gu = 0, unorm = 0;
    for (int64_t e = 0; e < p->numel; e++) {
        u[e] = uniform(mb_splitmix64((uint64_t)idx) + (uint64_t)e);
        gu += (double)g[e] * u[e];
        unorm += (double)u[e] * u[e];
    }
    float *saved = mb_xmalloc((size_t)p->numel * sizeof(float));
    memcpy(saved, w, (size_t)p->numel * sizeof(float));
    /* central differences with steps of norm 0.04 and 0.02 along u / |u|, combined by
     * Richardson extrapolation so the curvature term cancels */
    gu /= sqrt(unorm);
    double fd_h[2];
    for (int k = 0; k < 2; k++) {
        double h = (k ? 2e-2 : 4e-2) / sqrt(unorm);
        for (int64_t e = 0; e < p->numel; e++)
            w[e] = saved[e] + (float)(h * u[e]);
        double up = loss_at(f);
        for (int64_t e = 0; e < p->numel; e++)
            w[e] = saved[e] - (float)(h * u[e]);
        double down = loss_at(f);
        fd_h[k] = (up - down) / (2 * h) / sqrt(unorm);
    }
    memcpy(w, saved, (size_t)p->numel * sizeof(float));
    double fd = (4 * fd_h[1] - fd_h[0]) / 3;
    free(u);
    free(saved);
    /* relative error, floored at 1e-3: fp32 forwards put about 1e-5 of noise on the
     * difference quotient, which swamps derivatives much smaller than that floor */
    double rel = fabs(fd - gu) / (fmax(fabs(fd), fabs(gu)) + 1e-3);
    if (rel > 1e-2)
        tap_diag("%s: backward %.6e, finite difference %.6e", p->name, gu, fd);
    return rel;
}

static void check_family(const char *root, const char *family)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/models/%s.json", root, family);
    struct fixture f;
    memset(&f, 0, sizeof(f));
    if (!ok(setup(&f, path) == 0, "%s: model builds", family))
        return;
    double ls, ms;
    mb_model_zero_grad(&f.m);
    ok(mb_model_step(&f.m, &f.batch, (float)(1.0 / f.mask_sum), &ls, &ms, NULL) == 0,
       "%s: forward and backward run", family);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < f.m.params.count; i++) {
        double rel = check_param(&f, &f.m.params.items[i], i);
        if (rel > worst) {
            worst = rel;
            worst_name = f.m.params.items[i].name;
        }
    }
    ok(worst < 1e-2, "%s: every parameter's gradient matches finite differences (worst %.2e, %s)",
       family, worst, worst_name);
    mb_model_free(&f.m);
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    const char *families[] = { "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2",
                               "gemma3", "gpt2" };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        check_family(root, families[i]);
    return tap_done();
}
