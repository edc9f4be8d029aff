/* nn/loss.c - the head: final norm, the column-parallel output layer and the
 * vocabulary-parallel cross-entropy (parallel.md 2.8), chunk by chunk. */
#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "dist/devcomm.h"
#include "nn/internal.h"

static enum mb_param_id output_id(const struct mb_model *m)
{
    return m->cfg.share_embeddings_and_output_weights ? MB_P_WORD_EMB : MB_P_OUTPUT_W;
}

void mb_softcap_logits(float *logits, int64_t n, double cap)
{
    for (int64_t i = 0; cap > 0 && i < n; i++)
        if (logits[i] != -INFINITY)
            logits[i] = (float)(cap * tanh(logits[i] / cap));
}

int mb_vocab_mask_init(struct mb_model *m)
{
    int64_t real = mb_model_real_vocab(&m->cfg), start = m->loc->vocab_start;
    int64_t rows = m->loc->vocab_rows;
    if (start + rows <= real)
        return 0;
    float *host = mb_xmalloc((size_t)rows * sizeof(float));
    for (int64_t i = 0; i < rows; i++)
        host[i] = start + i < real ? 0.0f : -INFINITY;
    m->vocab_mask = m->ops->alloc(m->ex, (size_t)rows * sizeof(float));
    if (m->vocab_mask)
        mb_from_host_f32(m->ops, m->ex, m->vocab_mask, host, rows);
    free(host);
    return m->vocab_mask ? 0 : mb_err_wrap("the padded-vocabulary mask");
}

/* -inf + z = -inf and 0 + z = z: the padded rows' logits become -inf, which the
 * cross-entropy kernels give no probability and no gradient (kern/ops.h). */
void mb_vocab_mask_apply(const struct mb_model *m, float *logits, int64_t rows)
{
    if (m->vocab_mask)
        m->ops->add_bias(m->ex, logits, m->vocab_mask, rows, m->loc->vocab_rows);
}

/* Vocabulary-parallel cross-entropy of ROWS rows of this rank's logits (parallel.md 2.8):
 * all-reduces of the row maxima, the target logits and the exp-sums over TP; the logits
 * are never gathered. Same outputs as ops->xent. */
static void xent_parallel(struct mb_model *m, const struct mb_batch_aux *aux, int64_t r0,
                          int64_t rows, float grad_scale)
{
    struct mb_acts *a = m->acts;
    const struct mb_ops *o = m->ops;
    struct mb_exec *ex = m->ex;
    int64_t v = m->loc->vocab_rows, start = m->loc->vocab_start;
    float cap = (float)m->cfg.final_logit_softcapping;
    o->xent_max(ex, a->logits, a->xent_max, rows, v, cap);
    mb_dev_max_f32(m->ops, m->ex, m->tp, a->xent_max, rows);
    o->xent_sumexp(ex, a->logits, a->xent_max, aux->d_labels + r0, start, a->xent_sum,
                   a->xent_target, rows, v);
    mb_dev_sum_f32(m->ops, m->ex, m->tp, a->xent_target, rows);
    mb_dev_sum_f64(m->ops, m->ex, m->tp, a->xent_sum, rows);
    o->xent_finish(ex, a->logits, a->loss + r0, a->xent_max, a->xent_sum, a->xent_target,
                   aux->d_labels + r0, start, aux->d_mask + r0, rows, v, cap, grad_scale);
}

/* DHF [ROWS, H] of the chunk of HF whose logits' gradient xent left in acts->logits. In
 * bf16 that gradient is converted in place, so it needs no buffer of its own. */
static void head_backward(const struct mb_model *m, struct mb_linear *out, float *dhf,
                          const float *hf, int64_t rows)
{
    struct mb_acts *a = m->acts;
    if (out->wb) {
        m->ops->convert(m->ex, a->logits, MB_DTYPE_BF16, a->logits, MB_DTYPE_F32, rows * out->out);
        out->dyb = (uint16_t *)a->logits;
        out->dyb_given = true;
    }
    mb_linear_backward(out, dhf, a->logits, hf, rows);
}

/* Final norm, vocabulary projection (column-parallel: this rank's vocabulary rows) and
 * loss, chunk by chunk; with GRAD_SCALE != 0 the gradient of the final hidden state is
 * left in acts->dhf. */
void mb_head(struct mb_model *m, const struct mb_batch *b, const struct mb_batch_aux *aux,
             float grad_scale, float *logits)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size, v = m->loc->vocab_rows;
    bool sp = m->sequence_parallel;
    /* under sequence parallelism the gather and the reduce-scatter are done here, once,
     * around the chunks, so the chunks' projection communicates nothing */
    struct mb_linear out = mb_model_linear(m, output_id(m), MB_P_COUNT, 0,
                                           sp ? MB_LINEAR_NONE : MB_LINEAR_COLUMN, h, v);
    out.xb_kept = out.wb != NULL; /* each chunk's backward follows its forward: xb holds */

    mb_norm_forward(m, a->hf, a->hf_mean, a->hf_rstd, a->x_final,
                    m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_W, 0),
                    c->normalization == MB_NORM_LAYER
                        ? m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_B, 0)
                        : NULL,
                    a->res_rows);
    const float *hf_all = a->hf;
    float *dhf_all = a->dhf;
    if (sp) {
        mb_dev_all_gather_f32(m->ops, m->ex, m->tp, a->hf, a->hf_full, a->res_rows * h);
        hf_all = a->hf_full;
        dhf_all = a->dhf_full;
    }
    for (int64_t r0 = 0; r0 < n; r0 += a->chunk) {
        int64_t rows = MB_MIN(a->chunk, n - r0);
        const float *hf = hf_all + r0 * h;
        mb_linear_forward(&out, a->logits, hf, rows);
        mb_vocab_mask_apply(m, a->logits, rows);
        if (logits) {
            mb_to_host_f32(m->ops, m->ex, logits + r0 * v, a->logits, rows * v);
            mb_softcap_logits(logits + r0 * v, rows * v, c->final_logit_softcapping);
        }
        if (m->tp->size == 1)
            m->ops->xent(m->ex, a->logits, a->loss + r0, aux->d_labels + r0, aux->d_mask + r0, rows,
                         v, (float)c->final_logit_softcapping, grad_scale);
        else
            xent_parallel(m, aux, r0, rows, grad_scale);
        if (grad_scale != 0.0f)
            head_backward(m, &out, dhf_all + r0 * h, hf, rows);
    }
    if (sp && grad_scale != 0.0f)
        mb_dev_reduce_scatter_f32(m->ops, m->ex, m->tp, a->dhf_full, a->dhf, a->res_rows * h);
}
