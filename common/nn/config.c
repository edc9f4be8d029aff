/* nn/config.c - the model configuration: JSON in and out through one field table. */
#include "nn/config.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"

enum field_type { F_I64, F_F64, F_BOOL, F_ENUM, F_STR };

struct field {
    const char *name;
    enum field_type type;
    size_t offset;
    const char *const *choices; /* F_ENUM: names in enum order, NULL-terminated */
};

static const char *const norm_names[] = { "RMSNorm", "LayerNorm", NULL };
static const char *const act_names[] = { "swiglu", "geglu", "gelu", NULL };
static const char *const pos_names[] = { "rope", "learned_absolute", NULL };
static const char *const scaling_names[] = { "none", "llama3", "linear", NULL };

#define FIELD(n, t) { #n, t, offsetof(struct mb_model_config, n), NULL }
#define ENUM(n, names) { #n, F_ENUM, offsetof(struct mb_model_config, n), names }

static const struct field fields[] = {
    FIELD(family, F_STR),
    FIELD(hidden_size, F_I64),
    FIELD(num_layers, F_I64),
    FIELD(num_attention_heads, F_I64),
    FIELD(num_query_groups, F_I64),
    FIELD(kv_channels, F_I64),
    FIELD(ffn_hidden_size, F_I64),
    FIELD(vocab_size, F_I64),
    FIELD(real_vocab_size, F_I64),
    FIELD(max_position_embeddings, F_I64),
    ENUM(normalization, norm_names),
    FIELD(layernorm_epsilon, F_F64),
    FIELD(layernorm_zero_centered_gamma, F_BOOL),
    ENUM(activation, act_names),
    FIELD(add_qkv_bias, F_BOOL),
    FIELD(add_bias_linear, F_BOOL),
    FIELD(qk_layernorm, F_BOOL),
    ENUM(position_embedding_type, pos_names),
    FIELD(rotary_base, F_F64),
    FIELD(rotary_base_local, F_F64),
    FIELD(rotary_percent, F_F64),
    ENUM(rope_scaling_type, scaling_names),
    FIELD(rope_scaling_factor, F_F64),
    FIELD(rope_scaling_low_freq_factor, F_F64),
    FIELD(rope_scaling_high_freq_factor, F_F64),
    FIELD(rope_scaling_original_max_position_embeddings, F_I64),
    FIELD(share_embeddings_and_output_weights, F_BOOL),
    FIELD(scale_embeddings, F_BOOL),
    FIELD(sandwich_norm, F_BOOL),
    FIELD(attn_logit_softcapping, F_F64),
    FIELD(final_logit_softcapping, F_F64),
    FIELD(query_pre_attn_scalar, F_F64),
    FIELD(sliding_window, F_I64),
    FIELD(sliding_window_pattern, F_I64),
    FIELD(init_method_std, F_F64),
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static void set_defaults(struct mb_model_config *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->family, "llama");
    c->max_position_embeddings = 4096;
    c->layernorm_epsilon = 1e-5;
    c->rotary_base = 10000.0;
    c->rotary_percent = 1.0;
    c->rope_scaling_factor = 8.0;
    c->rope_scaling_low_freq_factor = 1.0;
    c->rope_scaling_high_freq_factor = 4.0;
    c->rope_scaling_original_max_position_embeddings = 8192;
    c->init_method_std = 0.02;
}

static int set_enum(const struct field *f, int *dst, const mb_json *v, const char *where)
{
    const char *s = mb_json_str(v, NULL);
    for (int i = 0; s && f->choices[i]; i++) {
        if (strcmp(s, f->choices[i]) == 0) {
            *dst = i;
            return 0;
        }
    }
    struct mb_buf all = MB_BUF_INIT;
    for (int i = 0; f->choices[i]; i++)
        mb_buf_addf(&all, "%s%s", i ? ", " : "", f->choices[i]);
    mb_err_set(MB_E_INVALID, where, "model.%s: '%s' is not one of %s", f->name,
               s ? s : mb_json_type_name(v), all.data);
    mb_buf_release(&all);
    return -1;
}

static int set_field(struct mb_model_config *c, const struct field *f, const mb_json *v,
                     const char *where)
{
    char *dst = (char *)c + f->offset;
    enum mb_json_type t = mb_json_type_of(v);
    switch (f->type) {
    case F_I64:
        if (t != MB_JSON_INT &&
            !(t == MB_JSON_REAL && mb_json_number(v) == floor(mb_json_number(v))))
            break;
        *(int64_t *)dst = (int64_t)mb_json_number(v);
        return 0;
    case F_F64:
        if (t != MB_JSON_INT && t != MB_JSON_REAL)
            break;
        *(double *)dst = mb_json_number(v);
        return 0;
    case F_BOOL:
        if (t != MB_JSON_BOOL)
            break;
        *(bool *)dst = mb_json_is_true(v);
        return 0;
    case F_ENUM:
        if (t != MB_JSON_STRING)
            break;
        return set_enum(f, (int *)dst, v, where);
    case F_STR: {
        size_t len = 0;
        const char *s = mb_json_str(v, &len);
        if (!s || len >= sizeof(c->family))
            break;
        memcpy(dst, s, len + 1);
        return 0;
    }
    }
    static const char *const want[] = { "an integer", "a number", "true or false", "a name",
                                        "a short string" };
    return mb_err_set(MB_E_INVALID, where, "model.%s: expected %s, got %s", f->name,
                      want[f->type], mb_json_type_name(v));
}

static const struct field *find_field(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* Where errors about field NAME are reported: the caller's place for that key when it
 * knows one (a recipe line, an override), else the fixed WHERE. */
struct place {
    const char *where;
    mb_model_config_where_fn where_of;
    const void *ctx;
};

static const char *at(const struct place *pl, const char *field)
{
    const char *w = pl->where_of ? pl->where_of(pl->ctx, field) : NULL;
    return w ? w : pl->where;
}

static int from_json(struct mb_model_config *c, const mb_json *obj, const struct place *pl)
{
    set_defaults(c);
    if (mb_json_type_of(obj) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_INVALID, pl->where, "model config: expected a JSON object");
    void *it = NULL;
    const char *key;
    mb_json *value;
    while (mb_json_next(obj, &it, &key, &value)) {
        const struct field *f = find_field(key);
        if (!f)
            return mb_err_set(MB_E_INVALID, pl->where, "unknown model config key '%s'", key);
        if (mb_json_type_of(value) == MB_JSON_NULL)
            continue;
        if (set_field(c, f, value, at(pl, f->name)) < 0)
            return -1;
    }
    if (c->num_query_groups == 0)
        c->num_query_groups = c->num_attention_heads;
    if (c->kv_channels == 0 && c->num_attention_heads > 0)
        c->kv_channels = c->hidden_size / c->num_attention_heads;
    return 0;
}

static int check(const struct mb_model_config *c, const struct place *pl);

int mb_model_config_from_json(struct mb_model_config *c, const mb_json *obj, const char *where)
{
    return mb_model_config_from_json_at(c, obj, where, NULL, NULL);
}

int mb_model_config_from_json_at(struct mb_model_config *c, const mb_json *obj,
                                 const char *where, mb_model_config_where_fn where_of,
                                 const void *ctx)
{
    struct place pl = { where, where_of, ctx };

    if (from_json(c, obj, &pl) < 0)
        return -1;
    return check(c, &pl);
}

/* Sizes are int64 in the structs, but token ids, positions and the kernels' loops are
 * int32 in places: every size stays below 2^31. */
#define MAX_SIZE INT32_MAX

static int size_ok(const struct place *pl, const char *name, int64_t v)
{
    if (v <= 0)
        return mb_err_set(MB_E_INVALID, at(pl, name), "model.%s must be positive (it is %lld)",
                          name, (long long)v);
    if (v > MAX_SIZE)
        return mb_err_set(MB_E_INVALID, at(pl, name), "model.%s is %lld, more than the "
                          "largest size mb handles (2^31 - 1)", name, (long long)v);
    return 0;
}

static int sizes_ok(const struct mb_model_config *c, const struct place *pl)
{
    const struct {
        const char *name;
        int64_t v;
    } sizes[] = {
        { "hidden_size", c->hidden_size }, { "num_layers", c->num_layers },
        { "num_attention_heads", c->num_attention_heads },
        { "num_query_groups", c->num_query_groups }, { "kv_channels", c->kv_channels },
        { "ffn_hidden_size", c->ffn_hidden_size }, { "vocab_size", c->vocab_size },
        { "max_position_embeddings", c->max_position_embeddings },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (size_ok(pl, sizes[i].name, sizes[i].v) < 0)
            return -1;
    if (c->num_attention_heads % c->num_query_groups != 0)
        return mb_err_set(MB_E_INVALID, at(pl, "num_query_groups"),
                          "model.num_attention_heads (%lld) is not a multiple of "
                          "model.num_query_groups (%lld)",
                          (long long)c->num_attention_heads, (long long)c->num_query_groups);
    /* the widest matrices (QKV rows, gated MLP rows) index int32 loops too */
    if (mb_model_qkv_rows(c) > MAX_SIZE || mb_model_fc1_rows(c) > MAX_SIZE)
        return mb_err_set(MB_E_INVALID, at(pl, "kv_channels"),
                          "model.kv_channels x heads or 2 x model.ffn_hidden_size exceeds "
                          "2^31 - 1 rows");
    return 0;
}

static int real_ok(const struct place *pl, const char *name, double v, double lo, int lo_open)
{
    if (isfinite(v) && (lo_open ? v > lo : v >= lo))
        return 0;
    return mb_err_set(MB_E_INVALID, at(pl, name), "model.%s must be %s (it is %g)", name,
                      lo_open ? "positive" : "zero or more", v);
}

/* RoPE settings, checked when RoPE is used: a non-positive base or a zero rotary width
 * makes the position angles non-finite or the attention meaningless from the start. */
static int rope_ok(const struct mb_model_config *c, const struct place *pl)
{
    if (c->position_embedding_type != MB_POS_ROPE)
        return 0;
    if (real_ok(pl, "rotary_base", c->rotary_base, 0, 1) < 0 ||
        real_ok(pl, "rotary_base_local", c->rotary_base_local, 0, 0) < 0)
        return -1;
    if (!(c->rotary_percent > 0 && c->rotary_percent <= 1))
        return mb_err_set(MB_E_INVALID, at(pl, "rotary_percent"),
                          "model.rotary_percent must be in (0, 1] (it is %g)", c->rotary_percent);
    int64_t rot = (int64_t)((double)c->kv_channels * c->rotary_percent);
    if (rot <= 0 || rot % 2)
        return mb_err_set(MB_E_INVALID, at(pl, "rotary_percent"),
                          "model.rotary_percent %g gives %lld rotary dims of %lld: need an even "
                          "number in (0, kv_channels]",
                          c->rotary_percent, (long long)rot, (long long)c->kv_channels);
    if (c->rope_scaling_type != MB_ROPE_SCALING_NONE &&
        real_ok(pl, "rope_scaling_factor", c->rope_scaling_factor, 0, 1) < 0)
        return -1;
    if (c->rope_scaling_type == MB_ROPE_SCALING_LLAMA3 &&
        (!(c->rope_scaling_high_freq_factor > c->rope_scaling_low_freq_factor) ||
         !(c->rope_scaling_low_freq_factor > 0) ||
         c->rope_scaling_original_max_position_embeddings <= 0))
        return mb_err_set(MB_E_INVALID, at(pl, "rope_scaling_high_freq_factor"),
                          "model.rope_scaling_*: llama3 scaling needs high_freq_factor > "
                          "low_freq_factor > 0 and original max positions > 0");
    return 0;
}

static int check(const struct mb_model_config *c, const struct place *pl)
{
    if (sizes_ok(c, pl) < 0 || rope_ok(c, pl) < 0)
        return -1;
    if (real_ok(pl, "layernorm_epsilon", c->layernorm_epsilon, 0, 1) < 0 ||
        real_ok(pl, "init_method_std", c->init_method_std, 0, 1) < 0 ||
        real_ok(pl, "attn_logit_softcapping", c->attn_logit_softcapping, 0, 0) < 0 ||
        real_ok(pl, "final_logit_softcapping", c->final_logit_softcapping, 0, 0) < 0 ||
        real_ok(pl, "query_pre_attn_scalar", c->query_pre_attn_scalar, 0, 0) < 0)
        return -1;
    if (c->real_vocab_size < 0 || c->real_vocab_size > c->vocab_size)
        return mb_err_set(MB_E_INVALID, at(pl, "real_vocab_size"),
                          "model.real_vocab_size %lld must be between 0 and model.vocab_size "
                          "%lld", (long long)c->real_vocab_size, (long long)c->vocab_size);
    if (c->sliding_window < 0 || c->sliding_window_pattern < 0)
        return mb_err_set(MB_E_INVALID, at(pl, c->sliding_window < 0 ? "sliding_window"
                                                                     : "sliding_window_pattern"),
                          "model.sliding_window and its pattern must not be negative");
    return 0;
}

int mb_model_config_validate(const struct mb_model_config *c, const char *where)
{
    struct place pl = { where, NULL, NULL };

    return check(c, &pl);
}

/* A double that reads back as a real, not an integer: 3 is written 3.0. */
static void add_real(struct mb_buf *out, double v)
{
    char text[40];
    snprintf(text, sizeof(text), "%.17g", v);
    mb_buf_adds(out, text);
    if (!strpbrk(text, ".eEn"))
        mb_buf_adds(out, ".0");
}

char *mb_model_config_to_json(const struct mb_model_config *c)
{
    struct mb_buf out = MB_BUF_INIT;
    mb_buf_adds(&out, "{");
    for (size_t i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        const char *src = (const char *)c + f->offset;
        /* unpadded models (all but those sized from a tokenizer) keep the JSON they had */
        if (src == (const char *)&c->real_vocab_size && c->real_vocab_size == 0)
            continue;
        mb_buf_addf(&out, "%s\"%s\": ", i ? ", " : "", f->name);
        switch (f->type) {
        case F_I64: mb_buf_addf(&out, "%lld", (long long)*(const int64_t *)src); break;
        case F_F64: add_real(&out, *(const double *)src); break;
        case F_BOOL: mb_buf_adds(&out, *(const bool *)src ? "true" : "false"); break;
        case F_ENUM: mb_buf_addf(&out, "\"%s\"", f->choices[*(const int *)src]); break;
        case F_STR: mb_json_escape(&out, src, strlen(src)); break;
        }
    }
    mb_buf_adds(&out, "}");
    return out.data;
}

int64_t mb_model_real_vocab(const struct mb_model_config *c)
{
    return c->real_vocab_size > 0 ? c->real_vocab_size : c->vocab_size;
}

int64_t mb_model_qkv_rows(const struct mb_model_config *c)
{
    return (c->num_attention_heads + 2 * c->num_query_groups) * c->kv_channels;
}

int64_t mb_model_fc1_rows(const struct mb_model_config *c)
{
    return c->activation == MB_ACT_GELU ? c->ffn_hidden_size : 2 * c->ffn_hidden_size;
}

bool mb_model_layer_slides(const struct mb_model_config *c, int64_t layer)
{
    if (c->sliding_window <= 0)
        return false;
    return c->sliding_window_pattern == 0 || (layer + 1) % c->sliding_window_pattern != 0;
}

float mb_model_softmax_scale(const struct mb_model_config *c)
{
    double d = c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (double)c->kv_channels;
    return (float)(1.0 / sqrt(d));
}
