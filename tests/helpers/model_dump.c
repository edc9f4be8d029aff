/* model_dump - run one forward/backward of a model and dump everything as .npy files, for
 * the transformers oracle (tests/oracle/hf_model.py) and the finite-difference check.
 *
 *   model_dump CONFIG.json OUT_DIR [--batch B] [--seq T] [--seed S]
 *              [--peft lora|dora --dim R --alpha A [--targets linear_qkv,...]] [--bf16]
 *
 * Writes OUT_DIR/{config.json, tokens.npy, labels.npy, loss_mask.npy, logits.npy,
 * loss.npy, params/NAME.npy, grads/NAME.npy}. The loss is the mask-weighted mean token
 * loss; grads are its gradient. Tokens come from a counter hash of the seed.
 * With --peft the model carries adapters on a frozen base (peft/peft.h): params holds
 * base and adapters, grads the adapters only, and OUT_DIR/peft.json the adapter
 * configuration (the checkpoint attribute's JSON) for tests/oracle/peft_model.py. B
 * (zero at initialisation) and DoRA's magnitudes are moved off their start so that the
 * adapters change the output. --bf16: the step in bf16 mixed precision (mb_model_set_bf16;
 * params are the fp32 master weights).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "io/npy.h"
#include "kern/ops.h"
#include "nn/model.h"

static int fail(void)
{
    mb_log_error_record();
    return 1;
}

/* Every parameter of M from FLAT, or with GRADS the trainable ones from the gradient
 * buffer (which starts at the first trainable float). */
static int write_tensor_dir(const char *dir, const char *sub, const struct mb_model *m,
                            const float *flat, bool grads)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return mb_err_errno(path, "mkdir");
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (grads && !p->trainable)
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s.npy", dir, sub, p->name);
        int64_t at = p->offset - (grads ? m->params.frozen : 0);
        if (mb_npy_write(path, MB_NPY_F4, p->ndim, p->shape, flat + at) < 0)
            return -1;
    }
    return 0;
}

static int write_text(const char *path, const char *text)
{
    struct mb_outfile of = MB_OUTFILE_INIT;
    if (mb_outfile_open(&of, path) < 0)
        return -1;
    mb_outfile_write(&of, text, strlen(text));
    return mb_outfile_commit(&of);
}

/* Norm weights start at 1 (or 0) and biases at 0; move them off those values so the
 * oracle sees whether each is mapped and used right. */
static void perturb_norms_and_biases(struct mb_model *m, uint64_t seed)
{
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (p->init != MB_INIT_ONES && p->init != MB_INIT_ZEROS)
            continue;
        for (int64_t e = 0; e < p->numel; e++) {
            uint64_t at = (uint64_t)(i * 7919) + (uint64_t)e * 104729;
            uint64_t r = mb_splitmix64(seed ^ mb_splitmix64(at));
            m->w[p->offset + e] += 0.2f * ((float)(r >> 40) / (float)(1 << 24) - 0.5f);
        }
    }
}

/* DoRA's magnitudes: from the base's row norms, then scaled by 1 +- 0.1. */
static void perturb_magnitudes(struct mb_model *m, uint64_t seed)
{
    mb_model_init_magnitudes(m);
    for (int k = 0; k < MB_PEFT_MODULES; k++) {
        const struct mb_param *p = mb_param_get(&m->params, mb_param_adapter_id(k, MB_ADAPTER_M));
        for (int64_t e = 0; p && e < p->numel; e++) {
            uint64_t r = mb_splitmix64(seed ^ mb_splitmix64((uint64_t)(k * 31337 + e)));
            m->w[p->offset + e] *= 1.0f + 0.2f * ((float)(r >> 40) / (float)(1 << 24) - 0.5f);
        }
    }
}

struct args {
    const char *config, *out;
    int64_t batch, seq;
    uint64_t seed;
    const char *peft, *targets;
    int64_t dim;
    double alpha;
    bool bf16;
};

/* The adapters of A (kind NONE without --peft). */
static void peft_config(const struct args *a, struct mb_peft_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    if (!a->peft)
        return;
    pc->kind = strcmp(a->peft, "dora") == 0 ? MB_PEFT_DORA : MB_PEFT_LORA;
    pc->dim = a->dim;
    pc->alpha = a->alpha;
    pc->a_init = MB_PEFT_INIT_XAVIER;
    pc->b_init = MB_PEFT_INIT_ZERO;
    for (int k = 0; k < MB_PEFT_MODULES; k++)
        pc->target[k] = !a->targets || strstr(a->targets, mb_peft_module_name(k));
}

static int parse_args(int argc, char **argv, struct args *a)
{
    *a = (struct args){ NULL, NULL, 2, 16, 7, NULL, NULL, 8, 16.0, false };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bf16") == 0)
            a->bf16 = true;
        else if (i + 1 < argc && strcmp(argv[i], "--peft") == 0)
            a->peft = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--targets") == 0)
            a->targets = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--dim") == 0)
            a->dim = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--alpha") == 0)
            a->alpha = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
            a->batch = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--seq") == 0)
            a->seq = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
            a->seed = strtoull(argv[++i], NULL, 10);
        else if (!a->config)
            a->config = argv[i];
        else if (!a->out)
            a->out = argv[i];
        else
            return -1;
    }
    if (a->peft && strcmp(a->peft, "lora") != 0 && strcmp(a->peft, "dora") != 0)
        return -1;
    return a->config && a->out && a->batch > 0 && a->seq > 0 && a->dim > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    mb_log_set_tool("model_dump");
    struct args a;
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "usage: model_dump CONFIG.json OUT_DIR [--batch B] [--seq T] [--seed S] "
                        "[--peft lora|dora --dim R --alpha A [--targets M,...]] [--bf16]\n");
        return 2;
    }
    mb_json *j = mb_json_parse_file(a.config);
    struct mb_model_config cfg;
    if (!j || mb_model_config_from_json(&cfg, j, a.config) < 0)
        return fail();
    mb_json_free(j);
    static const struct mb_group one = { .rank = 0, .size = 1, .name = "tp", .kind = MB_GROUP_TP };
    struct mb_peft_config pc;
    struct mb_model m;
    peft_config(&a, &pc);
    if (mb_model_init_peft(&m, &cfg, mb_ops_cpu(), &one, false, &pc) < 0)
        return fail();
    mb_model_init_weights(&m, a.seed);
    perturb_norms_and_biases(&m, a.seed);
    perturb_magnitudes(&m, a.seed);
    if (a.bf16 && mb_model_set_bf16(&m) < 0) /* after the weights are final */
        return fail();
    mb_model_zero_grad(&m);

    int64_t n = a.batch * a.seq, v = cfg.vocab_size;
    int32_t *tokens = mb_xmalloc((size_t)n * sizeof(int32_t));
    int32_t *labels = mb_xmalloc((size_t)n * sizeof(int32_t));
    float *mask = mb_xmalloc((size_t)n * sizeof(float));
    for (int64_t b = 0; b < a.batch; b++) {
        for (int64_t t = 0; t < a.seq; t++) {
            int64_t i = b * a.seq + t;
            uint64_t at = a.seed * 1000003 + (uint64_t)(b * (a.seq + 1) + t);
            tokens[i] = (int32_t)(mb_splitmix64(at) % (uint64_t)v);
            labels[i] = (int32_t)(mb_splitmix64(at + 1) % (uint64_t)v);
            mask[i] = (i % 5 == 3) ? 0.0f : 1.0f;
        }
    }
    double mask_sum = 0;
    for (int64_t i = 0; i < n; i++)
        mask_sum += mask[i];
    float *logits = mb_xmalloc((size_t)(n * v) * sizeof(float));
    struct mb_batch batch = { a.batch, a.seq, tokens, labels, mask, NULL, NULL };
    double loss_sum, ms;
    if (mb_model_step(&m, &batch, (float)(1.0 / mask_sum), &loss_sum, &ms, logits) < 0)
        return fail();
    float loss = (float)(loss_sum / ms);

    if (mkdir(a.out, 0777) < 0 && errno != EEXIST)
        return mb_err_errno(a.out, "mkdir"), fail();
    char path[4096], *cfg_json = mb_model_config_to_json(&cfg);
    int64_t bt[2] = { a.batch, a.seq }, btv[3] = { a.batch, a.seq, v };
    int rc = 0;
#define OUT(name) (snprintf(path, sizeof(path), "%s/%s", a.out, name), path)
    rc |= write_text(OUT("config.json"), cfg_json);
    rc |= mb_npy_write(OUT("tokens.npy"), MB_NPY_I4, 2, bt, tokens);
    rc |= mb_npy_write(OUT("labels.npy"), MB_NPY_I4, 2, bt, labels);
    rc |= mb_npy_write(OUT("loss_mask.npy"), MB_NPY_F4, 2, bt, mask);
    rc |= mb_npy_write(OUT("logits.npy"), MB_NPY_F4, 3, btv, logits);
    rc |= mb_npy_write(OUT("loss.npy"), MB_NPY_F4, 0, bt, &loss);
    rc |= write_tensor_dir(a.out, "params", &m, m.w, false);
    rc |= write_tensor_dir(a.out, "grads", &m, m.g, true);
    if (a.peft) {
        char *peft_json = mb_peft_config_to_json(&pc);
        rc |= write_text(OUT("peft.json"), peft_json);
        free(peft_json);
    }
#undef OUT
    if (rc)
        return fail();
    printf("loss %.9g over %.0f tokens\n", loss, ms);
    free(cfg_json);
    free(tokens);
    free(labels);
    free(mask);
    free(logits);
    mb_model_free(&m);
    return 0;
}
