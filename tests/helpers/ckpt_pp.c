/* tests/helpers/ckpt_pp.c - checkpoints of pipeline stages' parameter tables under every
 * TP x PP x DP layout, for t9020-ckpt-pp.
 *
 *   ckpt_pp CONFIG.json LAYERS DIR base|lora|dora all|ring|check|save-skew [BASE_FILE]
 *
 * CONFIG (model.* keys) with model.num_layers = LAYERS. For each layout of the list
 * below that fits in the world (one process: TP1 PP1 DP1 only; VP only when the layers
 * divide evenly; with LAYERS not a multiple of PP the first stage of two, or the last of
 * four, takes the rest), the ranks of the layout (Megatron's order: TP fastest, then DP,
 * then PP; the other ranks take part holding nothing) build their stage's parameter
 * table (nn/params.h mb_param_table_build_stage; with lora/dora the adapters on every
 * linear layer, the base frozen), fill the weights and both Adam moments with values
 * that depend only on the tensor, the global index of the element and the kind, and
 * save them into DIR/<layout>/ with mb_ckpt_save: base: /model and the moments;
 * lora/dora: an adapter-only checkpoint (/adapter and the adapters' moments), as
 * train/state.c does. With DP > 1 the moments are a distributed optimizer's runs of the
 * trainable part of the flat buffer (distopt layouts) or whole on every replica.
 *
 * Then every layout loads files and every rank checks every element of its part of the
 * weights and the moments against the values: all: every file saved; ring: the single
 * process's (TP1 PP1 DP1) and the next layout's; check: no save, DIR is a file to load;
 * save-skew: only the PP 2 layouts save, pipeline rank 1 claiming the layer before each
 * of its own in the weights too, which must fail on every rank (parts that overlap).
 * With BASE_FILE (a base checkpoint of the same model) each layout also loads its frozen
 * base from it, as a pretrained checkpoint (the base of adapters), and checks it. Rank
 * 0 prints one line per layout saved and "checked N loads, E elements" (summed over the
 * ranks); any difference is an error naming the file, layout, tensor and element.
 *
 * Value of global element g of tensor NAME, kind k (0 weight, 1 exp_avg, 2 exp_avg_sq):
 * ((hash(NAME) mod 4099) * 7919 + g * 104729 + k * 31) mod 65537 - 32768) / 1024,
 * exact in fp32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/tool.h"
#include "dist/comm.h"
#include "nn/params.h"

struct layout {
    const char *name;
    int tp, pp, dp, vp, distopt;
};

static const struct layout layouts[] = {
    { "tp1pp1dp1", 1, 1, 1, 1, 0 },       { "tp2pp1dp1", 2, 1, 1, 1, 0 },
    { "tp1pp2dp1", 1, 2, 1, 1, 0 },       { "tp1pp1dp2", 1, 1, 2, 1, 0 },
    { "tp2pp2dp1", 2, 2, 1, 1, 0 },       { "tp2pp1dp2", 2, 1, 2, 1, 1 },
    { "tp1pp2dp2", 1, 2, 2, 1, 1 },       { "tp2pp2dp2", 2, 2, 2, 1, 1 },
    { "tp1pp4dp1", 1, 4, 1, 1, 0 },       { "tp1pp4dp2", 1, 4, 2, 1, 1 },
    { "tp1pp2dp1vp2", 1, 2, 1, 2, 0 },    { "tp2pp2dp2vp2", 2, 2, 2, 2, 1 },
};
#define NLAYOUTS ((int)(sizeof layouts / sizeof layouts[0]))

/* What this rank holds under a layout: its stage's table and the whole model's. */
struct rank_state {
    const struct layout *l;
    int active; /* a rank of the layout */
    int skew;   /* pipeline rank 1 claims the layer before its own too (save-skew) */
    struct mb_param_table p, whole;
    int first; /* the first tensor saved: 0, or the first adapter */
    int64_t lo, hi; /* the optimizer's run of the flat buffer */
    float *w, *m, *v;
};

static float value_of(const char *name, int64_t g, int kind)
{
    int64_t h = (int64_t)(mb_hash_bytes(name, strlen(name)) % 4099u);
    int64_t x = (h * 7919 + g % 65537 * 104729 + kind * 31) % 65537;
    return (float)(x - 32768) / 1024.0f;
}

/* The stage of rank PP_RANK under L for LAYERS layers: even, or (LAYERS not a multiple
 * of the stages) the first stage of two, or the last of more, taking the rest. */
static int stage_of(struct mb_stage *s, const struct layout *l, int64_t layers, int pp_rank)
{
    int64_t rest = layers % l->pp ? layers - (l->pp - 1) * (layers / l->pp) : 0;
    return mb_stage_plan(s, layers, l->pp, pp_rank, l->vp, l->pp == 2 ? rest : 0,
                         l->pp == 2 ? 0 : rest, "layout");
}

static int fits(const struct layout *l, int64_t layers, int world)
{
    return l->tp * l->pp * l->dp <= world && (l->vp == 1 || layers % (l->pp * l->vp) == 0);
}

static void fill(const struct mb_param_table *p, float *x, int kind)
{
    for (int i = 0; i < p->count; i++) {
        const struct mb_param *it = &p->items[i];
        for (int64_t e = 0; e < it->numel; e++)
            x[it->offset + e] = value_of(it->name, mb_param_global_index(it, e), kind);
    }
}

static int rank_state_make(struct rank_state *s, const struct layout *l,
                           const struct mb_model_config *cfg, const struct mb_peft_config *pc,
                           int rank)
{
    memset(s, 0, sizeof *s);
    s->l = l;
    s->active = rank < l->tp * l->pp * l->dp;
    int tp_rank = s->active ? rank % l->tp : 0, dp_rank = s->active ? rank / l->tp % l->dp : 0;
    int pp_rank = s->active ? rank / (l->tp * l->dp) : 0;
    s->skew = pp_rank == 1;
    struct mb_stage st;
    if (stage_of(&st, l, cfg->num_layers, pp_rank) < 0)
        return -1;
    mb_param_table_build_stage(&s->p, cfg, l->tp, tp_rank, &st);
    mb_param_table_add_adapters(&s->p, cfg, pc);
    mb_ckpt_whole_table(&s->whole, &s->p, cfg, pc);
    while (pc->kind != MB_PEFT_NONE && !s->whole.items[s->first].trainable)
        s->first++;
    /* the distributed optimizer's shard of the trainable range (train/gradsync.c) */
    int64_t n = s->p.total - s->p.frozen, shard = l->distopt ? (n + l->dp - 1) / l->dp : n;
    int64_t q = l->distopt ? dp_rank : 0;
    s->lo = s->p.frozen + MB_MIN(q * shard, n);
    s->hi = s->p.frozen + MB_MIN(q * shard + shard, n);
    s->w = mb_xcalloc((size_t)s->p.total + 1, sizeof(float));
    s->m = mb_xcalloc((size_t)s->p.total + 1, sizeof(float));
    s->v = mb_xcalloc((size_t)s->p.total + 1, sizeof(float));
    return 0;
}

static void rank_state_free(struct rank_state *s)
{
    free(s->w);
    free(s->m);
    free(s->v);
}

/* A rank outside the layout: every tensor of the list, nothing of it. */
static void nothing(struct mb_ckpt_tensor *t, int n)
{
    for (int i = 0; i < n; i++) {
        t[i].nslab = t[i].nlayer_slab = 0;
        t[i].part = 1;
        t[i].part_start = t[i].part_count = 0;
        t[i].data = NULL;
        t[i].copy = 0;
    }
}

/* The weights and moments of S as checkpoint tensors; *N their count. */
static void tensors(const struct rank_state *s, struct mb_ckpt_tensor *x[3], int *n)
{
    float *buf[3] = { s->w, s->m, s->v };
    *n = s->whole.count;
    for (int k = 0; k < 3; k++) {
        x[k] = mb_ckpt_tensors_of(&s->p, &s->whole, s->w);
        if (k > 0)
            mb_ckpt_tensors_part(x[k], *n, &s->p, s->lo, s->hi, buf[k] + s->lo);
        for (int i = s->first; s->first > 0 && i < *n; i++)
            x[k][i].group = "/adapter";
        if (!s->active)
            nothing(x[k], *n);
    }
}

/* Save-skew: the first layer slab of S's per-layer weights begins a layer early. */
static void skew(const struct rank_state *s, struct mb_ckpt_tensor *x, int n)
{
    for (int i = 0; s->active && s->skew && i < n; i++)
        if (x[i].nlayer_slab > 0)
            for (int k = 0; k < x[i].nlayer_slab; k++)
                x[i].layer_slab[k].global_start--;
}

static void free_tensors(struct mb_ckpt_tensor *x[3])
{
    for (int k = 0; k < 3; k++)
        free(x[k]);
}

static int save_layout(const struct mb_dist *d, const struct rank_state *s, const char *dir,
                       const struct mb_model_config *cfg, const struct mb_peft_config *pc,
                       int skewed)
{
    fill(&s->p, s->w, 0);
    fill(&s->p, s->m, 1);
    fill(&s->p, s->v, 2);
    struct mb_ckpt_tensor *x[3];
    int n;
    tensors(s, x, &n);
    if (skewed)
        skew(s, x[0], n);
    char *json = mb_model_config_to_json(cfg);
    char *peft = pc->kind != MB_PEFT_NONE ? mb_peft_config_to_json(pc) : NULL;
    struct mb_ckpt_extra extra[1] = { { "peft", peft, peft ? strlen(peft) : 0 } };
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    st.iteration = 7;
    st.optim_step = 7;
    st.model_config_json = json;
    st.recipe_json = "{}";
    st.extra = extra;
    st.n_extra = peft ? 1 : 0;
    st.layout = (struct mb_ckpt_layout){ s->l->tp, 1, s->l->dp, s->l->pp, s->l->distopt };
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->l->name);
    int rc = mb_ckpt_save(d, path, x[0] + s->first, n - s->first, x[1] + s->first,
                          x[2] + s->first, MB_CKPT_F32, &st, NULL);
    free(json);
    free(peft);
    free_tensors(x);
    return rc;
}

/* Check this rank's elements of kind K of X (the flat buffer, elements [LO, HI) held)
 * from parameter FIRST on; count them into *GOOD. */
static int check(const struct rank_state *s, const float *x, int kind, int from_first,
                 int64_t lo, int64_t hi, const char *file, int64_t *good)
{
    for (int i = 0; i < s->p.count; i++) {
        const struct mb_param *it = &s->p.items[i];
        if (it->trainable != from_first && s->first > 0)
            continue;
        for (int64_t e = 0; e < it->numel; e++) {
            int64_t at = it->offset + e;
            if (at < lo || at >= hi)
                continue;
            int64_t g = mb_param_global_index(it, e);
            if (x[at] != value_of(it->name, g, kind))
                return mb_err_set(MB_E_INVALID, file, "layout %s: %s kind %d element %lld "
                                  "(global %lld) is %g, not %g", s->l->name, it->name, kind,
                                  (long long)e, (long long)g, x[at],
                                  value_of(it->name, g, kind));
            ++*good;
        }
    }
    return 0;
}

/* Load FILE under S's layout and check it; with BASE, load the frozen base from it. */
static int load_check(const struct mb_dist *d, struct rank_state *s, const char *file,
                      const char *base, int64_t *good)
{
    memset(s->w, 0, (size_t)s->p.total * sizeof(float));
    memset(s->m, 0, (size_t)s->p.total * sizeof(float));
    memset(s->v, 0, (size_t)s->p.total * sizeof(float));
    struct mb_ckpt_tensor *x[3];
    int n, rc;
    tensors(s, x, &n);
    rc = mb_ckpt_load(d, file, x[0] + s->first, n - s->first, x[1] + s->first, x[2] + s->first,
                      NULL);
    if (rc == 0 && base)
        rc = mb_ckpt_load(d, base, x[0], s->first, NULL, NULL, NULL);
    free_tensors(x);
    if (rc < 0) /* the same on every rank */
        return rc;
    if (s->active &&
        (check(s, s->w, 0, 1, s->p.frozen, s->p.total, file, good) < 0 ||
         check(s, s->m, 1, 1, s->lo, s->hi, file, good) < 0 ||
         check(s, s->v, 2, 1, s->lo, s->hi, file, good) < 0 ||
         (s->first > 0 && base && check(s, s->w, 0, 0, 0, s->p.frozen, base, good) < 0)))
        rc = -1;
    if (!mb_dist_all_ok(d, rc == 0) && rc == 0) /* the next loads are collective */
        rc = mb_err_set(MB_E_INVALID, file, "another rank found a wrong element");
    return rc;
}

static int config_of(const char *file, int64_t layers, struct mb_model_config *cfg)
{
    mb_json *j = mb_json_parse_file(file);
    int rc = j ? mb_model_config_from_json(cfg, j, file) : -1;
    mb_json_free(j);
    cfg->num_layers = layers;
    return rc;
}

static int peft_of(const char *kind, struct mb_peft_config *pc)
{
    memset(pc, 0, sizeof *pc);
    if (strcmp(kind, "base") == 0)
        return 0;
    pc->kind = strcmp(kind, "dora") == 0 ? MB_PEFT_DORA : MB_PEFT_LORA;
    pc->dim = 4;
    pc->alpha = 8;
    for (int m = 0; m < MB_PEFT_MODULES; m++)
        pc->target[m] = true;
    pc->a_init = MB_PEFT_INIT_XAVIER;
    pc->b_init = MB_PEFT_INIT_ZERO;
    return strcmp(kind, "lora") == 0 || strcmp(kind, "dora") == 0 ? 0 : -1;
}

/* Layout J loads file I: under "all" every file, under "ring" the single process's and
 * the next layout's. */
static int loads_file(const char *mode, const int *saved, int i, int j)
{
    int next = (j + 1) % NLAYOUTS;
    while (!saved[next] && next != j)
        next = (next + 1) % NLAYOUTS;
    return saved[i] && (strcmp(mode, "all") == 0 || i == 0 || i == next);
}

static int run(const struct mb_dist *d, char **argv, const char *base)
{
    const char *config = argv[1], *dir = argv[3], *kind = argv[4], *mode = argv[5];
    int64_t layers = atoll(argv[2]);
    struct mb_model_config cfg;
    struct mb_peft_config pc;
    if (config_of(config, layers, &cfg) < 0)
        return -1;
    if (peft_of(kind, &pc) < 0)
        return mb_err_set(MB_E_USAGE, kind, "base, lora or dora");
    int check_only = strcmp(mode, "check") == 0, skewed = strcmp(mode, "save-skew") == 0;
    if (!check_only && !skewed && strcmp(mode, "all") != 0 && strcmp(mode, "ring") != 0)
        return mb_err_set(MB_E_USAGE, mode, "all, ring, check or save-skew");
    int saved[NLAYOUTS] = { 0 }, rc = 0;
    int64_t good = 0, loads = 0;
    for (int i = 0; !check_only && rc == 0 && i < NLAYOUTS; i++) {
        struct rank_state s;
        if (!fits(&layouts[i], layers, d->size) || (skewed && layouts[i].pp != 2))
            continue;
        rc = rank_state_make(&s, &layouts[i], &cfg, &pc, d->rank);
        if (rc == 0)
            rc = save_layout(d, &s, dir, &cfg, &pc, skewed);
        saved[i] = rc == 0;
        if (rc == 0 && d->rank == 0)
            printf("saved %s/%s\n", dir, layouts[i].name);
        rank_state_free(&s);
    }
    for (int j = 0; rc == 0 && !skewed && j < NLAYOUTS; j++) {
        struct rank_state s;
        if (!fits(&layouts[j], layers, d->size))
            continue;
        rc = rank_state_make(&s, &layouts[j], &cfg, &pc, d->rank);
        for (int i = 0; rc == 0 && i < (check_only ? 1 : NLAYOUTS); i++) {
            char file[4096];
            snprintf(file, sizeof file, "%s/%s/iter_0000007.h5", dir, layouts[i].name);
            if (!check_only && !loads_file(mode, saved, i, j))
                continue;
            rc = load_check(d, &s, check_only ? dir : file, base, &good);
            loads++;
        }
        rank_state_free(&s);
    }
    double total = (double)good;
    mb_dist_sum_f64(d, &total, 1);
    if (rc == 0 && d->rank == 0)
        printf("checked %lld loads, %.0f elements\n", (long long)loads, total);
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;
    int rc;

    mb_tool_start("ckpt_pp");
    mb_dist_init(&d, &argc, &argv);
    if (argc == 6 || argc == 7)
        rc = run(&d, argv, argc == 7 ? argv[6] : NULL);
    else
        rc = mb_err_set(MB_E_USAGE, "", "usage: ckpt_pp CONFIG.json LAYERS DIR|FILE "
                        "base|lora|dora all|ring|check|save-skew [BASE_FILE]");
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
