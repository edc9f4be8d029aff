/* train/internal.h - the trainer's state, shared by the files of the training loop. */
#ifndef MB_TRAIN_INTERNAL_H
#define MB_TRAIN_INTERNAL_H

#include <stdint.h>

#include "ckpt/ckpt.h"
#include "core/config.h"
#include "data/gpt_dataset.h"
#include "dist/comm.h"
#include "nn/model.h"
#include "train/optim.h"
#include "train/sched.h"
#include "train/tb.h"
#include "train/trainer.h"

/* Host buffers of the micro-batches one rank runs in an iteration. */
struct mb_train_batches {
    int64_t count;          /* micro-batches (gradient accumulation steps) */
    int64_t micro;          /* sequences per micro-batch */
    int64_t seq;
    int32_t *tokens, *labels, *position_ids; /* [count * micro * seq] */
    float *loss_mask;
};

struct mb_trainer {
    const struct mb_dist *dist;
    const mb_config *cfg;
    const struct mb_train_tokenizer *tok;
    char *pretrained;             /* checkpoint.pretrained_checkpoint as a file, or NULL */
    struct mb_ckpt_extra *extras; /* the HF side of the checkpoint the run started from */
    int n_extras;
    struct mb_model model;
    struct mb_adamw opt;
    struct mb_lr_schedule sched;
    mb_gpt_data *data;
    mb_tb *tb;
    struct mb_train_batches batches;

    int64_t train_iters, micro_batch, global_batch, seq;
    int64_t iteration;            /* iterations done */
    int64_t consumed_train;       /* samples */
    int64_t consumed_valid;
    double clip_grad;

    /* what the log line averages since it was last printed */
    double log_loss_sum;
    int64_t log_iters;
    double log_start;             /* mb_now() */
};

/* Checkpoint glue (train/state.c). */
MB_MUST_CHECK int mb_train_save(struct mb_trainer *t);
MB_MUST_CHECK int mb_train_resume(struct mb_trainer *t, const char *file);
/* Keep the HF side (hf_* attributes, /hf blobs) of checkpoint FILE, which the run starts
 * from, for every checkpoint the run saves. */
MB_MUST_CHECK int mb_train_keep_extras(struct mb_trainer *t, const char *file);
/* Add the tokenizer files of a run from scratch to its extras, once (train/tokcopy.c). */
MB_MUST_CHECK int mb_train_carry_tokenizer(struct mb_trainer *t);
/* The model configuration stored in checkpoint FILE (its model_config attribute). */
MB_MUST_CHECK int mb_train_pretrained_config(const struct mb_dist *d, const char *file,
                                             struct mb_model_config *mc);
/* Load only the model weights of FILE (fp32, bf16 or fp16 in /model, or the fp32 master
 * copy), as checkpoint.pretrained_checkpoint asks. */
MB_MUST_CHECK int mb_train_load_pretrained(struct mb_trainer *t, const char *file);

/* Logging (train/report.c). */
void mb_train_log_start(struct mb_trainer *t);
void mb_train_log_iteration(struct mb_trainer *t, double loss, double grad_norm, double lr);
void mb_train_log_eval(struct mb_trainer *t, double loss);

#endif /* MB_TRAIN_INTERNAL_H */
