/* tests/helpers/ckpt_shard.c - save and load checkpoints with tensor-parallel shards and
 * data-parallel replicas under mpirun, for the t888x-ckpt-shard tests.
 * tests/oracle/h5_shard_check.py knows the same tensors and values and checks the files
 * with h5py.
 *
 * LAYOUT is tpT or tpTdpD, T x D = the world size (D defaults to world / T); a rank's
 * TP rank is rank % T and its DP rank rank / T (Megatron's order, parallel.md 1). Each
 * rank holds the shards the TP code makes (ckpt.h): linear_qkv.weight [L, Q/T, h] on
 * axis 1; linear_fc1.weight [L, 2I/T, h] on axis 1 in two slabs (gate rows rI/T.., up
 * rows I + rI/T..); linear_proj.weight and linear_fc2.weight [L, h, I/T] on axis 2;
 * word_embeddings and output_layer on axis 0 in near-equal blocks (rows [V r/T,
 * V (r+1)/T)); norms and the row-parallel bias whole. With T = 1 every tensor is whole (no slabs), as the TP code makes it.
 *
 *   ckpt_shard save DIR ITER LAYOUT fp32|bf16 nooptim|optim|distopt
 *       save iteration ITER; rank 0 prints the file's path. optim: every rank holds the
 *       Adam moments of its shards; distopt: the moments of its shards are cut further
 *       over the DP ranks as a distributed optimizer cuts them (the local tensors laid
 *       end to end, DP rank q holding the q-th of D equal runs, parts of tensors that
 *       begin and end mid-row, or nothing of some)
 *   ckpt_shard save-skew DIR ITER LAYOUT fp32|bf16 nooptim|optim|distopt
 *       like save, but TP rank 1's slab of linear_qkv.weight begins a row early, so it
 *       overlaps TP rank 0's (the save must fail on every rank)
 *   ckpt_shard load PATH LAYOUT nooptim|optim|distopt
 *       load PATH (a file or a directory) under LAYOUT and check every element of every
 *       rank's part against the values; each rank prints "rank R: E elements of N
 *       tensors equal"
 *   ckpt_shard reshard FILE DIR LAYOUT
 *       load the weights of the model checkpoint FILE (any model of tests/data/models)
 *       under LAYOUT, each rank its shards (by the tensor names, as above), and save them
 *       from those shards into DIR with FILE's state and HF items
 *
 * Value of logical element i of tensor t, for iteration s and kind k (0 weight,
 * 1 exp_avg, 2 exp_avg_sq): ((t*7919 + i*104729 + (s + 1000*k)*31) mod 65537 - 32768)
 * / 1024, exact in fp32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "core/tool.h"
#include "dist/comm.h"

#define NT 9
#define L 3
#define H 6
#define Q 16 /* qkv rows */
#define I 8  /* ffn width */
#define V 21 /* vocabulary: cut in near-equal blocks, as the TP code cuts it */

enum kind { WHOLE, ROWS0, ROWS1, GATE_UP, COLS2 };

static const struct {
    const char *name;
    int ndim;
    int64_t shape[3];
    enum kind kind;
} tensors[NT] = {
    { "embedding.word_embeddings.weight", 2, { V, H }, ROWS0 },
    { "decoder.layers.self_attention.linear_qkv.layer_norm_weight", 2, { L, H }, WHOLE },
    { "decoder.layers.self_attention.linear_qkv.weight", 3, { L, Q, H }, ROWS1 },
    { "decoder.layers.self_attention.linear_proj.weight", 3, { L, H, I }, COLS2 },
    { "decoder.layers.self_attention.linear_proj.bias", 2, { L, H }, WHOLE },
    { "decoder.layers.mlp.linear_fc1.weight", 3, { L, 2 * I, H }, GATE_UP },
    { "decoder.layers.mlp.linear_fc2.weight", 3, { L, H, I }, COLS2 },
    { "decoder.final_layernorm.weight", 1, { H }, WHOLE },
    { "output_layer.weight", 2, { V, H }, ROWS0 },
};

struct layout {
    int tp, dp, tp_rank, dp_rank;
};

static float value(int t, int64_t i, int64_t salt)
{
    return (float)((t * 7919 + i * 104729 + salt * 31) % 65537 - 32768) / 1024.0f;
}

static int parse_layout(const struct mb_dist *d, const char *s, struct layout *l)
{
    int n = 0;

    l->dp = 0;
    if (sscanf(s, "tp%ddp%d%n", &l->tp, &l->dp, &n) != 2 || s[n])
        if (sscanf(s, "tp%d%n", &l->tp, &n) != 1 || s[n])
            return mb_err_set(MB_E_USAGE, s, "layout is tpT or tpTdpD");
    if (!l->dp && l->tp > 0)
        l->dp = d->size / l->tp;
    if (l->tp <= 0 || l->dp <= 0 || l->tp * l->dp != d->size)
        return mb_err_set(MB_E_USAGE, s, "TP x DP must be the world size %d", d->size);
    l->tp_rank = d->rank % l->tp;
    l->dp_rank = d->rank / l->tp;
    return 0;
}

/* Cut X (name, ndim and logical shape set) as KIND for TP rank R of T. */
static void shard(struct mb_ckpt_tensor *x, enum kind kind, int t, int r)
{
    memcpy(x->local_shape, x->shape, sizeof x->shape);
    if (kind == WHOLE || t == 1)
        return;
    int axis = kind == ROWS0 ? 0 : kind == COLS2 ? 2 : 1;
    int64_t n = x->shape[axis] / t;
    x->axis = axis;
    x->local_shape[axis] = n;
    x->nslab = 1;
    x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
    if (kind == ROWS0) { /* the vocabulary need not divide */
        int64_t lo = x->shape[0] * r / t, hi = x->shape[0] * (r + 1) / t;
        x->local_shape[0] = hi - lo;
        x->slab[0] = (struct mb_param_slab){ 0, lo, hi - lo };
    }
    if (kind == GATE_UP) { /* gate rows, then up rows, each cut in T */
        n = x->shape[1] / 2 / t;
        x->nslab = 2;
        x->slab[0] = (struct mb_param_slab){ 0, r * n, n };
        x->slab[1] = (struct mb_param_slab){ n, x->shape[1] / 2 + r * n, n };
    }
}

static int64_t local_numel(const struct mb_ckpt_tensor *x)
{
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++)
        n *= x->local_shape[d];
    return n;
}

/* The logical flat index of local element E of X. */
static int64_t logical_index(const struct mb_ckpt_tensor *x, int64_t e)
{
    int64_t c[3] = { 0, 0, 0 }, g = 0;

    for (int d = x->ndim - 1; d >= 0; d--) {
        c[d] = e % x->local_shape[d];
        e /= x->local_shape[d];
    }
    for (int k = 0; k < x->nslab; k++)
        if (c[x->axis] >= x->slab[k].local_start &&
            c[x->axis] < x->slab[k].local_start + x->slab[k].count) {
            c[x->axis] += x->slab[k].global_start - x->slab[k].local_start;
            break;
        }
    for (int d = 0; d < x->ndim; d++)
        g = g * x->shape[d] + c[d];
    return g;
}

/* DP rank Q's run of the local tensors T[N] laid end to end, in D equal runs. */
static void dist_parts(struct mb_ckpt_tensor *t, int n, int q, int d)
{
    int64_t total = 0, at = 0;

    for (int i = 0; i < n; i++)
        total += local_numel(&t[i]);
    int64_t lo = total * q / d, hi = total * (q + 1) / d;
    for (int i = 0; i < n; i++) {
        int64_t end = at + local_numel(&t[i]);
        int64_t a = lo > at ? lo : at, b = hi < end ? hi : end;
        t[i].part = 1;
        t[i].part_start = b > a ? a - at : 0;
        t[i].part_count = b > a ? b - a : 0;
        at = end;
    }
}

/* The three tensor lists (weights, exp_avg, exp_avg_sq) of this rank, with ITER's values
 * (zeros when ITER < 0). */
static void model_init(struct mb_ckpt_tensor m[3][NT], const struct layout *l, int distopt,
                       int64_t iter)
{
    for (int k = 0; k < 3; k++) {
        for (int t = 0; t < NT; t++) {
            struct mb_ckpt_tensor *x = &m[k][t];
            *x = (struct mb_ckpt_tensor){ .name = tensors[t].name, .ndim = tensors[t].ndim };
            memcpy(x->shape, tensors[t].shape, sizeof tensors[t].shape);
            shard(x, tensors[t].kind, l->tp, l->tp_rank);
        }
        if (k > 0 && distopt)
            dist_parts(m[k], NT, l->dp_rank, l->dp);
        for (int t = 0; t < NT; t++) {
            struct mb_ckpt_tensor *x = &m[k][t];
            int64_t lo = x->part ? x->part_start : 0;
            int64_t n = x->part ? x->part_count : local_numel(x);
            x->data = calloc((size_t)n + 1, sizeof(float));
            for (int64_t e = 0; iter >= 0 && e < n; e++)
                x->data[e] = value(t, logical_index(x, lo + e), iter + 1000 * k);
        }
    }
}

static void model_free(struct mb_ckpt_tensor m[3][NT])
{
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < NT; t++)
            free(m[k][t].data);
}

static int parse_optim(const char *s, int *optim, int *distopt)
{
    *optim = strcmp(s, "nooptim") != 0;
    *distopt = strcmp(s, "distopt") == 0;
    if (*optim && !*distopt && strcmp(s, "optim") != 0)
        return mb_err_set(MB_E_USAGE, s, "expected nooptim, optim or distopt");
    return 0;
}

static int cmd_save(const struct mb_dist *d, char **argv)
{
    struct layout l;
    int64_t iter;
    int optim, distopt, bf16 = strcmp(argv[5], "bf16") == 0;
    char *path = NULL;
    struct mb_ckpt_tensor m[3][NT];

    if (mb_parse_i64(argv[3], 0, 9999999, &iter, "ITER") != 0 ||
        parse_layout(d, argv[4], &l) != 0 || parse_optim(argv[6], &optim, &distopt) != 0)
        return -1;
    if (!bf16 && strcmp(argv[5], "fp32") != 0)
        return mb_err_set(MB_E_USAGE, argv[5], "expected fp32 or bf16");
    model_init(m, &l, distopt, iter);
    if (strcmp(argv[1], "save-skew") == 0 && l.tp_rank == 1)
        m[0][2].slab[0].global_start--;
    struct mb_ckpt_state st = { .iteration = iter, .optim_step = iter,
                                .model_config_json = "{\"num_layers\": 3}",
                                .tokenizer = "bytes",
                                .layout = { l.tp, 1, l.dp, 1, distopt } };
    int rc = mb_ckpt_save(d, argv[2], m[0], NT, optim ? m[1] : NULL, optim ? m[2] : NULL,
                          bf16 ? MB_CKPT_BF16 : MB_CKPT_F32, &st, &path);
    if (rc == 0 && d->rank == 0)
        printf("%s\n", path);
    free(path);
    model_free(m);
    return rc;
}

/* Compare every loaded element with the value of its logical index. */
static int check_values(struct mb_ckpt_tensor got[3][NT], int kinds, int64_t iter,
                        int64_t *count)
{
    struct mb_ckpt_tensor *x;

    for (int k = 0; k < kinds; k++)
        for (int t = 0; t < NT; t++) {
            x = &got[k][t];
            int64_t lo = x->part ? x->part_start : 0;
            int64_t n = x->part ? x->part_count : local_numel(x);
            for (int64_t e = 0; e < n; e++) {
                int64_t g = logical_index(x, lo + e);
                float want = value(t, g, iter + 1000 * k);
                if (memcmp(&want, &x->data[e], sizeof want) != 0)
                    return mb_err_set(MB_E_INVALID, x->name, "kind %d local element %lld "
                                      "(logical %lld): got %.9g, want %.9g", k,
                                      (long long)(lo + e), (long long)g, x->data[e], want);
            }
            *count += n;
        }
    return 0;
}

static int cmd_load(const struct mb_dist *d, char **argv)
{
    struct layout l;
    int optim, distopt;
    char *file = NULL;
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    struct mb_ckpt_tensor m[3][NT];
    int64_t count = 0;

    if (parse_layout(d, argv[3], &l) != 0 || parse_optim(argv[4], &optim, &distopt) != 0 ||
        mb_ckpt_resolve(argv[2], &file) != 0)
        return -1;
    if (!file)
        return mb_err_set(MB_E_INVALID, argv[2], "no checkpoint to load");
    model_init(m, &l, distopt, -1);
    int rc = mb_ckpt_load(d, file, m[0], NT, optim ? m[1] : NULL, optim ? m[2] : NULL, &st);
    if (rc == 0)
        rc = check_values(m, optim ? 3 : 1, st.iteration, &count);
    if (rc == 0)
        printf("rank %d: %lld elements of %d tensors equal\n", d->rank, (long long)count,
               optim ? 3 * NT : NT);
    mb_ckpt_state_release(&st);
    model_free(m);
    free(file);
    return rc;
}

/* ---- reshard: a real model's checkpoint ------------------------------------------- */

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* How the TP code cuts the tensor NAME; GATED: fc1 holds gate and up rows. */
static enum kind kind_of(const char *name, int gated)
{
    if (ends_with(name, "linear_qkv.weight") || ends_with(name, "linear_qkv.bias"))
        return ROWS1;
    if (ends_with(name, "linear_fc1.weight") || ends_with(name, "linear_fc1.bias"))
        return gated ? GATE_UP : ROWS1;
    if (ends_with(name, "linear_proj.weight") || ends_with(name, "linear_fc2.weight"))
        return COLS2;
    if (ends_with(name, "word_embeddings.weight") || ends_with(name, "output_layer.weight"))
        return ROWS0;
    return WHOLE;
}

static int gated_model(mb_ckpt_reader *r, int *gated)
{
    char *cfg = NULL;

    if (mb_ckpt_reader_attr(r, "model_config", &cfg) != 0)
        return -1;
    mb_json *j = mb_json_parse(cfg, strlen(cfg), "model_config");
    const char *act = j ? mb_json_str(mb_json_get(j, "activation"), NULL) : NULL;
    *gated = act && (strcmp(act, "swiglu") == 0 || strcmp(act, "geglu") == 0);
    mb_json_free(j);
    free(cfg);
    return act ? 0 : mb_err_set(MB_E_INVALID, "model_config", "no activation");
}

/* The /model datasets of R as this rank's shards, with room for their data. */
static int shards_of(mb_ckpt_reader *r, const struct layout *l, struct mb_ckpt_tensor **out,
                     int *n)
{
    int gated, cap = mb_ckpt_reader_count(r);
    struct mb_ckpt_tensor *t = mb_xcalloc((size_t)cap + 1, sizeof *t);

    *n = 0;
    *out = t;
    if (gated_model(r, &gated) != 0)
        return -1;
    for (int i = 0; i < cap; i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        if (strncmp(it->path, "/model/", 7) != 0)
            continue;
        struct mb_ckpt_tensor *x = &t[(*n)++];
        char *name = mb_xstrdup(it->path + 7);
        for (char *p = name; *p; p++)
            *p = *p == '/' ? '.' : *p;
        x->name = name;
        x->ndim = it->ndim;
        memcpy(x->shape, it->shape, sizeof it->shape);
        shard(x, kind_of(name, gated), l->tp, l->tp_rank);
        x->data = mb_xcalloc((size_t)local_numel(x) + 1, sizeof(float));
    }
    return 0;
}

static int cmd_reshard(const struct mb_dist *d, char **argv)
{
    struct layout l;
    struct mb_ckpt_tensor *t = NULL;
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    struct mb_ckpt_extra *extra = NULL;
    int n = 0, n_extra = 0;
    char *path = NULL;

    if (parse_layout(d, argv[4], &l) != 0)
        return -1;
    mb_ckpt_reader *r = mb_ckpt_reader_open(d, argv[2]);
    int rc = r ? shards_of(r, &l, &t, &n) : -1;
    if (rc == 0)
        rc = mb_ckpt_reader_extras(r, &extra, &n_extra);
    mb_ckpt_reader_close(r);
    if (rc == 0)
        rc = mb_ckpt_load(d, argv[2], t, n, NULL, NULL, &st);
    if (rc == 0) {
        st.extra = extra;
        st.n_extra = n_extra;
        st.layout = (struct mb_ckpt_layout){ l.tp, 1, l.dp, 1, 0 };
        rc = mb_ckpt_save(d, argv[3], t, n, NULL, NULL, MB_CKPT_F32, &st, &path);
    }
    if (rc == 0 && d->rank == 0)
        printf("%s\n", path);
    free(path);
    mb_ckpt_extras_free(extra, n_extra);
    st.extra = NULL;
    mb_ckpt_state_release(&st);
    for (int i = 0; i < n; i++) {
        free((char *)t[i].name);
        free(t[i].data);
    }
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;
    int rc;

    mb_tool_start("ckpt_shard");
    mb_dist_init(&d, &argc, &argv);
    if (argc == 7 && (strcmp(argv[1], "save") == 0 || strcmp(argv[1], "save-skew") == 0))
        rc = cmd_save(&d, argv);
    else if (argc == 5 && strcmp(argv[1], "load") == 0)
        rc = cmd_load(&d, argv);
    else if (argc == 5 && strcmp(argv[1], "reshard") == 0)
        rc = cmd_reshard(&d, argv);
    else
        rc = mb_err_set(MB_E_USAGE, "", "usage: ckpt_shard save DIR ITER LAYOUT fp32|bf16 "
                        "nooptim|optim|distopt | load PATH LAYOUT nooptim|optim|distopt | "
                        "reshard FILE DIR LAYOUT");
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
