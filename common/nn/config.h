/* nn/config.h - one model configuration for every supported family.
 *
 * The fields are those of Megatron's TransformerConfig where it has one, so a single
 * struct describes Llama 2/3/3.x, Mistral, Qwen2/2.5, Qwen3, Gemma 1/2/3 and GPT-2. The
 * JSON spelling (mb_model_config_from_json) uses the same names as the `model.*` keys of
 * a recipe, and is what checkpoints store in their `model_config` attribute.
 */
#ifndef MB_NN_CONFIG_H
#define MB_NN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/json.h"
#include "kern/act_kind.h"

enum mb_norm_kind { MB_NORM_RMS, MB_NORM_LAYER };
enum mb_pos_kind { MB_POS_ROPE, MB_POS_LEARNED };
enum mb_rope_scaling { MB_ROPE_SCALING_NONE, MB_ROPE_SCALING_LLAMA3, MB_ROPE_SCALING_LINEAR };

struct mb_model_config {
    char family[16];              /* llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2 */
    int64_t hidden_size;
    int64_t num_layers;
    int64_t num_attention_heads;
    int64_t num_query_groups;     /* KV heads */
    int64_t kv_channels;          /* head dim */
    int64_t ffn_hidden_size;
    int64_t vocab_size;           /* rows of the embedding and output layer */
    /* Ids >= real_vocab_size are padding rows (vocab_size rounded up from the tokenizer's
     * vocabulary by make_vocab_size_divisible_by): their logits are -inf, so the softmax
     * never gives them mass. 0: no padding (every row is a token, as in HF models). */
    int64_t real_vocab_size;
    int64_t max_position_embeddings;
    enum mb_norm_kind normalization;
    double layernorm_epsilon;
    bool layernorm_zero_centered_gamma; /* Gemma: (1 + w) */
    enum mb_act_kind activation;
    bool add_qkv_bias;
    bool add_bias_linear;         /* biases on every linear layer (GPT-2) */
    bool qk_layernorm;
    enum mb_pos_kind position_embedding_type;
    double rotary_base;
    double rotary_base_local;     /* Gemma 3 sliding-window layers; 0 = rotary_base */
    double rotary_percent;
    enum mb_rope_scaling rope_scaling_type;
    double rope_scaling_factor;
    double rope_scaling_low_freq_factor;
    double rope_scaling_high_freq_factor;
    int64_t rope_scaling_original_max_position_embeddings;
    bool share_embeddings_and_output_weights;
    bool scale_embeddings;        /* Gemma: embeddings times sqrt(hidden_size) */
    bool sandwich_norm;           /* Gemma 2/3: norms after attention and MLP too */
    double attn_logit_softcapping;
    double final_logit_softcapping;
    double query_pre_attn_scalar; /* 0: softmax scale 1/sqrt(kv_channels) */
    int64_t sliding_window;       /* 0: none */
    int64_t sliding_window_pattern; /* 0: every layer slides; else layer i slides iff (i+1) % p */
    double init_method_std;
};

/* Fill C from a JSON object of model.* keys (without the "model." prefix). Missing
 * keys take the Llama defaults; num_query_groups 0 means MHA and kv_channels 0 means
 * hidden/heads. Validates the result. WHERE names the source in errors. */
MB_MUST_CHECK int mb_model_config_from_json(struct mb_model_config *c, const mb_json *obj,
                                            const char *where);
/* The place to name for model.FIELD (e.g. the recipe line or override that set it), or
 * NULL for the caller's fixed WHERE. */
typedef const char *(*mb_model_config_where_fn)(const void *ctx, const char *field);
/* mb_model_config_from_json, each error about a field reported at WHERE_OF(CTX, field). */
MB_MUST_CHECK int mb_model_config_from_json_at(struct mb_model_config *c, const mb_json *obj,
                                               const char *where,
                                               mb_model_config_where_fn where_of,
                                               const void *ctx);
/* Check the configuration can make a finite model: every size positive and below 2^31,
 * heads divisible by groups, RoPE base positive and rotary_percent in (0, 1] when RoPE is
 * used, epsilon and init std positive, soft-caps and scalars not negative, all finite.
 * -1 with mb_err naming the key. */
MB_MUST_CHECK int mb_model_config_validate(const struct mb_model_config *c, const char *where);
/* The JSON object text of C (malloc'd), readable by mb_model_config_from_json. */
char *mb_model_config_to_json(const struct mb_model_config *c);

/* Derived sizes. */
int64_t mb_model_real_vocab(const struct mb_model_config *c); /* real_vocab_size or vocab_size */
int64_t mb_model_qkv_rows(const struct mb_model_config *c);   /* (nH + 2 nKV) * d */
int64_t mb_model_fc1_rows(const struct mb_model_config *c);   /* 2I gated, I plain */
bool mb_model_layer_slides(const struct mb_model_config *c, int64_t layer);
float mb_model_softmax_scale(const struct mb_model_config *c);

#endif /* MB_NN_CONFIG_H */
