/* tests/unit/ckpt_pp.c - pipeline stages' parts in one process: a whole-tensor save read
 * back as every (pipeline rank, tensor-parallel rank)'s layer slabs x TP slabs (VP 2:
 * layers that are not contiguous; uneven stages), whole and as runs that begin and end
 * mid-row; layer slabs that make no sense, or leave layers to nobody, are refused; a
 * stage's parameter table as the whole model's tensor list (absent tensors empty, the
 * last stage's tied embedding a copy). The MPI side is tests/tools/t9020-ckpt-pp.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/json.h"
#include "nn/config.h"
#include "nn/params.h"
#include "nn/stage.h"
#include "tests/lib/tap.h"

#define NT 3

/* [4 layers, 8, 6] tensors cut for TP on axis 1 (two slabs, fc1-like), 1 and 2 */
static const char *names[NT] = { "b.gate_up", "c.rows1", "d.cols2" };
static const int axes[NT] = { 1, 1, 2 };
static const int64_t shape[3] = { 4, 8, 6 };

static float value(int t, int64_t i)
{
    return (float)(t * 1000 + i);
}

static int64_t numel3(const int64_t *s)
{
    return s[0] * s[1] * s[2];
}

/* The layers of pipeline rank Q: VP 2 (layers Q and Q + 2), or uneven (3 + 1). */
static int layers_of(struct mb_param_slab *slab, int q, int vp)
{
    if (vp == 2) {
        slab[0] = (struct mb_param_slab){ 0, q, 1 };
        slab[1] = (struct mb_param_slab){ 1, q + 2, 1 };
        return 2;
    }
    slab[0] = q == 0 ? (struct mb_param_slab){ 0, 0, 3 } : (struct mb_param_slab){ 0, 3, 1 };
    return 1;
}

/* Tensor T as TP rank R of TP and pipeline rank Q of 2, with room for its data. */
static void cut(struct mb_ckpt_tensor *x, int t, int r, int tp, int q, int vp)
{
    int axis = axes[t];
    int64_t n = shape[axis] / tp;

    *x = (struct mb_ckpt_tensor){ .name = names[t], .ndim = 3, .axis = axis, .nslab = 1 };
    memcpy(x->shape, shape, sizeof shape);
    memcpy(x->local_shape, shape, sizeof shape);
    x->local_shape[axis] = n;
    x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
    if (t == 0) {
        int64_t half = shape[1] / 2 / tp;
        x->nslab = 2;
        x->slab[0] = (struct mb_param_slab){ 0, r * half, half };
        x->slab[1] = (struct mb_param_slab){ half, shape[1] / 2 + r * half, half };
    }
    x->nlayer_slab = layers_of(x->layer_slab, q, vp);
    x->local_shape[0] = 0;
    for (int k = 0; k < x->nlayer_slab; k++)
        x->local_shape[0] += x->layer_slab[k].count;
    x->data = calloc((size_t)numel3(x->local_shape) + 1, sizeof(float));
}

/* Local index A on an axis cut in N slabs SLAB, as a logical index. */
static int64_t through(const struct mb_param_slab *slab, int n, int64_t a)
{
    for (int k = 0; k < n; k++)
        if (a >= slab[k].local_start && a < slab[k].local_start + slab[k].count)
            return a + slab[k].global_start - slab[k].local_start;
    return -1;
}

/* The logical flat index of local element E of X. */
static int64_t logical(const struct mb_ckpt_tensor *x, int64_t e)
{
    int64_t c[3];

    c[2] = e % x->local_shape[2];
    c[1] = e / x->local_shape[2] % x->local_shape[1];
    c[0] = e / x->local_shape[2] / x->local_shape[1];
    c[x->axis] = through(x->slab, x->nslab, c[x->axis]);
    c[0] = through(x->layer_slab, x->nlayer_slab, c[0]);
    return (c[0] * shape[1] + c[1]) * shape[2] + c[2];
}

/* Elements [LO, LO + N) of X's local tensor hold their logical values. */
static int holds(const struct mb_ckpt_tensor *x, int t, int64_t lo, int64_t n)
{
    for (int64_t e = 0; e < n; e++)
        if (x->data[e] != value(t, logical(x, lo + e)))
            return 0;
    return 1;
}

static void save_whole(void)
{
    struct mb_ckpt_tensor w[NT];
    struct mb_ckpt_state st = { .iteration = 3, .model_config_json = "{}" };

    for (int t = 0; t < NT; t++) {
        w[t] = (struct mb_ckpt_tensor){ .name = names[t], .ndim = 3 };
        memcpy(w[t].shape, shape, sizeof shape);
        w[t].data = malloc((size_t)numel3(shape) * sizeof(float));
        for (int64_t i = 0; i < numel3(shape); i++)
            w[t].data[i] = value(t, i);
    }
    ok(mb_ckpt_save(NULL, "ck", w, NT, NULL, NULL, MB_CKPT_F32, &st, NULL) == 0,
       "whole tensors saved: %s", mb_err_what());
    for (int t = 0; t < NT; t++)
        free(w[t].data);
}

/* Every (pipeline rank, TP rank) reads its layers x slabs: whole, or the run [LO, +N)
 * of its local elements (N < 0: all). */
static int load_as_ranks(int vp, int tp, int64_t lo, int64_t n)
{
    int good = 1;

    for (int q = 0; q < 2; q++)
        for (int r = 0; r < tp; r++) {
            struct mb_ckpt_tensor x[NT];
            for (int t = 0; t < NT; t++) {
                cut(&x[t], t, r, tp, q, vp);
                x[t].part = n >= 0;
                x[t].part_start = n >= 0 ? lo : 0;
                x[t].part_count = n >= 0 ? n : 0;
            }
            good &= mb_ckpt_load(NULL, "ck/iter_0000003.h5", x, NT, NULL, NULL, NULL) == 0;
            for (int t = 0; t < NT; t++) {
                good &= holds(&x[t], t, n >= 0 ? lo : 0, n >= 0 ? n : numel3(x[t].local_shape));
                free(x[t].data);
            }
        }
    return good;
}

static void loads(void)
{
    for (int vp = 1; vp <= 2; vp++)
        for (int tp = 1; tp <= 2; tp++)
            ok(load_as_ranks(vp, tp, 0, -1), "PP 2 %s x TP %d: every rank reads exactly its "
               "layers of its slabs: %s", vp == 2 ? "VP 2" : "(3 + 1 layers)", tp,
               mb_err_what());
    /* runs that start and end mid-row and cross a layer slab (24 local elements a layer
     * at TP 2 for b, c and d) */
    static const int64_t runs[][2] = { { 7, 23 }, { 20, 9 }, { 0, 48 }, { 13, 0 } };
    int good = 1;
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++)
        good &= load_as_ranks(2, 2, runs[k][0], runs[k][1]);
    ok(good, "VP 2 x TP 2: runs of local elements across layer slabs: %s", mb_err_what());
}

/* Save X (tensor 1, TP rank 0 of 2, pipeline rank 0 with VP 2, then spoilt by SPOIL)
 * alone: refused with a message holding WANT. */
static void refused(void (*spoil)(struct mb_ckpt_tensor *), const char *want, const char *what)
{
    struct mb_ckpt_tensor x;
    struct mb_ckpt_state st = { .iteration = 4 };

    cut(&x, 1, 0, 1, 0, 2);
    spoil(&x);
    ok(mb_ckpt_save(NULL, "bad", &x, 1, NULL, NULL, MB_CKPT_F32, &st, NULL) != 0 &&
       strstr(mb_err_what(), want) && strcmp(mb_err_where(), names[1]) == 0 &&
       fopen("bad/iter_0000004.h5", "r") == NULL, "%s: %s", what, mb_err_what());
    free(x.data);
}

static void as_is(struct mb_ckpt_tensor *x)
{
    (void)x;
}

static void swap_layers(struct mb_ckpt_tensor *x)
{
    x->layer_slab[0].global_start = 2;
    x->layer_slab[1].global_start = 0;
}

static void on_tp_axis(struct mb_ckpt_tensor *x)
{
    x->axis = 0;
    x->slab[0] = (struct mb_param_slab){ 0, 0, 2 };
    x->local_shape[1] = x->shape[1];
}

static void short_layers(struct mb_ckpt_tensor *x)
{
    x->local_shape[0] = 3;
}

static void too_many(struct mb_ckpt_tensor *x)
{
    x->nlayer_slab = MB_STAGE_MAX_CHUNKS + 1;
}

static void refusals(void)
{
    refused(as_is, "the ranks' parts cover 96 of its 192 elements", "half the layers");
    refused(swap_layers, "slab 1 (local 1, global 0, 1 long) is out of order",
            "layer slabs in another order in the tensor");
    refused(on_tp_axis, "layer slabs on axis 0", "layer slabs on the TP axis");
    refused(short_layers, "the slabs cover 2 of the 3 local indices on axis 0",
            "layer slabs short of the local axis");
    refused(too_many, "17 layer slabs", "more layer slabs than chunks");
}

/* Gemma 3 (tied embedding) at PP 2 VP 2, TP 2: the first and last stage's tables as the
 * whole model's list. */
static void stage_tables(const char *root)
{
    char path[4200];
    struct mb_model_config cfg;
    snprintf(path, sizeof path, "%s/tests/data/models/gemma3.json", root);
    mb_json *j = mb_json_parse_file(path);
    if (!j || mb_model_config_from_json(&cfg, j, path) < 0) {
        ok(0, "test config %s: %s", path, mb_err_what());
        mb_json_free(j);
        return;
    }
    mb_json_free(j);
    cfg.num_layers = 4;
    for (int q = 0; q < 2; q++) {
        struct mb_stage s;
        struct mb_param_table p, whole;
        if (mb_stage_plan(&s, 4, 2, q, 2, 0, 0, "pp") < 0) {
            ok(0, "stage plan: %s", mb_err_what());
            return;
        }
        mb_param_table_build_stage(&p, &cfg, 2, 1, &s);
        mb_ckpt_whole_table(&whole, &p, &cfg, NULL);
        float *w = calloc((size_t)p.total, sizeof(float));
        struct mb_ckpt_tensor *t = mb_ckpt_tensors_of(&p, &whole, w);
        int good = 1, held = 0;
        for (int i = 0; i < whole.count; i++) {
            const struct mb_param *it = mb_param_get(&p, whole.items[i].id);
            good &= strcmp(t[i].name, whole.items[i].name) == 0 &&
                    t[i].ndim == whole.items[i].ndim &&
                    memcmp(t[i].shape, whole.items[i].global_shape,
                           (size_t)t[i].ndim * sizeof(int64_t)) == 0;
            if (!it) { /* another stage's: nothing */
                good &= t[i].part == 1 && t[i].part_count == 0 && !t[i].data;
                continue;
            }
            held++;
            good &= t[i].data == w + it->offset && t[i].nslab == it->nslab &&
                    t[i].nlayer_slab == (it->per_layer ? 2 : 0) &&
                    t[i].copy == (q == 1 && it->id == MB_P_WORD_EMB);
        }
        /* a run of the flat buffer: tensors of other stages stay empty */
        mb_ckpt_tensors_part(t, whole.count, &p, 0, p.total, w);
        for (int i = 0; i < whole.count; i++)
            good &= mb_param_get(&p, whole.items[i].id) != NULL ||
                    (t[i].part_count == 0 && !t[i].data);
        ok(good && held == p.count, "stage %d of 2: its %d parameters of the %d in the whole "
           "model's order, the others empty%s", q, p.count, whole.count,
           q ? ", the tied embedding a copy" : "");
        free(t);
        free(w);
    }
}

int main(void)
{
    char root[4096];

    if (getenv("MB_ROOT"))
        snprintf(root, sizeof root, "%s", getenv("MB_ROOT"));
    else if (!getcwd(root, sizeof root)) /* prove runs at the top */
        snprintf(root, sizeof root, ".");
    tap_enter_scratch_dir();
    save_whole();
    loads();
    refusals();
    stage_tables(root);
    return tap_done();
}
