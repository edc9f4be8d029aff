/* tests/helpers/tp_check.c - tensor-parallel ops and whole models against their unsplit
 * selves, run under mpirun: the whole world is one TP group (TP = world size).
 *
 *   tp_check ops
 *   tp_check model CONFIG.json [--groups N] [--sp] [--steps K]
 *
 * ops: the column- and row-parallel linear layers of nn/linear.h (with and without
 * sequence parallelism), the vocabulary-parallel cross-entropy (the kern xent_max /
 * xent_sumexp / xent_finish steps around the all-reduces of parallel.md 2.8) and the
 * vocabulary-parallel embedding (parallel.md 2.7), forward and backward. Every rank also
 * runs the unsplit op (one process, no communication) on the same inputs and compares its
 * shard of every output and gradient with the matching part of the unsplit result.
 *
 * model: the model of CONFIG (num_query_groups set to N with --groups) built whole and as
 * this rank's TP shards (mb_model_init_tp, --sp for sequence parallelism), from the same
 * seed; norms and biases moved off 1 and 0 by a function of their global index. One
 * forward and backward: the loss, every gradient shard (after mb_model_finish_grads)
 * and the gradient norm (mb_model_grad_sumsq summed over TP) against the whole model's.
 * Then K (default 3) AdamW steps with clipping on both, and every weight shard against
 * the whole model's weights (relative Frobenius error, Megatron's measure).
 *
 * A tensor passes when max |shard - whole part| <= 1e-5 * max |whole| (fp32 sums in
 * another order differ by about 1e-7 of the largest term); weights when
 * |shard - whole part| <= 1e-5 |whole part| in the Frobenius norm. Rank 0 prints one "ok" or
 * "not ok" line per check; each rank prints the tensors it found wrong to stderr. Exit 1
 * when any check failed on any rank.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/tool.h"
#include "dist/pstate.h"
#include "kern/ops.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "train/optim.h"

#define TOL 1e-5
/* Adam divides by sqrt(v) + eps: with eps 1e-8 a gradient whose exact value is 0 (the
 * key bias: softmax ignores a shift shared by all keys) and whose fp32 value is rounding
 * noise of 1e-9 moves its weight by a good part of lr, differently under each
 * summation order. A larger eps keeps the weight check about the sums, not that noise;
 * mb-pretrain's loss curves (t8802) run the real setting. */
#define ADAM_EPS 1e-4f


static const struct mb_group one = { .rank = 0, .size = 1, .comm = NULL, .name = "one",
                                    .kind = MB_GROUP_TP };
static int world_rank; /* for diagnostics */

struct checker {
    const struct mb_pstate *ps;
    int failed; /* checks failed on any rank */
};

static float uniform(uint64_t key)
{
    return (float)(mb_splitmix64(key) >> 40) / (float)(1 << 24) - 0.5f;
}

static float *random_buf(int64_t n, uint64_t key, float scale)
{
    float *x = mb_xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * uniform(key * 1000003u + (uint64_t)i);
    return x;
}

/* Worst |a - b| over N, relative to the largest |b|; NAN when anything is not finite. */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double worst = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return NAN;
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs((double)b[i]));
    }
    return big > 0 ? worst / big : worst;
}

/* |a - b| / |b| in the Frobenius norm (Megatron's measure, parallel.md 7.1). */
static double frobenius_err(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return NAN;
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* Record one comparison on this rank (WHAT names it in the diagnostic). */
static bool close_enough(const char *what, double err)
{
    if (err <= TOL)
        return true;
    fprintf(stderr, "# rank %d: %s off by %.3e (relative to its largest value)\n",
            world_rank, what, err);
    return false;
}

/* Agree on OK over the world and print the result line on rank 0. */
static void report(struct checker *c, bool ok, const char *what)
{
    ok = mb_dist_all_ok(c->ps->world, ok) != 0;
    if (!ok)
        c->failed++;
    if (c->ps->world->rank == 0)
        printf("%s - %s (TP %d)\n", ok ? "ok" : "not ok", what, c->ps->tp);
}

/* Columns [c0, c0 + nc) of the [rows, cols] matrix X, packed. */
static float *columns(const float *x, int64_t rows, int64_t cols, int64_t c0, int64_t nc)
{
    float *y = mb_xmalloc((size_t)(rows * nc) * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        memcpy(y + r * nc, x + r * cols + c0, (size_t)nc * sizeof(float));
    return y;
}

/* ---- linear layers ---- */

enum { N = 8, IN = 8, OUT = 12 }; /* N, IN and OUT divide by 1, 2 and 4 */

struct linear_case {
    const float *x, *w, *b, *dy;  /* whole inputs */
    float y[N * OUT], dx[N * IN]; /* whole results */
    float dw[OUT * IN], db[OUT];
};

static void whole_linear(struct linear_case *k, const struct mb_ops *ops)
{
    memset(k->dw, 0, sizeof k->dw);
    memset(k->db, 0, sizeof k->db);
    struct mb_linear l = { .mode = MB_LINEAR_NONE, .in = IN, .out = OUT, .w = k->w, .b = k->b,
                           .gw = k->dw, .gb = k->db, .ops = ops, .ex = ops->exec, .tp = &one };
    mb_linear_forward(&l, k->y, k->x, N);
    mb_linear_backward(&l, k->dx, k->dy, k->x, N);
}

/* Column-parallel: this rank's OUT/TP rows of W and b; x whole (or its row block under
 * SP); the output keeps the rank's columns. */
static bool column_case(const struct linear_case *k, const struct mb_pstate *ps, bool sp)
{
    const struct mb_group *tp = mb_pstate_group(ps, MB_GROUP_TP);
    int64_t t = tp->size, r = tp->rank, o = OUT / t, c0 = r * o, rows = sp ? N / t : N;
    float *w = columns(k->w, 1, OUT * IN, c0 * IN, o * IN), *b = columns(k->b, 1, OUT, c0, o);
    float *gw = mb_xcalloc((size_t)(o * IN), sizeof(float));
    float *gb = mb_xcalloc((size_t)o, sizeof(float));
    float *gathered = mb_xmalloc(sizeof(float) * N * (IN > OUT ? IN : OUT));
    float *y = mb_xmalloc(sizeof(float) * N * (size_t)o), *dx = mb_xmalloc(sizeof(float) * N * IN);
    const float *x = k->x + (sp ? r * rows * IN : 0);
    struct mb_linear l = { .mode = MB_LINEAR_COLUMN, .sequence_parallel = sp, .in = IN,
                           .out = o, .w = w, .b = b, .gw = gw, .gb = gb, .ops = mb_ops_cpu(),
                           .ex = mb_ops_cpu()->exec, .tp = tp, .gathered = sp ? gathered : NULL };
    mb_linear_forward(&l, y, x, N);
    float *dy = columns(k->dy, N, OUT, c0, o), *want_y = columns(k->y, N, OUT, c0, o);
    mb_linear_backward(&l, dx, dy, x, N);
    bool ok = close_enough("column y", rel_err(y, want_y, N * o));
    ok &= close_enough("column dx", rel_err(dx, k->dx + (sp ? r * rows * IN : 0), rows * IN));
    ok &= close_enough("column dW", rel_err(gw, k->dw + c0 * IN, o * IN));
    ok &= close_enough("column db", rel_err(gb, k->db + c0, o));
    free(w), free(b), free(gw), free(gb), free(gathered), free(y), free(dx), free(dy);
    free(want_y);
    return ok;
}

/* Row-parallel: this rank's IN/TP columns of W and of x; b whole; the output whole (or
 * its row block under SP), the bias gradient summed over TP under SP. */
static bool row_case(const struct linear_case *k, const struct mb_pstate *ps, bool sp)
{
    const struct mb_group *tp = mb_pstate_group(ps, MB_GROUP_TP);
    int64_t t = tp->size, r = tp->rank, i = IN / t, c0 = r * i, rows = sp ? N / t : N;
    float *w = columns(k->w, OUT, IN, c0, i), *x = columns(k->x, N, IN, c0, i);
    float *gw = mb_xcalloc((size_t)(OUT * i), sizeof(float)), *gb = mb_xcalloc(OUT, sizeof(float));
    float *gathered = mb_xmalloc(sizeof(float) * N * (IN > OUT ? IN : OUT));
    float *y = mb_xmalloc(sizeof(float) * N * OUT), *dx = mb_xmalloc(sizeof(float) * N * (size_t)i);
    struct mb_linear l = { .mode = MB_LINEAR_ROW, .sequence_parallel = sp, .in = i, .out = OUT,
                           .w = w, .b = k->b, .gw = gw, .gb = gb, .ops = mb_ops_cpu(),
                           .ex = mb_ops_cpu()->exec, .tp = tp, .gathered = sp ? gathered : NULL };
    mb_linear_forward(&l, y, x, N);
    mb_linear_backward(&l, dx, k->dy + (sp ? r * rows * OUT : 0), x, N);
    if (sp)
        mb_group_sum_f32(tp, gb, OUT); /* what mb_model_finish_grads does */
    float *want_dx = columns(k->dx, N, IN, c0, i), *want_dw = columns(k->dw, OUT, IN, c0, i);
    bool ok = close_enough("row y", rel_err(y, k->y + (sp ? r * rows * OUT : 0), rows * OUT));
    ok &= close_enough("row dx", rel_err(dx, want_dx, N * i));
    ok &= close_enough("row dW", rel_err(gw, want_dw, OUT * i));
    ok &= close_enough("row db", rel_err(gb, k->db, OUT));
    free(w), free(x), free(gw), free(gb), free(gathered), free(y), free(dx), free(want_dx);
    free(want_dw);
    return ok;
}

static void check_linear(struct checker *c)
{
    struct linear_case k;
    float *x = random_buf(N * IN, 1, 2.0f), *w = random_buf(OUT * IN, 2, 1.0f);
    float *b = random_buf(OUT, 3, 1.0f), *dy = random_buf(N * OUT, 4, 1.0f);
    k.x = x, k.w = w, k.b = b, k.dy = dy;
    whole_linear(&k, mb_ops_cpu());
    for (int sp = 0; sp < 2; sp++) {
        char what[96];
        snprintf(what, sizeof what, "column-parallel linear%s: y, dx, dW, db as unsplit",
                 sp ? " (sequence-parallel)" : "");
        report(c, column_case(&k, c->ps, sp), what);
        snprintf(what, sizeof what, "row-parallel linear%s: y, dx, dW, db as unsplit",
                 sp ? " (sequence-parallel)" : "");
        report(c, row_case(&k, c->ps, sp), what);
    }
    free(x), free(w), free(b), free(dy);
}

/* ---- vocabulary-parallel cross-entropy and embedding ---- */

enum { ROWS = 6, VOCAB = 11, DIM = 5 }; /* 11 rows: blocks of unequal size under TP 2, 4 */

static void vocab_block(const struct mb_group *tp, int64_t *start, int64_t *count)
{
    *start = VOCAB * tp->rank / tp->size;
    *count = VOCAB * (tp->rank + 1) / tp->size - *start;
}

static bool xent_case(const struct mb_pstate *ps, float softcap)
{
    const struct mb_ops *o = mb_ops_cpu();
    struct mb_exec *ex = o->exec;
    const struct mb_group *tp = mb_pstate_group(ps, MB_GROUP_TP);
    int32_t target[ROWS] = { 3, 10, -1, 0, 7, 5 };
    float mask[ROWS] = { 1, 1, 1, 0, 1, 0.5f };
    float *whole = random_buf(ROWS * VOCAB, 5, 12.0f), loss[ROWS], want_loss[ROWS];
    int64_t start, v;
    vocab_block(tp, &start, &v);
    float *z = columns(whole, ROWS, VOCAB, start, v);
    o->xent(ex, whole, want_loss, target, mask, ROWS, VOCAB, softcap, 0.25f);
    float max[ROWS], zt[ROWS];
    double sum[ROWS];
    o->xent_max(ex, z, max, ROWS, v, softcap);
    mb_group_max_f32(tp, max, ROWS);
    o->xent_sumexp(ex, z, max, target, start, sum, zt, ROWS, v);
    mb_group_sum_f32(tp, zt, ROWS);
    mb_group_sum_f64(tp, sum, ROWS);
    o->xent_finish(ex, z, loss, max, sum, zt, target, start, mask, ROWS, v, softcap, 0.25f);
    float *want = columns(whole, ROWS, VOCAB, start, v);
    bool ok = close_enough("cross-entropy loss", rel_err(loss, want_loss, ROWS));
    ok &= close_enough("cross-entropy dlogits", rel_err(z, want, ROWS * v));
    free(whole), free(z), free(want);
    return ok;
}

static bool embedding_case(const struct mb_pstate *ps)
{
    const struct mb_ops *o = mb_ops_cpu();
    struct mb_exec *ex = o->exec;
    const struct mb_group *tp = mb_pstate_group(ps, MB_GROUP_TP);
    int32_t ids[ROWS] = { 0, 10, 4, 4, 9, 5 }, local[ROWS];
    float *table = random_buf(VOCAB * DIM, 6, 1.0f), *dout = random_buf(ROWS * DIM, 7, 1.0f);
    float y[ROWS * DIM], want_y[ROWS * DIM], want_dt[VOCAB * DIM] = { 0 };
    o->embedding_fwd(ex, want_y, table, ids, ROWS, DIM, 1.5f, false);
    o->embedding_bwd(ex, want_dt, dout, ids, ROWS, DIM, 1.5f);
    int64_t start, v;
    vocab_block(tp, &start, &v);
    for (int i = 0; i < ROWS; i++)
        local[i] = ids[i] >= start && ids[i] < start + v ? (int32_t)(ids[i] - start) : -1;
    float *dt = mb_xcalloc((size_t)(v * DIM), sizeof(float));
    o->embedding_fwd(ex, y, table + start * DIM, local, ROWS, DIM, 1.5f, false);
    mb_group_sum_f32(tp, y, ROWS * DIM);
    o->embedding_bwd(ex, dt, dout, local, ROWS, DIM, 1.5f);
    bool ok = close_enough("embedding y", rel_err(y, want_y, ROWS * DIM));
    ok &= close_enough("embedding dtable", rel_err(dt, want_dt + start * DIM, v * DIM));
    free(table), free(dout), free(dt);
    return ok;
}

static void check_ops(struct checker *c)
{
    check_linear(c);
    report(c, xent_case(c->ps, 0.0f),
           "vocabulary-parallel cross-entropy: loss and dlogits as unsplit");
    report(c, xent_case(c->ps, 5.0f),
           "vocabulary-parallel cross-entropy, soft-capped logits: loss and dlogits as unsplit");
    report(c, embedding_case(c->ps), "vocabulary-parallel embedding: y and dtable as unsplit");
}

/* ---- whole models ---- */

enum { B = 2, T = 8 };

struct model_run {
    struct mb_model m;
    struct mb_adamw opt;
};

/* Norm weights and biases off 1 and 0, by a function of the global element index. */
static void perturb(struct mb_model *m)
{
    float *w = mb_xmalloc((size_t)m->params.total * sizeof(float));
    mb_to_host_f32(m->ops, m->ex, w, m->w, m->params.total);
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        uint64_t key = mb_hash_bytes(p->name, strlen(p->name));
        if (p->init == MB_INIT_ONES || p->init == MB_INIT_ZEROS)
            for (int64_t e = 0; e < p->numel; e++)
                w[p->offset + e] += 0.3f * uniform(key + (uint64_t)mb_param_global_index(p, e));
    }
    mb_from_host_f32(m->ops, m->ex, m->w, w, m->params.total);
    free(w);
}

static int model_build(struct model_run *r, const struct mb_model_config *cfg,
                       const struct mb_group *tp, bool sp)
{
    if (mb_model_init_tp(&r->m, cfg, mb_ops_cpu(), tp, sp) < 0)
        return -1;
    mb_model_init_weights(&r->m, 11);
    perturb(&r->m);
    return mb_adamw_init(&r->opt, r->m.ops, &r->m.params, 0, r->m.params.total, 0.9f, 0.95f,
                         ADAM_EPS, 0.1f);
}

/* One forward and backward of BATCH, gradients finished; returns the mean loss and the
 * global gradient norm (over TP) in *NORM. */
static double model_step(struct model_run *r, const struct mb_batch *batch, double mask_sum,
                         double *norm)
{
    double ls, ms;
    mb_model_zero_grad(&r->m);
    if (mb_model_step(&r->m, batch, (float)(1.0 / mask_sum), &ls, &ms, NULL) < 0)
        return NAN;
    mb_model_finish_grads(&r->m);
    double sq = mb_model_grad_sumsq(&r->m);
    mb_group_sum_f64(r->m.tp, &sq, 1);
    *norm = sqrt(sq);
    return ls / ms;
}

/* Every shard of FLAT (weights or grads of S) against WHOLE's part of it. */
static bool shards_match(const struct mb_model *s, const float *flat, const struct mb_model *w,
                         const float *whole, const char *kind,
                         double (*err_of)(const float *, const float *, int64_t))
{
    bool ok = true;
    for (int i = 0; i < s->params.count; i++) {
        const struct mb_param *p = &s->params.items[i];
        const struct mb_param *q = mb_param_get(&w->params, p->id);
        float *part = mb_xmalloc((size_t)p->numel * sizeof(float));
        for (int64_t e = 0; e < p->numel; e++)
            part[e] = whole[q->offset + mb_param_global_index(p, e)];
        char what[160];
        snprintf(what, sizeof what, "%s of %s", kind, p->name);
        ok &= close_enough(what, err_of(flat + p->offset, part, p->numel));
        free(part);
    }
    return ok;
}

static void make_batch(struct mb_batch *b, int32_t *tokens, int32_t *labels, float *mask,
                       int64_t vocab, double *mask_sum)
{
    *mask_sum = 0;
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int32_t)(mb_splitmix64((uint64_t)i + 100) % (uint64_t)vocab);
        labels[i] = i % 5 == 4 ? -1 : (int32_t)(mb_splitmix64((uint64_t)i + 200) % (uint64_t)vocab);
        mask[i] = i % 7 == 2 ? 0.0f : 1.0f;
        *mask_sum += labels[i] >= 0 ? mask[i] : 0;
    }
    *b = (struct mb_batch){ B, T, tokens, labels, mask, NULL, NULL };
}

static int check_model(struct checker *c, const char *path, int64_t groups, bool sp, int steps)
{
    mb_json *j = mb_json_parse_file(path);
    struct mb_model_config cfg;
    if (!j || mb_model_config_from_json(&cfg, j, path) < 0) {
        mb_json_free(j);
        return -1;
    }
    mb_json_free(j);
    if (groups > 0)
        cfg.num_query_groups = groups;
    const struct mb_group *tp = mb_pstate_group(c->ps, MB_GROUP_TP);
    if (mb_local_sizes_check(&cfg, tp->size, "--groups") < 0)
        return -1;
    struct model_run whole, shard;
    memset(&whole, 0, sizeof whole);
    memset(&shard, 0, sizeof shard);
    if (model_build(&whole, &cfg, &one, false) < 0 || model_build(&shard, &cfg, tp, sp) < 0)
        return -1;
    int32_t tokens[B * T], labels[B * T];
    float mask[B * T];
    struct mb_batch batch;
    double mask_sum, wn, sn;
    make_batch(&batch, tokens, labels, mask, cfg.vocab_size, &mask_sum);
    char what[256];
    const char *name = cfg.family, *mode = sp ? ", sequence-parallel" : "";

    double wl = model_step(&whole, &batch, mask_sum, &wn);
    double sl = model_step(&shard, &batch, mask_sum, &sn);
    snprintf(what, sizeof what, "%s%s: loss and gradient norm as the whole model (%.7g, %.7g)",
             name, mode, sl, sn);
    bool ok = close_enough("loss", fabs(sl - wl) / fabs(wl));
    ok &= close_enough("gradient norm", fabs(sn - wn) / wn);
    report(c, ok, what);
    snprintf(what, sizeof what, "%s%s: every gradient shard as the whole model's", name, mode);
    report(c, shards_match(&shard.m, shard.m.g, &whole.m, whole.m.g, "gradient", rel_err), what);

    for (int s = 0; s < steps; s++) {
        struct model_run *runs[2] = { &whole, &shard };
        for (int k = 0; k < 2; k++) {
            double norm;
            if (s > 0)
                model_step(runs[k], &batch, mask_sum, &norm);
            else
                norm = k ? sn : wn;
            mb_adamw_step(&runs[k]->opt, runs[k]->m.w, runs[k]->m.g, mb_clip_coeff(norm, 0.5),
                          1e-2f);
        }
    }
    snprintf(what, sizeof what, "%s%s: every weight shard after %d AdamW steps as the whole "
             "model's", name, mode, steps);
    report(c, shards_match(&shard.m, shard.m.w, &whole.m, whole.m.w, "weight", frobenius_err),
           what);
    mb_adamw_free(&whole.opt);
    mb_adamw_free(&shard.opt);
    mb_model_free(&whole.m);
    mb_model_free(&shard.m);
    return 0;
}

static int run(const struct mb_dist *d, int argc, char **argv)
{
    struct mb_pstate ps;
    if (mb_pstate_init(&ps, d, d->size, 1, 1, "tp_check") < 0)
        return -1;
    struct checker c = { &ps, 0 };
    world_rank = d->rank;
    int rc = 0;
    if (strcmp(argv[1], "ops") == 0) {
        check_ops(&c);
    } else {
        int64_t groups = 0;
        bool sp = false;
        int steps = 3;
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--sp") == 0)
                sp = true;
            else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
                groups = atoll(argv[++i]);
            else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
                steps = atoi(argv[++i]);
        }
        rc = check_model(&c, argv[2], groups, sp, steps);
    }
    mb_pstate_free(&ps);
    if (rc == 0 && c.failed)
        rc = mb_err_set(MB_E_INVALID, "tp_check", "%d check%s failed", c.failed,
                        c.failed == 1 ? "" : "s");
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;

    mb_tool_start("tp_check");
    int rc = mb_dist_init(&d, &argc, &argv);
    if (rc == 0 && (argc < 2 || (strcmp(argv[1], "ops") != 0 &&
                                 (strcmp(argv[1], "model") != 0 || argc < 3))))
        rc = mb_err_set(MB_E_USAGE, "", "usage: tp_check ops | tp_check model CONFIG.json "
                        "[--groups N] [--sp] [--steps K]");
    if (rc == 0)
        rc = run(&d, argc, argv);
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
