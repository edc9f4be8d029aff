/* nn/model.c - the model's lifetime, and a step: embed, layers, head and loss, backward. */
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "dist/devcomm.h"
#include "nn/internal.h"
#include "nn/rope.h"

/* The tensor-parallel group of a whole model. */
static const struct mb_group whole_model = { .rank = 0, .size = 1, .comm = NULL, .name = "tp",
                                            .kind = MB_GROUP_TP };

/* The adapters' scratch and DoRA's norm buffers. */
static int peft_init(struct mb_model *m)
{
    if (m->peft.kind == MB_PEFT_NONE)
        return 0;
    m->peft_scratch = mb_xcalloc(1, sizeof(*m->peft_scratch));
    m->peft_scratch->ops = m->ops;
    m->peft_scratch->ex = m->ex;
    for (int k = 0; k < MB_PEFT_MODULES && m->peft.kind == MB_PEFT_DORA; k++) {
        const struct mb_param *p =
            mb_param_get(&m->params, mb_param_adapter_id(k, MB_ADAPTER_M));
        if (p && !(m->peft_norm[k] = m->ops->alloc(m->ex, (size_t)p->numel * sizeof(float))))
            return mb_err_wrap("DoRA norms");
    }
    return 0;
}

static int model_init(struct mb_model *m, const struct mb_model_config *cfg,
                      const struct mb_ops *ops, bool grads, const struct mb_group *tp, bool sp,
                      const struct mb_peft_config *pc, const struct mb_stage *stage)
{
    memset(m, 0, sizeof(*m));
    if (mb_local_sizes_check(cfg, tp->size, "model") < 0)
        return -1;
    m->cfg = *cfg;
    m->ops = ops;
    m->ex = ops->exec;
    m->tp = tp;
    m->sequence_parallel = sp && tp->size > 1;
    if (stage)
        m->stage = *stage;
    else
        mb_stage_whole(&m->stage, cfg->num_layers);
    mb_param_table_build_stage(&m->params, cfg, tp->size, tp->rank, &m->stage);
    if (pc) {
        m->peft = *pc;
        mb_param_table_add_adapters(&m->params, cfg, pc);
    }
    m->loc = &m->params.loc;
    size_t bytes = (size_t)m->params.total * sizeof(float);
    m->w = ops->alloc(m->ex, bytes);
    m->g = grads ? ops->alloc(m->ex, (size_t)(m->params.total - m->params.frozen) * sizeof(float))
                 : NULL;
    if (!m->w || (grads && !m->g) || peft_init(m) < 0) {
        mb_model_free(m);
        return mb_err_wrap("model of %lld parameters", (long long)m->params.total);
    }
    if (mb_vocab_mask_init(m) < 0) {
        mb_model_free(m);
        return -1;
    }
    if (cfg->position_embedding_type != MB_POS_ROPE)
        return 0;
    int64_t table = cfg->max_position_embeddings * mb_rope_dims(cfg);
    float *host = mb_xmalloc((size_t)table * sizeof(float));
    m->rope_global = ops->alloc(m->ex, (size_t)table * sizeof(float));
    bool local = cfg->rotary_base_local > 0 && cfg->rotary_base_local != cfg->rotary_base;
    m->rope_local = local ? ops->alloc(m->ex, (size_t)table * sizeof(float)) : m->rope_global;
    if (!m->rope_global || !m->rope_local) {
        free(host);
        mb_model_free(m);
        return mb_err_wrap("RoPE tables");
    }
    mb_rope_table(host, cfg, false);
    mb_from_host_f32(ops, m->ex, m->rope_global, host, table);
    if (local) {
        mb_rope_table(host, cfg, true);
        mb_from_host_f32(ops, m->ex, m->rope_local, host, table);
    }
    free(host);
    return 0;
}

int mb_model_init(struct mb_model *m, const struct mb_model_config *cfg, const struct mb_ops *ops)
{
    return model_init(m, cfg, ops, true, &whole_model, false, NULL, NULL);
}

int mb_model_init_tp(struct mb_model *m, const struct mb_model_config *cfg,
                     const struct mb_ops *ops, const struct mb_group *tp, bool sequence_parallel)
{
    return model_init(m, cfg, ops, true, tp, sequence_parallel, NULL, NULL);
}

int mb_model_init_peft(struct mb_model *m, const struct mb_model_config *cfg,
                       const struct mb_ops *ops, const struct mb_group *tp, bool sequence_parallel,
                       const struct mb_peft_config *pc)
{
    return model_init(m, cfg, ops, true, tp, sequence_parallel, pc, NULL);
}

int mb_model_init_stage(struct mb_model *m, const struct mb_model_config *cfg,
                        const struct mb_ops *ops, const struct mb_group *tp, bool sequence_parallel,
                        const struct mb_peft_config *pc, const struct mb_stage *stage)
{
    return model_init(m, cfg, ops, true, tp, sequence_parallel, pc, stage);
}

int mb_model_init_inference(struct mb_model *m, const struct mb_model_config *cfg,
                            const struct mb_ops *ops)
{
    return model_init(m, cfg, ops, false, &whole_model, false, NULL, NULL);
}

int mb_model_init_inference_peft(struct mb_model *m, const struct mb_model_config *cfg,
                                 const struct mb_ops *ops, const struct mb_peft_config *pc)
{
    return model_init(m, cfg, ops, false, &whole_model, false, pc, NULL);
}

void mb_model_free(struct mb_model *m)
{
    if (!m->ops)
        return;
    mb_acts_free(m);
    mb_acts_slots_free(m);
    if (m->rope_local != m->rope_global)
        m->ops->free(m->ex, m->rope_local);
    m->ops->free(m->ex, m->rope_global);
    m->ops->free(m->ex, m->vocab_mask);
    m->ops->free(m->ex, m->w);
    if (m->wb)
        m->ops->free(m->ex, m->wb);
    free(m->gw_fresh);
    if (m->g)
        m->ops->free(m->ex, m->g);
    mb_adapter_scratch_release(m->peft_scratch);
    free(m->peft_scratch);
    for (int k = 0; k < MB_PEFT_MODULES; k++)
        if (m->peft_norm[k])
            m->ops->free(m->ex, m->peft_norm[k]);
    memset(m, 0, sizeof(*m));
}

void mb_model_init_weights(struct mb_model *m, uint64_t seed)
{
    float *host = mb_xmalloc((size_t)m->params.total * sizeof(float));
    mb_param_init_all(&m->params, &m->cfg, seed, host);
    mb_from_host_f32(m->ops, m->ex, m->w, host, m->params.total);
    free(host);
    mb_model_weights_changed(m);
}

/* Whether a GEMM reads parameter ID: the projections, and the output layer (the word
 * embedding when tied, on the stage with the head). The rest (embeddings, norms, biases,
 * adapters) stays fp32 only. */
static bool gemm_weight(const struct mb_model *m, enum mb_param_id id)
{
    switch (id) {
    case MB_P_QKV_W:
    case MB_P_PROJ_W:
    case MB_P_FC1_W:
    case MB_P_FC2_W:
    case MB_P_OUTPUT_W:
        return true;
    case MB_P_WORD_EMB:
        return m->cfg.share_embeddings_and_output_weights && m->stage.last;
    default:
        return false;
    }
}

/* Layers indexed in m->gw_fresh per parameter id. */
static int64_t fresh_layers(const struct mb_model *m)
{
    return MB_MAX(m->stage.layers, 1);
}

/* Whether the gradient of parameter P is only ever written by its weight-gradient GEMM,
 * so that the first one of a step can write instead of add: a trainable bf16 GEMM weight,
 * but not the tied word embedding, whose gradient the embedding's backward adds to. */
static bool written_fresh(const struct mb_model *m, const struct mb_param *p)
{
    return m->gw_fresh && p->trainable && m->wb_at[p->id] >= 0 && p->id != MB_P_WORD_EMB;
}

bool *mb_model_gw_fresh(const struct mb_model *m, enum mb_param_id id, int64_t l)
{
    const struct mb_param *p = mb_param_get(&m->params, id);
    if (!p || !written_fresh(m, p))
        return NULL;
    return &m->gw_fresh[id * fresh_layers(m) + (p->per_layer ? l : 0)];
}

int mb_model_set_bf16(struct mb_model *m)
{
    MB_ASSERT(!m->acts && !m->pipe_slots); /* their layout depends on it */
    if (m->wb)
        return 0;
    int64_t total = 0;
    for (int id = 0; id < MB_P_COUNT; id++) {
        const struct mb_param *p = mb_param_get(&m->params, (enum mb_param_id)id);
        m->wb_at[id] = p && gemm_weight(m, (enum mb_param_id)id) ? total : -1;
        total += m->wb_at[id] < 0 ? 0 : p->numel;
    }
    m->wb = m->ops->alloc(m->ex, (size_t)MB_MAX(total, 1) * sizeof(uint16_t));
    if (!m->wb)
        return mb_err_wrap("bf16 copy of %lld weights", (long long)total);
    if (m->g)
        m->gw_fresh = mb_xcalloc((size_t)MB_P_COUNT * fresh_layers(m), sizeof *m->gw_fresh);
    mb_model_weights_changed(m);
    return 0;
}

void mb_model_weight_changed(struct mb_model *m, enum mb_param_id id)
{
    const struct mb_param *p = mb_param_get(&m->params, id);
    if (m->wb && m->wb_at[id] >= 0)
        m->ops->convert(m->ex, m->wb + m->wb_at[id], MB_DTYPE_BF16, m->w + p->offset, MB_DTYPE_F32,
                        p->numel);
}

void mb_model_weights_changed(struct mb_model *m)
{
    for (int id = 0; id < MB_P_COUNT; id++)
        mb_model_weight_changed(m, (enum mb_param_id)id);
}

uint16_t *mb_model_bf16_weight(const struct mb_model *m, enum mb_param_id id, int64_t l)
{
    const struct mb_param *p = mb_param_get(&m->params, id);
    if (!m->wb || !p || m->wb_at[id] < 0)
        return NULL;
    return m->wb + m->wb_at[id] + (mb_param_offset(&m->params, id, l) - p->offset);
}

float *mb_model_grad_of(const struct mb_model *m, const struct mb_param *p)
{
    if (!m->g || !p || !p->trainable)
        return NULL;
    return m->g + (p->offset - m->params.frozen);
}

void mb_model_zero_grad(struct mb_model *m)
{
    int64_t from = m->params.frozen; /* the next offset to zero from */
    for (int i = 0; m->gw_fresh && i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i]; /* in offset order */
        if (!written_fresh(m, p))
            continue;
        if (p->offset > from)
            m->ops->zero(m->ex, m->g + (from - m->params.frozen), p->offset - from);
        from = p->offset + p->numel;
        for (int64_t l = 0; l < fresh_layers(m); l++)
            m->gw_fresh[p->id * fresh_layers(m) + l] = true;
    }
    if (m->params.total > from)
        m->ops->zero(m->ex, m->g + (from - m->params.frozen), m->params.total - from);
    m->tp_grads_summed = false;
}

static int check_batch(const struct mb_model *m, const struct mb_batch *b, const int32_t *pos)
{
    const struct mb_model_config *c = &m->cfg;
    int64_t n = b->batch * b->seq, vocab = mb_model_real_vocab(c); /* padded rows: no token */
    if (b->batch <= 0 || b->seq <= 0)
        return mb_err_set(MB_E_INVALID, "batch", "empty micro-batch (%lld x %lld)",
                          (long long)b->batch, (long long)b->seq);
    for (int64_t i = 0; i < n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= vocab || b->labels[i] >= vocab)
            return mb_err_set(MB_E_INVALID, "batch",
                              "token id %d (label %d) at position %lld is outside the "
                              "vocabulary of %lld",
                              b->tokens[i], b->labels[i], (long long)i, (long long)vocab);
        if (pos[i] < 0 || pos[i] >= c->max_position_embeddings)
            return mb_err_set(MB_E_INVALID, "batch",
                              "position %d is beyond model.max_position_embeddings (%lld)",
                              pos[i], (long long)c->max_position_embeddings);
    }
    return 0;
}

void mb_final_norm_backward(struct mb_model *m)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_acts *a = m->acts;
    bool ln = c->normalization == MB_NORM_LAYER;
    m->ops->zero(m->ex, a->dres, a->res_rows * c->hidden_size);
    const struct mb_param_table *t = &m->params;
    mb_norm_backward(m, a->dres, mb_model_grad_of(m, mb_param_get(t, MB_P_FINAL_NORM_W)),
                     ln ? mb_model_grad_of(m, mb_param_get(t, MB_P_FINAL_NORM_B)) : NULL,
                     a->dhf, a->x_final, m->w + mb_param_offset(&m->params, MB_P_FINAL_NORM_W, 0),
                     a->hf_mean, a->hf_rstd, a->res_rows);
}

void mb_sum_loss(const struct mb_model *m, const struct mb_batch *b, double *loss_sum,
                     double *mask_sum)
{
    int64_t n = b->batch * b->seq;
    float *loss = mb_xmalloc((size_t)n * sizeof(float));
    mb_to_host_f32(m->ops, m->ex, loss, m->acts->loss, n);
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

/* The first position of each token's document from B's segment ids (kern/ops.h
 * doc_start), or NULL when the rows are not packed. -1 with mb_err when the ids go down
 * within a row (a document would be split). */
static int doc_starts(const struct mb_batch *b, int32_t **out)
{
    *out = NULL;
    if (!b->segment_ids)
        return 0;
    int32_t *d = mb_xmalloc((size_t)(b->batch * b->seq) * sizeof(int32_t));
    for (int64_t r = 0; r < b->batch; r++) {
        const int32_t *seg = b->segment_ids + r * b->seq;
        int32_t *row = d + r * b->seq;
        for (int64_t t = 0; t < b->seq; t++) {
            if (t > 0 && seg[t] < seg[t - 1]) {
                free(d);
                return mb_err_set(MB_E_INVALID, "batch",
                                  "segment id %d after %d at row %lld position %lld: a "
                                  "packed row's documents must be contiguous", seg[t],
                                  seg[t - 1], (long long)r, (long long)t);
            }
            row[t] = t > 0 && seg[t] == seg[t - 1] ? row[t - 1] : (int32_t)t;
        }
    }
    *out = d;
    return 0;
}

/* Gradients each TP rank holds only a part of (mb_model_finish_grads). */
static bool partial_over_tp(const struct mb_model *m, const struct mb_param *p)
{
    if (!p->tp_replicated || !p->trainable)
        return false;
    if (p->id == MB_P_QNORM_W || p->id == MB_P_KNORM_W)
        return true;
    /* A of a column-parallel layer: each rank's B rows give a part; B and m of a
     * row-parallel layer see every row of dy on every rank (peft/peft.h) */
    if (p->id == MB_P_QKV_LORA_A || p->id == MB_P_FC1_LORA_A)
        return true;
    if (p->id >= MB_P_QKV_LORA_A)
        return false;
    /* the position embedding's gradient comes from the gathered residual gradient */
    return m->sequence_parallel && p->id != MB_P_POS_EMB;
}

/* Sum over TP the partial gradients (partial_over_tp) of backward stage STAGE: the
 * final norm at STAGE num_layers, layer STAGE's slices below it. Only in the last
 * micro-batch of a step (when grad_ready is set): the sums are of the whole step. */
static void finish_stage(struct mb_model *m, int64_t stage)
{
    int64_t nl = m->stage.layers;
    for (int i = 0; m->tp->size > 1 && i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (!partial_over_tp(m, p))
            continue;
        int64_t slice = p->per_layer ? p->numel / p->shape[0] : p->numel;
        if (p->per_layer && stage < nl)
            mb_dev_sum_f32(m->ops, m->ex, m->tp, mb_model_grad_of(m, p) + stage * slice, slice);
        else if (!p->per_layer && stage == nl)
            mb_dev_sum_f32(m->ops, m->ex, m->tp, mb_model_grad_of(m, p), slice);
    }
}

/* The backward of this micro-batch finished STAGE (struct mb_model, grad_ready). */
void mb_model_stage_done(struct mb_model *m, int64_t stage)
{
    if (!m->grad_ready)
        return;
    finish_stage(m, stage);
    if (stage == 0)
        m->tp_grads_summed = true;
    m->grad_ready(m->grad_ready_ctx, stage);
}

/* B's ids (as this rank's vocabulary rows under TP), positions, labels, loss mask and
 * document starts into one backend allocation (struct mb_batch_aux). */
static int upload_batch(const struct mb_model *m, const struct mb_batch *b,
                        struct mb_batch_aux *aux)
{
    int64_t n = b->batch * b->seq, start = m->loc->vocab_start, rows = m->loc->vocab_rows;
    size_t part = (size_t)n * sizeof(int32_t); /* == n floats */
    int parts = aux->docs ? 5 : 4;
    char *host = mb_xmalloc((size_t)parts * part);
    int32_t *ids = (int32_t *)host;
    for (int64_t i = 0; i < n; i++)
        ids[i] = m->tp->size == 1 ? b->tokens[i]
                 : b->tokens[i] >= start && b->tokens[i] < start + rows
                     ? (int32_t)(b->tokens[i] - start)
                     : -1;
    memcpy(host + part, aux->pos, part);
    memcpy(host + 2 * part, b->labels, part);
    memcpy(host + 3 * part, b->loss_mask, part);
    if (aux->docs)
        memcpy(host + 4 * part, aux->docs, part);
    char *dev = m->ops->alloc(m->ex, (size_t)parts * part);
    if (dev)
        m->ops->from_host(m->ex, dev, host, (size_t)parts * part);
    free(host);
    if (!dev)
        return mb_err_wrap("the micro-batch in backend memory");
    aux->dev = dev;
    aux->d_ids = (const int32_t *)dev;
    aux->d_pos = (const int32_t *)(dev + part);
    aux->d_labels = (const int32_t *)(dev + 2 * part);
    aux->d_mask = (const float *)(dev + 3 * part);
    aux->d_docs = aux->docs ? (const int32_t *)(dev + 4 * part) : NULL;
    return 0;
}

/* AUX's host part for B, after checking B (mb_model_batch_begin without the upload). */
static int check_aux(const struct mb_model *m, const struct mb_batch *b,
                     struct mb_batch_aux *aux)
{
    memset(aux, 0, sizeof(*aux));
    aux->own_pos = b->position_ids ? NULL : default_positions(b);
    aux->pos = aux->own_pos ? aux->own_pos : b->position_ids;
    int rc = check_batch(m, b, aux->pos);
    if (rc == 0 && m->sequence_parallel && b->batch * b->seq % m->tp->size != 0)
        rc = mb_err_set(MB_E_INVALID, "batch",
                        "sequence parallelism needs the %lld x %lld tokens of a micro-batch "
                        "to divide by the tensor-parallel size %d",
                        (long long)b->batch, (long long)b->seq, m->tp->size);
    if (rc == 0)
        rc = doc_starts(b, &aux->docs);
    if (rc < 0)
        mb_model_batch_end(m, aux);
    return rc;
}

int mb_model_batch_begin(struct mb_model *m, const struct mb_batch *b,
                         struct mb_batch_aux *aux)
{
    if (check_aux(m, b, aux) < 0)
        return -1;
    if (upload_batch(m, b, aux) < 0) {
        mb_model_batch_end(m, aux);
        return -1;
    }
    return 0;
}

int mb_model_check_batch(struct mb_model *m, const struct mb_batch *b)
{
    struct mb_batch_aux aux;
    if (check_aux(m, b, &aux) < 0)
        return -1;
    mb_model_batch_end(m, &aux);
    return 0;
}

void mb_model_batch_end(const struct mb_model *m, struct mb_batch_aux *aux)
{
    free(aux->own_pos);
    free(aux->docs);
    if (aux->dev)
        m->ops->free(m->ex, aux->dev);
    memset(aux, 0, sizeof(*aux));
}

int mb_model_step(struct mb_model *m, const struct mb_batch *b, float grad_scale,
                  double *loss_sum, double *mask_sum, float *logits)
{
    MB_ASSERT(m->stage.pp == 1); /* a pipeline stage runs by chunks */
    struct mb_batch_aux aux;
    if (mb_model_batch_begin(m, b, &aux) < 0)
        return -1;
    int rc = 0;
    if (grad_scale != 0.0f && !m->g)
        rc = mb_err_set(MB_E_INVALID, "model", "a backward pass on a model made for inference");
    if (rc == 0 && logits && m->tp->size > 1)
        rc = mb_err_set(MB_E_UNSUPPORTED, "model",
                        "the logits of a tensor-parallel model are not gathered");
    if (rc == 0)
        rc = mb_acts_reserve(m, b->batch, b->seq);
    if (rc < 0) {
        mb_model_batch_end(m, &aux);
        return -1;
    }
    const int32_t *pos = aux.d_pos;
    struct mb_acts *a = m->acts;
    a->doc_start = aux.d_docs;
    int64_t nl = m->stage.layers;
    mb_embed_forward(m, b, &aux);
    for (int64_t l = 0; l < nl; l++)
        mb_layer_forward(m, l, pos, l + 1 < nl ? a->layer[l + 1].x_in : a->x_final);
    mb_head(m, b, &aux, grad_scale, logits);
    mb_sum_loss(m, b, loss_sum, mask_sum);
    if (grad_scale != 0.0f) {
        mb_final_norm_backward(m);
        mb_model_stage_done(m, nl);
        for (int64_t l = nl - 1; l >= 0; l--) {
            mb_layer_backward(m, l, pos);
            mb_model_stage_done(m, l);
        }
        mb_embed_backward(m, b, &aux);
    }
    a->doc_start = NULL;
    mb_model_batch_end(m, &aux);
    return 0;
}

void mb_model_finish_grads(struct mb_model *m)
{
    if (m->tp->size == 1 || m->tp_grads_summed)
        return;
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (partial_over_tp(m, p))
            mb_dev_sum_f32(m->ops, m->ex, m->tp, mb_model_grad_of(m, p), p->numel);
    }
}

double mb_model_grad_sumsq(const struct mb_model *m)
{
    if (m->tp->size == 1)
        return m->ops->sumsq(m->ex, m->g, m->params.total - m->params.frozen);
    double sq = 0;
    for (int i = 0; i < m->params.count; i++) {
        const struct mb_param *p = &m->params.items[i];
        if (p->trainable && (!p->tp_replicated || m->tp->rank == 0))
            sq += m->ops->sumsq(m->ex, mb_model_grad_of(m, p), p->numel);
    }
    return sq;
}

double mb_model_flops_per_token(const struct mb_model *m, int64_t seq)
{
    const struct mb_model_config *c = &m->cfg;
    struct mb_param_table whole; /* every stage's parameters, not only this one's */
    mb_param_table_build(&whole, c);
    mb_param_table_add_adapters(&whole, c, &m->peft);
    double matmul = (double)mb_param_matmul_count_of(&whole, c, true);
    double frozen = (double)mb_param_matmul_count_of(&whole, c, false); /* no dW */
    double attn = 12.0 * (double)c->num_layers * (double)(c->num_attention_heads * c->kv_channels) *
                  (double)seq;
    return 6.0 * matmul + 4.0 * frozen + attn;
}
