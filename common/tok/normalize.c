/* tok/normalize.c - HF normalizers: Unicode forms (utf8proc), Lowercase, Strip,
 * Prepend, Replace and Sequence.
 *
 * Each normalizer maps a piece's text to new text appended to the encoder arena. HF
 * normalizes every piece left between added tokens separately, which is why a Llama-2
 * style Prepend("▁") also lands after a special token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/internal.h"

static int parse_pattern(mb_tokenizer *t, const mb_json *pat, struct tok_norm *n,
                         const char *where)
{
    size_t len;
    const char *s;

    if ((s = mb_json_str(mb_json_get(pat, "String"), &len))) {
        n->regex = -1;
        n->text = mb_xstrndup(s, len);
        n->text_len = len;
        return 0;
    }
    if ((s = mb_json_str(mb_json_get(pat, "Regex"), &len))) {
        n->regex = tok_add_regex(t, s, len, where);
        return n->regex < 0 ? -1 : 0;
    }
    return mb_err_set(MB_E_INVALID, where, "pattern needs a 'String' or a 'Regex'");
}

static int parse_sequence(mb_tokenizer *t, const mb_json *list, struct tok_norm *n,
                          const char *where)
{
    char at[600];

    if (!list || mb_json_type_of(list) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "Sequence needs a 'normalizers' array");
    n->nkids = mb_json_len(list);
    n->kids = mb_xcalloc(n->nkids, sizeof *n->kids);
    for (size_t i = 0; i < n->nkids; i++) {
        snprintf(at, sizeof at, "%s.normalizers[%zu]", where, i);
        if (tok_norm_parse(t, mb_json_at(list, i), &n->kids[i], at) != 0)
            return -1;
    }
    return 0;
}

int tok_norm_parse(mb_tokenizer *t, const mb_json *j, struct tok_norm *n, const char *where)
{
    static const struct { const char *name; enum tok_norm_kind kind; } simple[] = {
        { "NFC", TOK_NORM_NFC },   { "NFD", TOK_NORM_NFD },
        { "NFKC", TOK_NORM_NFKC }, { "NFKD", TOK_NORM_NFKD },
        { "Lowercase", TOK_NORM_LOWERCASE },
    };
    const char *type = mb_json_str(mb_json_get(j, "type"), NULL);
    size_t len;

    n->regex = -1;
    if (!type)
        return mb_err_set(MB_E_INVALID, where, "normalizer has no 'type'");
    for (size_t i = 0; i < MB_ARRAY_LEN(simple); i++) {
        if (strcmp(type, simple[i].name) == 0) {
            n->kind = simple[i].kind;
            return 0;
        }
    }
    if (strcmp(type, "Sequence") == 0) {
        n->kind = TOK_NORM_SEQUENCE;
        return parse_sequence(t, mb_json_get(j, "normalizers"), n, where);
    }
    if (strcmp(type, "Strip") == 0) {
        n->kind = TOK_NORM_STRIP;
        n->left = mb_json_is_true(mb_json_get(j, "strip_left"));
        n->right = mb_json_is_true(mb_json_get(j, "strip_right"));
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *s = mb_json_str(mb_json_get(j, "prepend"), &len);
        if (!s)
            return mb_err_set(MB_E_INVALID, where, "Prepend needs a string 'prepend'");
        n->kind = TOK_NORM_PREPEND;
        n->text = mb_xstrndup(s, len);
        n->text_len = len;
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        const char *c = mb_json_str(mb_json_get(j, "content"), &len);
        if (!c)
            return mb_err_set(MB_E_INVALID, where, "Replace needs a string 'content'");
        n->kind = TOK_NORM_REPLACE;
        n->content = mb_xstrndup(c, len);
        n->content_len = len;
        return parse_pattern(t, mb_json_get(j, "pattern"), n, where);
    }
    return mb_err_set(MB_E_UNSUPPORTED, where, "normalizer type '%s' is not supported", type);
}

void tok_norm_free(struct tok_norm *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        tok_norm_free(&n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n->content);
}

/* ---- applying ----------------------------------------------------------- */

static int is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

static void unicode_form(enum tok_norm_kind kind, const char *s, size_t len, struct mb_buf *out)
{
    static const utf8proc_option_t forms[] = {
        [TOK_NORM_NFC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE,
        [TOK_NORM_NFD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
        [TOK_NORM_NFKC] = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
        [TOK_NORM_NFKD] = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
    };
    utf8proc_uint8_t *res = NULL;

    if (is_ascii(s, len)) { /* every normal form of ASCII is itself */
        mb_buf_add(out, s, len);
        return;
    }
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &res,
                                      forms[kind]);
    if (n < 0) { /* cannot happen on valid UTF-8; keep the text rather than lose it */
        mb_buf_add(out, s, len);
        return;
    }
    mb_buf_add(out, res, (size_t)n);
    free(res);
}

static void lowercase(const char *s, size_t len, struct mb_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        char enc[4];
        i += (size_t)mb_utf8_decode(p + i, &cp);
        int n = mb_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        mb_buf_add(out, enc, (size_t)n);
    }
}

static void strip(const struct tok_norm *n, const char *s, size_t len, struct mb_buf *out)
{
    size_t start = 0, end = len, k;

    while (n->left && start < end && (k = mb_utf8_space_len(s + start, end - start)) > 0)
        start += k;
    while (n->right && end > start) {
        size_t i = end - 1;
        while (i > start && ((unsigned char)s[i] & 0xC0) == 0x80)
            i--;
        if (mb_utf8_space_len(s + i, end - i) != end - i)
            break;
        end = i;
    }
    mb_buf_add(out, s + start, end - start);
}

static void replace(mb_tok_encoder *e, const struct tok_norm *n, const char *s, size_t len,
                    struct mb_buf *out)
{
    size_t pos = 0, start, end;

    for (;;) {
        if (n->regex >= 0) {
            if (!mb_regex_find(e->t->regexes[n->regex], e->re_states[n->regex], s, len, pos,
                               &start, &end) || end == start)
                break;
        } else {
            const char *hit = n->text_len ? memmem(s + pos, len - pos, n->text, n->text_len) : NULL;
            if (!hit)
                break;
            start = (size_t)(hit - s);
            end = start + n->text_len;
        }
        mb_buf_add(out, s + pos, start - pos);
        mb_buf_add(out, n->content, n->content_len);
        pos = end;
    }
    mb_buf_add(out, s + pos, len - pos);
}

/* Normalize S[len] with N into OUT (a scratch buffer distinct from the arena). */
static void normalize_text(mb_tok_encoder *e, const struct tok_norm *n, const char *s, size_t len,
                           struct mb_buf *out)
{
    switch (n->kind) {
    case TOK_NORM_NFC:
    case TOK_NORM_NFD:
    case TOK_NORM_NFKC:
    case TOK_NORM_NFKD:
        unicode_form(n->kind, s, len, out);
        return;
    case TOK_NORM_LOWERCASE:
        lowercase(s, len, out);
        return;
    case TOK_NORM_STRIP:
        strip(n, s, len, out);
        return;
    case TOK_NORM_PREPEND:
        if (len > 0) /* HF prepends to non-empty text only */
            mb_buf_add(out, n->text, n->text_len);
        mb_buf_add(out, s, len);
        return;
    case TOK_NORM_REPLACE:
        replace(e, n, s, len, out);
        return;
    case TOK_NORM_SEQUENCE: {
        struct mb_buf cur = MB_BUF_INIT, next = MB_BUF_INIT;
        mb_buf_add(&cur, s, len);
        for (size_t i = 0; i < n->nkids; i++) {
            mb_buf_reset(&next);
            normalize_text(e, &n->kids[i], cur.data, cur.len, &next);
            struct mb_buf swap = cur;
            cur = next;
            next = swap;
        }
        mb_buf_add(out, cur.data, cur.len);
        mb_buf_release(&cur);
        mb_buf_release(&next);
        return;
    }
    }
}

void tok_norm_apply(mb_tok_encoder *e, const struct tok_norm *n, const struct tok_pieces *in,
                    struct tok_pieces *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct tok_piece *p = &in->v[i];
        if (p->added_id >= 0) {
            tok_pieces_push(out, p->off, p->len, p->orig, p->added_id);
            continue;
        }
        mb_buf_reset(&e->tmp);
        normalize_text(e, n, e->arena.data + p->off, p->len, &e->tmp);
        uint32_t off = (uint32_t)e->arena.len;
        mb_buf_add(&e->arena, e->tmp.data, e->tmp.len);
        tok_pieces_push(out, off, (uint32_t)e->tmp.len, p->orig, -1);
    }
}
