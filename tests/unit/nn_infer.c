/* nn_infer - the key/value-cache forward (nn/infer.h) gives mb_model_step's logits.
 *
 * For every family config in tests/data/models (sliding windows shorter than the
 * sequence included), two sequences of 40 tokens: the logits of every position from a
 * prefill of 7, a chunk of 3 and then one token at a time equal the logits of one full
 * forward to 1e-5; a reset cache gives the same again; a full cache and a bad token id
 * are errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "kern/ops.h"
#include "nn/infer.h"
#include "nn/model.h"
#include "tests/lib/tap.h"

#define B 2
#define T 40

/* Norm weights and biases start at 1 or 0: move them so that each one matters. */
static void perturb(struct mb_model *m)
{
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (p->init != MB_INIT_ONES && p->init != MB_INIT_ZEROS)
            continue;
        for (int64_t e = 0; e < p->numel; e++) {
            uint64_t r = mb_splitmix64((uint64_t)i * 1000003u + (uint64_t)e);
            m->w[p->offset + e] += 0.2f * ((float)(r >> 40) / (float)(1 << 24) - 0.5f);
        }
    }
}

static int load_model(struct mb_model *m, const char *path)
{
    mb_json *j = mb_json_parse_file(path);
    struct mb_model_config cfg;
    int rc = j ? mb_model_config_from_json(&cfg, j, path) : -1;
    mb_json_free(j);
    if (rc == 0)
        rc = mb_model_init(m, &cfg, mb_ops_cpu());
    if (rc == 0) {
        mb_model_init_weights(m, 11);
        perturb(m);
    }
    return rc;
}

/* Logits [B, T, V] of one full forward. */
static float *full_logits(struct mb_model *m, const int32_t *tokens)
{
    int32_t labels[B * T];
    float mask[B * T];
    for (int i = 0; i < B * T; i++) {
        labels[i] = 0;
        mask[i] = 1.0f;
    }
    struct mb_batch b = { B, T, tokens, labels, mask, NULL, NULL };
    float *logits = mb_xmalloc((size_t)(B * T * m->cfg.vocab_size) * sizeof(float));
    double ls, ms;
    if (mb_model_step(m, &b, 0.0f, &ls, &ms, logits) < 0) {
        free(logits);
        return NULL;
    }
    return logits;
}

/* Run positions [t0, t0 + n) through the cache; scatter their logits into OUT [B, T, V]. */
static int run_chunk(struct mb_infer *st, const int32_t *tokens, int64_t t0, int64_t n,
                     float *out)
{
    int64_t v = st->m->cfg.vocab_size;
    int32_t chunk[B * T];
    float *lg = mb_xmalloc((size_t)(B * n * v) * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(chunk + b * n, tokens + b * T + t0, (size_t)n * sizeof(int32_t));
    int rc = mb_infer_forward(st, chunk, n, true, lg);
    for (int b = 0; rc == 0 && b < B; b++)
        memcpy(out + (b * T + t0) * v, lg + b * n * v, (size_t)(n * v) * sizeof(float));
    free(lg);
    return rc;
}

/* Prefill 7, a chunk of 3, then one at a time. */
static int cached_logits(struct mb_infer *st, const int32_t *tokens, float *out)
{
    int rc = run_chunk(st, tokens, 0, 7, out);
    if (rc == 0)
        rc = run_chunk(st, tokens, 7, 3, out);
    for (int64_t t = 10; rc == 0 && t < T; t++)
        rc = run_chunk(st, tokens, t, 1, out);
    return rc;
}

static double max_diff(const float *a, const float *b, int64_t n, double *scale)
{
    double worst = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)b[i]));
    }
    *scale = big;
    return worst;
}

static void check_family(const char *root, const char *family)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/models/%s.json", root, family);
    struct mb_model m;
    if (!ok(load_model(&m, path) == 0, "%s: model builds", family))
        return;
    int64_t v = m.cfg.vocab_size, n = B * T * v;
    int32_t tokens[B * T];
    for (int i = 0; i < B * T; i++)
        tokens[i] = (int32_t)(mb_splitmix64(977 + (uint64_t)i) % (uint64_t)v);
    float *want = full_logits(&m, tokens);
    float *got = mb_xcalloc((size_t)n, sizeof(float));
    struct mb_infer st;
    ok(want && mb_infer_init(&st, &m, B, T) == 0, "%s: full forward and cache", family);
    double big = 0, d;
    ok(cached_logits(&st, tokens, got) == 0, "%s: prefill 7, chunk 3, then 30 single steps",
       family);
    d = max_diff(got, want, n, &big);
    ok(d <= 1e-5, "%s: cached logits equal the full forward's (max diff %.2e, max |logit| %.2f, "
       "window %lld)", family, d, big, (long long)m.cfg.sliding_window);
    mb_infer_reset(&st);
    memset(got, 0, (size_t)n * sizeof(float));
    ok(cached_logits(&st, tokens, got) == 0 && max_diff(got, want, n, &big) <= 1e-5,
       "%s: after a reset, the same logits", family);
    float last[B * 512];
    ok(v <= 512 && mb_infer_forward(&st, tokens, 1, false, last) < 0,
       "%s: a full cache is an error", family);
    mb_infer_reset(&st);
    int32_t bad[B] = { 0, (int32_t)v };
    ok(mb_infer_forward(&st, bad, 1, false, last) < 0, "%s: token id = vocab is an error",
       family);
    mb_infer_free(&st);
    free(got);
    free(want);
    mb_model_free(&m);
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    const char *families[] = { "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2",
                               "gemma3", "gpt2" };
    for (size_t i = 0; i < MB_ARRAY_LEN(families); i++)
        check_family(root, families[i]);
    return tap_done();
}
