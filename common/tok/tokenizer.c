/* tok/tokenizer.c - the public tokenizer API: loading, the built-in byte tokenizer,
 * encoders and the staged encode (added tokens, normalizer, added tokens again,
 * pre-tokenizer, model, post-processor).
 */
#include "tok/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"
#include "tok/internal.h"

#define BYTES_EOD 256

void mb_ids_push(struct mb_ids *ids, int32_t id)
{
    if (ids->len == ids->cap)
        MB_GROW(ids->v, ids->cap, ids->len + 1);
    ids->v[ids->len++] = id;
}

void mb_ids_release(struct mb_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->len = ids->cap = 0;
}

/* "DIR/tokenizer.json" for a directory, else SPEC itself. */
static char *tokenizer_json_path(const char *spec)
{
    struct stat sb;

    if (stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *p = mb_xmalloc(strlen(spec) + 16);
        sprintf(p, "%s/tokenizer.json", spec);
        return p;
    }
    return mb_xstrdup(spec);
}

static int32_t id_of(const mb_tokenizer *t, const char *text)
{
    size_t len = strlen(text);

    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].len == len && memcmp(t->added[i].content, text, len) == 0)
            return t->added[i].id;
    /* special-token names are ASCII, spelled the same raw and byte-level */
    return mb_strmap_get(t->bpe.vocab, text, len);
}

/* eos_token from tokenizer_config.json beside PATH: a string or {"content": ...}. */
static int eos_from_config(mb_tokenizer *t, const char *json_path)
{
    char *cfg = mb_xmalloc(strlen(json_path) + 32);
    const char *slash = strrchr(json_path, '/');
    size_t dir = slash ? (size_t)(slash - json_path + 1) : 0;

    memcpy(cfg, json_path, dir);
    strcpy(cfg + dir, "tokenizer_config.json");
    if (!mb_fs_exists(cfg)) {
        free(cfg);
        return 0;
    }
    mb_json *root = mb_json_parse_file(cfg);
    if (!root) {
        free(cfg);
        return -1;
    }
    const mb_json *eos = mb_json_get(root, "eos_token");
    const char *name = mb_json_str(eos, NULL);
    if (!name)
        name = mb_json_str(mb_json_get(eos, "content"), NULL);
    int rc = 0;
    if (name && (t->eod = id_of(t, name)) < 0)
        rc = mb_err_set(MB_E_INVALID, cfg, "eos_token '%s' is not in the tokenizer", name);
    mb_json_free(root);
    free(cfg);
    return rc;
}

static void guess_eod(mb_tokenizer *t)
{
    static const char *names[] = { "<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eos|>" };

    for (size_t i = 0; i < MB_ARRAY_LEN(names) && t->eod < 0; i++)
        t->eod = id_of(t, names[i]);
}

static void describe(mb_tokenizer *t)
{
    snprintf(t->describe, sizeof t->describe, "%s BPE, %lld entries%s%s",
             t->bpe.byte_level ? "byte-level" : "character", (long long)t->vocab_size,
             t->norm ? ", normalizer" : "", t->nprefix + t->nsuffix ? ", adds specials" : "");
}

static mb_tokenizer *load_bytes(void)
{
    mb_tokenizer *t = mb_xcalloc(1, sizeof *t);

    t->is_bytes = 1;
    t->vocab_size = t->nids = 257;
    t->id_text = mb_xcalloc(257, sizeof *t->id_text);
    for (int b = 0; b < 256; b++) /* one-byte texts, for mb_tokenizer_id_text() */
        t->id_text[b] = mb_xstrndup((const char[]){ (char)b }, 1);
    t->eod = BYTES_EOD;
    snprintf(t->describe, sizeof t->describe, "bytes (256 byte ids, <|endoftext|> = 256)");
    return t;
}

mb_tokenizer *mb_tokenizer_load(const char *spec)
{
    if (strcmp(spec, "bytes") == 0)
        return load_bytes();
    mb_tokenizer *t = mb_xcalloc(1, sizeof *t);
    t->path = tokenizer_json_path(spec);
    t->eod = -1;
    mb_json *root = mb_json_parse_file(t->path);
    if (!root || tok_load_json(t, root, t->path) != 0 || eos_from_config(t, t->path) != 0) {
        mb_json_free(root);
        mb_tokenizer_free(t);
        return NULL;
    }
    mb_json_free(root);
    if (t->eod < 0)
        guess_eod(t);
    describe(t);
    return t;
}

void mb_tokenizer_free(mb_tokenizer *t)
{
    if (!t)
        return;
    tok_added_free(t);
    tok_norm_free(t->norm);
    free(t->norm);
    tok_pretok_free(t->pretok);
    free(t->pretok);
    tok_bpe_free(&t->bpe);
    tok_dec_free(t->dec);
    free(t->dec);
    free(t->dec_err);
    free(t->prefix);
    free(t->suffix);
    for (size_t i = 0; i < t->nregexes; i++)
        mb_regex_free(t->regexes[i]);
    free(t->regexes);
    for (int64_t i = 0; t->id_text && i < t->nids; i++)
        free(t->id_text[i]);
    free(t->id_text);
    free(t->id_len);
    free(t->path);
    free(t);
}

int64_t mb_tokenizer_vocab_size(const mb_tokenizer *t)
{
    return t->vocab_size;
}

int32_t mb_tokenizer_eod(const mb_tokenizer *t)
{
    return t->eod;
}

const char *mb_tokenizer_describe(const mb_tokenizer *t)
{
    return t->describe;
}

const char *mb_tokenizer_id_text(const mb_tokenizer *t, int32_t id, size_t *len)
{
    static const char eod[] = "<|endoftext|>";

    if (id < 0 || id >= t->nids)
        return NULL;
    if (t->is_bytes) {
        if (id == BYTES_EOD) {
            *len = sizeof eod - 1;
            return eod;
        }
        *len = 1;
        return t->id_text[id];
    }
    *len = t->id_len[id];
    return t->id_text[id];
}

mb_tok_encoder *mb_tok_encoder_new(const mb_tokenizer *t)
{
    mb_tok_encoder *e = mb_xcalloc(1, sizeof *e);

    e->t = t;
    e->re_states = mb_xcalloc(t->nregexes + 1, sizeof *e->re_states);
    for (size_t i = 0; i < t->nregexes; i++)
        e->re_states[i] = mb_regex_state_new(t->regexes[i]);
    e->bpe = tok_bpe_scratch_new();
    return e;
}

void mb_tok_encoder_free(mb_tok_encoder *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->t->nregexes; i++)
        mb_regex_state_free(e->re_states[i]);
    free(e->re_states);
    mb_buf_release(&e->arena);
    mb_buf_release(&e->tmp);
    free(e->a.v);
    free(e->b.v);
    free(e->segs);
    tok_bpe_scratch_free(e->bpe);
    free(e);
}

static void swap_pieces(mb_tok_encoder *e)
{
    struct tok_pieces t = e->a;
    e->a = e->b;
    e->b = t;
}

/* Stages run from e->a into e->b, then swap, so the current list is always e->a. */
static void split_text(mb_tok_encoder *e, const char *text, size_t len)
{
    const mb_tokenizer *t = e->t;

    mb_buf_reset(&e->arena);
    mb_buf_add(&e->arena, text, len);
    e->a.n = 0;
    tok_pieces_push(&e->a, 0, (uint32_t)len, 0, -1);
    if (t->added_raw.n) {
        tok_added_split(e, &t->added_raw, &e->a, &e->b);
        swap_pieces(e);
    }
    if (t->norm) {
        tok_norm_apply(e, t->norm, &e->a, &e->b);
        swap_pieces(e);
        if (t->added_norm.n) {
            tok_added_split(e, &t->added_norm, &e->a, &e->b);
            swap_pieces(e);
        }
    }
    if (t->pretok) {
        tok_pretok_apply(e, t->pretok, &e->a, &e->b);
        swap_pieces(e);
    }
}

void mb_tok_encode(mb_tok_encoder *e, const char *text, size_t len, int add_special,
                   struct mb_ids *out)
{
    const mb_tokenizer *t = e->t;

    if (t->is_bytes) {
        for (size_t i = 0; i < len; i++)
            mb_ids_push(out, (unsigned char)text[i]);
        return;
    }
    if (add_special)
        for (size_t i = 0; i < t->nprefix; i++)
            mb_ids_push(out, t->prefix[i]);
    split_text(e, text, len);
    for (size_t i = 0; i < e->a.n; i++) {
        const struct tok_piece *p = &e->a.v[i];
        if (p->added_id >= 0)
            mb_ids_push(out, p->added_id);
        else
            tok_bpe_encode_word(e, e->arena.data + p->off, p->len, out);
    }
    if (add_special)
        for (size_t i = 0; i < t->nsuffix; i++)
            mb_ids_push(out, t->suffix[i]);
}
