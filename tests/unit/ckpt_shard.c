/* tests/unit/ckpt_shard.c - shards in one process: a whole-tensor save read back as
 * every tensor-parallel rank's slabs (axis 0, axis 1 in one and two slabs, axis 2) and
 * as runs of local elements that begin and end mid-row; a save of slabs that do not
 * cover a tensor, and slab descriptions that make no sense, are refused; the layout
 * attributes come back; a model's tensors cut to runs of its flat buffer (a distributed
 * optimizer's shards) read exactly those runs. The MPI side is
 * tests/tools/t8880-ckpt-shard.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/json.h"
#include "nn/config.h"
#include "nn/params.h"
#include "tests/lib/tap.h"

#define NT 4

/* a [3, 8, 5] tensor cut on axes 0, 1 (fc1-like: two slabs), 1 (one slab) and 2 */
static const char *names[NT] = { "a.rows0", "b.gate_up", "c.rows1", "d.cols2" };
static const int axes[NT] = { 0, 1, 1, 2 };
static const int64_t shape[3] = { 4, 8, 6 };

static float value(int t, int64_t i)
{
    return (float)(t * 1000 + i);
}

static int64_t numel3(const int64_t *s)
{
    return s[0] * s[1] * s[2];
}

static void whole(struct mb_ckpt_tensor *x, int t)
{
    *x = (struct mb_ckpt_tensor){ .name = names[t], .ndim = 3 };
    memcpy(x->shape, shape, sizeof shape);
    x->data = malloc((size_t)numel3(shape) * sizeof(float));
    for (int64_t i = 0; i < numel3(shape); i++)
        x->data[i] = value(t, i);
}

/* Tensor T as TP rank R of TP, with room for its data. */
static void cut(struct mb_ckpt_tensor *x, int t, int r, int tp)
{
    int axis = axes[t];
    int64_t n = shape[axis] / tp;

    *x = (struct mb_ckpt_tensor){ .name = names[t], .ndim = 3, .axis = axis, .nslab = 1 };
    memcpy(x->shape, shape, sizeof shape);
    memcpy(x->local_shape, shape, sizeof shape);
    x->local_shape[axis] = n;
    x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
    if (t == 1) {
        int64_t half = shape[1] / 2 / tp;
        x->nslab = 2;
        x->slab[0] = (struct mb_param_slab){ 0, r * half, half };
        x->slab[1] = (struct mb_param_slab){ half, shape[1] / 2 + r * half, half };
    }
    x->data = calloc((size_t)numel3(x->local_shape), sizeof(float));
}

/* The logical flat index of local element E of X. */
static int64_t logical(const struct mb_ckpt_tensor *x, int64_t e)
{
    int64_t c[3];

    c[2] = e % x->local_shape[2];
    c[1] = e / x->local_shape[2] % x->local_shape[1];
    c[0] = e / x->local_shape[2] / x->local_shape[1];
    for (int k = 0; k < x->nslab; k++)
        if (c[x->axis] >= x->slab[k].local_start &&
            c[x->axis] < x->slab[k].local_start + x->slab[k].count) {
            c[x->axis] += x->slab[k].global_start - x->slab[k].local_start;
            break;
        }
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
    struct mb_ckpt_state st = { .iteration = 3, .model_config_json = "{}",
                                .layout = { 4, 1, 2, 1, 1 } };

    for (int t = 0; t < NT; t++)
        whole(&w[t], t);
    ok(mb_ckpt_save(NULL, "ck", w, NT, NULL, NULL, MB_CKPT_F32, &st, NULL) == 0,
       "whole tensors saved: %s", mb_err_what());
    for (int t = 0; t < NT; t++)
        free(w[t].data);
}

static void load_as_ranks(void)
{
    for (int tp = 1; tp <= 4; tp *= 2) {
        int good = 1;
        for (int r = 0; r < tp; r++) {
            struct mb_ckpt_tensor x[NT];
            for (int t = 0; t < NT; t++)
                cut(&x[t], t, r, tp);
            good &= mb_ckpt_load(NULL, "ck/iter_0000003.h5", x, NT, NULL, NULL, NULL) == 0;
            for (int t = 0; t < NT; t++) {
                good &= holds(&x[t], t, 0, numel3(x[t].local_shape));
                free(x[t].data);
            }
        }
        ok(good, "TP %d: every rank reads exactly its slabs of all four kinds", tp);
    }
}

static void load_parts(void)
{
    /* runs that start and end mid-row, a whole local tensor, and nothing */
    static const int64_t runs[][2] = { { 7, 23 }, { 0, 48 }, { 5, 6 }, { 13, 0 }, { 1, 46 } };
    int good = 1;

    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        struct mb_ckpt_tensor x[NT];
        for (int t = 0; t < NT; t++) {
            cut(&x[t], t, 1, 2);
            x[t].part = 1;
            x[t].part_start = runs[k][0];
            x[t].part_count = runs[k][1];
        }
        good &= mb_ckpt_load(NULL, "ck/iter_0000003.h5", x, NT, NULL, NULL, NULL) == 0;
        for (int t = 0; t < NT; t++) {
            good &= holds(&x[t], t, runs[k][0], runs[k][1]);
            free(x[t].data);
        }
    }
    ok(good, "runs of local elements read from their slabs: %s", mb_err_what());
}

static void layout_back(void)
{
    struct mb_ckpt_tensor x[NT];
    struct mb_ckpt_state st;

    for (int t = 0; t < NT; t++)
        whole(&x[t], t);
    ok(mb_ckpt_load(NULL, "ck/iter_0000003.h5", x, NT, NULL, NULL, &st) == 0 &&
       st.layout.tp == 4 && st.layout.cp == 1 && st.layout.dp == 2 && st.layout.pp == 1 &&
       st.layout.distributed_optimizer == 1, "the layout attributes come back");
    mb_ckpt_state_release(&st);
    for (int t = 0; t < NT; t++)
        free(x[t].data);
}

/* Save X (tensor T cut for TP rank 0 of 2, then spoilt by SPOIL) alone: refused with a
 * message holding WANT, and nothing written. */
static void refused(void (*spoil)(struct mb_ckpt_tensor *), const char *want, const char *what)
{
    struct mb_ckpt_tensor x;
    struct mb_ckpt_state st = { .iteration = 4 };

    cut(&x, 1, 0, 2);
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

static void swap_slabs(struct mb_ckpt_tensor *x)
{
    struct mb_param_slab s = x->slab[0];
    x->slab[0] = x->slab[1];
    x->slab[1] = s;
    x->slab[0].local_start = 0;
    x->slab[1].local_start = s.count;
}

static void past_end(struct mb_ckpt_tensor *x)
{
    x->slab[1].global_start = 7;
}

static void short_local(struct mb_ckpt_tensor *x)
{
    x->local_shape[1] = 5;
}

static void wrong_other_axis(struct mb_ckpt_tensor *x)
{
    x->local_shape[2] = 5;
}

static void bad_part(struct mb_ckpt_tensor *x)
{
    x->part = 1;
    x->part_start = 90;
    x->part_count = 9;
}

static void refusals(void)
{
    refused(as_is, "the ranks' parts cover 96 of its 192 elements", "half a tensor");
    refused(swap_slabs, "slab 1 (local 2, global 0, 2 long) is out of order",
            "slabs in another order in the tensor");
    refused(past_end, "outside [0, 8) on axis 1", "slab past the end");
    refused(short_local, "the slabs cover 4 of the 5 local indices",
            "slabs short of the local axis");
    refused(wrong_other_axis, "local dimension 2 is 5, the logical one 6",
            "local shape differing off the shard axis");
    refused(bad_part, "part [90, +9) outside the 96 local elements", "part past the end");
}

/* The test Llama's parameters saved whole, read back as 3 runs of the flat buffer. */
static void optimizer_runs(const char *root)
{
    char path[4200];
    struct mb_model_config cfg;
    struct mb_param_table p;

    snprintf(path, sizeof path, "%s/tests/data/models/llama.json", root);
    mb_json *j = mb_json_parse_file(path);
    if (!j || mb_model_config_from_json(&cfg, j, path) < 0) {
        ok(0, "test config %s: %s", path, mb_err_what());
        mb_json_free(j);
        return;
    }
    mb_json_free(j);
    mb_param_table_build(&p, &cfg);
    float *w = malloc((size_t)p.total * sizeof *w), *shard = malloc((size_t)p.total * sizeof *w);
    for (int64_t i = 0; i < p.total; i++)
        w[i] = (float)i * 0.5f; /* exact, and different everywhere */
    struct mb_ckpt_tensor *t = mb_ckpt_tensors_of(&p, NULL, w);
    struct mb_ckpt_state st = { .iteration = 1 };
    int good = mb_ckpt_save(NULL, "opt", t, p.count, NULL, NULL, MB_CKPT_F32, &st, NULL) == 0;
    for (int q = 0; q < 3 && good; q++) {
        int64_t lo = p.total * q / 3, hi = p.total * (q + 1) / 3;
        struct mb_ckpt_tensor *x = mb_ckpt_tensors_of(&p, NULL, w);
        mb_ckpt_tensors_part(x, p.count, &p, lo, hi, shard);
        memset(shard, 0xff, (size_t)p.total * sizeof *shard);
        good = mb_ckpt_load(NULL, "opt/iter_0000001.h5", x, p.count, NULL, NULL, NULL) == 0 &&
               memcmp(shard, w + lo, (size_t)(hi - lo) * sizeof *w) == 0;
        free(x);
    }
    ok(good, "thirds of the flat buffer read as the parts of %d tensors: %s", p.count,
       mb_err_what());
    free(t);
    free(w);
    free(shard);
}

int main(void)
{
    char root[4096];

    if (getenv("MB_ROOT"))
        snprintf(root, sizeof root, "%s", getenv("MB_ROOT"));
    else if (!getcwd(root, sizeof root)) /* prove runs at the top */
        snprintf(root, sizeof root, ".");
    tap_enter_scratch_dir();
    optimizer_runs(root);
    save_whole();
    load_as_ranks();
    load_parts();
    layout_back();
    refusals();
    return tap_done();
}
