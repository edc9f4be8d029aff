/* nn/pipe.c - a pipeline stage's passes: one model chunk at a time, one micro-batch per
 * activation slot, so that the schedule (train/pipe_sched.h) can interleave forwards
 * and backwards of different micro-batches. The layer code is the same as
 * mb_model_step's; only the input (the embedding, or the previous stage's output) and
 * the output (the next stage's input, or the loss) differ. */
#include "nn/internal.h"

#include "core/err.h"

int mb_model_pipe_reserve(struct mb_model *m, int slots, int64_t batch, int64_t seq,
                          int64_t *bytes)
{
    if (mb_acts_slots_reserve(m, slots, batch, seq) < 0)
        return -1;
    *bytes = m->pipe_scratch->slot_bytes;
    for (int i = 0; i < m->pipe_nslots; i++)
        *bytes += m->pipe_slots[i]->slot_bytes;
    return 0;
}

int64_t mb_model_pipe_numel(const struct mb_model *m, int64_t batch, int64_t seq)
{
    int64_t rows = batch * seq;
    return (m->sequence_parallel ? rows / m->tp->size : rows) * m->cfg.hidden_size;
}

static int64_t residual_numel(const struct mb_model *m)
{
    return m->acts->res_rows * m->cfg.hidden_size;
}

int mb_model_chunk_forward(struct mb_model *m, int chunk, int slot, const struct mb_batch *b,
                           const float *x, float *y, float grad_scale, double *loss_sum,
                           double *mask_sum)
{
    MB_ASSERT(slot >= 0 && slot < m->pipe_nslots && chunk >= 0 && chunk < m->stage.chunks);
    struct mb_acts *a = m->pipe_slots[slot];
    MB_ASSERT(b->batch == a->batch && b->seq == a->seq);
    mb_model_batch_end(m, &a->aux); /* of a forward-only pass before */
    if (mb_model_batch_begin(m, b, &a->aux) < 0)
        return -1;
    mb_acts_slot_place(m, a, chunk);
    m->acts = a;
    a->doc_start = a->aux.d_docs;
    const int32_t *pos = a->aux.d_pos;
    int64_t first = m->stage.chunk_first[chunk], end = first + m->stage.chunk_layers[chunk];
    bool head = mb_stage_has_head(&m->stage, chunk);
    if (mb_stage_has_embedding(&m->stage, chunk))
        mb_embed_forward(m, b, &a->aux);
    else
        m->ops->copy(m->ex, a->layer[first].x_in, x, residual_numel(m));
    for (int64_t l = first; l < end; l++)
        mb_layer_forward(m, l, pos, l + 1 < end ? a->layer[l + 1].x_in : head ? a->x_final : y);
    if (head) {
        mb_head(m, b, &a->aux, grad_scale, NULL);
        mb_sum_loss(m, b, loss_sum, mask_sum);
        if (grad_scale != 0.0f) /* the scratch is the next pass's: keep it */
            m->ops->copy(m->ex, a->dhead, a->dhf, residual_numel(m));
    }
    m->acts = NULL;
    return 0;
}

void mb_model_chunk_backward(struct mb_model *m, int chunk, int slot, const struct mb_batch *b,
                             const float *dy, float *dx)
{
    MB_ASSERT(slot >= 0 && slot < m->pipe_nslots && chunk >= 0 && chunk < m->stage.chunks);
    struct mb_acts *a = m->pipe_slots[slot];
    m->acts = a;
    const int32_t *pos = a->aux.d_pos;
    int64_t first = m->stage.chunk_first[chunk], end = first + m->stage.chunk_layers[chunk];
    if (mb_stage_has_head(&m->stage, chunk)) {
        m->ops->copy(m->ex, a->dhf, a->dhead, residual_numel(m));
        mb_final_norm_backward(m);
        mb_model_stage_done(m, m->stage.layers);
    } else {
        m->ops->copy(m->ex, a->dres, dy, residual_numel(m));
    }
    for (int64_t l = end - 1; l >= first; l--) {
        mb_layer_backward(m, l, pos);
        mb_model_stage_done(m, l);
    }
    if (mb_stage_has_embedding(&m->stage, chunk))
        mb_embed_backward(m, b, &a->aux);
    else
        m->ops->copy(m->ex, dx, a->dres, residual_numel(m));
    a->doc_start = NULL;
    mb_model_batch_end(m, &a->aux);
    m->acts = NULL;
}
