/* train/trainer.h - the pretraining loop of mb-pretrain.
 *
 * One iteration = one global batch: every data-parallel rank runs its micro-batches
 * (gradient accumulation), the gradients are summed over ranks, clipped by global norm
 * and applied with AdamW. The loss is the mean over all loss-masked tokens of the global
 * batch, so the run is the same whatever the number of ranks. Within a global batch,
 * micro-batch j of rank r holds samples first + (j * dp + r) * mbs ... (Megatron's
 * pretraining sampler); which samples make an iteration depends on the seed and the
 * global batch only.
 */
#ifndef MB_TRAIN_TRAINER_H
#define MB_TRAIN_TRAINER_H

#include <stdint.h>

#include "core/config.h"
#include "core/defs.h"
#include "dist/comm.h"

/* What the trainer needs of the tokenizer (the tool loads it; train/ does not). */
struct mb_train_tokenizer {
    int64_t vocab_size;   /* 0: no tokenizer */
    int32_t eod_id;       /* -1: none */
    const char *name;     /* stored in checkpoints */
    /* mb-finetune: the SFT JSONL rows of data.data_path are encoded with it (data/sft.h);
     * NULL: mb-pretrain's indexed token files */
    const struct mb_tokenizer *sft;
    /* mb-finetune: the chat template chat rows are rendered with (tok/chat.h); NULL when
     * the tokenizer has none (chat rows are then an error) */
    const struct mb_chat_template *chat;
};

/* mb_train_check_limits for TOK, agreed over every rank, then mb_train_run: what a
 * tool's main runs once its configuration and tokenizer are loaded. RC is this rank's
 * result so far (a failure before is agreed over too, without training). */
MB_MUST_CHECK int mb_train_checked_run(const struct mb_dist *dist, const mb_config *cfg,
                                       const struct mb_train_tokenizer *tok, int rc);

/* Train as CFG says: build or resume, run to train.train_iters, save checkpoints.
 * Returns 0, or -1 with mb_err set (every rank returns; none is left waiting). */
MB_MUST_CHECK int mb_train_run(const struct mb_dist *dist, const mb_config *cfg,
                               const struct mb_train_tokenizer *tok);

#endif /* MB_TRAIN_TRAINER_H */
