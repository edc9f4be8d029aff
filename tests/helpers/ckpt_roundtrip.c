/* tests/helpers/ckpt_roundtrip.c - save and load a synthetic model through ckpt/, on one
 * process or under mpirun, for the t40xx-ckpt tests. tests/oracle/h5_check.py knows
 * the same tensors and values and checks the files with h5py.
 *
 *   ckpt_roundtrip save DIR ITER fp32|bf16 optim|nooptim
 *       save iteration ITER; rank 0 prints the file's path
 *   ckpt_roundtrip save-clash DIR ITER
 *       like "save ... fp32 optim", but the last tensor is renamed "decoder.layers.mlp",
 *       a group of an earlier tensor, so HDF5 fails half-way through the file
 *   ckpt_roundtrip load PATH fp32|bf16 optim|nooptim
 *       resolve PATH (file or directory), load, and check every value and the state
 *       against the synthetic model of the iteration found; rank 0 prints
 *       "loaded FILE iteration N"
 *   ckpt_roundtrip list FILE
 *       print every dataset ("PATH DTYPE [SHAPE]") and the root attributes
 *
 * Value of element i of tensor t, for iteration s and kind k (0 weight, 1 exp_avg,
 * 2 exp_avg_sq): ((t*7919 + i*104729 + (s + 1000*k)*31) mod 65537 - 32768) / 1024.
 * SIGXFSZ is ignored so that a file-size limit (ulimit -f) makes writes fail.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/str.h"
#include "core/tool.h"
#include "dist/comm.h"

#define NT 7

static const char *names[NT] = {
    "embedding.word_embeddings.weight",
    "decoder.layers.self_attention.linear_qkv.layer_norm_weight",
    "decoder.layers.self_attention.linear_qkv.weight",
    "decoder.layers.mlp.linear_fc1.weight",
    "decoder.layers.mlp.linear_fc2.weight",
    "decoder.final_layernorm.weight",
    "output_layer.bias",
};
static const int ndims[NT] = { 2, 2, 3, 3, 3, 1, 1 };
static const int64_t shapes[NT][3] = {
    { 11, 6 }, { 3, 6 }, { 3, 12, 6 }, { 3, 8, 6 }, { 3, 6, 4 }, { 6 }, { 1 },
};

struct model {
    struct mb_ckpt_tensor t[3][NT]; /* weight, exp_avg, exp_avg_sq */
};

static float value(int t, int64_t i, int64_t salt)
{
    return (float)((t * 7919 + i * 104729 + salt * 31) % 65537 - 32768) / 1024.0f;
}

static int64_t numel(int t)
{
    int64_t n = 1;
    for (int i = 0; i < ndims[t]; i++)
        n *= shapes[t][i];
    return n;
}

/* Fill with iteration ITER's values, or zeros when ITER < 0. */
static void model_init(struct model *m, int64_t iter)
{
    for (int k = 0; k < 3; k++) {
        for (int t = 0; t < NT; t++) {
            struct mb_ckpt_tensor *x = &m->t[k][t];
            *x = (struct mb_ckpt_tensor){ .name = names[t], .ndim = ndims[t] };
            memcpy(x->shape, shapes[t], sizeof shapes[t]);
            x->data = calloc((size_t)numel(t), sizeof(float));
            for (int64_t i = 0; iter >= 0 && i < numel(t); i++)
                x->data[i] = value(t, i, iter + 1000 * k);
        }
    }
}

static void model_free(struct model *m)
{
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < NT; t++)
            free(m->t[k][t].data);
}

static void make_state(struct mb_ckpt_state *st, int64_t iter, char *rng, char *cfg,
                       char *recipe)
{
    sprintf(rng, "rng-state-%lld", (long long)iter);
    sprintf(cfg, "{\"num_layers\": 3, \"hidden_size\": 6}");
    sprintf(recipe, "{\"train\": {\"train_iters\": %lld}}", (long long)iter);
    *st = (struct mb_ckpt_state){ .iteration = iter, .consumed_train_samples = 8 * iter,
                                  .consumed_valid_samples = 2 * iter, .optim_step = iter,
                                  .rng_state = rng, .rng_state_len = strlen(rng),
                                  .model_config_json = cfg, .recipe_json = recipe,
                                  .tokenizer = "bytes" };
}

static int parse_kind(const char *dtype, const char *optim, int *bf16, int *with_optim)
{
    *bf16 = strcmp(dtype, "bf16") == 0;
    *with_optim = strcmp(optim, "optim") == 0;
    if ((!*bf16 && strcmp(dtype, "fp32") != 0) || (!*with_optim && strcmp(optim, "nooptim")))
        return mb_err_set(MB_E_USAGE, "", "expected fp32|bf16 optim|nooptim");
    return 0;
}

static int cmd_save(const struct mb_dist *d, char **argv)
{
    int64_t iter;
    int bf16, optim;
    char rng[64], cfg[128], recipe[128], *path = NULL;
    struct mb_ckpt_state st;
    struct model m;

    if (mb_parse_i64(argv[3], 0, 9999999, &iter, "ITER") != 0 ||
        parse_kind(argv[4], argv[5], &bf16, &optim) != 0)
        return -1;
    model_init(&m, iter);
    if (strcmp(argv[1], "save-clash") == 0)
        m.t[0][NT - 1].name = "decoder.layers.mlp";
    make_state(&st, iter, rng, cfg, recipe);
    int rc = mb_ckpt_save(d, argv[2], m.t[0], NT, optim ? m.t[1] : NULL, optim ? m.t[2] : NULL,
                          bf16 ? MB_CKPT_BF16 : MB_CKPT_F32, &st, &path);
    if (rc == 0 && d->rank == 0)
        printf("%s\n", path);
    free(path);
    model_free(&m);
    return rc;
}

/* Check loaded tensors against iteration ITER's values (bf16-rounded if ROUND). */
static int check_values(const struct model *got, int64_t iter, int round, int optim)
{
    struct model want;

    model_init(&want, iter);
    int rc = 0;
    for (int k = 0; k < (optim ? 3 : 1) && rc == 0; k++) {
        for (int t = 0; t < NT && rc == 0; t++) {
            for (int64_t i = 0; i < numel(t); i++) {
                float w = want.t[k][t].data[i], g = got->t[k][t].data[i];
                if (round && k == 0)
                    w = mb_ckpt_f32_from_bf16(mb_ckpt_bf16_from_f32(w));
                if (memcmp(&w, &g, sizeof w) != 0) {
                    rc = mb_err_set(MB_E_INVALID, names[t], "kind %d element %lld: got %.9g, "
                                    "want %.9g", k, (long long)i, g, w);
                    break;
                }
            }
        }
    }
    model_free(&want);
    return rc;
}

static int check_state(const struct mb_ckpt_state *st, int optim)
{
    struct mb_ckpt_state want;
    char rng[64], cfg[128], recipe[128];

    make_state(&want, st->iteration, rng, cfg, recipe);
    if (st->consumed_train_samples != want.consumed_train_samples ||
        st->consumed_valid_samples != want.consumed_valid_samples ||
        st->optim_step != (optim ? want.optim_step : 0) ||
        st->rng_state_len != want.rng_state_len ||
        memcmp(st->rng_state, want.rng_state, want.rng_state_len) != 0 ||
        st->data_state_len != 0 || strcmp(st->model_config_json, cfg) != 0 ||
        strcmp(st->recipe_json, recipe) != 0 || strcmp(st->tokenizer, "bytes") != 0)
        return mb_err_set(MB_E_INVALID, "", "state of iteration %lld differs from what was saved",
                          (long long)st->iteration);
    return 0;
}

static int cmd_load(const struct mb_dist *d, char **argv)
{
    int bf16, optim;
    char *file = NULL;
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    struct model m;

    if (parse_kind(argv[3], argv[4], &bf16, &optim) != 0 || mb_ckpt_resolve(argv[2], &file) != 0)
        return -1;
    if (!file)
        return mb_err_set(MB_E_INVALID, argv[2], "no checkpoint to load");
    model_init(&m, -1);
    int rc = mb_ckpt_load(d, file, m.t[0], NT, optim ? m.t[1] : NULL, optim ? m.t[2] : NULL, &st);
    if (rc == 0)
        rc = check_values(&m, st.iteration, bf16 && !optim, optim);
    if (rc == 0)
        rc = check_state(&st, optim);
    if (rc == 0 && d->rank == 0)
        printf("loaded %s iteration %lld\n", file, (long long)st.iteration);
    mb_ckpt_state_release(&st);
    model_free(&m);
    free(file);
    return rc;
}

static int cmd_list(char **argv)
{
    static const char *attrs[] = { "format", "mb_version", "model_config", "recipe", "tokenizer" };
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, argv[2]);

    if (!r)
        return -1;
    for (int i = 0; i < mb_ckpt_reader_count(r); i++) {
        const struct mb_ckpt_info *it = mb_ckpt_reader_info(r, i);
        printf("%s %s [", it->path, mb_ckpt_dtype_name(it->dtype));
        for (int k = 0; k < it->ndim; k++)
            printf(k ? ", %lld" : "%lld", (long long)it->shape[k]);
        printf("]\n");
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && rc == 0; i++) {
        char *v;
        rc = mb_ckpt_reader_attr(r, attrs[i], &v);
        if (rc == 0)
            printf("@%s %s\n", attrs[i], v);
        free(rc == 0 ? v : NULL);
    }
    mb_ckpt_reader_close(r);
    return rc;
}

int main(int argc, char **argv)
{
    struct mb_dist d;
    int rc;

    mb_tool_start("ckpt_roundtrip");
    signal(SIGXFSZ, SIG_IGN);
    mb_dist_init(&d, &argc, &argv);
    if (argc == 6 && strcmp(argv[1], "save") == 0)
        rc = cmd_save(&d, argv);
    else if (argc == 4 && strcmp(argv[1], "save-clash") == 0)
        rc = cmd_save(&d, (char *[]){ argv[0], argv[1], argv[2], argv[3], "fp32", "optim" });
    else if (argc == 5 && strcmp(argv[1], "load") == 0)
        rc = cmd_load(&d, argv);
    else if (argc == 3 && strcmp(argv[1], "list") == 0)
        rc = cmd_list(argv);
    else
        rc = mb_err_set(MB_E_USAGE, "", "usage: ckpt_roundtrip save DIR ITER fp32|bf16 "
                        "optim|nooptim | load PATH fp32|bf16 optim|nooptim | list FILE");
    rc = mb_tool_end(rc);
    mb_dist_finalize(&d);
    return rc;
}
