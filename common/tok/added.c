/* tok/added.c - added and special tokens: parsing and the split before the model.
 *
 * HF matches added tokens leftmost-longest (Aho-Corasick): at the first position where
 * any token matches, the longest one wins. Tokens with "normalized": false are matched
 * on the raw text, the others on the normalized pieces. Added-token sets are small
 * (tens to a few hundred), so a first-byte filter plus a longest-first list is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/internal.h"

void tok_pieces_push(struct tok_pieces *p, uint32_t off, uint32_t len, uint32_t orig,
                     int32_t added_id)
{
    MB_GROW(p->v, p->cap, p->n + 1);
    p->v[p->n++] = (struct tok_piece){ off, len, orig, added_id };
}

static int by_length_desc(const void *a, const void *b)
{
    const struct tok_added_token *x = *(struct tok_added_token *const *)a;
    const struct tok_added_token *y = *(struct tok_added_token *const *)b;

    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static void build_set(mb_tokenizer *t, struct tok_added_set *set, int normalized)
{
    set->tokens = mb_xcalloc(t->nadded, sizeof *set->tokens);
    for (size_t i = 0; i < t->nadded; i++) {
        struct tok_added_token *a = &t->added[i];
        if (a->normalized != normalized || a->len == 0)
            continue;
        set->tokens[set->n++] = a;
        set->first_byte[(unsigned char)a->content[0]] = 1;
    }
    qsort(set->tokens, set->n, sizeof *set->tokens, by_length_desc);
}

static int parse_one(struct tok_added_token *a, const mb_json *j, const char *where)
{
    size_t len;
    const char *content = mb_json_str(mb_json_get(j, "content"), &len);
    const mb_json *id = mb_json_get(j, "id");

    if (!content || !id || mb_json_type_of(id) != MB_JSON_INT)
        return mb_err_set(MB_E_INVALID, where, "needs a string 'content' and an integer 'id'");
    /* checked before the int32 cast: 2^31 would wrap to a negative index */
    if (mb_json_int(id) < 0 || mb_json_int(id) > TOK_MAX_ID)
        return mb_err_set(MB_E_INVALID, where, "id %lld is not a valid id (0 to %d)",
                          (long long)mb_json_int(id), TOK_MAX_ID);
    a->content = mb_xstrndup(content, len);
    a->len = len;
    a->id = (int32_t)mb_json_int(id);
    a->special = mb_json_is_true(mb_json_get(j, "special"));
    a->lstrip = mb_json_is_true(mb_json_get(j, "lstrip"));
    a->rstrip = mb_json_is_true(mb_json_get(j, "rstrip"));
    a->single_word = mb_json_is_true(mb_json_get(j, "single_word"));
    /* HF's default for a missing "normalized" is !special */
    const mb_json *norm = mb_json_get(j, "normalized");
    a->normalized = norm ? mb_json_is_true(norm) : !a->special;
    return 0;
}

int tok_added_parse(mb_tokenizer *t, const mb_json *arr, const char *where)
{
    char at[560];

    if (arr && mb_json_type_of(arr) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "is not an array");
    t->nadded = mb_json_len(arr);
    t->added = mb_xcalloc(t->nadded, sizeof *t->added);
    for (size_t i = 0; i < t->nadded; i++) {
        snprintf(at, sizeof at, "%s[%zu]", where, i);
        if (parse_one(&t->added[i], mb_json_at(arr, i), at) != 0)
            return -1;
    }
    /* without a normalizer both sets see the same text: match all on the raw pass */
    if (!t->norm)
        for (size_t i = 0; i < t->nadded; i++)
            t->added[i].normalized = 0;
    build_set(t, &t->added_raw, 0);
    build_set(t, &t->added_norm, 1);
    return 0;
}

void tok_added_free(mb_tokenizer *t)
{
    for (size_t i = 0; i < t->nadded; i++)
        free(t->added[i].content);
    free(t->added);
    free(t->added_raw.tokens);
    free(t->added_norm.tokens);
}

/* ---- matching ----------------------------------------------------------- */

/* single_word boundaries: HF asks whether the neighbouring character is a word
 * character; ASCII alphanumerics, '_' and every non-ASCII character count as one. */
static int is_word_byte(unsigned char c)
{
    return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int is_word_char_before(const char *s, size_t pos)
{
    return pos > 0 && is_word_byte((unsigned char)s[pos - 1]);
}

static int is_word_char_at(const char *s, size_t len, size_t pos)
{
    return pos < len && is_word_byte((unsigned char)s[pos]);
}

/* Length of the White_Space character ending at S[end - 1], or 0. */
static size_t space_before(const char *s, size_t end)
{
    size_t i = end;

    if (i == 0)
        return 0;
    do
        i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return mb_utf8_space_len(s + i, end - i) == end - i ? end - i : 0;
}

/* The longest token of SET matching S at POS, or NULL. */
static const struct tok_added_token *match_at(const struct tok_added_set *set, const char *s,
                                              size_t len, size_t pos)
{
    for (size_t k = 0; k < set->n; k++) {
        const struct tok_added_token *a = set->tokens[k];
        if (a->len <= len - pos && memcmp(s + pos, a->content, a->len) == 0) {
            if (a->single_word &&
                (is_word_char_before(s, pos) || is_word_char_at(s, len, pos + a->len)))
                continue;
            return a;
        }
    }
    return NULL;
}

static void split_piece(mb_tok_encoder *e, const struct tok_added_set *set,
                        const struct tok_piece *p, struct tok_pieces *out)
{
    const char *s = e->arena.data + p->off;
    size_t len = p->len, done = 0;

    for (size_t pos = 0; pos < len; pos++) {
        if (!set->first_byte[(unsigned char)s[pos]])
            continue;
        const struct tok_added_token *a = match_at(set, s, len, pos);
        if (!a)
            continue;
        size_t start = pos, stop = pos + a->len;
        size_t k;
        if (a->lstrip)
            while (start > done && (k = space_before(s, start)) > 0)
                start -= k;
        if (a->rstrip)
            while (stop < len && (k = mb_utf8_space_len(s + stop, len - stop)) > 0)
                stop += k;
        if (start > done)
            tok_pieces_push(out, p->off + (uint32_t)done, (uint32_t)(start - done),
                            p->orig + (uint32_t)done, -1);
        tok_pieces_push(out, p->off + (uint32_t)start, (uint32_t)(stop - start),
                        p->orig + (uint32_t)start, a->id);
        done = stop;
        pos = stop - 1;
    }
    if (done < len)
        tok_pieces_push(out, p->off + (uint32_t)done, (uint32_t)(len - done),
                        p->orig + (uint32_t)done, -1);
}

void tok_added_split(mb_tok_encoder *e, const struct tok_added_set *set,
                     const struct tok_pieces *in, struct tok_pieces *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct tok_piece *p = &in->v[i];
        if (p->added_id >= 0 || set->n == 0)
            tok_pieces_push(out, p->off, p->len, p->orig, p->added_id);
        else
            split_piece(e, set, p, out);
    }
}
