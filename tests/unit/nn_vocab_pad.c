/* nn_vocab_pad - padded vocabulary rows are masked out of the softmax.
 *
 * For every family config in tests/data/models, model P has the config's vocabulary V
 * padded by 24 rows (real_vocab_size V) and model U is the same model without them: the
 * same weights in every shared element, the padded rows of the embedding and output
 * layer set to large values (a softmax that saw them would put nearly all its mass
 * there). On one micro-batch, P's loss equals U's, every gradient equals U's, the
 * padded rows' gradients are exactly 0, P's logits are U's with -inf in the padded
 * columns (mb_model_step and the cached forward of generation), and a token id in the
 * padded rows is refused.
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
#define T 24
#define PAD 24

static int load_config(struct mb_model_config *cfg, const char *path)
{
    mb_json *j = mb_json_parse_file(path);
    int rc = j ? mb_model_config_from_json(cfg, j, path) : -1;
    mb_json_free(j);
    return rc;
}

static bool vocab_rows(enum mb_param_id id)
{
    return id == MB_P_WORD_EMB || id == MB_P_OUTPUT_W;
}

/* Row-major [rows, cols] tensors of P whose first rows are U's: copy U's elements over
 * P's, and give P's extra rows a large constant. Every other tensor is the same shape. */
static void copy_weights(struct mb_model *p, const struct mb_model *u)
{
    for (int i = 0; i < u->params.count; i++) {
        const struct mb_param *pu = &u->params.items[i];
        const struct mb_param *pp = mb_param_get(&p->params, pu->id);
        memcpy(p->w + pp->offset, u->w + pu->offset, (size_t)pu->numel * sizeof(float));
        for (int64_t e = pu->numel; vocab_rows(pu->id) && e < pp->numel; e++)
            p->w[pp->offset + e] = 3.0f;
    }
}

/* Largest |a - b| over the elements both models hold, for gradients. */
static double grad_diff(const struct mb_model *p, const struct mb_model *u)
{
    double worst = 0;
    for (int i = 0; i < u->params.count; i++) {
        const struct mb_param *pu = &u->params.items[i];
        const struct mb_param *pp = mb_param_get(&p->params, pu->id);
        for (int64_t e = 0; e < pu->numel; e++)
            worst = fmax(worst, fabs((double)p->g[pp->offset + e] - u->g[pu->offset + e]));
    }
    return worst;
}

/* Nonzero gradient elements in the padded rows of P. */
static int64_t padded_grads(const struct mb_model *p, int64_t real)
{
    int64_t n = 0, h = p->cfg.hidden_size;
    for (int i = 0; i < p->params.count; i++) {
        const struct mb_param *pp = &p->params.items[i];
        for (int64_t e = real * h; vocab_rows(pp->id) && e < pp->numel; e++)
            n += p->g[pp->offset + e] != 0.0f;
    }
    return n;
}

/* P's logits [n, V + PAD] hold U's [n, V] and -inf beyond: the worst difference, or
 * INFINITY when a padded column is not -inf. */
static double logits_diff(const float *lp, const float *lu, int64_t n, int64_t v)
{
    double worst = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t c = 0; c < v; c++)
            worst = fmax(worst, fabs((double)lp[r * (v + PAD) + c] - lu[r * v + c]));
        for (int64_t c = v; c < v + PAD; c++)
            if (lp[r * (v + PAD) + c] != -INFINITY)
                return INFINITY;
    }
    return worst;
}

static double step(struct mb_model *m, const struct mb_batch *b, float *logits)
{
    double loss = 0, mask = 0;
    mb_model_zero_grad(m);
    if (mb_model_step(m, b, 1.0f, &loss, &mask, logits) < 0)
        return NAN;
    return loss / mask;
}

/* The cached forward (generation) of both models on the first tokens. */
static void check_infer(struct mb_model *p, struct mb_model *u, const int32_t *tokens,
                        const char *family)
{
    int64_t v = u->cfg.vocab_size;
    struct mb_infer sp, su;
    float *lp = mb_xmalloc((size_t)(B * (v + PAD)) * sizeof(float));
    float *lu = mb_xmalloc((size_t)(B * v) * sizeof(float));
    int rc = mb_infer_init(&sp, p, B, T) | mb_infer_init(&su, u, B, T);
    rc |= mb_infer_forward(&sp, tokens, 1, false, lp) | mb_infer_forward(&su, tokens, 1, false, lu);
    ok(rc == 0 && logits_diff(lp, lu, B, v) <= 1e-5,
       "%s: generation's logits: the unpadded model's, -inf on the padded rows", family);
    int32_t bad[B] = { 0, (int32_t)v };
    ok(mb_infer_forward(&sp, bad, 1, false, lp) < 0,
       "%s: generation refuses a token id in the padded rows", family);
    mb_infer_free(&sp);
    mb_infer_free(&su);
    free(lp);
    free(lu);
}

static void check_family(const char *root, const char *family)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/models/%s.json", root, family);
    struct mb_model_config cu, cp;
    struct mb_model u, p;
    if (!ok(load_config(&cu, path) == 0, "%s: config", family))
        return;
    cp = cu;
    cp.vocab_size = cu.vocab_size + PAD;
    cp.real_vocab_size = cu.vocab_size;
    if (!ok(mb_model_init(&u, &cu, mb_ops_cpu()) == 0 && mb_model_init(&p, &cp, mb_ops_cpu()) == 0,
            "%s: models of %lld and %lld + %d rows", family, (long long)cu.vocab_size,
            (long long)cu.vocab_size, PAD))
        return;
    mb_model_init_weights(&u, 5);
    copy_weights(&p, &u);
    int64_t v = cu.vocab_size, n = B * T;
    int32_t tokens[B * T], labels[B * T];
    float mask[B * T];
    for (int i = 0; i < n; i++) {
        tokens[i] = (int32_t)(mb_splitmix64(31 + (uint64_t)i) % (uint64_t)v);
        labels[i] = (int32_t)(mb_splitmix64(7919 + (uint64_t)i) % (uint64_t)v);
        mask[i] = i % 5 ? 1.0f : 0.0f;
    }
    struct mb_batch b = { B, T, tokens, labels, mask, NULL, NULL };
    float *lp = mb_xmalloc((size_t)(n * (v + PAD)) * sizeof(float));
    float *lu = mb_xmalloc((size_t)(n * v) * sizeof(float));
    double loss_p = step(&p, &b, lp), loss_u = step(&u, &b, lu);
    ok(fabs(loss_p - loss_u) <= 1e-6 * fabs(loss_u),
       "%s: loss with padded rows %.9g = without %.9g (cap %g)", family, loss_p, loss_u,
       cu.final_logit_softcapping);
    double gd = grad_diff(&p, &u);
    ok(gd <= 1e-6, "%s: every gradient equals the unpadded model's (max diff %.2e)", family, gd);
    is_int(padded_grads(&p, v), 0, "%s: the padded rows get no gradient", family);
    ok(logits_diff(lp, lu, n, v) <= 1e-5, "%s: logits: the unpadded model's, -inf on the padded "
       "rows", family);
    labels[3] = (int32_t)v;
    ok(isnan(step(&p, &b, NULL)), "%s: a label in the padded rows is refused", family);
    check_infer(&p, &u, tokens, family);
    free(lp);
    free(lu);
    mb_model_free(&p);
    mb_model_free(&u);
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    const char *families[] = { "llama", "qwen3", "gemma2", "gemma3", "gpt2" };
    for (size_t i = 0; i < MB_ARRAY_LEN(families); i++)
        check_family(root, families[i]);
    return tap_done();
}
