/* nn/model.c - the model's lifetime, and a step: embed, layers, head and loss, backward. */
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "nn/internal.h"
#include "nn/rope.h"

static int model_init(struct mb_model *m, const struct mb_model_config *cfg,
                      const struct mb_ops *ops, bool grads)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    m->ops = ops;
    mb_param_table_build(&m->params, cfg);
    size_t bytes = (size_t)m->params.total * sizeof(float);
    m->w = ops->alloc(bytes);
    m->g = grads ? ops->alloc(bytes) : NULL;
    if (!m->w || (grads && !m->g)) {
        mb_model_free(m);
        return mb_err_wrap("model of %lld parameters", (long long)m->params.total);
    }
    if (cfg->position_embedding_type != MB_POS_ROPE)
        return 0;
    int64_t table = cfg->max_position_embeddings * mb_rope_dims(cfg);
    float *host = mb_xmalloc((size_t)table * sizeof(float));
    m->rope_global = ops->alloc((size_t)table * sizeof(float));
    bool local = cfg->rotary_base_local > 0 && cfg->rotary_base_local != cfg->rotary_base;
    m->rope_local = local ? ops->alloc((size_t)table * sizeof(float)) : m->rope_global;
    if (!m->rope_global || !m->rope_local) {
        free(host);
        mb_model_free(m);
        return mb_err_wrap("RoPE tables");
    }
    mb_rope_table(host, cfg, false);
    ops->from_host(m->rope_global, host, table);
    if (local) {
        mb_rope_table(host, cfg, true);
        ops->from_host(m->rope_local, host, table);
    }
    free(host);
    return 0;
}

int mb_model_init(struct mb_model *m, const struct mb_model_config *cfg, const struct mb_ops *ops)
{
    return model_init(m, cfg, ops, true);
}

int mb_model_init_inference(struct mb_model *m, const struct mb_model_config *cfg,
                            const struct mb_ops *ops)
{
    return model_init(m, cfg, ops, false);
}

void mb_model_free(struct mb_model *m)
{
    if (!m->ops)
        return;
    mb_acts_free(m);
    if (m->rope_local != m->rope_global)
        m->ops->free(m->rope_local);
    m->ops->free(m->rope_global);
    m->ops->free(m->w);
    if (m->g)
        m->ops->free(m->g);
    memset(m, 0, sizeof(*m));
}

void mb_model_init_weights(struct mb_model *m, uint64_t seed)
{
    float *host = mb_xmalloc((size_t)m->params.total * sizeof(float));
    mb_param_init_all(&m->params, &m->cfg, seed, host);
    m->ops->from_host(m->w, host, m->params.total);
    free(host);
}

void mb_model_zero_grad(struct mb_model *m)
{
    m->ops->zero(m->g, m->params.total);
}

static int check_batch(const struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    int64_t n = b->batch * b->seq;
    if (b->batch <= 0 || b->seq <= 0)
        return mb_err_set(MB_E_INVALID, "batch", "empty micro-batch (%lld x %lld)",
                          (long long)b->batch, (long long)b->seq);
    for (int64_t i = 0; i < n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= c->vocab_size || b->labels[i] >= c->vocab_size)
            return mb_err_set(MB_E_INVALID, "batch",
                              "token id %d (label %d) at position %lld is outside the "
                              "vocabulary of %lld",
                              b->tokens[i], b->labels[i], (long long)i, (long long)c->vocab_size);
        if (pos[i] < 0 || pos[i] >= c->max_position_embeddings)
            return mb_err_set(MB_E_INVALID, "batch",
                              "position %d is beyond model.max_position_embeddings (%lld)",
                              pos[i], (long long)c->max_position_embeddings);
    }
    return 0;
}

static void embed(struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    float *x = m->acts->layer[0].x_in;
    int64_t n = b->batch * b->seq;
    float scale = c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
    m->ops->embedding_fwd(x, m->w + mb_param_offset(&m->params, MB_P_WORD_EMB, 0), b->tokens, n,
                          c->hidden_size, scale, false);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_fwd(x, m->w + mb_param_offset(&m->params, MB_P_POS_EMB, 0), pos, n,
                              c->hidden_size, 1.0f, true);
}

static void embed_backward(struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    int64_t n = b->batch * b->seq;
    float scale = c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
    m->ops->embedding_bwd(m->g + mb_param_offset(&m->params, MB_P_WORD_EMB, 0), m->acts->dres,
                          b->tokens, n, c->hidden_size, scale);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_bwd(m->g + mb_param_offset(&m->params, MB_P_POS_EMB, 0), m->acts->dres,
                              pos, n, c->hidden_size, 1.0f);
}

static enum mb_param_id output_id(const struct mb_model *m)
{
    return m->cfg.share_embeddings_and_output_weights ? MB_P_WORD_EMB : MB_P_OUTPUT_W;
}

/* Cap LOGITS in place as the loss sees them (for a caller that asked for logits). */
static void softcap_host(float *logits, int64_t n, double cap)
{
    for (int64_t i = 0; cap > 0 && i < n; i++)
        logits[i] = (float)(cap * tanh(logits[i] / cap));
}

/* Final norm, vocabulary projection and loss, chunk by chunk; with GRAD_SCALE != 0 the
 * gradient of the final hidden state is left in acts->dhf. */
static void head(struct mb_model *m, const struct mb_batch *b, float grad_scale, float *logits)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    int64_t n = b->batch * b->seq, h = c->hidden_size, v = c->vocab_size;
    const float *w_out = m->w + mb_param_offset(&m->params, output_id(m), 0);
    float *g_out = m->g ? m->g + mb_param_offset(&m->params, output_id(m), 0) : NULL;

    mb_norm_forward(m, a->hf, a->hf_mean, a->hf_rstd, a->x_final,
                    m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_W, 0),
                    c->normalization == MB_NORM_LAYER
                        ? m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_B, 0)
                        : NULL,
                    n);
    for (int64_t r0 = 0; r0 < n; r0 += a->chunk) {
        int64_t rows = MB_MIN(a->chunk, n - r0);
        const float *hf = a->hf + r0 * h;
        m->ops->matmul(false, true, rows, v, h, 1.0f, hf, h, w_out, h, 0.0f, a->logits, v);
        if (logits) {
            m->ops->to_host(logits + r0 * v, a->logits, rows * v);
            softcap_host(logits + r0 * v, rows * v, c->final_logit_softcapping);
        }
        m->ops->xent(a->logits, a->loss + r0, b->labels + r0, b->loss_mask + r0, rows, v,
                     (float)c->final_logit_softcapping, grad_scale);
        if (grad_scale == 0.0f)
            continue;
        m->ops->matmul(false, false, rows, h, v, 1.0f, a->logits, v, w_out, h, 0.0f,
                       a->dhf + r0 * h, h);
        m->ops->matmul(true, false, v, h, rows, 1.0f, a->logits, v, hf, h, 1.0f, g_out, h);
    }
}

static void final_norm_backward(struct mb_model *m, int64_t n)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    bool ln = c->normalization == MB_NORM_LAYER;
    m->ops->zero(a->dres, n * c->hidden_size);
    mb_norm_backward(m, a->dres, m->g + mb_param_offset(&m->params, MB_P_FINAL_NORM_W, 0),
                     ln ? m->g + mb_param_offset(&m->params, MB_P_FINAL_NORM_B, 0) : NULL,
                     a->dhf, a->x_final, m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_W, 0),
                     a->hf_mean, a->hf_rstd, n);
}

static void sum_loss(const struct mb_model *m, const struct mb_batch *b, double *loss_sum,
                     double *mask_sum)
{
    int64_t n = b->batch * b->seq;
    float *loss = mb_xmalloc((size_t)n * sizeof(float));
    m->ops->to_host(loss, m->acts->loss, n);
    double ls = 0, ms = 0;
    for (int64_t i = 0; i < n; i++) {
        if (b->labels[i] < 0)
            continue;
        ls += (double)b->loss_mask[i] * loss[i];
        ms += b->loss_mask[i];
    }
    free(loss);
    *loss_sum = ls;
    *mask_sum = ms;
}

/* 0 .. T-1 in every row, for batches without position ids. */
static int32_t *default_positions(const struct mb_batch *b)
{
    int32_t *pos = mb_xmalloc((size_t)(b->batch * b->seq) * sizeof(int32_t));
    for (int64_t i = 0; i < b->batch * b->seq; i++)
        pos[i] = (int32_t)(i % b->seq);
    return pos;
}

int mb_model_step(struct mb_model *m, const struct mb_batch *b, float grad_scale,
                  double *loss_sum, double *mask_sum, float *logits)
{
    int32_t *own_pos = b->position_ids ? NULL : default_positions(b);
    const int32_t *pos = own_pos ? own_pos : b->position_ids;
    int rc = check_batch(m, b, pos);
    if (rc == 0 && grad_scale != 0.0f && !m->g)
        rc = mb_err_set(MB_E_INVALID, "model", "a backward pass on a model made for inference");
    if (rc == 0)
        rc = mb_acts_reserve(m, b->batch, b->seq);
    if (rc < 0) {
        free(own_pos);
        return -1;
    }
    struct mb_acts *a = m->acts;
    int64_t nl = m->cfg.num_layers, n = b->batch * b->seq;
    embed(m, b, pos);
    for (int64_t l = 0; l < nl; l++)
        mb_layer_forward(m, l, pos, l + 1 < nl ? a->layer[l + 1].x_in : a->x_final);
    head(m, b, grad_scale, logits);
    sum_loss(m, b, loss_sum, mask_sum);
    if (grad_scale != 0.0f) {
        final_norm_backward(m, n);
        if (m->grad_ready)
            m->grad_ready(m->grad_ready_ctx, nl);
        for (int64_t l = nl - 1; l >= 0; l--) {
            mb_layer_backward(m, l, pos);
            if (m->grad_ready)
                m->grad_ready(m->grad_ready_ctx, l);
        }
        embed_backward(m, b, pos);
    }
    free(own_pos);
    return 0;
}

double mb_model_flops_per_token(const struct mb_model *m, int64_t seq)
{
    const struct mb_model_config *c = &m->cfg;
    double matmul = (double)mb_param_matmul_count(&m->params, c);
    double attn = 12.0 * (double)c->num_layers * (double)(c->num_attention_heads * c->kv_channels) *
                  (double)seq;
    return 6.0 * matmul + attn;
}
