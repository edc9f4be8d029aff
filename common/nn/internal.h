/* nn/internal.h - what the files of nn/ share: saved activations and layer passes. */
#ifndef MB_NN_INTERNAL_H
#define MB_NN_INTERNAL_H

#include "nn/linear.h"
#include "nn/model.h"

/* What the backward pass of one layer needs from its forward pass. Pointers that a
 * model does not use (LayerNorm means for RMSNorm, q_pre without QK-norm, ...) are NULL. */
struct mb_layer_acts {
    float *x_in;                 /* [N, H] residual input */
    float *ln1, *ln1_mean, *ln1_rstd;
    float *q_pre, *k_pre;        /* before QK-norm: [B, nH, T, d], [B, nKV, T, d] */
    float *qn_rstd, *kn_rstd;
    float *q, *k, *v;            /* after QK-norm and RoPE */
    float *attn, *lse;           /* [N, nH d], [B, nH, T] */
    float *proj, *pa_rstd;       /* sandwich norm: attention output before its norm */
    float *x_mid;                /* [N, H] after the attention residual */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1;                  /* [N, fc1 rows] */
    float *act;                  /* [N, I] */
    float *fc2, *pm_rstd;        /* sandwich norm: MLP output before its norm */
    /* bf16 with mb_model_saves_bf16: the bf16 inputs of linear_qkv and linear_fc1
     * [N, H], kept instead of ln1 and ln2, which then point at the scratch (mb_acts
     * ln_f32). In bf16: q, k, v and fc1 kept in bf16 only, rounded to bf16 where they are
     * made so that the forward computes with the values the backward sees. Their fp32
     * pointers, and act's, are then the scratch in mb_acts logits, where the backward
     * widens q, k, v and fc1 again and computes act from fc1 again (the same bits).
     * Else NULL. */
    uint16_t *ln1_b, *ln2_b;
    uint16_t *q_b, *k_b, *v_b, *fc1_b;
};

/* A micro-batch's positions (its own, or 0 .. T-1 made here) and the document starts of
 * packed rows (kern/ops.h), after checking it (ids, positions, SP divisibility); and the
 * micro-batch uploaded to backend memory once (one allocation, DEV), which is all the
 * ops ever read of it. */
struct mb_batch_aux {
    const int32_t *pos;
    int32_t *own_pos;
    int32_t *docs;         /* NULL: not packed */
    void *dev;
    const int32_t *d_ids;  /* [N] the tokens, as rows of this rank's vocabulary block under
                            * TP (-1: another rank's; parallel.md 2.7) */
    const int32_t *d_pos, *d_labels;
    const float *d_mask;   /* the loss mask */
    const int32_t *d_docs; /* NULL: not packed */
};

/* Rows: N = B*T token rows. Under sequence parallelism the residual stream and the norms
 * (x_in, ln1, x_mid, ln2, proj, fc2, x_final, hf, their statistics, tmp, dres, dtmp,
 * dhf) hold only this rank's R = N/TP rows; everything between a column-parallel and a
 * row-parallel layer holds all N rows and this rank's heads or FFN columns. Without it
 * R = N. */
struct mb_acts {
    int64_t batch, seq;
    const int32_t *doc_start;    /* [N] of this step's packed rows (kern/ops.h); NULL: none */
    int64_t res_rows;            /* R */
    void *block;                 /* the one allocation everything below points into */
    struct mb_layer_acts *layer; /* [num_layers] */
    float *x_final;              /* [N, H] residual after the last layer */
    float *hf, *hf_mean, *hf_rstd; /* final norm output */
    float *qkv;                  /* [N, qkv rows] scratch */
    float *tmp;                  /* [N, H] scratch */
    float *dres;                 /* [N, H] gradient of the residual stream */
    float *dtmp;                 /* [N, H] */
    float *dhf;                  /* [N, H] */
    float *dwide;                /* [N, max(fc1 rows, qkv rows, nH d)] */
    float *dact;                 /* [N, I] */
    float *dq, *dk, *dv;         /* attention layouts */
    float *dq_pre, *dk_pre;      /* QK-norm input gradients */
    float *logits;               /* [chunk, V local]; in bf16 also the fp32 scratch of
                                  * the layers' q, k and v, or fc1 and act
                                  * (mb_layer_acts q_b) */
    float *loss;                 /* [N] */
    int64_t chunk;               /* rows per logits chunk */
    /* tensor parallelism */
    float *gathered;             /* [N, max(H, qkv, fc1 local)] sequence-parallel scratch */
    float *hf_full, *dhf_full;   /* [N, H] final norm output and its gradient, gathered (SP) */
    float *xent_max, *xent_target; /* [chunk] vocabulary-parallel cross-entropy */
    double *xent_sum;            /* [chunk] */
    /* bf16 mixed precision: a linear layer's bf16 x [N, widest input] and dy
     * [N, widest output] (nn/linear.h xb, dyb; the head's dy goes over its logits); with
     * mb_model_saves_bf16 the fp32 norm output [R, H] that the saved bf16 copies
     * replace, a passing value of the forward: the backward's dtmp */
    uint16_t *xb, *dyb;
    float *ln_f32;
    /* pipeline slots (mb_acts_slots_reserve) */
    float *dhead;                /* [R, H] the head's gradient, kept to the backward pass */
    struct mb_batch_aux aux;     /* of the micro-batch in this slot */
    int64_t slot_bytes;          /* of the block */
};

/* (Re)allocate the activations of M for B x T. -1 with mb_err when out of memory. */
int mb_acts_reserve(struct mb_model *m, int64_t batch, int64_t seq);
void mb_acts_free(struct mb_model *m);

/* Pipeline parallelism: NSLOTS sets of saved activations for micro-batches of B x T in
 * flight, each for one model chunk at a time, and one scratch they share
 * (m->pipe_slots, m->pipe_scratch). -1 with mb_err when out of memory. */
int mb_acts_slots_reserve(struct mb_model *m, int nslots, int64_t batch, int64_t seq);
void mb_acts_slots_free(struct mb_model *m);
/* Point slot A's layer activations at chunk CHUNK's layers (and its scratch at the
 * shared one), for a forward pass of that chunk. */
void mb_acts_slot_place(const struct mb_model *m, struct mb_acts *a, int chunk);

/* Whether the layers keep the bf16 copies of their linear inputs instead of the fp32
 * ones (mb_layer_acts ln1_b ...): in bf16, where the fp32 input is not needed again
 * (sequence parallelism gathers it in fp32, adapters read it). */
static inline bool mb_model_saves_bf16(const struct mb_model *m)
{
    return m->wb && !m->sequence_parallel && m->peft.kind == MB_PEFT_NONE;
}

/* Global number of local layer L (nn/stage.h): the sliding-window pattern, rope bases
 * and adapter dropout sites follow the global layer. */
static inline int64_t mb_model_global_layer(const struct mb_model *m, int64_t l)
{
    return m->stage.pp > 1 ? mb_stage_global_layer(&m->stage, l) : l;
}

/* What one forward pass of a layer reads and writes: the training step's (the layer's
 * activations, kept for its backward pass) or generation's (one set of activations
 * reused by every layer, and attention over the key/value cache). */
struct mb_layer_pass {
    struct mb_layer_acts *la;    /* la->x_in is the input */
    float *qkv, *tmp;            /* scratch: [N, qkv rows], [R, H] */
    int64_t batch, seq;          /* B x T new positions, N = B*T rows */
    int64_t res_rows;            /* R: rows of the residual stream here */
    const int32_t *pos;          /* [N] positions */
    const int32_t *doc_start;    /* [N] documents of packed rows (kern/ops.h); NULL: none */
    /* Attention of la->q over the keys and values into la->attn; NULL: ops->attention_fwd
     * over the T positions of each sequence, keeping la->lse for the backward pass. */
    void (*attend)(void *ctx, int64_t l, const struct mb_layer_acts *la,
                   const struct mb_attn_shape *s);
    void *ctx;
};

/* Forward of layer L on P into OUT ([R, H]; it may be p->la->x_in). */
void mb_layer_forward_pass(const struct mb_model *m, int64_t l, const struct mb_layer_pass *p,
                           float *out);
/* Forward of layer L of the training step from a->layer[L].x_in into OUT ([R, H]). */
void mb_layer_forward(struct mb_model *m, int64_t l, const int32_t *pos, float *out);

/* One layer's activations (as the training step's, without sequence parallelism) for
 * ROWS token rows, and the qkv and tmp scratch of mb_layer_pass, in one allocation
 * returned (free with m->ops->free): for generation, which reuses them for every layer.
 * NULL with mb_err when out of memory. */
void *mb_layer_acts_alloc(const struct mb_model *m, int64_t rows, struct mb_layer_acts *la,
                          float **qkv, float **tmp);
/* Backward of layer L: m->acts->dres holds d(output) and receives d(input). */
void mb_layer_backward(struct mb_model *m, int64_t l, const int32_t *pos);

/* The linear layer of parameter W_ID (bias B_ID) of layer L in MODE, with this rank's
 * shape IN x OUT (nn/linear.h). */
struct mb_linear mb_model_linear(const struct mb_model *m, enum mb_param_id w_id,
                                 enum mb_param_id b_id, int64_t l, enum mb_linear_mode mode,
                                 int64_t in, int64_t out);

/* Vocabulary-parallel embedding of the micro-batch's tokens (and learned positions) of
 * AUX into the first layer's input; its backward from acts->dres into the embedding
 * gradients (nn/embed.c). */
void mb_embed_forward(struct mb_model *m, const struct mb_batch *b, const struct mb_batch_aux *aux);
void mb_embed_backward(struct mb_model *m, const struct mb_batch *b,
                       const struct mb_batch_aux *aux);

/* Final norm, output layer and loss of B into acts->loss; with GRAD_SCALE != 0 the
 * gradient of the final norm's output in acts->dhf; LOGITS (host, TP 1) when not NULL
 * (nn/loss.c). */
void mb_head(struct mb_model *m, const struct mb_batch *b, const struct mb_batch_aux *aux,
             float grad_scale, float *logits);
/* m->vocab_mask for the padded vocabulary rows this rank holds (nn/loss.c); -1 with
 * mb_err when it cannot be allocated. */
MB_MUST_CHECK int mb_vocab_mask_init(struct mb_model *m);
/* Host LOGITS capped in place as the loss sees them (final_logit_softcapping CAP > 0):
 * cap tanh(z / cap), masked rows' -inf kept. */
void mb_softcap_logits(float *logits, int64_t n, double cap);
/* Add m->vocab_mask, if any, to ROWS rows of this rank's logits. */
void mb_vocab_mask_apply(const struct mb_model *m, float *logits, int64_t rows);

MB_MUST_CHECK int mb_model_batch_begin(struct mb_model *m, const struct mb_batch *b,
                                       struct mb_batch_aux *aux);
void mb_model_batch_end(const struct mb_model *m, struct mb_batch_aux *aux);
/* The loss sums of B from acts->loss (nn/model.c). */
void mb_sum_loss(const struct mb_model *m, const struct mb_batch *b, double *loss_sum,
                 double *mask_sum);
/* The backward of this micro-batch finished STAGE (local layer l, or the head at
 * stage.layers): when m->grad_ready is set, sum its TP-partial gradients and report it
 * (struct mb_model). */
void mb_model_stage_done(struct mb_model *m, int64_t stage);
/* The final norm's backward from acts->dhf into acts->dres (zeroed first). */
void mb_final_norm_backward(struct mb_model *m);

/* Norm of the configured kind: y from x with weight W and bias B (NULL for RMSNorm). */
void mb_norm_forward(const struct mb_model *m, float *y, float *mean, float *rstd,
                     const float *x, const float *w, const float *b, int64_t rows);
/* Its backward: dx +=, dw +=, db += (db NULL for RMSNorm). */
void mb_norm_backward(const struct mb_model *m, float *dx, float *dw, float *db,
                      const float *dy, const float *x, const float *w, const float *mean,
                      const float *rstd, int64_t rows);

#endif /* MB_NN_INTERNAL_H */
