/* tests/unit/sft_pack.c - packed SFT rows give the loss and gradients of the same
 * examples unpacked (data/sft.h + per-document attention of nn/model.h), and attention
 * never crosses examples: the loss of example B in a packed row does not move when
 * example A's tokens change, while without the document mask it does.
 *
 * The rows are short prompt/answer pairs written here, encoded with the byte tokenizer,
 * on the tiny Llama of tests/data/models/llama.json with random weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "data/gpt_index.h"
#include "data/sft.h"
#include "kern/ops.h"
#include "nn/model.h"
#include "tests/lib/tap.h"

#define SEQ 96
#define ROWS 23

struct rows {
    int64_t n;
    int32_t *tokens, *labels, *pos, *seg;
    float *mask;
};

static void write_jsonl(const char *path)
{
    FILE *f = fopen(path, "w");
    for (int i = 0; i < ROWS; i++)
        fprintf(f, "{\"input\": \"Q%d: what is %d plus %d?%.*s\", \"output\": \"%d%.*s\"}\n", i,
                i * 7, i % 5, i % 4 * 6, "  and then some more words ", i * 7 + i % 5,
                i % 3 * 8, ", so there.........");
    fclose(f);
}

static mb_sft_data *open_data(const char *path, const mb_tokenizer *tok, bool packed)
{
    const char *paths[] = { path };
    struct mb_sft_config c;
    memset(&c, 0, sizeof c);
    c.fmt = (struct mb_sft_format){ "{input}", "output", " ", SEQ, 256, false, NULL };
    c.paths = paths;
    c.n_paths = 1;
    c.seq_length = SEQ;
    c.packed = packed;
    c.seed = 5678;
    c.train_samples = 100;
    c.quiet = true;
    mb_sft_data *d = NULL;
    if (mb_sft_open(&d, &c, tok) < 0)
        return NULL;
    return d;
}

/* One epoch of D's samples, one per row. */
static void all_samples(mb_sft_data *d, struct rows *r)
{
    r->n = mb_sft_size(d, MB_SPLIT_TRAIN);
    size_t n = (size_t)(r->n * SEQ);
    r->tokens = mb_xmalloc(n * sizeof(int32_t));
    r->labels = mb_xmalloc(n * sizeof(int32_t));
    r->pos = mb_xmalloc(n * sizeof(int32_t));
    r->seg = mb_xmalloc(n * sizeof(int32_t));
    r->mask = mb_xmalloc(n * sizeof(float));
    for (int64_t k = 0; k < r->n; k++) {
        int64_t at = k * SEQ;
        if (mb_sft_sample(d, MB_SPLIT_TRAIN, k, r->tokens + at, r->labels + at, r->mask + at,
                          r->pos + at, r->seg + at) < 0)
            tap_diag("sample %lld failed", (long long)k);
    }
}

static void rows_free(struct rows *r)
{
    free(r->tokens);
    free(r->labels);
    free(r->pos);
    free(r->seg);
    free(r->mask);
}

/* Loss (sum and mask sum) and, in G (params.total), the gradient of the mean loss. */
static void step(struct mb_model *m, const struct rows *r, bool segments, double *ls,
                 double *ms, float *g)
{
    struct mb_batch b = { r->n, SEQ, r->tokens, r->labels, r->mask, r->pos,
                          segments ? r->seg : NULL };
    mb_model_zero_grad(m);
    double sum = 0, cnt = 0;
    for (int64_t i = 0; i < r->n * SEQ; i++)
        cnt += r->mask[i];
    if (mb_model_step(m, &b, (float)(1.0 / cnt), &sum, ms, NULL) < 0)
        tap_diag("step failed");
    *ls = sum;
    if (g)
        memcpy(g, m->g, (size_t)m->params.total * sizeof *g);
}

static double max_rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return d / scale;
}

/* Loss of the second example of the first packed row with two or more, with A's (the
 * first example's) tokens as they are or replaced. */
static double second_example_loss(struct mb_model *m, struct rows *p, bool segments,
                                  bool change_a)
{
    int64_t row = -1;
    for (int64_t k = 0; k < p->n && row < 0; k++)
        if (p->seg[k * SEQ + SEQ - 1] >= 2 && p->mask[k * SEQ] >= 0)
            row = k;
    struct rows one = { 1, NULL, NULL, NULL, NULL, NULL };
    size_t n = SEQ;
    one.tokens = mb_xmalloc(n * sizeof(int32_t));
    one.labels = mb_xmalloc(n * sizeof(int32_t));
    one.pos = mb_xmalloc(n * sizeof(int32_t));
    one.seg = mb_xmalloc(n * sizeof(int32_t));
    one.mask = mb_xmalloc(n * sizeof(float));
    memcpy(one.tokens, p->tokens + row * SEQ, n * sizeof(int32_t));
    memcpy(one.labels, p->labels + row * SEQ, n * sizeof(int32_t));
    memcpy(one.pos, p->pos + row * SEQ, n * sizeof(int32_t));
    memcpy(one.seg, p->seg + row * SEQ, n * sizeof(int32_t));
    for (int64_t t = 0; t < SEQ; t++) {
        one.mask[t] = one.seg[t] == 1 ? p->mask[row * SEQ + t] : 0.0f;
        if (change_a && one.seg[t] == 0)
            one.tokens[t] = (one.tokens[t] * 31 + 7) % 256;
    }
    double ls, ms;
    step(m, &one, segments, &ls, &ms, NULL);
    rows_free(&one);
    return ls / ms;
}

int main(void)
{
    const char *root = getenv("MB_ROOT") ? getenv("MB_ROOT") : "."; /* prove runs at the top */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/models/llama.json", root);
    mb_json *j = mb_json_parse_file(path);
    tap_enter_scratch_dir();
    write_jsonl("rows.jsonl");
    mb_tokenizer *tok = mb_tokenizer_load("bytes");
    mb_sft_data *du = open_data("rows.jsonl", tok, false), *dp = open_data("rows.jsonl", tok, true);
    struct mb_model_config cfg;
    struct mb_model m;
    if (!ok(du && dp && j && mb_model_config_from_json(&cfg, j, path) == 0 &&
                mb_model_init(&m, &cfg, mb_ops_cpu()) == 0,
            "data and model open"))
        return tap_done();
    mb_json_free(j);
    mb_model_init_weights(&m, 3);
    struct rows u, p;
    all_samples(du, &u);
    all_samples(dp, &p);
    ok(u.n == ROWS && p.n <= ROWS / 2, "%lld examples unpacked, %lld packed rows", (long long)u.n,
       (long long)p.n);

    float *gu = mb_xmalloc((size_t)m.params.total * sizeof(float));
    float *gp = mb_xmalloc((size_t)m.params.total * sizeof(float));
    double lu, mu, lp, mp, lx, mx;
    step(&m, &u, false, &lu, &mu, gu);
    step(&m, &p, true, &lp, &mp, gp);
    ok(mu == mp && mu > ROWS, "same supervised tokens packed and unpacked (%g, %g)", mu, mp);
    double rel = fabs(lp / mp - lu / mu) / (lu / mu);
    ok(rel < 1e-5, "packed loss %.7f = unpacked loss %.7f (rel %.2e)", lp / mp, lu / mu, rel);
    double grel = max_rel_diff(gp, gu, m.params.total);
    ok(grel < 1e-4, "packed gradients = unpacked gradients (max diff %.2e of the largest)", grel);
    step(&m, &p, false, &lx, &mx, NULL);
    ok(fabs(lx / mx - lu / mu) / (lu / mu) > 1e-3,
       "without the document mask the packed loss differs (%.7f vs %.7f): the test sees it",
       lx / mx, lu / mu);

    double b0 = second_example_loss(&m, &p, true, false);
    double b1 = second_example_loss(&m, &p, true, true);
    ok(b0 == b1, "example B's loss does not move when A's tokens change (%.9f, %.9f)", b0, b1);
    double c0 = second_example_loss(&m, &p, false, false);
    double c1 = second_example_loss(&m, &p, false, true);
    ok(fabs(c0 - c1) > 1e-4, "without the mask it does (%.9f, %.9f)", c0, c1);

    free(gu);
    free(gp);
    rows_free(&u);
    rows_free(&p);
    mb_model_free(&m);
    mb_sft_close(du);
    mb_sft_close(dp);
    mb_tokenizer_free(tok);
    return tap_done();
}
