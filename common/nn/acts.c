/* nn/acts.c - one allocation for the activations of a micro-batch shape, with this
 * rank's sizes (heads, FFN columns and vocabulary rows under tensor parallelism, the
 * residual stream's rows under sequence parallelism; nn/internal.h).
 *
 * Sizes are computed in a first pass that only counts (base == NULL), then the same pass
 * hands out pointers into a single block, so the two can never disagree.
 */
#include "nn/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

struct carve {
    char *base;  /* NULL while counting */
    size_t used; /* bytes */
};

static float *take(struct carve *c, int64_t floats, bool wanted)
{
    if (!wanted)
        return NULL;
    size_t bytes = ((size_t)floats * sizeof(float) + 63) & ~(size_t)63;
    float *p = c->base ? (float *)(c->base + c->used) : NULL;
    c->used += bytes;
    return p;
}

static uint16_t *take_bf16(struct carve *c, int64_t elems, bool wanted)
{
    return (uint16_t *)take(c, (elems + 1) / 2, wanted);
}

/* N token rows, R of them in the residual stream here (internal.h). */
static void carve_layer(struct carve *c, const struct mb_model *m, int64_t n, int64_t r,
                        struct mb_layer_acts *la)
{
    const struct mb_model_config *cfg = &m->cfg;
    int64_t h = cfg->hidden_size, d = cfg->kv_channels;
    int64_t qh = m->loc->heads, kvh = m->loc->groups;
    bool ln = cfg->normalization == MB_NORM_LAYER, qkn = cfg->qk_layernorm;
    bool sw = cfg->sandwich_norm, kb = mb_model_saves_bf16(m), bf = m->wb != NULL;
    la->x_in = take(c, r * h, true);
    la->ln1 = take(c, r * h, !kb);
    la->ln1_b = take_bf16(c, n * h, kb);
    la->ln1_mean = take(c, r, ln);
    la->ln1_rstd = take(c, r, true);
    la->q_pre = take(c, n * qh * d, qkn);
    la->k_pre = take(c, n * kvh * d, qkn);
    la->qn_rstd = take(c, n * qh, qkn);
    la->kn_rstd = take(c, n * kvh, qkn);
    la->q = take(c, n * qh * d, !bf);
    la->k = take(c, n * kvh * d, !bf);
    la->v = take(c, n * kvh * d, !bf);
    la->attn = take(c, n * qh * d, true);
    la->q_b = take_bf16(c, n * qh * d, bf);
    la->k_b = take_bf16(c, n * kvh * d, bf);
    la->v_b = take_bf16(c, n * kvh * d, bf);
    la->lse = take(c, n * qh, true);
    la->proj = take(c, r * h, sw);
    la->pa_rstd = take(c, r, sw);
    la->x_mid = take(c, r * h, true);
    la->ln2 = take(c, r * h, !kb);
    la->ln2_b = take_bf16(c, n * h, kb);
    la->ln2_mean = take(c, r, ln);
    la->ln2_rstd = take(c, r, true);
    la->fc1 = take(c, n * m->loc->fc1_rows, !bf);
    la->fc1_b = take_bf16(c, n * m->loc->fc1_rows, bf);
    la->act = take(c, n * m->loc->ffn, !bf);
    la->fc2 = take(c, r * h, sw);
    la->pm_rstd = take(c, r, sw);
}

static void carve_pass(struct carve *c, const struct mb_model *m, int64_t rows,
                       struct mb_layer_acts *la, float **qkv, float **tmp)
{
    carve_layer(c, m, rows, rows, la);
    *qkv = take(c, rows * m->loc->qkv_rows, true);
    *tmp = take(c, rows * m->cfg.hidden_size, true);
}

void *mb_layer_acts_alloc(const struct mb_model *m, int64_t rows, struct mb_layer_acts *la,
                          float **qkv, float **tmp)
{
    MB_ASSERT(!m->wb); /* generation runs in fp32: nothing places the bf16 passing values */
    struct carve count = { NULL, 0 };
    carve_pass(&count, m, rows, la, qkv, tmp);
    void *block = m->ops->alloc(m->ex, count.used);
    if (!block) {
        mb_err_wrap("activations of a layer for %lld positions", (long long)rows);
        return NULL;
    }
    struct carve place = { block, 0 };
    carve_pass(&place, m, rows, la, qkv, tmp);
    return block;
}

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    return MB_MAX(a, MB_MAX(b, c));
}

/* What one micro-batch keeps from its forward to its backward pass: the activations of
 * local layers [FIRST, FIRST + COUNT), the head's, and the gradient the head left. */
static void carve_saved(struct carve *c, const struct mb_model *m, struct mb_acts *a,
                        int64_t first, int64_t count)
{
    const struct mb_model_config *cfg = &m->cfg;
    int64_t n = a->batch * a->seq, r = a->res_rows, h = cfg->hidden_size;
    for (int64_t l = first; l < first + count; l++)
        carve_layer(c, m, n, r, &a->layer[l]);
    a->x_final = take(c, r * h, true);
    a->hf = take(c, r * h, true);
    a->hf_mean = take(c, r, cfg->normalization == MB_NORM_LAYER);
    a->hf_rstd = take(c, r, true);
}

/* In bf16: the fp32 floats of a layer's q, k and v, or of its fc1 and act, for N rows
 * (place_passing); else 0. */
static int64_t layer_scratch(const struct mb_model *m, int64_t n)
{
    const struct mb_local_sizes *loc = m->loc;
    int64_t qkv = (loc->heads + 2 * loc->groups) * m->cfg.kv_channels;
    return m->wb ? n * MB_MAX(qkv, loc->fc1_rows + loc->ffn) : 0;
}

/* The buffers any pass may overwrite. */
static void carve_scratch(struct carve *c, const struct mb_model *m, struct mb_acts *a)
{
    const struct mb_model_config *cfg = &m->cfg;
    int64_t n = a->batch * a->seq, r = a->res_rows, h = cfg->hidden_size, d = cfg->kv_channels;
    int64_t qh = m->loc->heads, kvh = m->loc->groups;
    int64_t qkv = m->loc->qkv_rows;
    bool tp = m->tp->size > 1, sp = m->sequence_parallel && tp;
    a->qkv = take(c, n * qkv, true);
    a->tmp = take(c, r * h, true);
    a->dres = take(c, r * h, true);
    a->dtmp = take(c, r * h, true);
    a->dhf = take(c, r * h, true);
    a->dwide = take(c, n * max3(m->loc->fc1_rows, qkv, qh * d), true);
    a->dact = take(c, n * m->loc->ffn, true);
    a->dq = take(c, n * qh * d, true);
    a->dk = take(c, n * kvh * d, true);
    a->dv = take(c, n * kvh * d, true);
    a->dq_pre = take(c, n * qh * d, cfg->qk_layernorm);
    a->dk_pre = take(c, n * kvh * d, cfg->qk_layernorm);
    a->logits = take(c, MB_MAX(a->chunk * m->loc->vocab_rows, layer_scratch(m, n)), true);
    a->loss = take(c, n, true);
    a->gathered = take(c, n * MB_MAX(h, max3(qkv, m->loc->fc1_rows, qh * d)), sp);
    a->hf_full = take(c, n * h, sp);
    a->dhf_full = take(c, n * h, sp);
    a->xent_max = take(c, a->chunk, tp);
    a->xent_target = take(c, a->chunk, tp);
    a->xent_sum = (double *)take(c, 2 * a->chunk, tp);
    bool bf = m->wb != NULL, kb = mb_model_saves_bf16(m);
    int64_t widest_in = max3(h, qh * d, m->loc->ffn);
    int64_t widest_out = max3(qkv, h, m->loc->fc1_rows);
    a->xb = take_bf16(c, n * widest_in, bf);
    a->dyb = take_bf16(c, n * widest_out, bf); /* the head's goes over its logits (loss.c) */
    /* the backward's scratch of the same shapes: no pass needs both */
    a->ln_f32 = kb ? a->dtmp : NULL;
}

/* In bf16 the fp32 q, k, v, fc1 and act of layers [FIRST, FIRST + COUNT) are passing
 * values (bf16 copies are kept, or act is computed again), and so are the norm outputs
 * with mb_model_saves_bf16: point them at the scratch. The logits' buffer is free
 * outside the head. */
static void place_passing(const struct mb_model *m, struct mb_acts *a, int64_t first,
                          int64_t count)
{
    int64_t n = a->batch * a->seq, d = m->cfg.kv_channels;
    for (int64_t l = first; l < first + count && m->wb; l++) {
        struct mb_layer_acts *la = &a->layer[l];
        if (mb_model_saves_bf16(m)) {
            la->ln1 = a->ln_f32;
            la->ln2 = a->ln_f32;
        }
        la->q = a->logits;
        la->k = la->q + n * m->loc->heads * d;
        la->v = la->k + n * m->loc->groups * d;
        la->fc1 = a->logits;
        la->act = la->fc1 + n * m->loc->fc1_rows;
    }
}

static void carve_all(struct carve *c, const struct mb_model *m, struct mb_acts *a)
{
    carve_saved(c, m, a, 0, m->stage.layers);
    carve_scratch(c, m, a);
    place_passing(m, a, 0, m->stage.layers);
}

/* Rows of logits computed at once: about 16M floats, at least one row. In bf16, where
 * the logit gradient no longer needs a bf16 buffer of its own (mb_head converts it in
 * place), the logits may take what the two took, 24M floats, in equal chunks: each chunk
 * costs the output layer a pass over its fp32 weight gradient, and a short last one does
 * so for a few rows (GPT-2 at 1024 rows: 333 + 333 + 333 + 25 becomes 3 x 342). fp32
 * keeps its chunks, bitwise as before. */
static int64_t logits_chunk(const struct mb_model *m, int64_t n)
{
    int64_t floats = m->wb ? (int64_t)3 << 23 : (int64_t)1 << 24;
    int64_t rows = MB_MAX((int64_t)1, MB_MIN(floats / m->cfg.vocab_size, n));
    return m->wb ? MB_CEIL_DIV(n, MB_CEIL_DIV(n, rows)) : rows;
}

/* An mb_acts of B x T without any buffer yet. */
static struct mb_acts *acts_new(const struct mb_model *m, int64_t batch, int64_t seq)
{
    struct mb_acts *a = mb_xcalloc(1, sizeof(*a));
    a->batch = batch;
    a->seq = seq;
    a->res_rows = m->sequence_parallel ? batch * seq / m->tp->size : batch * seq;
    a->chunk = logits_chunk(m, batch * seq);
    a->layer = mb_xcalloc((size_t)MB_MAX(m->stage.layers, 1), sizeof(*a->layer));
    return a;
}

int mb_acts_reserve(struct mb_model *m, int64_t batch, int64_t seq)
{
    struct mb_acts *a = m->acts;
    if (a && a->batch == batch && a->seq == seq)
        return 0;
    mb_acts_free(m);
    a = acts_new(m, batch, seq);
    struct carve count = { NULL, 0 };
    carve_all(&count, m, a);
    a->block = m->ops->alloc(m->ex, count.used);
    if (!a->block) {
        free(a->layer);
        free(a);
        return mb_err_wrap("activations for %lld x %lld tokens (%.2f GiB)", (long long)batch,
                           (long long)seq, (double)count.used / (1 << 30));
    }
    struct carve place = { a->block, 0 };
    carve_all(&place, m, a);
    m->acts = a;
    return 0;
}

static void acts_free(const struct mb_model *m, struct mb_acts *a)
{
    if (!a)
        return;
    mb_model_batch_end(m, &a->aux);
    m->ops->free(m->ex, a->block);
    free(a->layer);
    free(a);
}

void mb_acts_free(struct mb_model *m)
{
    acts_free(m, m->acts);
    m->acts = NULL;
}

/* A pipeline slot: the saved activations of one micro-batch in one model chunk of at
 * most LAYERS layers (the layer pointers are set by mb_acts_slot_place), its own copy of
 * the head's gradient, and the scratch of SCRATCH (shared by every slot). */
static struct mb_acts *slot_new(const struct mb_model *m, const struct mb_acts *scratch,
                                int64_t layers)
{
    struct mb_acts *a = acts_new(m, scratch->batch, scratch->seq);
    struct carve count = { NULL, 0 };
    carve_saved(&count, m, a, 0, layers);
    take(&count, a->res_rows * m->cfg.hidden_size, true); /* dhead */
    a->block = m->ops->alloc(m->ex, count.used);
    if (!a->block) {
        acts_free(m, a);
        mb_err_wrap("activations of a pipeline slot (%.2f GiB)", (double)count.used / (1 << 30));
        return NULL;
    }
    a->slot_bytes = (int64_t)count.used;
    memset(a->layer, 0, (size_t)MB_MAX(m->stage.layers, 1) * sizeof(*a->layer));
    return a;
}

void mb_acts_slot_place(const struct mb_model *m, struct mb_acts *a, int chunk)
{
    const struct mb_acts *s = m->pipe_scratch;
    memset(a->layer, 0, (size_t)MB_MAX(m->stage.layers, 1) * sizeof(*a->layer));
    struct carve place = { a->block, 0 };
    carve_saved(&place, m, a, m->stage.chunk_first[chunk], m->stage.chunk_layers[chunk]);
    a->dhead = take(&place, a->res_rows * m->cfg.hidden_size, true);
    struct carve shared = { s->block, 0 }; /* the scratch's own layout (scratch_new) */
    carve_scratch(&shared, m, a);
    place_passing(m, a, m->stage.chunk_first[chunk], m->stage.chunk_layers[chunk]);
}

/* The shared scratch of the pipeline slots: an mb_acts with scratch only. */
static struct mb_acts *scratch_new(const struct mb_model *m, int64_t batch, int64_t seq)
{
    struct mb_acts *a = acts_new(m, batch, seq);
    struct carve count = { NULL, 0 };
    carve_scratch(&count, m, a);
    a->block = m->ops->alloc(m->ex, count.used);
    if (!a->block) {
        acts_free(m, a);
        mb_err_wrap("pipeline scratch for %lld x %lld tokens", (long long)batch, (long long)seq);
        return NULL;
    }
    a->slot_bytes = (int64_t)count.used;
    struct carve place = { a->block, 0 };
    carve_scratch(&place, m, a);
    return a;
}

void mb_acts_slots_free(struct mb_model *m)
{
    for (int i = 0; i < m->pipe_nslots; i++)
        acts_free(m, m->pipe_slots[i]);
    free(m->pipe_slots);
    acts_free(m, m->pipe_scratch);
    m->pipe_slots = NULL;
    m->pipe_scratch = NULL;
    m->pipe_nslots = 0;
}

int mb_acts_slots_reserve(struct mb_model *m, int nslots, int64_t batch, int64_t seq)
{
    mb_acts_slots_free(m);
    int64_t most = 0; /* layers of the largest chunk */
    for (int j = 0; j < m->stage.chunks; j++)
        most = MB_MAX(most, m->stage.chunk_layers[j]);
    if (!(m->pipe_scratch = scratch_new(m, batch, seq)))
        return -1;
    m->pipe_slots = mb_xcalloc((size_t)nslots, sizeof(*m->pipe_slots));
    for (int i = 0; i < nslots; i++, m->pipe_nslots++)
        if (!(m->pipe_slots[i] = slot_new(m, m->pipe_scratch, most))) {
            mb_acts_slots_free(m);
            return -1;
        }
    return 0;
}
