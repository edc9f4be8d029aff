/* nn/embed.c - the vocabulary-parallel embedding (parallel.md 2.7) and learned positions. */
#include <math.h>

#include "dist/devcomm.h"
#include "nn/internal.h"

static float embedding_scale(const struct mb_model_config *c)
{
    return c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
}

/* Vocabulary-parallel embedding: each rank looks up the ids it holds, the TP sum gives
 * every row once; then learned positions (replicated). Under sequence parallelism the
 * full [N, H] is built in a scratch and this rank keeps its block of rows. */
void mb_embed_forward(struct mb_model *m, const struct mb_batch *b, const struct mb_batch_aux *aux)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size;
    float *x = m->sequence_parallel ? a->hf_full : a->layer[0].x_in;
    m->ops->embedding_fwd(m->ex, x, m->w + mb_param_offset(&m->params, MB_P_WORD_EMB, 0),
                          aux->d_ids, n, h, embedding_scale(c), false);
    mb_dev_sum_f32(m->ops, m->ex, m->tp, x, n * h);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_fwd(m->ex, x, m->w + mb_param_offset(&m->params, MB_P_POS_EMB, 0),
                              aux->d_pos, n, h, 1.0f, true);
    if (m->sequence_parallel)
        m->ops->copy(m->ex, a->layer[0].x_in, x + m->tp->rank * a->res_rows * h, a->res_rows * h);
}

void mb_embed_backward(struct mb_model *m, const struct mb_batch *b,
                       const struct mb_batch_aux *aux)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size;
    const float *dx = a->dres;
    if (m->sequence_parallel) {
        mb_dev_all_gather_f32(m->ops, m->ex, m->tp, a->dres, a->dhf_full, a->res_rows * h);
        dx = a->dhf_full;
    }
    float *gw = mb_model_grad_of(m, mb_param_get(&m->params, MB_P_WORD_EMB));
    float *gp = mb_model_grad_of(m, mb_param_get(&m->params, MB_P_POS_EMB));
    if (gw) /* NULL: frozen */
        m->ops->embedding_bwd(m->ex, gw, dx, aux->d_ids, n, h, embedding_scale(c));
    if (gp)
        m->ops->embedding_bwd(m->ex, gp, dx, aux->d_pos, n, h, 1.0f);
}
