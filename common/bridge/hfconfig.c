/* bridge/hfconfig.c - config.json <-> struct mb_model_config.
 *
 * Reading builds the mb JSON spelling (nn/config.h) from the HF fields and hands it to
 * mb_model_config_from_json, so defaults and validation are nn's. A field missing from
 * config.json takes the transformers class default of its architecture (save_pretrained
 * leaves out values equal to the defaults). Both rope spellings are read: transformers 5
 * `rope_parameters`, and the older `rope_theta` + `rope_scaling`.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

/* transformers class defaults used when config.json leaves a field out */
struct hf_defaults {
    const char *family;
    double eps;
    int64_t max_pos, head_dim; /* head_dim 0: hidden / heads */
    int tie;
    double theta, theta_local;
    int64_t window, pattern;   /* pattern: gemma's sliding layer pattern */
    double qpas, attn_cap, final_cap;
};

static const struct hf_defaults defaults[] = {
    { "llama", 1e-6, 2048, 0, 0, 10000.0, 0, 0, 0, 0, 0, 0 },
    { "mistral", 1e-6, 131072, 0, 0, 10000.0, 0, 4096, 0, 0, 0, 0 },
    { "qwen2", 1e-6, 32768, 0, 0, 10000.0, 0, 0, 0, 0, 0, 0 },
    { "qwen3", 1e-6, 32768, 128, 0, 10000.0, 0, 0, 0, 0, 0, 0 },
    { "gemma", 1e-6, 8192, 256, 1, 10000.0, 0, 0, 0, 0, 0, 0 },
    { "gemma2", 1e-6, 8192, 256, 1, 10000.0, 0, 4096, 2, 256, 50.0, 30.0 },
    { "gemma3", 1e-6, 131072, 256, 1, 1000000.0, 10000.0, 4096, 6, 256, 0, 0 },
    { "gpt2", 1e-5, 1024, 0, 1, 0, 0, 0, 0, 0, 0, 0 },
};

struct reader {
    const mb_json *root;
    const char *where;
    const struct hf_defaults *def;
    struct mb_buf out; /* the mb JSON being built */
};

static int is_num(const mb_json *v)
{
    enum mb_json_type t = mb_json_type_of(v);
    return t == MB_JSON_INT || t == MB_JSON_REAL;
}

/* Number KEY of OBJ; DEF when absent or null; -1 with mb_err when not a number. */
static int get_num(const struct reader *r, const mb_json *obj, const char *key, double def,
                   double *out)
{
    const mb_json *v = obj ? mb_json_get(obj, key) : NULL;

    *out = def;
    if (!v || mb_json_type_of(v) == MB_JSON_NULL)
        return 0;
    if (!is_num(v))
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s': expected a number, got %s",
                          key, mb_json_type_name(v));
    *out = mb_json_number(v);
    return 0;
}

/* Integer KEY; REQUIRED fields may not be missing. */
static int get_int(const struct reader *r, const char *key, int64_t def, int required,
                   int64_t *out)
{
    const mb_json *v = mb_json_get(r->root, key);
    double x;

    if ((!v || mb_json_type_of(v) == MB_JSON_NULL) && required)
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s' is missing", key);
    if (get_num(r, r->root, key, (double)def, &x) != 0)
        return -1;
    if (x != floor(x))
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s': %g is not an integer",
                          key, x);
    *out = (int64_t)x;
    return 0;
}

static int get_bool(const struct reader *r, const char *key, int def, int *out)
{
    const mb_json *v = mb_json_get(r->root, key);

    *out = def;
    if (!v || mb_json_type_of(v) == MB_JSON_NULL)
        return 0;
    if (mb_json_type_of(v) != MB_JSON_BOOL)
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s': expected true or false",
                          key);
    *out = mb_json_is_true(v);
    return 0;
}

/* String KEY must be one of the NULL-terminated OK list (DEF when absent). */
static int check_str(const struct reader *r, const char *key, const char *def,
                     const char *const *ok)
{
    const mb_json *v = mb_json_get(r->root, key);
    const char *s = v && mb_json_type_of(v) != MB_JSON_NULL ? mb_json_str(v, NULL) : def;

    if (!s)
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s': expected a string", key);
    for (int i = 0; ok[i]; i++)
        if (strcmp(s, ok[i]) == 0)
            return 0;
    return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field '%s': '%s' is not supported "
                      "(mb supports '%s')", key, s, ok[0]);
}

static void put_num(struct reader *r, const char *key, double v)
{
    mb_buf_addf(&r->out, ", \"%s\": %.17g", key, v);
}

static void put_int(struct reader *r, const char *key, int64_t v)
{
    mb_buf_addf(&r->out, ", \"%s\": %lld", key, (long long)v);
}

static void put_bool(struct reader *r, const char *key, int v)
{
    mb_buf_addf(&r->out, ", \"%s\": %s", key, v ? "true" : "false");
}

/* One rope parameter set (an object with rope_type / type, factor, ...) named WHAT.
 * SCALED: scaling allowed (else only the default type). */
static int read_rope_obj(struct reader *r, const mb_json *o, const char *what, int scaled)
{
    const mb_json *t = o ? mb_json_get(o, "rope_type") : NULL;
    if (!t && o)
        t = mb_json_get(o, "type");
    const char *type = t && mb_json_type_of(t) == MB_JSON_STRING ? mb_json_str(t, NULL)
                                                                   : "default";
    double f, lo, hi, orig;

    if (strcmp(type, "default") == 0)
        return 0;
    if (!scaled || (strcmp(type, "llama3") != 0 && strcmp(type, "linear") != 0))
        return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field '%s.rope_type': '%s' is "
                          "not supported (mb supports default, llama3, linear%s)", what, type,
                          scaled ? "" : "; and no scaling here");
    if (get_num(r, o, "factor", NAN, &f) != 0)
        return -1;
    if (isnan(f))
        return mb_err_set(MB_E_INVALID, r->where, "config field '%s.factor' is missing", what);
    mb_buf_addf(&r->out, ", \"rope_scaling_type\": \"%s\"", type);
    put_num(r, "rope_scaling_factor", f);
    if (strcmp(type, "linear") == 0)
        return 0;
    if (get_num(r, o, "low_freq_factor", 1.0, &lo) != 0 ||
        get_num(r, o, "high_freq_factor", 4.0, &hi) != 0 ||
        get_num(r, o, "original_max_position_embeddings", 8192, &orig) != 0)
        return -1;
    put_num(r, "rope_scaling_low_freq_factor", lo);
    put_num(r, "rope_scaling_high_freq_factor", hi);
    put_int(r, "rope_scaling_original_max_position_embeddings", (int64_t)orig);
    return 0;
}

/* Theta of a rope parameter set, else the top-level rope_theta, else DEF. */
static int rope_theta(struct reader *r, const mb_json *o, const char *legacy, double def,
                      double *theta)
{
    if (get_num(r, r->root, legacy, def, theta) != 0)
        return -1;
    return o ? get_num(r, o, "rope_theta", *theta, theta) : 0;
}

static int read_rope(struct reader *r, int gemma3)
{
    const mb_json *p = mb_json_get(r->root, "rope_parameters");
    const mb_json *legacy = mb_json_get(r->root, "rope_scaling");
    const mb_json *full = p, *slide = NULL;
    double theta, local, partial;

    if (p && mb_json_type_of(p) == MB_JSON_NULL)
        p = full = NULL;
    if (legacy && mb_json_type_of(legacy) == MB_JSON_NULL)
        legacy = NULL;
    if (gemma3 && p && mb_json_get(p, "full_attention")) {
        full = mb_json_get(p, "full_attention");
        slide = mb_json_get(p, "sliding_attention");
    }
    if (rope_theta(r, full, "rope_theta", r->def->theta, &theta) != 0 ||
        read_rope_obj(r, full ? full : legacy, full ? "rope_parameters" : "rope_scaling", 1))
        return -1;
    put_num(r, "rotary_base", theta);
    if (gemma3) {
        if (rope_theta(r, slide, "rope_local_base_freq", r->def->theta_local, &local) != 0 ||
            read_rope_obj(r, slide, "rope_parameters.sliding_attention", 0) != 0)
            return -1;
        put_num(r, "rotary_base_local", local);
    }
    if (get_num(r, r->root, "partial_rotary_factor", 1.0, &partial) != 0 ||
        (p && get_num(r, p, "partial_rotary_factor", partial, &partial) != 0))
        return -1;
    put_num(r, "rotary_percent", partial);
    return 0;
}

/* Gemma 2/3 layer_types (or the pattern fields) -> sliding_window_pattern. */
static int read_pattern(struct reader *r, int64_t layers, int64_t window)
{
    const mb_json *lt = mb_json_get(r->root, "layer_types");
    int64_t pattern = r->def->pattern, v;

    if (get_int(r, "sliding_window_pattern", pattern, 0, &v) != 0 ||
        get_int(r, "_sliding_window_pattern", v, 0, &pattern) != 0)
        return -1;
    if (lt && mb_json_type_of(lt) == MB_JSON_ARRAY) {
        int64_t first_full = -1, n = (int64_t)mb_json_len(lt);
        for (int64_t i = 0; i < n && first_full < 0; i++)
        {
            const char *s = mb_json_str(mb_json_at(lt, (size_t)i), NULL);
            if (s && strcmp(s, "full_attention") == 0)
                first_full = i;
        }
        pattern = first_full < 0 ? 0 : first_full + 1;
        for (int64_t i = 0; i < n; i++) {
            const char *s = mb_json_str(mb_json_at(lt, (size_t)i), NULL);
            int slides = pattern == 0 || (i + 1) % pattern != 0;
            if (n != layers || !s || strcmp(s, slides ? "sliding_attention" : "full_attention"))
                return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field 'layer_types': "
                                  "entry %lld breaks the repeating pattern mb supports (every "
                                  "p-th layer full, the others sliding)", (long long)i);
        }
        if (pattern == 1) /* every layer full */
            window = 0;
    }
    put_int(r, "sliding_window", window);
    put_int(r, "sliding_window_pattern", window ? pattern : 0);
    return 0;
}

static int read_sizes(struct reader *r, int gpt2, int64_t *layers)
{
    int64_t h, heads, kv, hd, ffn, vocab, pos;
    const char *kh = gpt2 ? "n_embd" : "hidden_size", *kl = gpt2 ? "n_layer" : "num_hidden_layers";
    const char *kn = gpt2 ? "n_head" : "num_attention_heads";

    if (get_int(r, kh, 0, 1, &h) || get_int(r, kl, 0, 1, layers) || get_int(r, kn, 0, 1, &heads) ||
        get_int(r, "vocab_size", 0, 1, &vocab) ||
        get_int(r, gpt2 ? "n_positions" : "max_position_embeddings", r->def->max_pos, 0, &pos))
        return -1;
    if (gpt2) {
        if (get_int(r, "n_inner", 4 * h, 0, &ffn) != 0)
            return -1;
        kv = heads;
        hd = heads ? h / heads : 0;
    } else if (get_int(r, "intermediate_size", 0, 1, &ffn) ||
               get_int(r, "num_key_value_heads", heads, 0, &kv) ||
               get_int(r, "head_dim", r->def->head_dim ? r->def->head_dim
                                                       : (heads ? h / heads : 0), 0, &hd)) {
        return -1;
    }
    put_int(r, "hidden_size", h);
    put_int(r, "num_layers", *layers);
    put_int(r, "num_attention_heads", heads);
    put_int(r, "num_query_groups", kv);
    put_int(r, "kv_channels", hd);
    put_int(r, "ffn_hidden_size", ffn);
    put_int(r, "vocab_size", vocab);
    put_int(r, "max_position_embeddings", pos);
    return 0;
}

static const char *const silu[] = { "silu", NULL };
static const char *const gelu_tanh[] = { "gelu_pytorch_tanh", NULL };
static const char *const gelu_new[] = { "gelu_new", "gelu_pytorch_tanh", NULL };

/* Biases: Llama's attention_bias and mlp_bias together; Qwen2 always q/k/v; none else. */
static int read_bias(struct reader *r, const char *fam)
{
    int ab, mb;

    if (get_bool(r, "attention_bias", 0, &ab) != 0 || get_bool(r, "mlp_bias", 0, &mb) != 0)
        return -1;
    if (strcmp(fam, "qwen2") == 0) {
        put_bool(r, "add_qkv_bias", 1);
        return 0;
    }
    if (strcmp(fam, "llama") == 0 && ab == mb) {
        put_bool(r, "add_qkv_bias", ab);
        put_bool(r, "add_bias_linear", ab);
        return 0;
    }
    if (ab || mb)
        return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field '%s': biases of this kind "
                          "are not supported for %s", ab ? "attention_bias" : "mlp_bias", fam);
    return 0;
}

static int read_family(struct reader *r, const char *fam, int64_t layers)
{
    int gemma = strncmp(fam, "gemma", 5) == 0, sandwich = gemma && fam[5];
    int64_t window = 0;
    int use_sw;
    double eps, qpas, acap, fcap;

    if (get_num(r, r->root, "rms_norm_eps", r->def->eps, &eps) != 0)
        return -1;
    put_num(r, "layernorm_epsilon", eps);
    if (gemma) {
        mb_buf_adds(&r->out, ", \"activation\": \"geglu\", \"layernorm_zero_centered_gamma\": "
                             "true, \"scale_embeddings\": true");
        if (check_str(r, sandwich ? "hidden_activation" : "hidden_act", "gelu_pytorch_tanh",
                      gelu_tanh) != 0)
            return -1;
    } else if (check_str(r, "hidden_act", "silu", silu) != 0) {
        return -1;
    }
    if (read_bias(r, fam) != 0 || read_rope(r, strcmp(fam, "gemma3") == 0) != 0)
        return -1;
    put_bool(r, "qk_layernorm", !strcmp(fam, "qwen3") || !strcmp(fam, "gemma3"));
    if (!strncmp(fam, "qwen", 4)) {
        if (get_bool(r, "use_sliding_window", 0, &use_sw) != 0)
            return -1;
        if (use_sw)
            return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field 'use_sliding_window': "
                              "sliding windows are not supported for %s", fam);
    }
    if (!strcmp(fam, "mistral") || sandwich) {
        if (get_int(r, "sliding_window", r->def->window, 0, &window) != 0)
            return -1;
        if (!sandwich)
            put_int(r, "sliding_window", window);
    }
    if (!sandwich)
        return 0;
    if (get_num(r, r->root, "query_pre_attn_scalar", r->def->qpas, &qpas) != 0 ||
        get_num(r, r->root, "attn_logit_softcapping", r->def->attn_cap, &acap) != 0 ||
        get_num(r, r->root, "final_logit_softcapping", r->def->final_cap, &fcap) != 0)
        return -1;
    mb_buf_adds(&r->out, ", \"sandwich_norm\": true");
    put_num(r, "query_pre_attn_scalar", qpas);
    put_num(r, "attn_logit_softcapping", acap);
    put_num(r, "final_logit_softcapping", fcap);
    return read_pattern(r, layers, window);
}

static int read_gpt2(struct reader *r)
{
    double eps;
    int scale, inv;

    if (check_str(r, "activation_function", "gelu_new", gelu_new) != 0 ||
        get_num(r, r->root, "layer_norm_epsilon", r->def->eps, &eps) != 0 ||
        get_bool(r, "scale_attn_weights", 1, &scale) != 0 ||
        get_bool(r, "scale_attn_by_inverse_layer_idx", 0, &inv) != 0)
        return -1;
    if (!scale || inv)
        return mb_err_set(MB_E_UNSUPPORTED, r->where, "config field '%s': only the standard "
                          "1/sqrt(d) attention scale is supported",
                          scale ? "scale_attn_by_inverse_layer_idx" : "scale_attn_weights");
    put_num(r, "layernorm_epsilon", eps);
    mb_buf_adds(&r->out, ", \"normalization\": \"LayerNorm\", \"activation\": \"gelu\", "
                         "\"position_embedding_type\": \"learned_absolute\", "
                         "\"add_bias_linear\": true");
    return 0;
}

static const struct mb_bridge_arch *read_arch(const struct reader *r)
{
    const mb_json *a = mb_json_get(r->root, "architectures");
    const char *name = a ? mb_json_str(mb_json_at(a, 0), NULL) : NULL;
    const struct mb_bridge_arch *arch = mb_bridge_arch_find(name);

    if (!name)
        mb_err_set(MB_E_INVALID, r->where, "config field 'architectures' is missing or empty");
    else if (!arch)
        mb_err_set(MB_E_UNSUPPORTED, r->where, "config field 'architectures': '%s' is not "
                   "supported (mb supports %s)", name, mb_bridge_arch_list());
    return arch;
}

static int build(struct reader *r, const struct mb_bridge_arch *arch)
{
    int64_t layers;
    int tie;
    double std;
    int gpt2 = strcmp(arch->family, "gpt2") == 0;

    mb_buf_addf(&r->out, "{\"family\": \"%s\"", arch->family);
    if (read_sizes(r, gpt2, &layers) != 0 ||
        get_bool(r, "tie_word_embeddings", r->def->tie, &tie) != 0 ||
        get_num(r, r->root, "initializer_range", 0.02, &std) != 0)
        return -1;
    put_bool(r, "share_embeddings_and_output_weights", tie);
    put_num(r, "init_method_std", std);
    if ((gpt2 ? read_gpt2(r) : read_family(r, arch->family, layers)) != 0)
        return -1;
    mb_buf_adds(&r->out, "}");
    return 0;
}

int mb_bridge_config_from_hf(const char *text, size_t len, const char *where,
                             struct mb_model_config *c, const struct mb_bridge_arch **arch)
{
    struct reader r = { .where = where, .out = MB_BUF_INIT };
    mb_json *root = mb_json_parse(text, len, where);
    int rc = -1;

    *arch = NULL;
    if (!root)
        return -1;
    r.root = root;
    if (mb_json_type_of(root) != MB_JSON_OBJECT) {
        mb_err_set(MB_E_PARSE, where, "config.json is not a JSON object");
        goto out;
    }
    *arch = read_arch(&r);
    if (!*arch)
        goto out;
    for (size_t i = 0; i < MB_ARRAY_LEN(defaults); i++)
        if (strcmp(defaults[i].family, (*arch)->family) == 0)
            r.def = &defaults[i];
    if (build(&r, *arch) != 0)
        goto out;
    mb_json *mbj = mb_json_parse(r.out.data, r.out.len, where);
    rc = mbj ? mb_model_config_from_json(c, mbj, where) : -1;
    mb_json_free(mbj);
out:
    mb_buf_release(&r.out);
    mb_json_free(root);
    return rc;
}
