/* nn/params.c - parameter layout and counter-based initialisation. */
#include "nn/params.h"

#include <math.h>
#include <string.h>

#include "core/hash.h"

struct layout {
    struct mb_param_table *t;
    const struct mb_model_config *cfg;
};

static void add(struct layout *l, enum mb_param_id id, const char *name, bool per_layer,
                enum mb_param_init init, int64_t rows, int64_t cols)
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
    p->shape[nd++] = rows;
    if (cols > 0)
        p->shape[nd++] = cols;
    p->ndim = nd;
    for (int i = 0; i < nd; i++)
        p->global_shape[i] = p->shape[i];
    p->shard_axis = -1;
    p->tp_replicated = true;
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
        c->layernorm_zero_centered_gamma ? MB_INIT_ZEROS : MB_INIT_ONES, c->hidden_size, 0);
    if (c->normalization == MB_NORM_LAYER && b_name)
        add(l, b_id, b_name, per_layer, MB_INIT_ZEROS, c->hidden_size, 0);
}

static void add_attention(struct layout *l)
{
    const struct mb_model_config *c = l->cfg;
    int64_t h = c->hidden_size, qkv = mb_model_qkv_rows(c);
    add_norm(l, MB_P_LN1_W, "decoder.layers.self_attention.linear_qkv.layer_norm_weight",
             MB_P_LN1_B, "decoder.layers.self_attention.linear_qkv.layer_norm_bias", true);
    add(l, MB_P_QKV_W, "decoder.layers.self_attention.linear_qkv.weight", true, MB_INIT_NORMAL,
        qkv, h);
    if (c->add_qkv_bias || c->add_bias_linear)
        add(l, MB_P_QKV_B, "decoder.layers.self_attention.linear_qkv.bias", true, MB_INIT_ZEROS,
            qkv, 0);
    if (c->qk_layernorm) {
        enum mb_param_init one = c->layernorm_zero_centered_gamma ? MB_INIT_ZEROS : MB_INIT_ONES;
        add(l, MB_P_QNORM_W, "decoder.layers.self_attention.q_layernorm.weight", true, one,
            c->kv_channels, 0);
        add(l, MB_P_KNORM_W, "decoder.layers.self_attention.k_layernorm.weight", true, one,
            c->kv_channels, 0);
    }
    add(l, MB_P_PROJ_W, "decoder.layers.self_attention.linear_proj.weight", true,
        MB_INIT_NORMAL_SCALED, h, c->num_attention_heads * c->kv_channels);
    if (c->add_bias_linear)
        add(l, MB_P_PROJ_B, "decoder.layers.self_attention.linear_proj.bias", true,
            MB_INIT_ZEROS, h, 0);
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
    add(l, MB_P_FC1_W, "decoder.layers.mlp.linear_fc1.weight", true, MB_INIT_NORMAL, fc1, h);
    if (c->add_bias_linear)
        add(l, MB_P_FC1_B, "decoder.layers.mlp.linear_fc1.bias", true, MB_INIT_ZEROS, fc1, 0);
    add(l, MB_P_FC2_W, "decoder.layers.mlp.linear_fc2.weight", true, MB_INIT_NORMAL_SCALED, h,
        c->ffn_hidden_size);
    if (c->add_bias_linear)
        add(l, MB_P_FC2_B, "decoder.layers.mlp.linear_fc2.bias", true, MB_INIT_ZEROS, h, 0);
    if (c->sandwich_norm)
        add_norm(l, MB_P_POST_MLP_NORM_W, "decoder.layers.mlp.linear_fc2.post_layernorm.weight", 0,
                 NULL, true);
}

void mb_param_table_build(struct mb_param_table *t, const struct mb_model_config *cfg)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < MB_P_COUNT; i++)
        t->index[i] = -1;
    struct layout l = { t, cfg };
    int64_t h = cfg->hidden_size;
    add(&l, MB_P_WORD_EMB, "embedding.word_embeddings.weight", false, MB_INIT_NORMAL,
        cfg->vocab_size, h);
    if (cfg->position_embedding_type == MB_POS_LEARNED)
        add(&l, MB_P_POS_EMB, "embedding.position_embeddings.weight", false, MB_INIT_NORMAL,
            cfg->max_position_embeddings, h);
    add_attention(&l);
    add_mlp(&l);
    add_norm(&l, MB_P_FINAL_NORM_W, "decoder.final_layernorm.weight", MB_P_FINAL_NORM_B,
             "decoder.final_layernorm.bias", false);
    if (!cfg->share_embeddings_and_output_weights)
        add(&l, MB_P_OUTPUT_W, "output_layer.weight", false, MB_INIT_NORMAL, cfg->vocab_size, h);
}

const struct mb_param *mb_param_get(const struct mb_param_table *t, enum mb_param_id id)
{
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

void mb_param_init_all(const struct mb_param_table *t, const struct mb_model_config *cfg,
                       uint64_t seed, float *w)
{
    for (int i = 0; i < t->count; i++) {
        const struct mb_param *p = &t->items[i];
        float *dst = w + p->offset;
        double std = cfg->init_method_std;
        if (p->init == MB_INIT_NORMAL_SCALED)
            std /= sqrt(2.0 * (double)cfg->num_layers);
        uint64_t key = mb_splitmix64(seed) ^ mb_hash_bytes(p->name, strlen(p->name));
        for (int64_t e = 0; e < p->numel; e++) {
            switch (p->init) {
            case MB_INIT_NORMAL:
            case MB_INIT_NORMAL_SCALED: dst[e] = (float)(std * normal_at(key, (uint64_t)e)); break;
            case MB_INIT_ONES: dst[e] = 1.0f; break;
            case MB_INIT_ZEROS: dst[e] = 0.0f; break;
            }
        }
    }
}

int64_t mb_param_matmul_count(const struct mb_param_table *t, const struct mb_model_config *cfg)
{
    int64_t n = 0;
    for (int i = 0; i < t->count; i++) {
        const struct mb_param *p = &t->items[i];
        bool matrix = p->ndim - (p->per_layer ? 1 : 0) == 2;
        if (matrix && p->id != MB_P_WORD_EMB && p->id != MB_P_POS_EMB)
            n += p->numel;
    }
    if (cfg->share_embeddings_and_output_weights)
        n += cfg->vocab_size * cfg->hidden_size;
    return n;
}
