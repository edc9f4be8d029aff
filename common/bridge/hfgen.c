/* bridge/hfgen.c - a config.json for an mb model config (checkpoints that came from
 * mb-pretrain carry no HF config). The text is read back with mb_bridge_config_from_hf
 * and must give the same model, which is how a config the architecture cannot
 * express is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

static void num(struct mb_buf *b, const char *key, double v)
{
    mb_buf_addf(b, ",\n  \"%s\": ", key);
    mb_buf_add_real(b, v);
}

static void i64(struct mb_buf *b, const char *key, int64_t v)
{
    mb_buf_addf(b, ",\n  \"%s\": %lld", key, (long long)v);
}

static void boolean(struct mb_buf *b, const char *key, bool v)
{
    mb_buf_addf(b, ",\n  \"%s\": %s", key, v ? "true" : "false");
}

static void rope_obj(struct mb_buf *b, const struct mb_model_config *c, double theta, int scaled)
{
    static const char *const types[] = { "default", "llama3", "linear" };
    enum mb_rope_scaling t = scaled ? c->rope_scaling_type : MB_ROPE_SCALING_NONE;

    mb_buf_addf(b, "{\"rope_type\": \"%s\", \"rope_theta\": ", types[t]);
    mb_buf_add_real(b, theta);
    if (t != MB_ROPE_SCALING_NONE) {
        mb_buf_adds(b, ", \"factor\": ");
        mb_buf_add_real(b, c->rope_scaling_factor);
    }
    if (t == MB_ROPE_SCALING_LLAMA3) {
        mb_buf_adds(b, ", \"low_freq_factor\": ");
        mb_buf_add_real(b, c->rope_scaling_low_freq_factor);
        mb_buf_adds(b, ", \"high_freq_factor\": ");
        mb_buf_add_real(b, c->rope_scaling_high_freq_factor);
        mb_buf_addf(b, ", \"original_max_position_embeddings\": %lld",
                    (long long)c->rope_scaling_original_max_position_embeddings);
    }
    if (c->rotary_percent != 1.0) {
        mb_buf_adds(b, ", \"partial_rotary_factor\": ");
        mb_buf_add_real(b, c->rotary_percent);
    }
    mb_buf_adds(b, "}");
}

static void gemma_extras(struct mb_buf *b, const struct mb_model_config *c)
{
    double qpas = c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar
                                               : (double)c->kv_channels;

    mb_buf_adds(b, ",\n  \"hidden_activation\": \"gelu_pytorch_tanh\"");
    if (qpas == floor(qpas))
        i64(b, "query_pre_attn_scalar", (int64_t)qpas);
    else
        num(b, "query_pre_attn_scalar", qpas);
    mb_buf_adds(b, ",\n  \"attn_logit_softcapping\": ");
    if (c->attn_logit_softcapping)
        mb_buf_add_real(b, c->attn_logit_softcapping);
    else
        mb_buf_adds(b, "null");
    mb_buf_adds(b, ",\n  \"final_logit_softcapping\": ");
    if (c->final_logit_softcapping)
        mb_buf_add_real(b, c->final_logit_softcapping);
    else
        mb_buf_adds(b, "null");
    mb_buf_adds(b, ",\n  \"sliding_window\": ");
    mb_buf_addf(b, c->sliding_window ? "%lld" : "null", (long long)c->sliding_window);
    mb_buf_adds(b, ",\n  \"layer_types\": [");
    for (int64_t i = 0; i < c->num_layers; i++)
        mb_buf_addf(b, "%s\"%s\"", i ? ", " : "",
                    mb_model_layer_slides(c, i) ? "sliding_attention" : "full_attention");
    mb_buf_adds(b, "]");
}

static void llama_like(struct mb_buf *b, const struct mb_model_config *c, const char *fam)
{
    i64(b, "hidden_size", c->hidden_size);
    i64(b, "intermediate_size", c->ffn_hidden_size);
    i64(b, "num_hidden_layers", c->num_layers);
    i64(b, "num_attention_heads", c->num_attention_heads);
    i64(b, "num_key_value_heads", c->num_query_groups);
    i64(b, "head_dim", c->kv_channels);
    i64(b, "max_position_embeddings", c->max_position_embeddings);
    num(b, "rms_norm_eps", c->layernorm_epsilon);
    if (strncmp(fam, "gemma", 5) != 0)
        mb_buf_adds(b, ",\n  \"hidden_act\": \"silu\"");
    else if (!fam[5])
        mb_buf_adds(b, ",\n  \"hidden_act\": \"gelu_pytorch_tanh\"");
    else
        gemma_extras(b, c);
    if (strcmp(fam, "llama") == 0) {
        boolean(b, "attention_bias", c->add_bias_linear);
        boolean(b, "mlp_bias", c->add_bias_linear);
    }
    if (strncmp(fam, "qwen", 4) == 0)
        boolean(b, "use_sliding_window", false);
    if (strcmp(fam, "mistral") == 0) {
        mb_buf_adds(b, ",\n  \"sliding_window\": ");
        mb_buf_addf(b, c->sliding_window ? "%lld" : "null", (long long)c->sliding_window);
    }
    mb_buf_adds(b, ",\n  \"rope_parameters\": ");
    if (strcmp(fam, "gemma3") == 0) {
        mb_buf_adds(b, "{\"full_attention\": ");
        rope_obj(b, c, c->rotary_base, 1);
        mb_buf_adds(b, ", \"sliding_attention\": ");
        rope_obj(b, c, c->rotary_base_local ? c->rotary_base_local : c->rotary_base, 0);
        mb_buf_adds(b, "}");
    } else {
        rope_obj(b, c, c->rotary_base, 1);
    }
}

static void gpt2(struct mb_buf *b, const struct mb_model_config *c)
{
    i64(b, "n_embd", c->hidden_size);
    i64(b, "n_inner", c->ffn_hidden_size);
    i64(b, "n_layer", c->num_layers);
    i64(b, "n_head", c->num_attention_heads);
    i64(b, "n_positions", c->max_position_embeddings);
    num(b, "layer_norm_epsilon", c->layernorm_epsilon);
    mb_buf_adds(b, ",\n  \"activation_function\": \"gelu_new\"");
}

/* C with the values that do not change the model made canonical, for comparison. */
static void canonical(struct mb_model_config *c)
{
    if (c->rope_scaling_type == MB_ROPE_SCALING_NONE) {
        c->rope_scaling_factor = 8.0;
        c->rope_scaling_low_freq_factor = 1.0;
        c->rope_scaling_high_freq_factor = 4.0;
        c->rope_scaling_original_max_position_embeddings = 8192;
    }
    if (c->rotary_base_local == 0)
        c->rotary_base_local = c->rotary_base;
    if (c->query_pre_attn_scalar == 0)
        c->query_pre_attn_scalar = (double)c->kv_channels;
    if (c->sliding_window == 0)
        c->sliding_window_pattern = 0;
    if (c->position_embedding_type == MB_POS_LEARNED) {
        c->rotary_base = c->rotary_base_local = 10000.0;
        c->rotary_percent = 1.0;
    }
}

/* The first key whose value differs between the mb JSON texts A and B, or NULL. */
static const char *first_difference(const char *a, const char *b, char *buf, size_t cap)
{
    mb_json *ja = mb_json_parse(a, strlen(a), "a"), *jb = mb_json_parse(b, strlen(b), "b");
    void *it = NULL;
    const char *key, *found = NULL;
    mb_json *va;
    struct mb_buf sa = MB_BUF_INIT, sb = MB_BUF_INIT;

    while (ja && jb && !found && mb_json_next(ja, &it, &key, &va)) {
        const mb_json *vb = mb_json_get(jb, key);
        mb_buf_reset(&sa);
        mb_buf_reset(&sb);
        mb_buf_addf(&sa, "%s", mb_json_str(va, NULL) ? mb_json_str(va, NULL) : "");
        mb_buf_addf(&sb, "%s", vb && mb_json_str(vb, NULL) ? mb_json_str(vb, NULL) : "");
        if (!vb || mb_json_type_of(va) != mb_json_type_of(vb) ||
            mb_json_number(va) != mb_json_number(vb) ||
            mb_json_is_true(va) != mb_json_is_true(vb) || strcmp(sa.data ? sa.data : "",
                                                                  sb.data ? sb.data : "") != 0) {
            snprintf(buf, cap, "%s", key);
            found = buf;
        }
    }
    mb_buf_release(&sa);
    mb_buf_release(&sb);
    mb_json_free(ja);
    mb_json_free(jb);
    return found;
}

/* Does TEXT read back as C? -1 with mb_err naming the first field that differs. */
static int check_back(const struct mb_bridge_arch *arch, const struct mb_model_config *c,
                      const char *text)
{
    struct mb_model_config back, want = *c;
    const struct mb_bridge_arch *a2;

    if (mb_bridge_config_from_hf(text, strlen(text), "generated config.json", &back, &a2) != 0)
        return -1;
    canonical(&back);
    canonical(&want);
    char *ja = mb_model_config_to_json(&want), *jb = mb_model_config_to_json(&back), key[64];
    const char *diff = first_difference(ja, jb, key, sizeof key);
    int rc = 0;
    if (diff)
        rc = mb_err_set(MB_E_UNSUPPORTED, arch->hf_name, "model.%s of this model cannot be "
                        "expressed in a %s config.json", diff, arch->hf_name);
    free(ja);
    free(jb);
    return rc;
}

char *mb_bridge_config_to_hf(const struct mb_bridge_arch *arch, const struct mb_model_config *c,
                             const char *dtype)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_buf_addf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\"", arch->hf_name,
                arch->model_type);
    mb_buf_addf(&b, ",\n  \"dtype\": \"%s\"", dtype);
    i64(&b, "vocab_size", c->vocab_size);
    boolean(&b, "tie_word_embeddings", c->share_embeddings_and_output_weights);
    num(&b, "initializer_range", c->init_method_std);
    if (strcmp(arch->family, "gpt2") == 0)
        gpt2(&b, c);
    else
        llama_like(&b, c, arch->family);
    mb_buf_adds(&b, "\n}\n");
    if (check_back(arch, c, b.data) != 0) {
        mb_buf_release(&b);
        return NULL;
    }
    return b.data;
}
