/* tok/load.c - tokenizer.json (and tokenizer_config.json) into an mb_tokenizer.
 *
 * Every error names the file and the JSON path of the offending key, e.g.
 * "tokenizer.json: model.merges[12]".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "tok/internal.h"

int tok_add_regex(mb_tokenizer *t, const char *pattern, size_t len, const char *where)
{
    mb_regex *re = mb_regex_compile(pattern, len, where);

    if (!re)
        return -1;
    t->regexes = mb_xrealloc(t->regexes, (t->nregexes + 1) * sizeof *t->regexes);
    t->regexes[t->nregexes] = re;
    return (int)t->nregexes++;
}

/* A decoder mb cannot run does not stop encoding: the error is kept for decode. */
static int parse_decoder(mb_tokenizer *t, const mb_json *j, const char *where)
{
    t->dec = mb_xcalloc(1, sizeof *t->dec);
    if (tok_dec_parse(j, t->dec, where) == 0)
        return 0;
    t->dec_err = mb_xmalloc(sizeof *t->dec_err);
    mb_err_save(t->dec_err);
    mb_err_clear();
    tok_dec_free(t->dec);
    free(t->dec);
    t->dec = NULL;
    return 0;
}

static int parse_component(mb_tokenizer *t, const mb_json *root, const char *key,
                           const char *path)
{
    const mb_json *j = mb_json_get(root, key);
    char where[512];

    if (!j || mb_json_type_of(j) == MB_JSON_NULL)
        return 0;
    snprintf(where, sizeof where, "%s: %s", path, key);
    if (strcmp(key, "normalizer") == 0) {
        t->norm = mb_xcalloc(1, sizeof *t->norm);
        return tok_norm_parse(t, j, t->norm, where);
    }
    if (strcmp(key, "pre_tokenizer") == 0) {
        t->pretok = mb_xcalloc(1, sizeof *t->pretok);
        return tok_pretok_parse(t, j, t->pretok, where);
    }
    if (strcmp(key, "decoder") == 0)
        return parse_decoder(t, j, where);
    return tok_post_parse(t, j, where);
}

/* id -> text table over the model vocabulary and the added tokens. */
static void record_id_text(const char *key, size_t len, int32_t id, void *ctx)
{
    mb_tokenizer *t = ctx;

    if (id < t->nids && !t->id_text[id]) {
        t->id_text[id] = mb_xstrndup(key, len);
        t->id_len[id] = len;
    }
}

static void build_id_table(mb_tokenizer *t)
{
    int64_t nids = 0, in_vocab_only = 0;

    for (size_t i = 0; i < t->nadded; i++)
        nids = MB_MAX(nids, (int64_t)t->added[i].id + 1);
    nids = MB_MAX(nids, t->nids);
    t->nids = nids;
    t->id_text = mb_xcalloc((size_t)nids, sizeof *t->id_text);
    t->id_len = mb_xcalloc((size_t)nids, sizeof *t->id_len);
    for (size_t i = 0; i < t->nadded; i++) {
        struct tok_added_token *a = &t->added[i];
        if (!t->id_text[a->id]) {
            t->id_text[a->id] = mb_xstrndup(a->content, a->len);
            t->id_len[a->id] = a->len;
        }
    }
    mb_strmap_each(t->bpe.vocab, record_id_text, t);
    /* HF get_vocab_size(with_added_tokens=True): model entries + added tokens the
     * model does not have. */
    in_vocab_only = (int64_t)mb_strmap_count(t->bpe.vocab);
    for (size_t i = 0; i < t->nadded; i++)
        if (mb_strmap_get(t->bpe.vocab, t->added[i].content, t->added[i].len) != t->added[i].id)
            in_vocab_only++;
    t->vocab_size = in_vocab_only;
}

int tok_load_json(mb_tokenizer *t, const mb_json *root, const char *path)
{
    char where[512];
    const mb_json *model = mb_json_get(root, "model");

    if (mb_json_type_of(root) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_PARSE, path, "not a tokenizer.json (top level is not an object)");
    if (!model)
        return mb_err_set(MB_E_INVALID, path, "no 'model' key");
    snprintf(where, sizeof where, "%s: model", path);
    if (parse_component(t, root, "normalizer", path) != 0 ||
        parse_component(t, root, "pre_tokenizer", path) != 0)
        return -1;
    t->bpe.byte_level = t->pretok && tok_pretok_is_byte_level(t->pretok);
    if (tok_bpe_parse(t, model, where) != 0)
        return -1;
    snprintf(where, sizeof where, "%s: added_tokens", path);
    if (tok_added_parse(t, mb_json_get(root, "added_tokens"), where) != 0)
        return -1;
    if (parse_component(t, root, "post_processor", path) != 0 ||
        parse_component(t, root, "decoder", path) != 0)
        return -1;
    build_id_table(t);
    return 0;
}
