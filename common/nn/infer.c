/* nn/infer.c - forward with a key/value cache: embed the new tokens, run each layer on
 * them alone (their q, k, v; k and v appended to the layer's cache; attention over the
 * cache), then the final norm and the vocabulary projection.
 *
 * The layer is nn/layer.c's, the training step's own forward (mb_layer_forward_pass), on
 * one set of activations reused by every layer and with attention over the cache; what
 * is here is only what the cache needs: appending to it, the positions, the last rows.
 */
#include "nn/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "nn/internal.h"
#include "nn/rope.h"

/* Activations of one call of up to ROWS = B * n positions (backend memory): one layer's,
 * reused by every layer (la.x_in is the residual stream), and the head's. */
struct mb_infer_scratch {
    int64_t rows;
    struct mb_layer_acts la;
    float *qkv, *tmp;
    void *layer_block;           /* where la, qkv and tmp live */
    float *hf, *mean, *rstd, *last, *logits;
    int32_t *pos;                /* [rows] host: the position of each new token */
    int32_t *ids_dev, *pos_dev;  /* [rows] the new tokens and their positions, uploaded */
};

static void scratch_free(const struct mb_ops *ops, struct mb_exec *ex, struct mb_infer_scratch *s)
{
    if (!s)
        return;
    float **bufs[] = { &s->hf, &s->mean, &s->rstd, &s->last, &s->logits };
    for (size_t i = 0; i < MB_ARRAY_LEN(bufs); i++)
        ops->free(ex, *bufs[i]);
    if (s->layer_block)
        ops->free(ex, s->layer_block);
    ops->free(ex, s->ids_dev);
    ops->free(ex, s->pos_dev);
    free(s->pos);
    free(s);
}

static struct mb_infer_scratch *scratch_new(const struct mb_model *m, int64_t batch,
                                            int64_t rows)
{
    const struct mb_model_config *c = &m->cfg;
    int64_t h = c->hidden_size;
    struct mb_infer_scratch *s = mb_xcalloc(1, sizeof(*s));
    struct {
        float **p;
        int64_t n;
    } want[] = {
        { &s->hf, rows * h }, { &s->mean, rows }, { &s->rstd, rows }, { &s->last, batch * h },
        { &s->logits, rows * c->vocab_size },
    };
    s->rows = rows;
    s->pos = mb_xmalloc((size_t)rows * sizeof(int32_t));
    s->layer_block = mb_layer_acts_alloc(m, rows, &s->la, &s->qkv, &s->tmp);
    for (size_t i = 0; i < MB_ARRAY_LEN(want) && s->layer_block; i++) {
        *want[i].p = m->ops->alloc(m->ex, (size_t)want[i].n * sizeof(float));
        if (!*want[i].p)
            break;
    }
    if (s->logits) {
        s->ids_dev = m->ops->alloc(m->ex, (size_t)rows * sizeof(int32_t));
        s->pos_dev = m->ops->alloc(m->ex, (size_t)rows * sizeof(int32_t));
    }
    if (!s->layer_block || !s->logits || !s->ids_dev || !s->pos_dev) {
        scratch_free(m->ops, m->ex, s);
        mb_err_wrap("generation activations for %lld positions", (long long)rows);
        return NULL;
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
    st->kc = m->ops->alloc(m->ex, bytes);
    st->vc = m->ops->alloc(m->ex, bytes);
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
    scratch_free(st->m->ops, st->m->ex, st->s);
    st->m->ops->free(st->m->ex, st->kc);
    st->m->ops->free(st->m->ex, st->vc);
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

/* Copy the new k, v [B, nKV, n, d] into layer L's cache at positions len .. len+n-1. */
static void cache_append(struct mb_infer *st, int64_t l, const struct mb_layer_acts *la,
                         const struct mb_attn_shape *a)
{
    int64_t d = a->head_dim, n = a->seq;
    float *kc = st->kc + l * cache_layer_floats(st), *vc = st->vc + l * cache_layer_floats(st);
    for (int64_t bg = 0; bg < a->batch * a->kv_heads; bg++) {
        int64_t dst = (bg * st->max_seq + st->len) * d, src = bg * n * d;
        st->m->ops->copy(st->m->ex, kc + dst, la->k + src, n * d);
        st->m->ops->copy(st->m->ex, vc + dst, la->v + src, n * d);
    }
}

/* The attention of the layer pass (nn/internal.h) over the cache: the new keys and
 * values appended, then every new query against positions 0 .. len + n - 1. */
static void attend_cache(void *ctx, int64_t l, const struct mb_layer_acts *la,
                         const struct mb_attn_shape *a)
{
    struct mb_infer *st = ctx;
    cache_append(st, l, la, a);
    int64_t off = l * cache_layer_floats(st);
    st->m->ops->attention_kv(st->m->ex, la->attn, la->q, st->kc + off, st->vc + off, a, st->len,
                             st->max_seq);
}

/* Layer L on the residual stream of the N new positions of each sequence, in place. */
static void layer(struct mb_infer *st, int64_t l, int64_t n)
{
    struct mb_infer_scratch *s = st->s;
    struct mb_layer_pass p = {
        .la = &s->la,
        .qkv = s->qkv,
        .tmp = s->tmp,
        .batch = st->batch,
        .seq = n,
        .res_rows = st->batch * n,
        .pos = s->pos_dev,
        .attend = attend_cache,
        .ctx = st,
    };
    mb_layer_forward_pass(st->m, l, &p, s->la.x_in);
}

static void embed(struct mb_infer *st, int64_t rows)
{
    const int32_t *tokens = st->s->ids_dev;
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    float scale = c->scale_embeddings ? (float)sqrt((double)c->hidden_size) : 1.0f;
    m->ops->embedding_fwd(m->ex, st->s->la.x_in, weight(m, MB_P_WORD_EMB, 0), tokens, rows,
                          c->hidden_size, scale, false);
    if (c->position_embedding_type == MB_POS_LEARNED)
        m->ops->embedding_fwd(m->ex, st->s->la.x_in, weight(m, MB_P_POS_EMB, 0), st->s->pos_dev,
                              rows, c->hidden_size, 1.0f, true);
}

/* Final norm and vocabulary projection of the rows wanted, into LOGITS (host). */
static void head(struct mb_infer *st, int64_t n, bool all, float *logits)
{
    const struct mb_model *m = st->m;
    const struct mb_model_config *c = &m->cfg;
    struct mb_infer_scratch *s = st->s;
    int64_t h = c->hidden_size, v = c->vocab_size, rows = st->batch * n;
    const float *x = s->la.x_in;
    if (!all) {
        for (int64_t b = 0; b < st->batch; b++)
            m->ops->copy(m->ex, s->last + b * h, s->la.x_in + (b * n + n - 1) * h, h);
        x = s->last;
        rows = st->batch;
    }
    bool ln = c->normalization == MB_NORM_LAYER;
    mb_norm_forward(m, s->hf, s->mean, s->rstd, x, weight(m, MB_P_FINAL_NORM_W, 0),
                    ln ? weight(m, MB_P_FINAL_NORM_B, 0) : NULL, rows);
    enum mb_param_id out = c->share_embeddings_and_output_weights ? MB_P_WORD_EMB : MB_P_OUTPUT_W;
    m->ops->matmul(m->ex, false, true, rows, v, h, 1.0f, s->hf, h, weight(m, out, 0), h, 0.0f,
                   s->logits, v);
    mb_vocab_mask_apply(m, s->logits, rows);
    mb_to_host_f32(m->ops, m->ex, logits, s->logits, rows * v);
    mb_softcap_logits(logits, rows * v, c->final_logit_softcapping);
}

static int check_tokens(const struct mb_infer *st, const int32_t *tokens, int64_t n)
{
    int64_t vocab = mb_model_real_vocab(&st->m->cfg);
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
        scratch_free(st->m->ops, st->m->ex, st->s);
        st->s = scratch_new(st->m, st->batch, rows);
        if (!st->s)
            return -1;
    }
    for (int64_t i = 0; i < rows; i++)
        st->s->pos[i] = (int32_t)(st->len + i % n);
    mb_from_host_i32(st->m->ops, st->m->ex, st->s->ids_dev, tokens, rows);
    mb_from_host_i32(st->m->ops, st->m->ex, st->s->pos_dev, st->s->pos, rows);
    embed(st, rows);
    for (int64_t l = 0; l < st->m->cfg.num_layers; l++)
        layer(st, l, n);
    head(st, n, all, logits);
    st->len += n;
    return 0;
}
