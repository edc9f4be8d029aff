/* bridge/arch.c - the architecture tables and the generic moves between HF tensors and
 * Megatron layer slices. */
#include <stdio.h>
#include <string.h>

#include "bridge/bridge.h"
#include "core/defs.h"

#define L_ "model.layers.%d."
#define A_ "decoder.layers.self_attention."
#define M_ "decoder.layers.mlp."

/* Llama, Mistral, Qwen2, Qwen3, Gemma: the Llama names (rules whose Megatron tensor the
 * config does not have, e.g. biases or q/k norms, are skipped). State-dict order. */
static const struct mb_bridge_rule llama_rules[] = {
    { "model.embed_tokens.weight", "embedding.word_embeddings.weight", MB_BR_COPY },
    { L_ "self_attn.q_proj.weight", A_ "linear_qkv.weight", MB_BR_Q },
    { L_ "self_attn.q_proj.bias", A_ "linear_qkv.bias", MB_BR_Q },
    { L_ "self_attn.k_proj.weight", A_ "linear_qkv.weight", MB_BR_K },
    { L_ "self_attn.k_proj.bias", A_ "linear_qkv.bias", MB_BR_K },
    { L_ "self_attn.v_proj.weight", A_ "linear_qkv.weight", MB_BR_V },
    { L_ "self_attn.v_proj.bias", A_ "linear_qkv.bias", MB_BR_V },
    { L_ "self_attn.o_proj.weight", A_ "linear_proj.weight", MB_BR_COPY },
    { L_ "self_attn.o_proj.bias", A_ "linear_proj.bias", MB_BR_COPY },
    { L_ "self_attn.q_norm.weight", A_ "q_layernorm.weight", MB_BR_COPY },
    { L_ "self_attn.k_norm.weight", A_ "k_layernorm.weight", MB_BR_COPY },
    { L_ "mlp.gate_proj.weight", M_ "linear_fc1.weight", MB_BR_GATE },
    { L_ "mlp.gate_proj.bias", M_ "linear_fc1.bias", MB_BR_GATE },
    { L_ "mlp.up_proj.weight", M_ "linear_fc1.weight", MB_BR_UP },
    { L_ "mlp.up_proj.bias", M_ "linear_fc1.bias", MB_BR_UP },
    { L_ "mlp.down_proj.weight", M_ "linear_fc2.weight", MB_BR_COPY },
    { L_ "mlp.down_proj.bias", M_ "linear_fc2.bias", MB_BR_COPY },
    { L_ "input_layernorm.weight", A_ "linear_qkv.layer_norm_weight", MB_BR_COPY },
    { L_ "post_attention_layernorm.weight", M_ "linear_fc1.layer_norm_weight", MB_BR_COPY },
    { "model.norm.weight", "decoder.final_layernorm.weight", MB_BR_COPY },
    { "lm_head.weight", "output_layer.weight", MB_BR_COPY },
};

/* Gemma 2 and 3: four norms per layer; post_attention_layernorm normalises the
 * attention output (formats.md 4.4). */
static const struct mb_bridge_rule gemma2_rules[] = {
    { "model.embed_tokens.weight", "embedding.word_embeddings.weight", MB_BR_COPY },
    { L_ "self_attn.q_proj.weight", A_ "linear_qkv.weight", MB_BR_Q },
    { L_ "self_attn.k_proj.weight", A_ "linear_qkv.weight", MB_BR_K },
    { L_ "self_attn.v_proj.weight", A_ "linear_qkv.weight", MB_BR_V },
    { L_ "self_attn.o_proj.weight", A_ "linear_proj.weight", MB_BR_COPY },
    { L_ "self_attn.q_norm.weight", A_ "q_layernorm.weight", MB_BR_COPY },
    { L_ "self_attn.k_norm.weight", A_ "k_layernorm.weight", MB_BR_COPY },
    { L_ "mlp.gate_proj.weight", M_ "linear_fc1.weight", MB_BR_GATE },
    { L_ "mlp.up_proj.weight", M_ "linear_fc1.weight", MB_BR_UP },
    { L_ "mlp.down_proj.weight", M_ "linear_fc2.weight", MB_BR_COPY },
    { L_ "input_layernorm.weight", A_ "linear_qkv.layer_norm_weight", MB_BR_COPY },
    { L_ "post_attention_layernorm.weight", A_ "linear_proj.post_layernorm.weight", MB_BR_COPY },
    { L_ "pre_feedforward_layernorm.weight", M_ "linear_fc1.layer_norm_weight", MB_BR_COPY },
    { L_ "post_feedforward_layernorm.weight", M_ "linear_fc2.post_layernorm.weight",
      MB_BR_COPY },
    { "model.norm.weight", "decoder.final_layernorm.weight", MB_BR_COPY },
    { "lm_head.weight", "output_layer.weight", MB_BR_COPY },
};

#define H_ "transformer.h.%d."

/* GPT-2: Conv1D weights are [in, out]; c_attn holds [q | k | v] columns. */
static const struct mb_bridge_rule gpt2_rules[] = {
    { "transformer.wte.weight", "embedding.word_embeddings.weight", MB_BR_COPY },
    { "transformer.wpe.weight", "embedding.position_embeddings.weight", MB_BR_COPY },
    { H_ "ln_1.weight", A_ "linear_qkv.layer_norm_weight", MB_BR_COPY },
    { H_ "ln_1.bias", A_ "linear_qkv.layer_norm_bias", MB_BR_COPY },
    { H_ "attn.c_attn.weight", A_ "linear_qkv.weight", MB_BR_QKV_T },
    { H_ "attn.c_attn.bias", A_ "linear_qkv.bias", MB_BR_QKV },
    { H_ "attn.c_proj.weight", A_ "linear_proj.weight", MB_BR_T },
    { H_ "attn.c_proj.bias", A_ "linear_proj.bias", MB_BR_COPY },
    { H_ "ln_2.weight", M_ "linear_fc1.layer_norm_weight", MB_BR_COPY },
    { H_ "ln_2.bias", M_ "linear_fc1.layer_norm_bias", MB_BR_COPY },
    { H_ "mlp.c_fc.weight", M_ "linear_fc1.weight", MB_BR_T },
    { H_ "mlp.c_fc.bias", M_ "linear_fc1.bias", MB_BR_COPY },
    { H_ "mlp.c_proj.weight", M_ "linear_fc2.weight", MB_BR_T },
    { H_ "mlp.c_proj.bias", M_ "linear_fc2.bias", MB_BR_COPY },
    { "transformer.ln_f.weight", "decoder.final_layernorm.weight", MB_BR_COPY },
    { "transformer.ln_f.bias", "decoder.final_layernorm.bias", MB_BR_COPY },
    { "lm_head.weight", "output_layer.weight", MB_BR_COPY },
};

#define RULES(r) r, (int)MB_ARRAY_LEN(r)

static const struct mb_bridge_arch archs[] = {
    { "LlamaForCausalLM", "llama", "llama", RULES(llama_rules), NULL },
    { "MistralForCausalLM", "mistral", "mistral", RULES(llama_rules), NULL },
    { "Qwen2ForCausalLM", "qwen2", "qwen2", RULES(llama_rules), NULL },
    { "Qwen3ForCausalLM", "qwen3", "qwen3", RULES(llama_rules), NULL },
    { "GemmaForCausalLM", "gemma", "gemma", RULES(llama_rules), NULL },
    { "Gemma2ForCausalLM", "gemma2", "gemma2", RULES(gemma2_rules), NULL },
    { "Gemma3ForCausalLM", "gemma3_text", "gemma3", RULES(gemma2_rules), NULL },
    { "GPT2LMHeadModel", "gpt2", "gpt2", RULES(gpt2_rules), "transformer." },
};

const struct mb_bridge_arch *mb_bridge_arch_find(const char *architecture)
{
    for (size_t i = 0; architecture && i < MB_ARRAY_LEN(archs); i++)
        if (strcmp(archs[i].hf_name, architecture) == 0)
            return &archs[i];
    return NULL;
}

const struct mb_bridge_arch *mb_bridge_arch_for_family(const char *family)
{
    for (size_t i = 0; family && i < MB_ARRAY_LEN(archs); i++)
        if (strcmp(archs[i].family, family) == 0)
            return &archs[i];
    return NULL;
}

const char *mb_bridge_arch_list(void)
{
    return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
           "GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel";
}

void mb_bridge_hf_name(const struct mb_bridge_rule *rule, int64_t layer, char *buf, size_t cap)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (strstr(rule->hf, "%d"))
        snprintf(buf, cap, rule->hf, (int)layer);
    else
        snprintf(buf, cap, "%s", rule->hf);
#pragma GCC diagnostic pop
}

/* Rows and columns of P's slice (columns 1 for a vector). */
static void slice_dims(const struct mb_param *p, int64_t *rows, int64_t *cols)
{
    int d0 = p->per_layer ? 1 : 0;
    *rows = p->shape[d0];
    *cols = p->ndim - d0 > 1 ? p->shape[d0 + 1] : 1;
}

size_t mb_bridge_slice_bytes(const struct mb_param *p, size_t es)
{
    int64_t rows, cols;

    slice_dims(p, &rows, &cols);
    return (size_t)(rows * cols) * es;
}

/* Rows of the HF tensor of a Q, K, V, GATE or UP piece. */
static int64_t piece_rows(enum mb_bridge_op op, const struct mb_model_config *c)
{
    switch (op) {
    case MB_BR_Q: return c->num_attention_heads * c->kv_channels;
    case MB_BR_K:
    case MB_BR_V: return c->num_query_groups * c->kv_channels;
    default: return c->ffn_hidden_size; /* GATE, UP */
    }
}

int mb_bridge_hf_shape(const struct mb_bridge_rule *rule, const struct mb_param *p,
                       const struct mb_model_config *c, int64_t *shape)
{
    int64_t rows, cols;
    int vec = p->ndim - (p->per_layer ? 1 : 0) == 1;

    slice_dims(p, &rows, &cols);
    switch (rule->op) {
    case MB_BR_T:
    case MB_BR_QKV_T:
        shape[0] = cols;
        shape[1] = rows;
        return 2;
    case MB_BR_COPY:
    case MB_BR_QKV:
        shape[0] = rows;
        shape[1] = cols;
        return vec ? 1 : 2;
    default:
        shape[0] = piece_rows(rule->op, c);
        shape[1] = cols;
        return vec ? 1 : 2;
    }
}

/* Copy NROWS rows of ROWB bytes between HF rows at HF0 and slice rows at MB0. */
static void move_rows(char *slice, char *hf, int64_t mb0, int64_t hf0, int64_t nrows,
                      size_t rowb, int to_mb)
{
    char *s = slice + (size_t)mb0 * rowb, *h = hf + (size_t)hf0 * rowb;

    if (to_mb)
        memcpy(s, h, (size_t)nrows * rowb);
    else
        memcpy(h, s, (size_t)nrows * rowb);
}

/* Place the heads of one of q, k, v (OP) between HF (rows head by head, starting at HF
 * row BASE) and the group-fused slice (formats.md 5.2). */
static void move_heads(enum mb_bridge_op op, const struct mb_model_config *c, char *slice,
                       char *hf, int64_t base, size_t rowb, int to_mb)
{
    int64_t d = c->kv_channels, g = c->num_attention_heads / c->num_query_groups;
    int64_t n = op == MB_BR_Q ? c->num_attention_heads : c->num_query_groups;

    for (int64_t h = 0; h < n; h++) {
        int64_t grp = op == MB_BR_Q ? h / g : h;
        int64_t slot = op == MB_BR_Q ? h % g : op == MB_BR_K ? g : g + 1;
        move_rows(slice, hf, (grp * (g + 2) + slot) * d, base + h * d, d, rowb, to_mb);
    }
}

/* [q | k | v] rows of CAT to or from the fused slice. */
static void move_qkv(const struct mb_model_config *c, char *slice, char *cat, size_t rowb,
                     int to_mb)
{
    int64_t q = c->num_attention_heads * c->kv_channels;
    int64_t kv = c->num_query_groups * c->kv_channels;

    move_heads(MB_BR_Q, c, slice, cat, 0, rowb, to_mb);
    move_heads(MB_BR_K, c, slice, cat, q, rowb, to_mb);
    move_heads(MB_BR_V, c, slice, cat, q + kv, rowb, to_mb);
}

/* DST[cols, rows] = SRC[rows, cols]^T, elements of ES bytes. */
static void transpose(char *dst, const char *src, int64_t rows, int64_t cols, size_t es)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++)
            memcpy(dst + (size_t)(k * rows + r) * es, src + (size_t)(r * cols + k) * es, es);
}

void mb_bridge_move(const struct mb_bridge_rule *rule, const struct mb_param *p,
                    const struct mb_model_config *c, size_t es, int to_mb, void *slice,
                    void *hf, void *tmp)
{
    int64_t rows, cols;

    slice_dims(p, &rows, &cols);
    size_t rowb = (size_t)cols * es;
    switch (rule->op) {
    case MB_BR_COPY:
        move_rows(slice, hf, 0, 0, rows, rowb, to_mb);
        break;
    case MB_BR_T: /* HF [cols, rows] */
        if (to_mb)
            transpose(slice, hf, cols, rows, es);
        else
            transpose(hf, slice, rows, cols, es);
        break;
    case MB_BR_Q:
    case MB_BR_K:
    case MB_BR_V:
        move_heads(rule->op, c, slice, hf, 0, rowb, to_mb);
        break;
    case MB_BR_GATE:
    case MB_BR_UP:
        move_rows(slice, hf, rule->op == MB_BR_UP ? c->ffn_hidden_size : 0, 0,
                  c->ffn_hidden_size, rowb, to_mb);
        break;
    case MB_BR_QKV:
        move_qkv(c, slice, hf, rowb, to_mb);
        break;
    case MB_BR_QKV_T: /* HF [cols, rows]; TMP holds [q | k | v] as rows */
        if (to_mb) {
            transpose(tmp, hf, cols, rows, es);
            move_qkv(c, slice, tmp, rowb, 1);
        } else {
            move_qkv(c, slice, tmp, rowb, 0);
            transpose(hf, tmp, rows, cols, es);
        }
        break;
    }
}

const struct mb_st_tensor *mb_bridge_find_tensor(const mb_st_dir *st,
                                                 const struct mb_bridge_arch *arch,
                                                 const char *name)
{
    const struct mb_st_tensor *t = mb_st_dir_find(st, name);
    const char *pre = arch->strip_prefix;

    if (!t && pre && strncmp(name, pre, strlen(pre)) == 0)
        t = mb_st_dir_find(st, name + strlen(pre));
    return t;
}
