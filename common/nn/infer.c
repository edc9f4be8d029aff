/* nn/infer.c - forward with a key/value cache: embed the new tokens, run each layer on
 * them alone (their q, k, v; k and v appended to the layer's cache; attention over the
 * cache), then the final norm and the vocabulary projection.
 *
 * The layer is nn/layer.c's forward without the activations kept for backward:
 *   x_mid = x + [post_norm](proj(attn(rope(qk_norm(split(qkv(norm1(x))))))))
 *   x_out = x_mid + [post_norm](fc2(act(fc1(norm2(x_mid)))))
 */
#include "nn/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "nn/internal.h"
#include "nn/rope.h"

/* Activations of one call of up to ROWS = B * n positions (backend memory). */
struct mb_infer_scratch {
    int64_t rows;
    float *x, *ln, *mean, *rstd, *qkv, *q_pre, *k_pre, *q, *k, *v, *q_rstd, *k_rstd;
    float *attn, *tmp, *mid, *fc1, *act, *hf, *last, *logits;
    int32_t *pos;                /* [rows] host: the position of each new token */
};

static void scratch_free(const struct mb_ops *ops, struct mb_infer_scratch *s)
{
    if (!s)
        return;
    float **bufs[] = { &s->x, &s->ln, &s->mean, &s->rstd, &s->qkv, &s->q_pre, &s->k_pre,
                       &s->q, &s->k, &s->v, &s->q_rstd, &s->k_rstd, &s->attn, &s->tmp,
                       &s->mid, &s->fc1, &s->act, &s->hf, &s->last, &s->logits };
    for (size_t i = 0; i < MB_ARRAY_LEN(bufs); i++)
        ops->free(*bufs[i]);
    free(s->pos);
    free(s);
}

static struct mb_infer_scratch *scratch_new(const struct mb_model *m, int64_t batch,
                                            int64_t rows)
{
    const struct mb_model_config *c = &m->cfg;
    int64_t h = c->hidden_size, nh = c->num_attention_heads, nkv = c->num_query_groups;
    int64_t d = c->kv_channels;
    struct mb_infer_scratch *s = mb_xcalloc(1, sizeof(*s));
    struct {
        float **p;
        int64_t n;
    } want[] = {
        { &s->x, rows * h },        { &s->ln, rows * h },          { &s->mean, rows },
        { &s->rstd, rows },         { &s->qkv, rows * mb_model_qkv_rows(c) },
        { &s->q_pre, rows * nh * d }, { &s->k_pre, rows * nkv * d }, { &s->q, rows * nh * d },
        { &s->k, rows * nkv * d },  { &s->v, rows * nkv * d },     { &s->q_rstd, rows * nh },
        { &s->k_rstd, rows * nkv }, { &s->attn, rows * nh * d },   { &s->tmp, rows * h },
        { &s->mid, rows * h },      { &s->fc1, rows * mb_model_fc1_rows(c) },
        { &s->act, rows * c->ffn_hidden_size }, { &s->hf, rows * h }, { &s->last, batch * h },
        { &s->logits, rows * c->vocab_size },
    };
    s->rows = rows;
    s->pos = mb_xmalloc((size_t)rows * sizeof(int32_t));
    for (size_t i = 0; i < MB_ARRAY_LEN(want); i++) {
        *want[i].p = m->ops->alloc((size_t)want[i].n * sizeof(float));
        if (!*want[i].p) {
            scratch_free(m->ops, s);
            mb_err_wrap("generation activations for %lld positions", (long long)rows);
            return NULL;
        }
    }
    return s;
}

static int64_t cache_layer_floats(const struct mb_infer *st)
{
    const struct mb_model_config *c = &st->m->cfg;
    return st->batch * c->num_query_groups * st->max_seq * c->kv_channels;
}

int mb_infer_init(struct mb_infer *st, const struct mb_model *m, int64_t batch, int64_t max_seq)
{
    memset(st, 0, sizeof(*st));
    if (batch <= 0 || max_seq <= 0 || max_seq > m->cfg.max_position_embeddings)
        return mb_err_set(MB_E_INVALID, "generation",
                          "cache of %lld x %lld positions (the model has %lld positions)",
                          (long long)batch, (long long)max_seq,
                          (long long)m->cfg.max_position_embeddings);
    st->m = m;
    st->batch = batch;
    st->max_seq = max_seq;
    size_t bytes = (size_t)(cache_layer_floats(st) * m->cfg.num_layers) * sizeof(float);
    st->kc = m->ops->alloc(bytes);
    st->vc = m->ops->alloc(bytes);
    if (!st->kc || !st->vc) {
        mb_infer_free(st);
        return mb_err_wrap("key/value cache of %zu bytes", 2 * bytes);
    }
    return 0;
}

void mb_infer_free(struct mb_infer *st)
{
    if (!st->m)
        return;
    scratch_free(st->m->ops, st->s);
    st->m->ops->free(st->kc);
    st->m->ops->free(st->vc);
    memset(st, 0, sizeof(*st));
}

void mb_infer_reset(struct mb_infer *st)
{
    st->len = 0;
}

static const float *weight(const struct mb_model *m, enum mb_param_id id, int64_t l)
{
    int64_t off = mb_param_offset(&m->params, id, l);
    return off < 0 ? NULL : m->w + off;
}

/* y[n, out] = x[n, in] W^T + b */
static void linear(const struct mb_model *m, float *y, const float *x, const float *w,
                   const float *b, int64_t n, int64_t in, int64_t out)
{
    m->ops->matmul(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (b)
        m->ops->add_bias(y, b, n, out);
}

static struct mb_attn_shape attn_shape(const struct mb_infer *st, int64_t l, int64_t n)
{
    return mb_model_attn_shape(&st->m->cfg, l, st->batch, n);
}

/* QK-norm and RoPE of the new q and k (s->q_pre/k_pre or s->q/k) into s->q, s->k. */
static void qk_embed(struct mb_infer *st, int64_t l, const struct mb_attn_shape *a)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    struct mb_infer_scratch *s = st->s;
    int64_t bt = a->batch * a->seq;
    if (c->qk_layernorm) {
        float eps = (float)c->layernorm_epsilon;
        bool zc = c->layernorm_zero_centered_gamma;
        m->ops->rmsnorm_fwd(s->q, s->q_rstd, s->q_pre, weight(m, MB_P_QNORM_W, l),
                            bt * a->heads, a->head_dim, eps, zc);
        m->ops->rmsnorm_fwd(s->k, s->k_rstd, s->k_pre, weight(m, MB_P_KNORM_W, l),
                            bt * a->kv_heads, a->head_dim, eps, zc);
    }
    if (c->position_embedding_type != MB_POS_ROPE)
        return;
    const float *table = mb_model_layer_slides(c, l) ? m->rope_local : m->rope_global;
    int64_t rot = mb_rope_dims(c);
    m->ops->rope_fwd(s->q, table, s->pos, a->batch, a->heads, a->seq, a->head_dim, rot);
    m->ops->rope_fwd(s->k, table, s->pos, a->batch, a->kv_heads, a->seq, a->head_dim, rot);
}

/* Copy the new k, v [B, nKV, n, d] into layer L's cache at positions len .. len+n-1. */
static void cache_append(struct mb_infer *st, int64_t l, const struct mb_attn_shape *a)
{
    int64_t d = a->head_dim, n = a->seq;
    float *kc = st->kc + l * cache_layer_floats(st), *vc = st->vc + l * cache_layer_floats(st);
    for (int64_t bg = 0; bg < a->batch * a->kv_heads; bg++) {
        int64_t dst = (bg * st->max_seq + st->len) * d, src = bg * n * d;
        st->m->ops->copy(kc + dst, st->s->k + src, n * d);
        st->m->ops->copy(vc + dst, st->s->v + src, n * d);
    }
}

/* The attention branch of layer L on rows [n_rows, H] of s->ln into OUT. */
static void attention(struct mb_infer *st, int64_t l, int64_t n, float *out)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    struct mb_infer_scratch *s = st->s;
    struct mb_attn_shape a = attn_shape(st, l, n);
    int64_t rows = st->batch * n, h = c->hidden_size, ad = a.heads * a.head_dim;
    float eps = (float)c->layernorm_epsilon;

    mb_norm_forward(m, s->ln, s->mean, s->rstd, s->x, weight(m, MB_P_LN1_W, l),
                    weight(m, MB_P_LN1_B, l), rows);
    linear(m, s->qkv, s->ln, weight(m, MB_P_QKV_W, l), weight(m, MB_P_QKV_B, l), rows, h,
           mb_model_qkv_rows(c));
    m->ops->qkv_split(c->qk_layernorm ? s->q_pre : s->q, c->qk_layernorm ? s->k_pre : s->k, s->v,
                      s->qkv, &a);
    qk_embed(st, l, &a);
    cache_append(st, l, &a);
    int64_t off = l * cache_layer_floats(st);
    m->ops->attention_kv(s->attn, s->q, st->kc + off, st->vc + off, &a, st->len, st->max_seq);
    if (!c->sandwich_norm) {
        linear(m, out, s->attn, weight(m, MB_P_PROJ_W, l), weight(m, MB_P_PROJ_B, l), rows, ad, h);
        return;
    }
    linear(m, s->tmp, s->attn, weight(m, MB_P_PROJ_W, l), weight(m, MB_P_PROJ_B, l), rows, ad, h);
    m->ops->rmsnorm_fwd(out, s->rstd, s->tmp, weight(m, MB_P_POST_ATTN_NORM_W, l), rows, h, eps,
                        c->layernorm_zero_centered_gamma);
}

/* The MLP branch of layer L on s->mid into OUT. */
static void mlp(struct mb_infer *st, int64_t l, int64_t rows, float *out)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    struct mb_infer_scratch *s = st->s;
    int64_t h = c->hidden_size, inner = c->ffn_hidden_size;

    mb_norm_forward(m, s->ln, s->mean, s->rstd, s->mid, weight(m, MB_P_LN2_W, l),
                    weight(m, MB_P_LN2_B, l), rows);
    linear(m, s->fc1, s->ln, weight(m, MB_P_FC1_W, l), weight(m, MB_P_FC1_B, l), rows, h,
           mb_model_fc1_rows(c));
    switch (c->activation) {
    case MB_ACT_SWIGLU: m->ops->swiglu_fwd(s->act, s->fc1, rows, inner); break;
    case MB_ACT_GEGLU: m->ops->geglu_fwd(s->act, s->fc1, rows, inner); break;
    case MB_ACT_GELU: m->ops->gelu_fwd(s->act, s->fc1, rows * inner); break;
    }
    if (!c->sandwich_norm) {
        linear(m, out, s->act, weight(m, MB_P_FC2_W, l), weight(m, MB_P_FC2_B, l), rows, inner, h);
        return;
    }
    linear(m, s->tmp, s->act, weight(m, MB_P_FC2_W, l), weight(m, MB_P_FC2_B, l), rows, inner, h);
    m->ops->rmsnorm_fwd(out, s->rstd, s->tmp, weight(m, MB_P_POST_MLP_NORM_W, l), rows, h,
                        (float)c->layernorm_epsilon, c->layernorm_zero_centered_gamma);
}

/* One layer on s->x (the residual stream of the new rows), in place. */
static void layer(struct mb_infer *st, int64_t l, int64_t n)
{
    const struct mb_ops *ops = st->m->ops;
    struct mb_infer_scratch *s = st->s;
    int64_t rows = st->batch * n, nh = rows * st->m->cfg.hidden_size;

    attention(st, l, n, s->hf);
    ops->copy(s->mid, s->x, nh);
    ops->add(s->mid, s->hf, nh);
    mlp(st, l, rows, s->hf);
    ops->copy(s->x, s->mid, nh);
    ops->add(s->x, s->hf, nh);
}

static void embed(struct mb_infer *st, const int32_t *tokens, int64_t rows)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    float scale = c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
    m->ops->embedding_fwd(st->s->x, weight(m, MB_P_WORD_EMB, 0), tokens, rows, c->hidden_size,
                          scale, false);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_fwd(st->s->x, weight(m, MB_P_POS_EMB, 0), st->s->pos, rows,
                              c->hidden_size, 1.0f, true);
}

/* Final norm and vocabulary projection of the rows wanted, into LOGITS (host). */
static void head(struct mb_infer *st, int64_t n, bool all, float *logits)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    struct mb_infer_scratch *s = st->s;
    int64_t h = c->hidden_size, v = c->vocab_size, rows = st->batch * n;
    const float *x = s->x;
    if (!all) {
        for (int64_t b = 0; b < st->batch; b++)
            m->ops->copy(s->last + b * h, s->x + (b * n + n - 1) * h, h);
        x = s->last;
        rows = st->batch;
    }
    bool ln = c->normalization == MB_NORM_LAYER;
    mb_norm_forward(m, s->hf, s->mean, s->rstd, x, weight(m, MB_P_FINAL_NORM_W, 0),
                    ln ? weight(m, MB_P_FINAL_NORM_B, 0) : NULL, rows);
    enum mb_param_id out = c->share_embeddings_and_output_weights ? MB_P_WORD_EMB : MB_P_OUTPUT_W;
    m->ops->matmul(false, true, rows, v, h, 1.0f, s->hf, h, weight(m, out, 0), h, 0.0f, s->logits,
                   v);
    m->ops->to_host(logits, s->logits, rows * v);
    double cap = c->final_logit_softcapping;
    for (int64_t i = 0; cap > 0 && i < rows * v; i++)
        logits[i] = (float)(cap * tanh(logits[i] / cap));
}

static int check_tokens(const struct mb_infer *st, const int32_t *tokens, int64_t n)
{
    int64_t vocab = st->m->cfg.vocab_size;
    if (n <= 0 || st->len + n > st->max_seq)
        return mb_err_set(MB_E_INVALID, "generation",
                          "%lld new positions after %lld do not fit the cache of %lld",
                          (long long)n, (long long)st->len, (long long)st->max_seq);
    for (int64_t i = 0; i < st->batch * n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return mb_err_set(MB_E_INVALID, "generation",
                              "token id %d is outside the model's vocabulary of %lld",
                              tokens[i], (long long)vocab);
    return 0;
}

int mb_infer_forward(struct mb_infer *st, const int32_t *tokens, int64_t n, bool all,
                     float *logits)
{
    if (check_tokens(st, tokens, n) < 0)
        return -1;
    int64_t rows = st->batch * n;
    if (!st->s || st->s->rows < rows) {
        scratch_free(st->m->ops, st->s);
        st->s = scratch_new(st->m, st->batch, rows);
        if (!st->s)
            return -1;
    }
    for (int64_t i = 0; i < rows; i++)
        st->s->pos[i] = (int32_t)(st->len + i % n);
    embed(st, tokens, rows);
    for (int64_t l = 0; l < st->m->cfg.num_layers; l++)
        layer(st, l, n);
    head(st, n, all, logits);
    st->len += n;
    return 0;
}
