/* train/setup.c - configuration to model config and data blend. */
#include "train/setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"
#include "ckpt/ckpt.h"
#include "train/schema.h"

mb_config *mb_setup_load_config(const char *recipe, char *const *args, int nargs,
                                const char *example)
{
    if (!recipe) {
        mb_err_set(MB_E_USAGE, NULL, "no recipe: give --recipe NAME (see recipes/) or a YAML file");
        return NULL;
    }
    mb_config *cfg = mb_pretrain_config_new();
    char *path = NULL;
    int rc = mb_config_find_recipe(recipe, &path);
    if (rc == 0)
        rc = mb_config_load_yaml(cfg, path);
    free(path);
    for (int i = 0; rc == 0 && i < nargs; i++) {
        if (!mb_config_is_override(args[i]))
            rc = mb_err_set(MB_E_USAGE, args[i], "expected key=value (e.g. %s)", example);
        else
            rc = mb_config_override(cfg, args[i]);
    }
    if (rc < 0) {
        mb_config_free(cfg);
        return NULL;
    }
    return cfg;
}

int64_t mb_padded_vocab(int64_t vocab, int64_t divisor)
{
    if (divisor <= 1)
        return vocab;
    return (vocab + divisor - 1) / divisor * divisor;
}

/* model.* keys that size the model but are not fields of struct mb_model_config */
static int is_setup_only(const char *key)
{
    return strcmp(key, "model.make_vocab_size_divisible_by") == 0;
}

/* The sizes Megatron derives when the recipe leaves them 0. */
struct derived_sizes {
    int64_t vocab_size, ffn_hidden_size, max_position_embeddings;
};

static int derive_sizes(const mb_config *cfg, int64_t tokenizer_vocab, struct derived_sizes *d)
{
    d->vocab_size = mb_config_i64(cfg, "model.vocab_size");
    d->ffn_hidden_size = mb_config_i64(cfg, "model.ffn_hidden_size");
    d->max_position_embeddings = mb_config_i64(cfg, "model.max_position_embeddings");
    if (d->ffn_hidden_size == 0)
        d->ffn_hidden_size = 4 * mb_config_i64(cfg, "model.hidden_size");
    if (d->max_position_embeddings == 0)
        d->max_position_embeddings = mb_config_i64(cfg, "data.seq_length");
    if (d->vocab_size != 0)
        return 0;
    if (tokenizer_vocab <= 0)
        return mb_err_set(MB_E_INVALID, "model.vocab_size",
                          "is 0 and there is no tokenizer.tokenizer_model to size it from");
    d->vocab_size = mb_padded_vocab(tokenizer_vocab,
                                    mb_config_i64(cfg, "model.make_vocab_size_divisible_by"));
    return 0;
}

/* The derived value of KEY, or NULL when KEY is not one of them. */
static const int64_t *derived_value(const struct derived_sizes *d, const char *key)
{
    if (strcmp(key, "model.vocab_size") == 0)
        return &d->vocab_size;
    if (strcmp(key, "model.ffn_hidden_size") == 0)
        return &d->ffn_hidden_size;
    if (strcmp(key, "model.max_position_embeddings") == 0)
        return &d->max_position_embeddings;
    return NULL;
}

static void add_value(struct mb_buf *out, const mb_config *cfg, const struct mb_config_key *k)
{
    switch (k->type) {
    case MB_CONFIG_INT: mb_buf_addf(out, "%lld", (long long)mb_config_i64(cfg, k->key)); break;
    case MB_CONFIG_FLOAT: mb_buf_addf(out, "%.17g", mb_config_double(cfg, k->key)); break;
    case MB_CONFIG_BOOL: mb_buf_adds(out, mb_config_bool(cfg, k->key) ? "true" : "false"); break;
    default: {
        const char *s = mb_config_str(cfg, k->key);
        mb_json_escape(out, s, strlen(s));
    }
    }
}

/* The JSON object of every model.* key, typed by the schema, with the derived sizes. */
static char *model_keys_json(const mb_config *cfg, const struct derived_sizes *d)
{
    size_t n;
    const struct mb_config_key *schema = mb_pretrain_schema(&n);
    struct mb_buf out = MB_BUF_INIT;
    mb_buf_adds(&out, "{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const char *key = schema[i].key;
        if (strncmp(key, "model.", 6) != 0 || is_setup_only(key) || !mb_config_has(cfg, key))
            continue;
        mb_buf_addf(&out, "%s\"%s\": ", first ? "" : ", ", key + 6);
        first = 0;
        const int64_t *v = derived_value(d, key);
        if (v)
            mb_buf_addf(&out, "%lld", (long long)*v);
        else
            add_value(&out, cfg, &schema[i]);
    }
    mb_buf_adds(&out, "}");
    return out.data;
}

/* Where model.FIELD of the config CTX was set (a recipe line, "command line: ..."). */
static const char *key_where(const void *ctx, const char *field)
{
    char key[128];

    snprintf(key, sizeof key, "model.%s", field);
    return mb_config_where(ctx, key);
}

int mb_setup_model_config(const mb_config *cfg, int64_t tokenizer_vocab,
                          struct mb_model_config *out)
{
    struct derived_sizes d;
    if (derive_sizes(cfg, tokenizer_vocab, &d) < 0)
        return -1;
    char *text = model_keys_json(cfg, &d);
    mb_json *obj = mb_json_parse(text, strlen(text), "model.*");
    free(text);
    if (!obj)
        return -1;
    struct mb_model_config c;
    int rc = mb_model_config_from_json_at(&c, obj, "model.*", key_where, cfg);
    mb_json_free(obj);
    if (rc < 0)
        return -1;
    if (tokenizer_vocab > c.vocab_size)
        return mb_err_set(MB_E_INVALID, "model.vocab_size",
                          "%lld is smaller than the tokenizer's vocabulary (%lld)",
                          (long long)c.vocab_size, (long long)tokenizer_vocab);
    /* rows mb added to the tokenizer's vocabulary are masked out of the softmax; a
     * vocab_size the recipe gives is taken as it is, every row a token (parallel.md 7.3) */
    if (mb_config_i64(cfg, "model.vocab_size") == 0 && c.vocab_size > tokenizer_vocab)
        c.real_vocab_size = tokenizer_vocab;
    *out = c;
    return 0;
}

static int parse_weight(const char *s, double *w)
{
    char *end;
    *w = strtod(s, &end);
    return *s && *end == '\0';
}

int mb_setup_blend(const mb_config *cfg, const char ***paths, double **weights)
{
    size_t n = 0;
    const char *const *items = mb_config_list(cfg, "data.data_path", &n);
    *paths = NULL;
    *weights = NULL;
    if (n == 0)
        return mb_err_set(MB_E_INVALID, "data.data_path",
                          "no data: give a prefix (PATH_text_document) or set data.mock=true");
    double w;
    int weighted = n % 2 == 0 && parse_weight(items[0], &w);
    int count = (int)(weighted ? n / 2 : n);
    const char **p = mb_xcalloc((size_t)count, sizeof(*p));
    double *ws = weighted ? mb_xcalloc((size_t)count, sizeof(*ws)) : NULL;
    for (int i = 0; i < count; i++) {
        if (weighted && (!parse_weight(items[2 * i], &ws[i]) || ws[i] < 0)) {
            free(p);
            free(ws);
            return mb_err_set(MB_E_INVALID, "data.data_path",
                              "'%s' is not a weight: the blend syntax is W1 PREFIX1 W2 PREFIX2 ...",
                              items[2 * i]);
        }
        p[i] = weighted ? items[2 * i + 1] : items[i];
    }
    *paths = p;
    *weights = ws;
    return count;
}

/* Set model.KEY of CFG to VALUE, a JSON scalar of the checkpoint's model config. */
static int set_from_json(mb_config *cfg, const char *key, const mb_json *value, const char *file)
{
    struct mb_buf text = MB_BUF_INIT;
    char full[128];

    snprintf(full, sizeof full, "model.%s", key);
    switch (mb_json_type_of(value)) {
    case MB_JSON_INT: mb_buf_addf(&text, "%lld", (long long)mb_json_int(value)); break;
    case MB_JSON_REAL: mb_buf_addf(&text, "%.17g", mb_json_number(value)); break;
    case MB_JSON_BOOL: mb_buf_adds(&text, mb_json_is_true(value) ? "true" : "false"); break;
    case MB_JSON_STRING: mb_buf_adds(&text, mb_json_str(value, NULL)); break;
    default: mb_buf_adds(&text, "");
    }
    int rc = mb_config_set(cfg, full, text.data ? text.data : "", file);
    mb_buf_release(&text);
    return rc;
}

int mb_setup_apply_pretrained(mb_config *cfg, const struct mb_dist *d)
{
    const char *key = "checkpoint.pretrained_checkpoint";
    char *file = NULL, *text = NULL;

    if (!mb_config_has(cfg, key))
        return 0;
    if (mb_ckpt_resolve(mb_config_str(cfg, key), &file) < 0)
        return -1;
    if (!file)
        return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key),
                          "%s: no checkpoint there (no such file, or no 'latest')",
                          mb_config_str(cfg, key));
    mb_ckpt_reader *r = mb_ckpt_reader_open(d, file);
    int rc = r ? mb_ckpt_reader_attr(r, "model_config", &text) : -1;
    mb_ckpt_reader_close(r);
    struct mb_model_config mc;
    mb_json *obj = rc == 0 ? mb_json_parse(text, strlen(text), file) : NULL;
    rc = obj ? mb_model_config_from_json(&mc, obj, file) : -1;
    mb_json_free(obj);
    free(text);
    /* the checkpoint's values, validated, with the derived sizes written out */
    text = rc == 0 ? mb_model_config_to_json(&mc) : NULL;
    obj = text ? mb_json_parse(text, strlen(text), file) : NULL;
    void *it = NULL;
    const char *name;
    mb_json *value;
    /* real_vocab_size is no key: mb sets it when it pads a tokenizer's vocabulary, and
     * the trainer takes it from the checkpoint with the rest (mb_train_pretrained_config) */
    while (obj && rc == 0 && mb_json_next(obj, &it, &name, &value))
        if (strcmp(name, "real_vocab_size") != 0)
            rc = set_from_json(cfg, name, value, file);
    mb_json_free(obj);
    free(text);
    free(file);
    return rc;
}
