/* tok/decode.c - token ids back to text, as HF tokenizers' decode(ids,
 * skip_special_tokens=False) does.
 *
 * HF turns each id into its token string (an added token's content, else the model
 * vocabulary's entry, byte-level entries spelled with GPT-2's byte table; ids without a
 * token are skipped), runs the decoder over the list of strings and joins the result
 * (with "" after a decoder, with " " when the tokenizer has none). Decoders:
 *   ByteLevel     every token's characters back to bytes through the table (a token with
 *                 a character outside it gives its own UTF-8 bytes), all tokens into one
 *                 string, ill-formed UTF-8 replaced by U+FFFD per maximal subpart
 *   Replace       literal pattern -> content, in each token
 *   ByteFallback  runs of <0xHH> tokens -> their bytes when they form valid UTF-8, else
 *                 one U+FFFD per byte token
 *   Fuse          all tokens into one
 *   Strip         up to `start` leading and `stop` trailing `content` characters per token
 *   Metaspace     the replacement character -> " "; dropped in the first token unless
 *                 prepend_scheme is "never"
 *   Sequence      the above in order
 * Anything else is recorded at load time and reported by the first decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/bytelevel.h"
#include "tok/internal.h"

/* ---- parsing -------------------------------------------------------------- */

static int parse_str(const mb_json *j, const char *key, char **s, size_t *len,
                     const char *where)
{
    const char *v = mb_json_str(mb_json_get(j, key), len);
    if (!v)
        return mb_err_set(MB_E_INVALID, where, "'%s' is missing or not a string", key);
    *s = mb_xstrndup(v, *len);
    return 0;
}

static int parse_replace(const mb_json *j, struct tok_dec *d, const char *where)
{
    const mb_json *pat = mb_json_get(j, "pattern");
    if (pat && mb_json_get(pat, "Regex"))
        return mb_err_set(MB_E_UNSUPPORTED, where, "Replace decoder with a Regex pattern is not "
                          "supported");
    if (!pat || parse_str(pat, "String", &d->pattern, &d->pattern_len, where) < 0 ||
        parse_str(j, "content", &d->content, &d->content_len, where) < 0)
        return mb_err_set(MB_E_INVALID, where, "Replace decoder needs pattern.String and content");
    if (d->pattern_len == 0)
        return mb_err_set(MB_E_INVALID, where, "Replace decoder with an empty pattern");
    return 0;
}

static int parse_strip(const mb_json *j, struct tok_dec *d, const char *where)
{
    if (parse_str(j, "content", &d->content, &d->content_len, where) < 0)
        return -1;
    if (d->content_len == 0 || mb_utf8_seq_len((const unsigned char *)d->content,
                                               d->content_len, &(int){ 0 }) !=
                                   (int)d->content_len)
        return mb_err_set(MB_E_INVALID, where, "Strip decoder content must be one character");
    d->start = (int)mb_json_int(mb_json_get(j, "start"));
    d->stop = (int)mb_json_int(mb_json_get(j, "stop"));
    return 0;
}

static int parse_metaspace(const mb_json *j, struct tok_dec *d, const char *where)
{
    if (parse_str(j, "replacement", &d->pattern, &d->pattern_len, where) < 0)
        return -1;
    const char *scheme = mb_json_str(mb_json_get(j, "prepend_scheme"), &(size_t){ 0 });
    const mb_json *aps = mb_json_get(j, "add_prefix_space"); /* the older spelling */
    if (scheme)
        d->drop_first = strcmp(scheme, "never") != 0;
    else
        d->drop_first = !aps || mb_json_is_true(aps);
    return 0;
}

int tok_dec_parse(const mb_json *j, struct tok_dec *d, const char *where)
{
    const char *type = mb_json_str(mb_json_get(j, "type"), &(size_t){ 0 });
    char sub[512];
    if (!type)
        return mb_err_set(MB_E_INVALID, where, "decoder without a 'type'");
    if (strcmp(type, "ByteLevel") == 0)
        d->kind = TOK_DEC_BYTELEVEL;
    else if (strcmp(type, "ByteFallback") == 0)
        d->kind = TOK_DEC_BYTEFALLBACK;
    else if (strcmp(type, "Fuse") == 0)
        d->kind = TOK_DEC_FUSE;
    else if (strcmp(type, "Replace") == 0)
        return d->kind = TOK_DEC_REPLACE, parse_replace(j, d, where);
    else if (strcmp(type, "Strip") == 0)
        return d->kind = TOK_DEC_STRIP, parse_strip(j, d, where);
    else if (strcmp(type, "Metaspace") == 0)
        return d->kind = TOK_DEC_METASPACE, parse_metaspace(j, d, where);
    else if (strcmp(type, "Sequence") == 0) {
        const mb_json *kids = mb_json_get(j, "decoders");
        d->kind = TOK_DEC_SEQUENCE;
        d->nkids = mb_json_len(kids);
        d->kids = mb_xcalloc(d->nkids + 1, sizeof(*d->kids));
        for (size_t i = 0; i < d->nkids; i++) {
            snprintf(sub, sizeof(sub), "%s.decoders[%zu]", where, i);
            if (tok_dec_parse(mb_json_at(kids, i), &d->kids[i], sub) < 0)
                return -1;
        }
    } else
        return mb_err_set(MB_E_UNSUPPORTED, where, "decoder type '%s' is not supported", type);
    return 0;
}

void tok_dec_free(struct tok_dec *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nkids; i++)
        tok_dec_free(&d->kids[i]);
    free(d->kids);
    free(d->pattern);
    free(d->content);
}

/* ---- the list of token strings ---------------------------------------------- */

struct strs {
    struct mb_buf *v;
    size_t n, cap;
};

static struct mb_buf *strs_push(struct strs *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = mb_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n] = (struct mb_buf)MB_BUF_INIT;
    return &s->v[s->n++];
}

static void strs_release(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        mb_buf_release(&s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Replace IN by OUT (IN released). */
static void strs_swap(struct strs *in, struct strs *out)
{
    strs_release(in);
    *in = *out;
    memset(out, 0, sizeof(*out));
}

/* Length of the character at S (1 for an ill-formed byte). */
static size_t char_len(const char *s, size_t len)
{
    int bad;
    int n = mb_utf8_seq_len((const unsigned char *)s, len, &bad);
    return n > 0 ? (size_t)n : 1;
}

/* ---- decoders ---------------------------------------------------------------- */

static void dec_bytelevel(struct strs *s)
{
    struct mb_buf bytes = MB_BUF_INIT, tmp = MB_BUF_INIT;
    for (size_t i = 0; i < s->n; i++) {
        mb_buf_reset(&tmp);
        if (mb_bytelevel_decode(s->v[i].data, s->v[i].len, &tmp) == 0)
            mb_buf_add(&bytes, tmp.data, tmp.len);
        else
            mb_buf_add(&bytes, s->v[i].data, s->v[i].len);
    }
    struct strs out = { 0 };
    mb_utf8_repair(bytes.data ? bytes.data : "", bytes.len, strs_push(&out));
    strs_swap(s, &out);
    mb_buf_release(&bytes);
    mb_buf_release(&tmp);
}

static void replace_in(struct mb_buf *dst, const struct mb_buf *src, const char *pat,
                       size_t plen, const char *with, size_t wlen)
{
    size_t i = 0;
    while (i < src->len) {
        if (src->len - i >= plen && memcmp(src->data + i, pat, plen) == 0) {
            mb_buf_add(dst, with, wlen);
            i += plen;
        } else {
            mb_buf_addc(dst, src->data[i++]);
        }
    }
}

static void dec_replace(struct strs *s, const char *pat, size_t plen, const char *with,
                        size_t wlen)
{
    struct strs out = { 0 };
    for (size_t i = 0; i < s->n; i++)
        replace_in(strs_push(&out), &s->v[i], pat, plen, with, wlen);
    strs_swap(s, &out);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xHH>" token, or -1. */
static int fallback_byte(const struct mb_buf *b)
{
    if (b->len != 6 || memcmp(b->data, "<0x", 3) != 0 || b->data[5] != '>')
        return -1;
    int hi = hex_digit(b->data[3]), lo = hex_digit(b->data[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* The pending bytes as one string when valid UTF-8, else one U+FFFD per byte token. */
static void flush_bytes(struct strs *out, struct mb_buf *pending)
{
    if (pending->len == 0)
        return;
    if (mb_utf8_is_valid(pending->data, pending->len)) {
        mb_buf_add(strs_push(out), pending->data, pending->len);
    } else {
        for (size_t i = 0; i < pending->len; i++)
            mb_buf_add(strs_push(out), "\xEF\xBF\xBD", 3);
    }
    mb_buf_reset(pending);
}

static void dec_bytefallback(struct strs *s)
{
    struct strs out = { 0 };
    struct mb_buf pending = MB_BUF_INIT;
    for (size_t i = 0; i < s->n; i++) {
        int byte = fallback_byte(&s->v[i]);
        if (byte >= 0) {
            mb_buf_addc(&pending, (char)byte);
            continue;
        }
        flush_bytes(&out, &pending);
        mb_buf_add(strs_push(&out), s->v[i].data, s->v[i].len);
    }
    flush_bytes(&out, &pending);
    mb_buf_release(&pending);
    strs_swap(s, &out);
}

static void dec_fuse(struct strs *s)
{
    struct strs out = { 0 };
    struct mb_buf *all = strs_push(&out);
    for (size_t i = 0; i < s->n; i++)
        mb_buf_add(all, s->v[i].data, s->v[i].len);
    strs_swap(s, &out);
}

/* HF's Strip: counts characters, then keeps (byte length - cuts) characters after the
 * leading cut (its own arithmetic, kept so the output is the same). */
static void strip_one(struct mb_buf *dst, const struct mb_buf *src, const struct tok_dec *d)
{
    size_t nchars = 0, start_cut = 0, stop_cut = 0, c = d->content_len;
    size_t *offs = mb_xmalloc((src->len + 1) * sizeof(*offs));
    for (size_t i = 0; i < src->len; i += char_len(src->data + i, src->len - i))
        offs[nchars++] = i;
    offs[nchars] = src->len;
    while (start_cut < (size_t)d->start && start_cut < nchars &&
           offs[start_cut + 1] - offs[start_cut] == c &&
           memcmp(src->data + offs[start_cut], d->content, c) == 0)
        start_cut++;
    while (stop_cut < (size_t)d->stop && stop_cut < nchars &&
           offs[nchars - stop_cut] - offs[nchars - stop_cut - 1] == c &&
           memcmp(src->data + offs[nchars - stop_cut - 1], d->content, c) == 0)
        stop_cut++;
    size_t take = src->len >= start_cut + stop_cut ? src->len - start_cut - stop_cut : 0;
    size_t end = MB_MIN(nchars, start_cut + take);
    if (end > start_cut)
        mb_buf_add(dst, src->data + offs[start_cut], offs[end] - offs[start_cut]);
    free(offs);
}

static void dec_strip(struct strs *s, const struct tok_dec *d)
{
    struct strs out = { 0 };
    for (size_t i = 0; i < s->n; i++)
        strip_one(strs_push(&out), &s->v[i], d);
    strs_swap(s, &out);
}

static void dec_metaspace(struct strs *s, const struct tok_dec *d)
{
    struct strs out = { 0 };
    for (size_t i = 0; i < s->n; i++)
        replace_in(strs_push(&out), &s->v[i], d->pattern, d->pattern_len, " ",
                   i == 0 && d->drop_first ? 0 : 1);
    strs_swap(s, &out);
}

static void dec_apply(const struct tok_dec *d, struct strs *s)
{
    switch (d->kind) {
    case TOK_DEC_BYTELEVEL: dec_bytelevel(s); break;
    case TOK_DEC_REPLACE:
        dec_replace(s, d->pattern, d->pattern_len, d->content, d->content_len);
        break;
    case TOK_DEC_BYTEFALLBACK: dec_bytefallback(s); break;
    case TOK_DEC_FUSE: dec_fuse(s); break;
    case TOK_DEC_STRIP: dec_strip(s, d); break;
    case TOK_DEC_METASPACE: dec_metaspace(s, d); break;
    case TOK_DEC_SEQUENCE:
        for (size_t i = 0; i < d->nkids; i++)
            dec_apply(&d->kids[i], s);
        break;
    }
}

/* ---- the entry points ------------------------------------------------------- */

static const struct tok_added_token *added_of(const mb_tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->nadded; i++)
        if (t->added[i].id == id)
            return &t->added[i];
    return NULL;
}

/* HF's token string of ID into a new entry of S; 0 if ID has none (skipped). */
static int token_string(const mb_tokenizer *t, int32_t id, struct strs *s)
{
    size_t len;
    const char *text = mb_tokenizer_id_text(t, id, &len);
    if (!text)
        return 0;
    const struct tok_added_token *a = added_of(t, id);
    struct mb_buf *b = strs_push(s);
    if (a)
        mb_buf_add(b, a->content, a->len);
    else if (t->bpe.byte_level)
        mb_bytelevel_encode(text, len, b);
    else
        mb_buf_add(b, text, len);
    return 1;
}

int mb_tokenizer_can_decode(const mb_tokenizer *t)
{
    if (!t->dec_err)
        return 0;
    mb_err_restore(t->dec_err);
    return -1;
}

/* The built-in byte tokenizer: the bytes themselves, <|endoftext|> for 256. */
static void decode_bytes(const mb_tokenizer *t, const int32_t *ids, size_t n,
                         struct mb_buf *out)
{
    struct mb_buf raw = MB_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *text = mb_tokenizer_id_text(t, ids[i], &len);
        if (text)
            mb_buf_add(&raw, text, len);
    }
    mb_utf8_repair(raw.data ? raw.data : "", raw.len, out);
    mb_buf_release(&raw);
}

int mb_tok_decode(const mb_tokenizer *t, const int32_t *ids, size_t n, struct mb_buf *out)
{
    if (mb_tokenizer_can_decode(t) < 0)
        return -1;
    if (t->is_bytes) {
        decode_bytes(t, ids, n, out);
        return 0;
    }
    struct strs s = { 0 };
    for (size_t i = 0; i < n; i++)
        token_string(t, ids[i], &s);
    if (t->dec)
        dec_apply(t->dec, &s);
    for (size_t i = 0; i < s.n; i++) {
        if (i > 0 && !t->dec)
            mb_buf_addc(out, ' ');
        mb_buf_add(out, s.v[i].data, s.v[i].len);
    }
    strs_release(&s);
    return 0;
}
