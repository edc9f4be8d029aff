/* tok/pretok.c - HF pre-tokenizers: ByteLevel, Split, Metaspace, Digits, Whitespace,
 * WhitespaceSplit and Sequence.
 *
 * All splitting goes through one routine that mirrors HF's NormalizedString::split: the
 * text is cut into alternating gap / match segments, "invert" swaps the two roles, and
 * the behaviour (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)
 * decides which segments survive and which are glued together. Empty pieces are dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/internal.h"

/* GPT-2's pattern, used by ByteLevel when use_regex is true (formats.md 3.5). */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char whitespace_regex[] = "\\w+|[^\\w\\s]+";
static const char whitespace_split_regex[] = "\\s+";

int tok_pretok_is_byte_level(const struct tok_pretok *p)
{
    if (p->kind == TOK_PRE_BYTELEVEL)
        return 1;
    for (size_t i = 0; i < p->nkids; i++)
        if (tok_pretok_is_byte_level(&p->kids[i]))
            return 1;
    return 0;
}

static int parse_behavior(const char *name, enum tok_split_behavior *b)
{
    static const struct { const char *name; enum tok_split_behavior b; } table[] = {
        { "Removed", TOK_SPLIT_REMOVED },
        { "Isolated", TOK_SPLIT_ISOLATED },
        { "MergedWithPrevious", TOK_SPLIT_MERGED_PREV },
        { "MergedWithNext", TOK_SPLIT_MERGED_NEXT },
        { "Contiguous", TOK_SPLIT_CONTIGUOUS },
    };
    for (size_t i = 0; name && i < MB_ARRAY_LEN(table); i++) {
        if (strcmp(name, table[i].name) == 0) {
            *b = table[i].b;
            return 0;
        }
    }
    return -1;
}

static int parse_split(mb_tokenizer *t, const mb_json *j, struct tok_pretok *p, const char *where)
{
    const mb_json *pat = mb_json_get(j, "pattern");
    const char *behavior = mb_json_str(mb_json_get(j, "behavior"), NULL);
    size_t len;
    const char *s;

    p->kind = TOK_PRE_SPLIT;
    p->invert = mb_json_is_true(mb_json_get(j, "invert"));
    if (parse_behavior(behavior, &p->behavior) != 0)
        return mb_err_set(MB_E_INVALID, where, "unknown split behavior '%s'",
                          behavior ? behavior : "(missing)");
    if ((s = mb_json_str(mb_json_get(pat, "String"), &len))) {
        p->literal = mb_xstrndup(s, len);
        p->literal_len = len;
        return 0;
    }
    if ((s = mb_json_str(mb_json_get(pat, "Regex"), &len))) {
        p->regex = tok_add_regex(t, s, len, where);
        return p->regex < 0 ? -1 : 0;
    }
    return mb_err_set(MB_E_INVALID, where, "Split pattern needs a 'String' or a 'Regex'");
}

static int parse_metaspace(const mb_json *j, struct tok_pretok *p, const char *where)
{
    size_t len;
    const char *rep = mb_json_str(mb_json_get(j, "replacement"), &len);
    const char *scheme = mb_json_str(mb_json_get(j, "prepend_scheme"), NULL);
    const mb_json *split = mb_json_get(j, "split");

    p->kind = TOK_PRE_METASPACE;
    if (!rep || len == 0 || len >= sizeof p->replacement)
        return mb_err_set(MB_E_INVALID, where, "Metaspace needs a one-character 'replacement'");
    memcpy(p->replacement, rep, len);
    p->replacement_len = len;
    p->split = split ? mb_json_is_true(split) : 1;
    if (!scheme) /* older files: add_prefix_space true means "always" */
        p->prepend = mb_json_is_true(mb_json_get(j, "add_prefix_space")) ? TOK_PREPEND_ALWAYS
                                                                       : TOK_PREPEND_NEVER;
    else if (strcmp(scheme, "always") == 0)
        p->prepend = TOK_PREPEND_ALWAYS;
    else if (strcmp(scheme, "first") == 0)
        p->prepend = TOK_PREPEND_FIRST;
    else if (strcmp(scheme, "never") == 0)
        p->prepend = TOK_PREPEND_NEVER;
    else
        return mb_err_set(MB_E_INVALID, where, "unknown prepend_scheme '%s'", scheme);
    return 0;
}

static int parse_sequence(mb_tokenizer *t, const mb_json *list, struct tok_pretok *p,
                          const char *where)
{
    char at[600];

    p->kind = TOK_PRE_SEQUENCE;
    if (!list || mb_json_type_of(list) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "Sequence needs a 'pretokenizers' array");
    p->nkids = mb_json_len(list);
    p->kids = mb_xcalloc(p->nkids, sizeof *p->kids);
    for (size_t i = 0; i < p->nkids; i++) {
        snprintf(at, sizeof at, "%s.pretokenizers[%zu]", where, i);
        if (tok_pretok_parse(t, mb_json_at(list, i), &p->kids[i], at) != 0)
            return -1;
    }
    return 0;
}

/* Whitespace and WhitespaceSplit are Splits with fixed patterns. */
static int fixed_split(mb_tokenizer *t, struct tok_pretok *p, const char *regex,
                       enum tok_split_behavior b, int invert, const char *where)
{
    p->kind = TOK_PRE_SPLIT;
    p->behavior = b;
    p->invert = invert;
    p->regex = tok_add_regex(t, regex, strlen(regex), where);
    return p->regex < 0 ? -1 : 0;
}

int tok_pretok_parse(mb_tokenizer *t, const mb_json *j, struct tok_pretok *p, const char *where)
{
    const char *type = mb_json_str(mb_json_get(j, "type"), NULL);

    p->regex = -1;
    if (!type)
        return mb_err_set(MB_E_INVALID, where, "pre-tokenizer has no 'type'");
    if (strcmp(type, "ByteLevel") == 0) {
        const mb_json *use_regex = mb_json_get(j, "use_regex");
        p->kind = TOK_PRE_BYTELEVEL;
        p->behavior = TOK_SPLIT_ISOLATED;
        p->add_prefix_space = mb_json_is_true(mb_json_get(j, "add_prefix_space"));
        if (!use_regex || mb_json_is_true(use_regex))
            p->regex = tok_add_regex(t, gpt2_regex, strlen(gpt2_regex), where);
        return use_regex && !mb_json_is_true(use_regex) ? 0 : (p->regex < 0 ? -1 : 0);
    }
    if (strcmp(type, "Split") == 0)
        return parse_split(t, j, p, where);
    if (strcmp(type, "Metaspace") == 0)
        return parse_metaspace(j, p, where);
    if (strcmp(type, "Sequence") == 0)
        return parse_sequence(t, mb_json_get(j, "pretokenizers"), p, where);
    if (strcmp(type, "Digits") == 0) {
        p->kind = TOK_PRE_DIGITS;
        p->individual_digits = mb_json_is_true(mb_json_get(j, "individual_digits"));
        return 0;
    }
    if (strcmp(type, "Whitespace") == 0)
        return fixed_split(t, p, whitespace_regex, TOK_SPLIT_REMOVED, 1, where);
    if (strcmp(type, "WhitespaceSplit") == 0)
        return fixed_split(t, p, whitespace_split_regex, TOK_SPLIT_REMOVED, 0, where);
    return mb_err_set(MB_E_UNSUPPORTED, where, "pre-tokenizer type '%s' is not supported", type);
}

void tok_pretok_free(struct tok_pretok *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nkids; i++)
        tok_pretok_free(&p->kids[i]);
    free(p->kids);
    free(p->literal);
}

/* ---- segmenting --------------------------------------------------------- */

static void seg_push(mb_tok_encoder *e, size_t *n, size_t start, size_t end, int match)
{
    MB_GROW(e->segs, e->segs_cap, *n + 1);
    e->segs[(*n)++] = (struct tok_seg){ (uint32_t)start, (uint32_t)end, match };
}

static size_t char_len_at(const char *s, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Matches of the regex or literal of P in S, with the gaps between: HF find_matches. */
static size_t find_segments(mb_tok_encoder *e, const struct tok_pretok *p, const char *s,
                            size_t len)
{
    size_t n = 0, prev = 0, pos = 0, start, end;

    while (pos <= len) {
        if (p->regex >= 0) {
            if (!mb_regex_find(e->t->regexes[p->regex], e->re_states[p->regex], s, len, pos,
                               &start, &end))
                break;
        } else {
            const char *hit = memmem(s + pos, len - pos, p->literal, p->literal_len);
            if (!hit || p->literal_len == 0)
                break;
            start = (size_t)(hit - s);
            end = start + p->literal_len;
        }
        if (start > prev)
            seg_push(e, &n, prev, start, 0);
        seg_push(e, &n, start, end, 1);
        prev = end;
        pos = end > start ? end : end + (end < len ? char_len_at(s, end) : 1);
    }
    if (prev < len)
        seg_push(e, &n, prev, len, 0);
    return n;
}

static int is_numeric_at(const char *s, size_t i, size_t *k)
{
    uint32_t cp;

    *k = (size_t)mb_utf8_decode((const unsigned char *)s + i, &cp);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

/* Digits: every numeric character is a match of its own. */
static size_t digit_segments(mb_tok_encoder *e, const char *s, size_t len)
{
    size_t n = 0, prev = 0, k;

    for (size_t i = 0; i < len; i += k) {
        if (!is_numeric_at(s, i, &k))
            continue;
        if (i > prev)
            seg_push(e, &n, prev, i, 0);
        seg_push(e, &n, i, i + k, 1);
        prev = i + k;
    }
    if (prev < len)
        seg_push(e, &n, prev, len, 0);
    return n;
}

/* Apply BEHAVIOR to the N segments in e->segs, in place; returns the new count. Kept
 * segments have match = 0, except with Removed, where matches are dropped later. */
static size_t apply_behavior(mb_tok_encoder *e, size_t n, enum tok_split_behavior behavior)
{
    struct tok_seg *s = e->segs;
    size_t m = 0;
    int prev_match = 0;

    if (behavior == TOK_SPLIT_REMOVED || behavior == TOK_SPLIT_ISOLATED)
        return n;
    if (behavior == TOK_SPLIT_MERGED_NEXT) {
        /* walk backwards: a match joins the segment after it */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            int match = s[i].match;
            if (match && !prev_match && w < n)
                s[w].start = s[i].start;
            else
                s[--w] = (struct tok_seg){ s[i].start, s[i].end, 0 };
            prev_match = match;
        }
        memmove(s, s + w, (n - w) * sizeof *s);
        return n - w;
    }
    for (size_t i = 0; i < n; i++) {
        int match = s[i].match;
        int glue = behavior == TOK_SPLIT_CONTIGUOUS ? match == prev_match : match && !prev_match;
        if (glue && m > 0)
            s[m - 1].end = s[i].end;
        else
            s[m++] = (struct tok_seg){ s[i].start, s[i].end, 0 };
        prev_match = match;
    }
    return m;
}

static void split_piece(mb_tok_encoder *e, const struct tok_pretok *p, const struct tok_piece *pc,
                        struct tok_pieces *out)
{
    const char *s = e->arena.data + pc->off;
    size_t n = p->kind == TOK_PRE_DIGITS ? digit_segments(e, s, pc->len)
                                         : find_segments(e, p, s, pc->len);
    enum tok_split_behavior b = p->kind == TOK_PRE_DIGITS
                                    ? (p->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS)
                                    : p->behavior;

    if (p->invert)
        for (size_t i = 0; i < n; i++)
            e->segs[i].match = !e->segs[i].match;
    n = apply_behavior(e, n, b);
    for (size_t i = 0; i < n; i++) {
        const struct tok_seg *g = &e->segs[i];
        if (g->end == g->start || (b == TOK_SPLIT_REMOVED && g->match))
            continue;
        tok_pieces_push(out, pc->off + g->start, g->end - g->start, pc->orig + g->start, -1);
    }
}

/* Append text to the arena and return its offset. */
static uint32_t arena_add(mb_tok_encoder *e, const char *s, size_t len)
{
    uint32_t off = (uint32_t)e->arena.len;

    mb_buf_add(&e->arena, s, len);
    return off;
}

/* ByteLevel: optional prefix space, then the GPT-2 split; bytes stay as they are. */
static void byte_level_piece(mb_tok_encoder *e, const struct tok_pretok *p,
                             const struct tok_piece *pc, struct tok_pieces *out)
{
    struct tok_piece cur = *pc;

    if (p->add_prefix_space && (pc->len == 0 || e->arena.data[pc->off] != ' ')) {
        mb_buf_reset(&e->tmp);
        mb_buf_addc(&e->tmp, ' ');
        mb_buf_add(&e->tmp, e->arena.data + pc->off, pc->len);
        cur.off = arena_add(e, e->tmp.data, e->tmp.len);
        cur.len = (uint32_t)e->tmp.len;
    }
    if (p->regex >= 0)
        split_piece(e, p, &cur, out);
    else if (cur.len > 0)
        tok_pieces_push(out, cur.off, cur.len, cur.orig, -1);
}

/* Metaspace: spaces become the replacement, which may be prepended and split on. */
static void metaspace_piece(mb_tok_encoder *e, const struct tok_pretok *p,
                            const struct tok_piece *pc, struct tok_pieces *out)
{
    const char *s = e->arena.data + pc->off;
    int starts_with = pc->len >= p->replacement_len &&
                      memcmp(s, p->replacement, p->replacement_len) == 0;
    int prepend = p->prepend == TOK_PREPEND_ALWAYS ||
                  (p->prepend == TOK_PREPEND_FIRST && pc->orig == 0);

    mb_buf_reset(&e->tmp);
    if (prepend && !starts_with && !(pc->len > 0 && s[0] == ' '))
        mb_buf_add(&e->tmp, p->replacement, p->replacement_len);
    for (size_t i = 0; i < pc->len; i++) {
        if (s[i] == ' ')
            mb_buf_add(&e->tmp, p->replacement, p->replacement_len);
        else
            mb_buf_addc(&e->tmp, s[i]);
    }
    struct tok_piece cur = { arena_add(e, e->tmp.data, e->tmp.len), (uint32_t)e->tmp.len,
                             pc->orig, -1 };
    if (!p->split) {
        if (cur.len > 0)
            tok_pieces_push(out, cur.off, cur.len, cur.orig, -1);
        return;
    }
    struct tok_pretok splitter = { .kind = TOK_PRE_SPLIT, .regex = -1,
                                   .literal = (char *)p->replacement,
                                   .literal_len = p->replacement_len,
                                   .behavior = TOK_SPLIT_MERGED_NEXT };
    split_piece(e, &splitter, &cur, out);
}

static void apply_one(mb_tok_encoder *e, const struct tok_pretok *p, const struct tok_pieces *in,
                      struct tok_pieces *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct tok_piece *pc = &in->v[i];
        if (pc->added_id >= 0)
            tok_pieces_push(out, pc->off, pc->len, pc->orig, pc->added_id);
        else if (p->kind == TOK_PRE_BYTELEVEL)
            byte_level_piece(e, p, pc, out);
        else if (p->kind == TOK_PRE_METASPACE)
            metaspace_piece(e, p, pc, out);
        else
            split_piece(e, p, pc, out);
    }
}

void tok_pretok_apply(mb_tok_encoder *e, const struct tok_pretok *p, struct tok_pieces *in,
                      struct tok_pieces *out)
{
    if (p->kind != TOK_PRE_SEQUENCE) {
        apply_one(e, p, in, out);
        return;
    }
    /* ping-pong between IN and OUT so the last stage lands in OUT */
    struct tok_pieces *src = in, *dst = out;
    if (p->nkids % 2 == 0) {
        dst = in;
        src = out;
        out->n = 0;
        for (size_t i = 0; i < in->n; i++)
            tok_pieces_push(out, in->v[i].off, in->v[i].len, in->v[i].orig, in->v[i].added_id);
    }
    for (size_t k = 0; k < p->nkids; k++) {
        tok_pretok_apply(e, &p->kids[k], src, dst);
        struct tok_pieces *t = src;
        src = dst;
        dst = t;
    }
}
