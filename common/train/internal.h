/* train/internal.h - the trainer's state, shared by the files of the training loop. */
#ifndef MB_TRAIN_INTERNAL_H
#define MB_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ckpt/ckpt.h"
#include "core/config.h"
#include "core/str.h"
#include "data/gpt_dataset.h"
#include "data/sft.h"
#include "dist/comm.h"
#include "dist/pstate.h"
#include "nn/model.h"
#include "train/gradsync.h"
#include "train/optim.h"
#include "train/pipe_sched.h"
#include "train/sched.h"
#include "train/signals.h"
#include "train/tb.h"
#include "train/trainer.h"

/* Host buffers of the micro-batches one rank runs in an iteration. */
struct mb_train_batches {
    int64_t count;          /* micro-batches (gradient accumulation steps) */
    int64_t micro;          /* sequences per micro-batch */
    int64_t seq;
    int32_t *tokens, *labels, *position_ids; /* [count * micro * seq] */
    float *loss_mask;
    int32_t *segment_ids;   /* packed SFT rows (nn/model.h); NULL otherwise */
};

struct mb_trainer {
    const struct mb_dist *dist;
    struct mb_pstate ps;          /* this rank's place in the TP x CP x DP x PP grid */
    const mb_config *cfg;
    const struct mb_train_tokenizer *tok;
    char *pretrained;             /* checkpoint.pretrained_checkpoint as a file, or NULL */
    struct mb_ckpt_extra *extras; /* the HF side of the checkpoint the run started from */
    int n_extras;
    struct mb_peft_config peft;   /* peft.* (kind NONE: every weight trains) */
    struct mb_model model;
    struct mb_adamw opt;          /* over gsync's range [lo, hi) */
    struct mb_grad_sync gsync;    /* the DP gradient reduction, and the optimizer's shard */
    double *norm_weight;          /* per parameter in the gradient norm; NULL: all 1 */
    int64_t dp_traffic;           /* bytes sent in DP collectives by the training steps */
    int64_t tp_traffic;           /* and in TP collectives (layers, loss, partial grads) */
    struct mb_lr_schedule sched;
    mb_gpt_data *data;
    mb_sft_data *sft;             /* mb-finetune's SFT rows instead of data (tok->sft) */
    mb_tb *tb;
    FILE *metrics;                /* logger.metrics_jsonl, rank 0; NULL when unset */
    const char *metrics_path;
    struct mb_train_batches batches;
    struct mb_train_stop stop;    /* exit signal and time limit */
    struct mb_pipe_sched pipe;    /* this rank's pipeline schedule (pp > 1) */
    int64_t pipe_act_bytes;       /* the activations it keeps in flight */
    double pipe_wall_s;           /* in training schedules, from the first event to the */
    double pipe_busy_s;           /* last send's completion; of it in passes */

    int64_t train_iters, micro_batch, global_batch, seq;
    int64_t iteration;            /* iterations done */
    int64_t consumed_train;       /* samples */
    int64_t consumed_valid;
    double clip_grad;
    bool check_nonfinite;         /* train.check_for_nan_in_loss_and_grad */
    int64_t skip_nonfinite;       /* train.skip_nonfinite_steps */
    int64_t skipped;              /* iterations skipped so far in this process */

    /* what the log line averages since it was last printed */
    double log_loss_sum;
    int64_t log_iters;
    int64_t log_skipped;          /* of log_iters; their losses are not in the sum */
    bool logged;                  /* a log line was printed in this process */
    double log_start;             /* mb_now() */
};

/* The samples (train/sftdata.c): open mb-finetune's SFT data (tok->sft set; packed
 * rows get batches.segment_ids); sample K of SPLIT into the batches at token offset AT
 * from whichever data the run has; the samples in one epoch of SPLIT. */
MB_MUST_CHECK int mb_train_open_sft(struct mb_trainer *t);
MB_MUST_CHECK int mb_train_sample(struct mb_trainer *t, int split, int64_t k, int64_t at);
int64_t mb_train_data_size(const struct mb_trainer *t, int split);

/* The grad_ready of struct mb_model for the DP reduction CTX (struct mb_grad_sync). */
void mb_train_grad_ready(void *ctx, int64_t layer);
/* Micro-batch J of the iteration's batches. */
struct mb_batch mb_train_micro_batch(const struct mb_trainer *t, int64_t j);
/* LoRA dropout for training micro-batch J of this rank (J < 0: off, evaluation). */
void mb_train_adapter_dropout(struct mb_trainer *t, int64_t j);
/* The iteration's micro-batches through this rank's pipeline stage (train/pipeline.c):
 * its schedule when TRAINING (backward of GRAD_SCALE times the loss sum), else forwards
 * only. *LOSS_SUM: the sum of the masked token losses of the micro-batches whose loss is
 * computed here (the last stage's), 0 elsewhere. */
MB_MUST_CHECK int mb_train_pipeline(struct mb_trainer *t, bool training, float grad_scale,
                                    double *loss_sum);

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
/* With adapters (t->peft): when checkpoint.load holds an adapter-only checkpoint, make
 * its base_checkpoint the base (t->pretrained), falling back to
 * checkpoint.pretrained_checkpoint when that file is gone. Every rank calls it. */
MB_MUST_CHECK int mb_train_resolve_base(struct mb_trainer *t);

/* Refuse a resume from FILE, whose stored config is RECIPE_JSON, when train.train_iters,
 * optimizer.lr/min_lr or a scheduler.* key differs, unless
 * scheduler.override_opt_param_scheduler (train/resume_check.c). */
MB_MUST_CHECK int mb_train_check_schedule(const struct mb_trainer *t, const char *file,
                                          const char *recipe_json);

/* Logging (train/report.c). */
/* World and data-parallel size, micro-batches per step, threads per rank. */
void mb_train_log_layout(const struct mb_trainer *t);
/* Under pipeline parallelism, each stage's layers, schedule and activation memory (every
 * rank calls it). */
void mb_train_log_pipeline(const struct mb_trainer *t);
/* At the end: each stage's time in training schedules and in passes, and the bubble
 * (the idle fraction) against the ideal (p-1)/(m+p-1), (p-1)/(v m+p-1) interleaved. */
void mb_train_log_pipeline_time(const struct mb_trainer *t);
void mb_train_log_start(struct mb_trainer *t);
/* SKIPPED: a non-finite iteration that was not applied (train.skip_nonfinite_steps). */
void mb_train_log_iteration(struct mb_trainer *t, double loss, double grad_norm, double lr,
                            bool skipped);
void mb_train_log_eval(struct mb_trainer *t, double loss);
/* Bytes per rank of parameters, gradients and optimizer state against Megatron's
 * formula (parallel.md 5.7), and the analytic tensor-parallel traffic per iteration, at
 * the start; at the end, the peak RSS next to them and the data- and tensor-parallel
 * traffic (t->dp_traffic, t->tp_traffic: bytes sent by this rank in ITERATIONS;
 * dist/pstate.h mb_group_traffic) per iteration. Every rank calls the second. */
void mb_train_log_memory(const struct mb_trainer *t);
void mb_train_log_finish(const struct mb_trainer *t, int64_t iterations);

/* logger.metrics_jsonl (train/metrics.c): open for appending on rank 0 (-1 with mb_err
 * naming the file), close. A line is built with mb_metrics_begin and the field adders,
 * then mb_train_metrics_emit closes the object, writes and flushes it (a failed write
 * warns and stops the file) and releases B. */
MB_MUST_CHECK int mb_train_metrics_open(struct mb_trainer *t);
void mb_train_metrics_close(struct mb_trainer *t);
void mb_metrics_begin(struct mb_buf *b, const char *type, int64_t iteration);
void mb_metrics_int(struct mb_buf *b, const char *name, int64_t v);
void mb_metrics_real(struct mb_buf *b, const char *name, double v); /* non-finite: null */
void mb_train_metrics_emit(struct mb_trainer *t, struct mb_buf *b);

#endif /* MB_TRAIN_INTERNAL_H */
