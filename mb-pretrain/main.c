/* mb-pretrain - pretrain a decoder-only transformer from indexed token files.
 *
 *   mb-pretrain --recipe NAME|FILE [key=value ...]
 *   mpirun -np N mb-pretrain --recipe NAME ...     (data parallel over N ranks)
 *
 * Options, configuration and the tokenizer only; the loop is common/train/trainer.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/str.h"
#include "core/log.h"
#include "core/tool.h"
#include "dist/comm.h"
#include "kern/ops.h"
#include "tok/tokenizer.h"
#include "train/schema.h"
#include "train/setup.h"
#include "train/trainer.h"

struct pt_opts {
    const char *recipe;
    int print_config;
    char **args;
    int nargs;
};

static const struct mb_opt pt_options[] = {
    { "recipe", 'r', MB_OPT_STR, offsetof(struct pt_opts, recipe), "NAME|FILE",
      "a recipe in recipes/ (tiny, llama32_1b, gpt2_124m, ...) or a YAML file (required)", 0, 0 },
    { "print-config", 0, MB_OPT_FLAG, offsetof(struct pt_opts, print_config), NULL,
      "print the resolved configuration and exit", 0, 0 },
};

static void version_extra(FILE *out)
{
    fprintf(out, "mpi: %s\n", mb_dist_library_version());
}

/* Megatron-LM flags whose key has another name or a fixed value (store_true flags). */
static const struct {
    const char *flag, *key, *value;
} megatron_flags[] = {
    { "norm_epsilon", "model.layernorm_epsilon", NULL },
    { "data_cache_path", "data.path_to_cache", NULL },
    { "mock_data", "data.mock", "true" },
    { "untie_embeddings_and_output_weights", "model.share_embeddings_and_output_weights",
      "false" },
    { "swiglu", "model.activation", "swiglu" },
    { "disable_bias_linear", "model.add_bias_linear", "false" },
    { "use_rotary_position_embeddings", "model.position_embedding_type", "rope" },
    { "apply_layernorm_1p", "model.layernorm_zero_centered_gamma", "true" },
};

/* The schema entry whose last part is NAME ("train_iters" -> train.train_iters). */
static const struct mb_config_key *key_named(const char *name)
{
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);

    for (size_t i = 0; i < n; i++) {
        const char *dot = strrchr(schema[i].key, '.');
        if (strcmp(dot ? dot + 1 : schema[i].key, name) == 0)
            return &schema[i];
    }
    return NULL;
}

/* A Megatron-LM flag (--train-iters 10) given to mb-pretrain: name the key=value. */
static void megatron_hint(struct mb_buf *out, const char *name, size_t len, const char *value)
{
    char flag[128];
    const char *key = NULL, *fixed = NULL;

    if (len >= sizeof flag)
        return;
    for (size_t i = 0; i <= len; i++)
        flag[i] = i == len ? '\0' : name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < MB_ARRAY_LEN(megatron_flags) && !key; i++)
        if (strcmp(flag, megatron_flags[i].flag) == 0) {
            key = megatron_flags[i].key;
            fixed = megatron_flags[i].value;
        }
    const struct mb_config_key *k = key ? NULL : key_named(flag);
    if (!key && !k && strncmp(flag, "no_", 3) == 0 && (k = key_named(flag + 3)) &&
        k->type == MB_CONFIG_BOOL)
        fixed = "false"; /* --no-save-optim */
    else if (!key && k && k->type == MB_CONFIG_BOOL)
        fixed = "true";
    if (k)
        key = k->key;
    if (!key)
        return;
    if (value && mb_config_is_override(value))
        value = NULL;
    mb_buf_addf(out, "mb-pretrain takes key=value: %s=%s", key,
                fixed ? fixed : value ? value : "VALUE");
}

static const struct mb_cli pt_cli = {
    .tool = "mb-pretrain",
    .synopsis = "--recipe NAME|FILE [key=value ...]",
    .summary = "Pretrain a Llama, Qwen, Mistral, Gemma or GPT-2 model from indexed token files.",
    .opts = pt_options,
    .nopts = MB_ARRAY_LEN(pt_options),
    .args_offset = offsetof(struct pt_opts, args),
    .nargs_offset = offsetof(struct pt_opts, nargs),
    .version_extra = version_extra,
    .unknown_hint = megatron_hint,
};

/* Vocabulary size and end-of-document id from tokenizer.tokenizer_model, if set. */
static int load_tokenizer(const mb_config *cfg, int rank, struct mb_train_tokenizer *tok,
                          char **abs_path)
{
    *abs_path = NULL;
    memset(tok, 0, sizeof(*tok));
    tok->eod_id = -1;
    if (!mb_config_has(cfg, "tokenizer.tokenizer_model")) {
        if (!mb_config_bool(cfg, "data.mock") && rank == 0)
            mb_log_warn("no tokenizer.tokenizer_model: the token files are read without one, "
                        "so the vocabulary is model.vocab_size, the end of document is "
                        "tokenizer.eod_id, and checkpoints carry no tokenizer (mb-generate "
                        "and mb-convert will need one)");
        return 0;
    }
    const char *spec = mb_config_str(cfg, "tokenizer.tokenizer_model");
    mb_tokenizer *t = mb_tokenizer_load(spec);
    if (!t)
        return -1;
    tok->vocab_size = mb_tokenizer_vocab_size(t);
    tok->eod_id = mb_tokenizer_eod(t);
    /* checkpoints name it by its absolute path, so that mb-generate and mb-convert find
     * it from any directory ("bytes" is not a path and stays as it is) */
    *abs_path = strcmp(spec, "bytes") == 0 ? NULL : realpath(spec, NULL);
    tok->name = *abs_path ? *abs_path : spec;
    mb_log_info("tokenizer: %s", mb_tokenizer_describe(t));
    mb_tokenizer_free(t);
    return 0;
}

static int pretrain(const struct pt_opts *o, const struct mb_dist *dist)
{
    mb_config *cfg =
        mb_setup_load_config(o->recipe, o->args, o->nargs, "train.train_iters=100");
    if (!cfg)
        return -1;
    /* the model trained is the pretrained checkpoint's: print and store that one */
    int rc = mb_setup_apply_pretrained(cfg, dist);
    if (!mb_dist_all_ok(dist, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
    if (rc == 0 && (o->print_config || dist->rank == 0)) {
        if (!o->print_config)
            fprintf(stderr, "mb-pretrain: resolved configuration:\n");
        rc = mb_config_print(cfg, o->print_config ? stdout : stderr);
    }
    if (rc == 0 && !o->print_config) {
        struct mb_train_tokenizer tok;
        char *tok_path = NULL;
        rc = load_tokenizer(cfg, dist->rank, &tok, &tok_path);
        rc = mb_train_checked_run(dist, cfg, &tok, rc);
        free(tok_path);
    }
    mb_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct pt_opts o = { 0 };
    struct mb_dist dist;
    mb_ops_cpu_prepare(argv);
    mb_tool_start("mb-pretrain");
    int rc = mb_dist_init(&dist, &argc, &argv);
    if (rc == 0)
        rc = mb_cli_parse(&pt_cli, argc, argv, &o);
    if (rc == 0)
        rc = pretrain(&o, &dist);
    free(o.args);
    int status = mb_tool_end(rc);
    mb_dist_finalize(&dist);
    return status;
}
