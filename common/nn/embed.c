/* nn/embed.c - the vocabulary-parallel embedding (parallel.md 2.7) and learned positions. */
#include <math.h>

#include "nn/internal.h"

/* The ids of TOKENS as rows of this rank's block of the vocabulary, -1 for the rows other
 * ranks hold (parallel.md 2.7); the tokens themselves on a whole model. */
static const int32_t *vocab_ids(struct mb_model *m, const int32_t *tokens, int64_t n)
{
    if (m->tp->size == 1)
        return tokens;
    int32_t *ids = m->acts->vocab_ids;
    int64_t start = m->loc->vocab_start, rows = m->loc->vocab_rows;
    for (int64_t i = 0; i < n; i++)
        ids[i] = tokens[i] >= start && tokens[i] < start + rows ? (int32_t)(tokens[i] - start) : -1;
    return ids;
}

static float embedding_scale(const struct mb_model_config *c)
{
    return c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
}

/* Vocabulary-parallel embedding: each rank looks up the ids it holds, the TP sum gives
 * every row once; then learned positions (replicated). Under sequence parallelism the
 * full [N, H] is built in a scratch and this rank keeps its block of rows. */
void mb_embed_forward(struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size;
    float *x = m->sequence_parallel ? a->hf_full : a->layer[0].x_in;
    m->ops->embedding_fwd(m->ex, x, m->w + mb_param_offset(&m->params, MB_P_WORD_EMB, 0),
                          vocab_ids(m, b->tokens, n), n, h, embedding_scale(c), false);
    mb_group_sum_f32(m->tp, x, n * h);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_fwd(m->ex, x, m->w + mb_param_offset(&m->params, MB_P_POS_EMB, 0), pos, n,
                              h, 1.0f, true);
    if (m->sequence_parallel)
        m->ops->copy(m->ex, a->layer[0].x_in, x + m->tp->rank * a->res_rows * h, a->res_rows * h);
}

void mb_embed_backward(struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size;
    const float *dx = a->dres;
    if (m->sequence_parallel) {
        mb_group_all_gather_f32(m->tp, a->dres, a->dhf_full, a->res_rows * h);
        dx = a->dhf_full;
    }
    float *gw = mb_model_grad_of(m, mb_param_get(&m->params, MB_P_WORD_EMB));
    float *gp = mb_model_grad_of(m, mb_param_get(&m->params, MB_P_POS_EMB));
    if (gw) /* NULL: frozen */
        m->ops->embedding_bwd(m->ex, gw, dx, vocab_ids(m, b->tokens, n), n, h, embedding_scale(c));
    if (gp)
        m->ops->embedding_bwd(m->ex, gp, dx, pos, n, h, 1.0f);
}
