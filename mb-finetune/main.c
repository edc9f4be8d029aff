/* mb-finetune - supervised fine-tuning of a pretrained model on JSONL rows.
 *
 *   mb-finetune --recipe NAME|FILE checkpoint.pretrained_checkpoint=BASE
 *       data.data_path=train.jsonl [key=value ...]
 *   mpirun -np N mb-finetune ...                   (data parallel over N ranks)
 *
 * Options, configuration and the tokenizer only; the loop is common/train/trainer.c and
 * the data common/data/sft.h. As Megatron Bridge's finetune(), a run starts from
 * checkpoint.pretrained_checkpoint or resumes from checkpoint.load.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tool.h"
#include "dist/comm.h"
#include "kern/ops.h"
#include "core/fs.h"
#include "core/json.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"
#include "train/schema.h"
#include "train/setup.h"
#include "train/trainer.h"

struct ft_opts {
    const char *recipe;
    int print_config;
    char **args;
    int nargs;
};

static const struct mb_opt ft_options[] = {
    { "recipe", 'r', MB_OPT_STR, offsetof(struct ft_opts, recipe), "NAME|FILE",
      "a recipe in recipes/ (sft_full, sft_lora, sft_dora) or a YAML file (required)", 0, 0 },
    { "print-config", 0, MB_OPT_FLAG, offsetof(struct ft_opts, print_config), NULL,
      "print the resolved configuration and exit", 0, 0 },
};

static void version_extra(FILE *out)
{
    fprintf(out, "mpi: %s\n", mb_dist_library_version());
}

static const struct mb_cli ft_cli = {
    .tool = "mb-finetune",
    .synopsis = "--recipe NAME|FILE checkpoint.pretrained_checkpoint=CKPT "
                "data.data_path=FILE.jsonl [key=value ...]",
    .summary = "Fine-tune a pretrained model on prompt/completion JSONL rows (SFT).",
    .opts = ft_options,
    .nopts = MB_ARRAY_LEN(ft_options),
    .args_offset = offsetof(struct ft_opts, args),
    .nargs_offset = offsetof(struct ft_opts, nargs),
    .version_extra = version_extra,
};

/* Bridge's finetune(): there must be weights to start from. */
static int require_base(const mb_config *cfg)
{
    if (mb_config_has(cfg, "checkpoint.pretrained_checkpoint") ||
        mb_config_has(cfg, "checkpoint.load"))
        return 0;
    return mb_err_set(MB_E_INVALID, "checkpoint.pretrained_checkpoint",
                      "fine-tuning starts from a model: set checkpoint.pretrained_checkpoint "
                      "(or checkpoint.load to resume)");
}

/* The checkpoint file the run starts from: checkpoint.load's latest if it has one, else
 * checkpoint.pretrained_checkpoint's. NULL in *FILE when neither holds one yet. */
static int base_file(const mb_config *cfg, char **file)
{
    *file = NULL;
    if (mb_config_has(cfg, "checkpoint.load") &&
        mb_ckpt_resolve(mb_config_str(cfg, "checkpoint.load"), file) < 0)
        return -1;
    if (!*file && mb_config_has(cfg, "checkpoint.pretrained_checkpoint") &&
        mb_ckpt_resolve(mb_config_str(cfg, "checkpoint.pretrained_checkpoint"), file) < 0)
        return -1;
    return 0;
}

/* The chat template of the tokenizer_config.json in DIR (a tokenizer's directory), into
 * *CHAT, named NAME in messages (NULL: its path); NULL when there is no such file or it
 * has no chat_template (chat rows are then refused where they occur). -1 with mb_err on
 * a template that cannot be loaded. */
static int load_chat_template(const char *dir, const char *name, mb_chat_template **chat)
{
    *chat = NULL;
    char *path = mb_xasprintf("%s/tokenizer_config.json", dir), *text = NULL;
    size_t len = 0;
    mb_json *config = NULL;
    if (mb_fs_exists(path) && mb_fs_read_all(path, &text, &len) == 0)
        config = mb_json_parse(text, len, path);
    mb_err_clear(); /* an unreadable file was the tokenizer loader's to report */
    name = name ? name : path;
    int rc = 0;
    if (config && mb_json_get(config, "chat_template")) {
        *chat = mb_chat_template_load_data(text, len, name);
        rc = *chat ? 0 : -1;
        if (*chat)
            mb_log_info("chat template of %s (%s markers)", name,
                        mb_chat_template_family(*chat) ? mb_chat_template_family(*chat)
                                                       : "no known");
    }
    mb_json_free(config);
    free(text);
    free(path);
    return rc;
}

/* The directory of tokenizer spec SPEC: itself, or the one holding the file. */
static char *spec_dir(const char *spec)
{
    struct stat sb;
    if (stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode))
        return mb_xstrdup(spec);
    const char *slash = strrchr(spec, '/');
    return slash ? mb_xstrndup(spec, (size_t)(slash - spec)) : mb_xstrdup(".");
}

/* The tokenizer of the base checkpoint: its /hf/files/ tokenizer blobs, else the file its
 * `tokenizer` attribute names; its chat template into *CHAT. */
static mb_tokenizer *base_tokenizer(const mb_config *cfg, mb_chat_template **chat)
{
    char *file = NULL, *dir = NULL, *named = NULL;
    if (base_file(cfg, &file) < 0)
        return NULL;
    if (!file) {
        mb_err_set(MB_E_INVALID, "checkpoint.pretrained_checkpoint",
                   "%s: no checkpoint there (no such file, or no 'latest'), so no tokenizer: "
                   "set tokenizer.tokenizer_model",
                   mb_config_has(cfg, "checkpoint.pretrained_checkpoint")
                       ? mb_config_str(cfg, "checkpoint.pretrained_checkpoint")
                       : mb_config_str(cfg, "checkpoint.load"));
        return NULL;
    }
    mb_tokenizer *t = NULL;
    mb_ckpt_reader *r = mb_ckpt_reader_open(NULL, file);
    int rc = r ? mb_ckpt_hf_tokenizer_extract(r, "mb-finetune", &dir) : -1;
    if (rc == 0 && !dir && mb_ckpt_reader_attr(r, "tokenizer", &named) < 0)
        mb_err_clear();
    mb_ckpt_reader_close(r);
    if (rc == 0 && (dir || (named && *named)))
        t = mb_tokenizer_load(dir ? dir : named);
    else if (rc == 0)
        mb_err_set(MB_E_INVALID, file, "the checkpoint carries no tokenizer: set "
                   "tokenizer.tokenizer_model");
    char *blob = mb_xasprintf("%s:/hf/files/tokenizer_config.json", file);
    if (t && dir && load_chat_template(dir, blob, chat) < 0) {
        mb_tokenizer_free(t);
        t = NULL;
    }
    free(blob);
    if (t)
        mb_log_info("tokenizer of %s: %s", file, mb_tokenizer_describe(t));
    mb_ckpt_hf_tokenizer_remove(dir);
    free(named);
    free(file);
    return t;
}

/* tokenizer.tokenizer_model, or the base checkpoint's; its sizes and chat template (into
 * *CHAT, the caller's to free) into TOK. */
static mb_tokenizer *load_tokenizer(const mb_config *cfg, struct mb_train_tokenizer *tok,
                                    char **abs_path, mb_chat_template **chat)
{
    *abs_path = NULL;
    *chat = NULL;
    memset(tok, 0, sizeof(*tok));
    mb_tokenizer *t;
    if (mb_config_has(cfg, "tokenizer.tokenizer_model")) {
        const char *spec = mb_config_str(cfg, "tokenizer.tokenizer_model");
        if (!(t = mb_tokenizer_load(spec)))
            return NULL;
        *abs_path = strcmp(spec, "bytes") == 0 ? NULL : realpath(spec, NULL);
        tok->name = *abs_path ? *abs_path : spec;
        mb_log_info("tokenizer: %s", mb_tokenizer_describe(t));
        char *dir = strcmp(spec, "bytes") == 0 ? NULL : spec_dir(spec);
        int rc = dir ? load_chat_template(dir, NULL, chat) : 0;
        free(dir);
        if (rc < 0) {
            mb_tokenizer_free(t);
            return NULL;
        }
    } else if (!(t = base_tokenizer(cfg, chat))) {
        return NULL;
    }
    tok->chat = *chat;
    tok->vocab_size = mb_tokenizer_vocab_size(t);
    tok->eod_id = mb_tokenizer_eod(t);
    tok->sft = t;
    return t;
}

static int finetune(const struct ft_opts *o, const struct mb_dist *dist)
{
    mb_config *cfg =
        mb_setup_load_config(o->recipe, o->args, o->nargs, "data.data_path=train.jsonl");
    if (!cfg)
        return -1;
    int rc = require_base(cfg);
    /* the model trained is the pretrained checkpoint's: print and store that one */
    if (rc == 0)
        rc = mb_setup_apply_pretrained(cfg, dist);
    if (!mb_dist_all_ok(dist, rc == 0) && rc == 0)
        rc = mb_err_set(MB_E_INVALID, NULL, "stopped: another rank failed");
    if (rc == 0 && (o->print_config || dist->rank == 0)) {
        if (!o->print_config)
            fprintf(stderr, "mb-finetune: resolved configuration:\n");
        rc = mb_config_print(cfg, o->print_config ? stdout : stderr);
    }
    if (rc == 0 && !o->print_config) {
        struct mb_train_tokenizer tok;
        char *tok_path = NULL;
        mb_chat_template *chat = NULL;
        mb_tokenizer *t = load_tokenizer(cfg, &tok, &tok_path, &chat);
        rc = mb_train_checked_run(dist, cfg, &tok, t ? 0 : -1);
        mb_chat_template_free(chat);
        mb_tokenizer_free(t);
        free(tok_path);
    }
    mb_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct ft_opts o = { 0 };
    struct mb_dist dist;
    mb_ops_cpu_prepare(argv);
    mb_tool_start("mb-finetune");
    int rc = mb_dist_init(&dist, &argc, &argv);
    if (rc == 0)
        rc = mb_cli_parse(&ft_cli, argc, argv, &o);
    if (rc == 0)
        rc = finetune(&o, &dist);
    free(o.args);
    int status = mb_tool_end(rc);
    mb_dist_finalize(&dist);
    return status;
}
