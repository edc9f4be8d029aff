/* train/sftdata.c - where the trainer's samples come from: mb-pretrain's indexed token
 * files (data/gpt_dataset.h) or mb-finetune's JSONL rows (data/sft.h). */
#include "train/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "train/setup.h"

/* data.prompt_template, data.answer_key and data.separator as data/sft.h takes them. */
static void sft_format(const mb_config *cfg, struct mb_sft_format *f)
{
    bool own_template = mb_config_has(cfg, "data.prompt_template");
    f->prompt_template = own_template ? mb_config_str(cfg, "data.prompt_template") : "{input}";
    f->answer_key = mb_config_str(cfg, "data.answer_key");
    /* the default template with " " is Bridge's "{input} {output}" */
    f->separator = mb_config_has(cfg, "data.separator") ? mb_config_str(cfg, "data.separator")
                   : own_template                       ? ""
                                                        : " ";
}

int mb_train_open_sft(struct mb_trainer *t)
{
    const mb_config *cfg = t->cfg;
    size_t n = 0;
    mb_config_list(cfg, "data.data_path", &n);
    if (n == 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "data.data_path"),
                          "no data: give data.data_path=FILE.jsonl (or W1 FILE1 W2 FILE2 ...)");
    int64_t eos = mb_config_i64(cfg, "tokenizer.eod_id");
    if (eos < 0)
        eos = t->tok->eod_id;
    if (eos < 0)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, "tokenizer.eod_id"),
                          "the tokenizer names no EOS token (appended to every answer): set "
                          "tokenizer.eod_id");
    struct mb_sft_config c;
    memset(&c, 0, sizeof c);
    sft_format(cfg, &c.fmt);
    c.fmt.eos_id = (int32_t)eos;
    c.fmt.max_length = t->seq;
    c.fmt.chat = t->tok->chat;
    const char **paths = NULL;
    double *weights = NULL;
    int np = mb_setup_blend(cfg, &paths, &weights);
    if (np < 0)
        return -1;
    c.paths = paths;
    c.weights = weights;
    c.n_paths = np;
    c.valid_path = mb_config_has(cfg, "data.validation_path")
                       ? mb_config_str(cfg, "data.validation_path")
                       : NULL;
    c.seq_length = t->seq;
    c.packed = mb_config_bool(cfg, "data.packed");
    c.seed = (uint64_t)mb_config_i64(cfg, "train.seed");
    c.train_samples = t->train_iters * t->global_batch;
    c.quiet = t->dist->rank != 0;
    int rc = mb_sft_open(&t->sft, &c, t->tok->sft);
    free(paths);
    free(weights);
    if (rc == 0 && c.packed) {
        struct mb_train_batches *b = &t->batches;
        b->segment_ids = mb_xmalloc((size_t)(b->count * b->micro * b->seq) * sizeof(int32_t));
    }
    return rc;
}

int mb_train_sample(struct mb_trainer *t, int split, int64_t k, int64_t at)
{
    struct mb_train_batches *b = &t->batches;
    if (t->sft)
        return mb_sft_sample(t->sft, split, k, b->tokens + at, b->labels + at,
                             b->loss_mask + at, b->position_ids + at,
                             b->segment_ids ? b->segment_ids + at : NULL);
    return mb_gpt_data_sample(t->data, split, k, b->tokens + at, b->labels + at,
                              b->loss_mask + at, b->position_ids + at);
}

int64_t mb_train_data_size(const struct mb_trainer *t, int split)
{
    if (t->sft)
        return mb_sft_size(t->sft, split);
    return t->data ? mb_gpt_data_size(t->data, split) : 0;
}
