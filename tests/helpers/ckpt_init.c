/* tests/helpers/ckpt_init.c - write a randomly initialised checkpoint of a model config.
 *
 *   ckpt_init CONFIG.json DIR [--seed S] [--std X] [--bf16] [--tokenizer SPEC]
 *
 * Builds the model of CONFIG (model.* keys; --std overrides init_method_std), fills
 * its weights from SEED (mb_model_init_weights), moves norm weights and biases off 1
 * and 0 (so each one matters to an oracle), and saves it with mb_ckpt_save into DIR
 * (DIR/iter_0000000.h5 and DIR/latest), /model in fp32 or, with --bf16, bf16. The
 * checkpoint's tokenizer attribute is SPEC (default "").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kern/ops.h"
#include "nn/model.h"

struct args {
    const char *config, *dir, *tokenizer;
    uint64_t seed;
    double std;
    int bf16;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    *a = (struct args){ NULL, NULL, "", 1, 0, 0 };
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
            a->seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--std") == 0)
            a->std = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--tokenizer") == 0)
            a->tokenizer = argv[++i];
        else if (strcmp(argv[i], "--bf16") == 0)
            a->bf16 = 1;
        else if (!a->config)
            a->config = argv[i];
        else if (!a->dir)
            a->dir = argv[i];
        else
            return -1;
    }
    return a->config && a->dir ? 0 : -1;
}

static void perturb_norms_and_biases(struct mb_model *m, uint64_t seed)
{
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (p->init != MB_INIT_ONES && p->init != MB_INIT_ZEROS)
            continue;
        for (int64_t e = 0; e < p->numel; e++) {
            uint64_t r = mb_splitmix64(seed * 1000003u + (uint64_t)i * 7919u + (uint64_t)e);
            m->w[p->offset + e] += 0.2f * ((float)(r >> 40) / (float)(1 << 24) - 0.5f);
        }
    }
}

static int save(const struct args *a, struct mb_model *m)
{
    const struct mb_param_table *p = &m->params;
    struct mb_ckpt_tensor *t = mb_ckpt_tensors_of(p, NULL, m->w);
    char *json = mb_model_config_to_json(&m->cfg);
    struct mb_ckpt_state st = MB_CKPT_STATE_INIT;
    st.model_config_json = json;
    st.recipe_json = "{}";
    st.tokenizer = a->tokenizer;
    int rc = mb_ckpt_save(NULL, a->dir, t, p->count, NULL, NULL,
                          a->bf16 ? MB_CKPT_BF16 : MB_CKPT_F32, &st, NULL);
    free(json);
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    mb_log_set_tool("ckpt_init");
    struct args a;
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "usage: ckpt_init CONFIG.json DIR [--seed S] [--std X] [--bf16] "
                        "[--tokenizer SPEC]\n");
        return 2;
    }
    mb_json *j = mb_json_parse_file(a.config);
    struct mb_model_config cfg;
    if (!j || mb_model_config_from_json(&cfg, j, a.config) < 0) {
        mb_log_error_record();
        return 1;
    }
    mb_json_free(j);
    if (a.std > 0)
        cfg.init_method_std = a.std;
    struct mb_model m;
    if (mb_model_init(&m, &cfg, mb_ops_cpu()) < 0) {
        mb_log_error_record();
        return 1;
    }
    mb_model_init_weights(&m, a.seed);
    perturb_norms_and_biases(&m, a.seed);
    int rc = save(&a, &m);
    if (rc < 0)
        mb_log_error_record();
    mb_model_free(&m);
    return rc < 0 ? 1 : 0;
}
