/* nn/params.c - parameter layout and counter-based initialisation. */
#include "nn/params.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"

int mb_local_sizes_check(const struct mb_model_config *cfg, int tp, const char *where)
{
    struct {
        const char *key;
        int64_t n;
    } cut[] = { { "model.num_attention_heads", cfg->num_attention_heads },
                { "model.num_query_groups", cfg->num_query_groups },
                { "model.ffn_hidden_size", cfg->ffn_hidden_size } };
    for (size_t i = 0; i < MB_ARRAY_LEN(cut); i++)
        if (cut[i].n % tp != 0)
            return mb_err_set(MB_E_INVALID, where,
                              "dist.tensor_model_parallel_size %d does not divide %s %lld "
                              "(each tensor-parallel rank holds an equal share)",
                              tp, cut[i].key, (long long)cut[i].n);
    if (cfg->vocab_size < tp)
        return mb_err_set(MB_E_INVALID, where,
                          "dist.tensor_model_parallel_size %d exceeds model.vocab_size %lld", tp,
                          (long long)cfg->vocab_size);
    return 0;
}

void mb_local_sizes_of(struct mb_local_sizes *s, const struct mb_model_config *cfg, int tp,
                       int tp_rank)
{
    memset(s, 0, sizeof(*s));
    s->tp = tp;
    s->tp_rank = tp_rank;
    s->heads = cfg->num_attention_heads / tp;
    s->groups = cfg->num_query_groups / tp;
    s->qkv_rows = (s->heads + 2 * s->groups) * cfg->kv_channels;
    s->ffn = cfg->ffn_hidden_size / tp;
    s->fc1_rows = mb_model_fc1_rows(cfg) / tp;
    /* near-equal blocks of the unchanged vocabulary: its padded size is fixed once by
     * model.make_vocab_size_divisible_by and never depends on TP (parallel.md 7.3) */
    int64_t v = cfg->vocab_size;
    s->vocab_start = v * tp_rank / tp;
    s->vocab_rows = v * (tp_rank + 1) / tp - s->vocab_start;
}

/* How a tensor is cut over the TP group (formats.md 5.4). */
enum split {
    WHOLE,   /* replicated */
    ROWS,    /* column-parallel: equal blocks of rows */
    GATE_UP, /* column-parallel fused [gate; up]: a block of each half */
    COLS,    /* row-parallel weight: equal blocks of columns */
    VOCAB,   /* vocabulary rows (mb_local_sizes) */
};

struct layout {
    struct mb_param_table *t;
    const struct mb_model_config *cfg;
};

/* Cut P's global shape along axis AX into this rank's share per HOW. */
static void shard(struct mb_param *p, const struct mb_local_sizes *loc, enum split how, int ax)
{
    int64_t n = p->global_shape[ax], r = loc->tp_rank, t = loc->tp;
    int64_t part = n / t;
    p->shard_axis = ax;
    p->tp_replicated = false;
    p->nslab = 1;
    p->slab[0] = (struct mb_param_slab){ 0, r * part, part };
    if (how == GATE_UP) {
        part = n / 2 / t;
        p->nslab = 2;
        p->slab[0] = (struct mb_param_slab){ 0, r * part, part };
        p->slab[1] = (struct mb_param_slab){ part, n / 2 + r * part, part };
        part *= 2;
    } else if (how == VOCAB) {
        part = loc->vocab_rows;
        p->slab[0] = (struct mb_param_slab){ 0, loc->vocab_start, part };
    }
    p->shape[ax] = part;
}

static void add(struct layout *l, enum mb_param_id id, const char *name, bool per_layer,
                enum mb_param_init init, int64_t rows, int64_t cols, enum split how)
{
    struct mb_param_table *t = l->t;
    struct mb_param *p = &t->items[t->count];
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->name = name;
    p->per_layer = per_layer;
    p->init = init;
    int nd = 0;
    if (per_layer)
        p->shape[nd++] = l->cfg->num_layers;
    const struct mb_stage *st = &t->stage;
    p->shape[nd++] = rows;
    if (cols > 0)
        p->shape[nd++] = cols;
    p->ndim = nd;
    for (int i = 0; i < nd; i++)
        p->global_shape[i] = p->shape[i];
    if (per_layer && st->pp > 1) { /* this stage's layers, a slab per chunk */
        p->shape[0] = st->layers;
        p->nlayer_slab = st->chunks;
        for (int j = 0; j < st->chunks; j++)
            p->layer_slab[j] = (struct mb_param_slab){ st->chunk_first[j], st->chunk_global[j],
                                                       st->chunk_layers[j] };
    }
    p->shard_axis = -1;
    p->tp_replicated = true;
    if (how != WHOLE && t->loc.tp > 1)
        shard(p, &t->loc, how, (per_layer ? 1 : 0) + (how == COLS ? 1 : 0));
    p->trainable = true;
    p->no_weight_decay = cols == 0;
    p->numel = 1;
    for (int i = 0; i < nd; i++)
        p->numel *= p->shape[i];
    p->offset = t->total;
    t->total += p->numel;
    t->index[id] = t->count++;
}

static void add_norm(struct layout *l, enum mb_param_id w_id, const char *w_name,
                     enum mb_param_id b_id, const char *b_name, bool per_layer)
{
    const struct mb_model_config *c = l->cfg;
    add(l, w_id, w_name, per_layer,
        c->layernorm_zero_centered_gamma ? MB_INIT_ZEROS : MB_INIT_ONES, c->hidden_size, 0,
        WHOLE);
    if (c->normalization == MB_NORM_LAYER && b_name)
        add(l, b_id, b_name, per_layer, MB_INIT_ZEROS, c->hidden_size, 0, WHOLE);
}

static void add_attention(struct layout *l)
{
    const struct mb_model_config *c = l->cfg;
    int64_t h = c->hidden_size, qkv = mb_model_qkv_rows(c);
    add_norm(l, MB_P_LN1_W, "decoder.layers.self_attention.linear_qkv.layer_norm_weight",
             MB_P_LN1_B, "decoder.layers.self_attention.linear_qkv.layer_norm_bias", true);
    add(l, MB_P_QKV_W, "decoder.layers.self_attention.linear_qkv.weight", true, MB_INIT_NORMAL,
        qkv, h, ROWS);
    if (c->add_qkv_bias || c->add_bias_linear)
        add(l, MB_P_QKV_B, "decoder.layers.self_attention.linear_qkv.bias", true, MB_INIT_ZEROS,
            qkv, 0, ROWS);
    if (c->qk_layernorm) {
        enum mb_param_init one = c->layernorm_zero_centered_gamma ? MB_INIT_ZEROS : MB_INIT_ONES;
        add(l, MB_P_QNORM_W, "decoder.layers.self_attention.q_layernorm.weight", true, one,
            c->kv_channels, 0, WHOLE);
        add(l, MB_P_KNORM_W, "decoder.layers.self_attention.k_layernorm.weight", true, one,
            c->kv_channels, 0, WHOLE);
    }
    add(l, MB_P_PROJ_W, "decoder.layers.self_attention.linear_proj.weight", true,
        MB_INIT_NORMAL_SCALED, h, c->num_attention_heads * c->kv_channels, COLS);
    if (c->add_bias_linear)
        add(l, MB_P_PROJ_B, "decoder.layers.self_attention.linear_proj.bias", true,
            MB_INIT_ZEROS, h, 0, WHOLE);
    if (c->sandwich_norm)
        add_norm(l, MB_P_POST_ATTN_NORM_W,
                 "decoder.layers.self_attention.linear_proj.post_layernorm.weight", 0, NULL, true);
}

static void add_mlp(struct layout *l)
{
    const struct mb_model_config *c = l->cfg;
    int64_t h = c->hidden_size, fc1 = mb_model_fc1_rows(c);
    add_norm(l, MB_P_LN2_W, "decoder.layers.mlp.linear_fc1.layer_norm_weight", MB_P_LN2_B,
             "decoder.layers.mlp.linear_fc1.layer_norm_bias", true);
    enum split fc1_split = fc1 == c->ffn_hidden_size ? ROWS : GATE_UP;
    add(l, MB_P_FC1_W, "decoder.layers.mlp.linear_fc1.weight", true, MB_INIT_NORMAL, fc1, h,
        fc1_split);
    if (c->add_bias_linear)
        add(l, MB_P_FC1_B, "decoder.layers.mlp.linear_fc1.bias", true, MB_INIT_ZEROS, fc1, 0,
            fc1_split);
    add(l, MB_P_FC2_W, "decoder.layers.mlp.linear_fc2.weight", true, MB_INIT_NORMAL_SCALED, h,
        c->ffn_hidden_size, COLS);
    if (c->add_bias_linear)
        add(l, MB_P_FC2_B, "decoder.layers.mlp.linear_fc2.bias", true, MB_INIT_ZEROS, h, 0,
            WHOLE);
    if (c->sandwich_norm)
        add_norm(l, MB_P_POST_MLP_NORM_W, "decoder.layers.mlp.linear_fc2.post_layernorm.weight", 0,
                 NULL, true);
}

void mb_param_table_build(struct mb_param_table *t, const struct mb_model_config *cfg)
{
    mb_param_table_build_tp(t, cfg, 1, 0);
}

void mb_param_table_build_tp(struct mb_param_table *t, const struct mb_model_config *cfg, int tp,
                             int tp_rank)
{
    struct mb_stage whole;
    mb_stage_whole(&whole, cfg->num_layers);
    mb_param_table_build_stage(t, cfg, tp, tp_rank, &whole);
}

void mb_param_table_build_stage(struct mb_param_table *t, const struct mb_model_config *cfg,
                                int tp, int tp_rank, const struct mb_stage *stage)
{
    memset(t, 0, sizeof(*t));
    mb_local_sizes_of(&t->loc, cfg, tp, tp_rank);
    t->stage = *stage;
    for (int i = 0; i < MB_P_COUNT; i++)
        t->index[i] = -1;
    struct layout l = { t, cfg };
    int64_t h = cfg->hidden_size;
    bool tied = cfg->share_embeddings_and_output_weights;
    if (stage->first || (stage->last && tied)) {
        add(&l, MB_P_WORD_EMB, "embedding.word_embeddings.weight", false, MB_INIT_NORMAL,
            cfg->vocab_size, h, VOCAB);
        t->items[t->index[MB_P_WORD_EMB]].pp_shared = !stage->first;
    }
    if (stage->first && cfg->position_embedding_type == MB_POS_LEARNED)
        add(&l, MB_P_POS_EMB, "embedding.position_embeddings.weight", false, MB_INIT_NORMAL,
            cfg->max_position_embeddings, h, WHOLE);
    add_attention(&l);
    add_mlp(&l);
    if (!stage->last)
        return;
    add_norm(&l, MB_P_FINAL_NORM_W, "decoder.final_layernorm.weight", MB_P_FINAL_NORM_B,
             "decoder.final_layernorm.bias", false);
    if (!tied)
        add(&l, MB_P_OUTPUT_W, "output_layer.weight", false, MB_INIT_NORMAL, cfg->vocab_size, h,
            VOCAB);
}

/* Megatron Bridge's adapter names (finetune.md 1.1, 2.2), [module][A, B, m]. */
static const char *const adapter_names[MB_PEFT_MODULES][3] = {
    { "decoder.layers.self_attention.linear_qkv.adapter.linear_in.weight",
      "decoder.layers.self_attention.linear_qkv.adapter.linear_out.weight",
      "decoder.layers.self_attention.linear_qkv.adapter.weight_magnitude" },
    { "decoder.layers.self_attention.linear_proj.adapter.linear_in.weight",
      "decoder.layers.self_attention.linear_proj.adapter.linear_out.weight",
      "decoder.layers.self_attention.linear_proj.adapter.weight_magnitude" },
    { "decoder.layers.mlp.linear_fc1.adapter.linear_in.weight",
      "decoder.layers.mlp.linear_fc1.adapter.linear_out.weight",
      "decoder.layers.mlp.linear_fc1.adapter.weight_magnitude" },
    { "decoder.layers.mlp.linear_fc2.adapter.linear_in.weight",
      "decoder.layers.mlp.linear_fc2.adapter.linear_out.weight",
      "decoder.layers.mlp.linear_fc2.adapter.weight_magnitude" },
};

static enum mb_param_init adapter_init(enum mb_peft_init i)
{
    switch (i) {
    case MB_PEFT_INIT_XAVIER: return MB_INIT_XAVIER;
    case MB_PEFT_INIT_NORMAL: return MB_INIT_LORA_NORMAL;
    case MB_PEFT_INIT_KAIMING: return MB_INIT_KAIMING;
    case MB_PEFT_INIT_ZERO: break;
    }
    return MB_INIT_ZEROS;
}

void mb_param_table_add_adapters(struct mb_param_table *t, const struct mb_model_config *cfg,
                                 const struct mb_peft_config *pc)
{
    if (pc->kind == MB_PEFT_NONE)
        return;
    for (int i = 0; i < t->count; i++)
        t->items[i].trainable = false;
    t->frozen = t->total;
    struct layout l = { t, cfg };
    int64_t h = cfg->hidden_size, r = pc->dim;
    bool gated = mb_model_fc1_rows(cfg) != cfg->ffn_hidden_size;
    /* in, out, and how A and B (and m) are cut: with the base's columns or rows */
    const struct {
        int64_t in, out;
        enum split a, b;
    } mod[MB_PEFT_MODULES] = {
        { h, mb_model_qkv_rows(cfg), WHOLE, ROWS },
        { cfg->num_attention_heads * cfg->kv_channels, h, COLS, WHOLE },
        { h, mb_model_fc1_rows(cfg), WHOLE, gated ? GATE_UP : ROWS },
        { cfg->ffn_hidden_size, h, COLS, WHOLE },
    };
    for (int m = 0; m < MB_PEFT_MODULES; m++) {
        if (!pc->target[m])
            continue;
        const char *const *name = adapter_names[m];
        add(&l, mb_param_adapter_id(m, MB_ADAPTER_A), name[0], true, adapter_init(pc->a_init), r,
            mod[m].in, mod[m].a);
        add(&l, mb_param_adapter_id(m, MB_ADAPTER_B), name[1], true, adapter_init(pc->b_init),
            mod[m].out, r, mod[m].b);
        if (pc->kind == MB_PEFT_DORA) /* the row norms of W, set once W is loaded */
            add(&l, mb_param_adapter_id(m, MB_ADAPTER_M), name[2], true, MB_INIT_ONES,
                mod[m].out, 0, mod[m].b);
    }
}

const struct mb_param *mb_param_get(const struct mb_param_table *t, enum mb_param_id id)
{
    if ((int)id < 0 || id >= MB_P_COUNT)
        return NULL;
    return t->index[id] < 0 ? NULL : &t->items[t->index[id]];
}

int64_t mb_param_offset(const struct mb_param_table *t, enum mb_param_id id, int64_t layer)
{
    const struct mb_param *p = mb_param_get(t, id);
    if (!p)
        return -1;
    if (!p->per_layer)
        return p->offset;
    return p->offset + layer * (p->numel / p->shape[0]);
}

/* Standard normal for element I of the tensor keyed by KEY (Box-Muller on two draws). */
static double normal_at(uint64_t key, uint64_t i)
{
    uint64_t a = mb_splitmix64(key ^ mb_splitmix64(2 * i));
    uint64_t b = mb_splitmix64(key ^ mb_splitmix64(2 * i + 1));
    double u1 = ((double)(a >> 11) + 0.5) * 0x1.0p-53; /* (0, 1) */
    double u2 = (double)(b >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Uniform in [0, 1) for element I of the tensor keyed by KEY. */
static double uniform_at(uint64_t key, uint64_t i)
{
    return (double)(mb_splitmix64(key ^ mb_splitmix64(2 * i)) >> 11) * 0x1.0p-53;
}

void mb_param_init_all(const struct mb_param_table *t, const struct mb_model_config *cfg,
                       uint64_t seed, float *w)
{
    for (int i = 0; i < t->count; i++) {
        const struct mb_param *p = &t->items[i];
        float *dst = w + p->offset;
        double std = cfg->init_method_std;
        if (p->init == MB_INIT_NORMAL_SCALED)
            std /= sqrt(2.0 * (double)cfg->num_layers);
        /* adapters: fans of the last two axes of the logical [r, in] or [out, r] */
        double fan_in = (double)p->global_shape[p->ndim - 1];
        double fan_out = p->ndim > 1 ? (double)p->global_shape[p->ndim - 2] : 1.0;
        if (p->init == MB_INIT_XAVIER)
            std = sqrt(2.0 / (fan_in + fan_out));
        else if (p->init == MB_INIT_LORA_NORMAL)
            std = 0.2;
        uint64_t key = mb_splitmix64(seed) ^ mb_hash_bytes(p->name, strlen(p->name));
        for (int64_t e = 0; e < p->numel; e++) {
            uint64_t at = (uint64_t)mb_param_global_index(p, e);
            switch (p->init) {
            case MB_INIT_NORMAL:
            case MB_INIT_NORMAL_SCALED:
            case MB_INIT_XAVIER:
            case MB_INIT_LORA_NORMAL: dst[e] = (float)(std * normal_at(key, at)); break;
            case MB_INIT_KAIMING:
                dst[e] = (float)((2.0 * uniform_at(key, at) - 1.0) / sqrt(fan_in));
                break;
            case MB_INIT_ONES: dst[e] = 1.0f; break;
            case MB_INIT_ZEROS: dst[e] = 0.0f; break;
            }
        }
    }
}

/* The global index on an axis of local index A, through the slabs (none: A itself). */
static int64_t through_slabs(const struct mb_param_slab *slab, int nslab, int64_t a)
{
    for (int s = 0; s < nslab; s++)
        if (a >= slab[s].local_start && a < slab[s].local_start + slab[s].count)
            return slab[s].global_start + (a - slab[s].local_start);
    return a;
}

int64_t mb_param_global_index(const struct mb_param *p, int64_t e)
{
    if (p->shard_axis < 0 && p->nlayer_slab == 0)
        return e;
    int64_t g = 0, stride = 1;
    for (int d = p->ndim - 1; d >= 0; d--) { /* local coordinates, last axis fastest */
        int64_t a = e % p->shape[d];
        e /= p->shape[d];
        if (d == p->shard_axis)
            a = through_slabs(p->slab, p->nslab, a);
        if (d == 0 && p->per_layer)
            a = through_slabs(p->layer_slab, p->nlayer_slab, a);
        g += a * stride;
        stride *= p->global_shape[d];
    }
    return g;
}

int64_t mb_param_matmul_count(const struct mb_param_table *t, const struct mb_model_config *cfg)
{
    return mb_param_matmul_count_of(t, cfg, true) + mb_param_matmul_count_of(t, cfg, false);
}

int64_t mb_param_matmul_count_of(const struct mb_param_table *t,
                                 const struct mb_model_config *cfg, bool trainable)
{
    int64_t n = 0;
    for (int i = 0; i < t->count; i++) {
        const struct mb_param *p = &t->items[i];
        if (p->trainable != trainable)
            continue;
        bool matrix = p->ndim - (p->per_layer ? 1 : 0) == 2;
        int64_t whole = 1;
        for (int d = 0; d < p->ndim; d++)
            whole *= p->global_shape[d];
        if (matrix && p->id != MB_P_WORD_EMB && p->id != MB_P_POS_EMB)
            n += whole;
    }
    const struct mb_param *emb = mb_param_get(t, MB_P_WORD_EMB);
    if (cfg->share_embeddings_and_output_weights && emb && emb->trainable == trainable)
        n += cfg->vocab_size * cfg->hidden_size;
    return n;
}
