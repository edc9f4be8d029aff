/* tok/jinja_lex.c - Jinja source to tokens, as jinja2's lexer does it with
 * trim_blocks=True and lstrip_blocks=True (the environment transformers builds):
 *
 *   - newlines are normalised to "\n" and one trailing newline is dropped
 *     (keep_trailing_newline=False);
 *   - "{{-", "{%-", "{#-" strip all whitespace before the tag, "-}}", "-%}", "-#}"
 *     all whitespace after it;
 *   - lstrip_blocks: spaces and tabs between the start of a line and "{%" or "{#" go
 *     (not before "{{", not with "{%+");
 *   - trim_blocks: one newline right after "%}" or "#}" goes (not after "+%}").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/jinja_internal.h"

struct lexer {
    struct jarena *a;
    const char *src;
    size_t n, pos;
    int line;
    const char *name;
    struct jtoks *out;
};

static int lex_fail(const struct lexer *L, int line, const char *what)
{
    return mb_err_set(MB_E_PARSE, mb_at_line(L->name, line), "%s", what);
}

static void push(struct lexer *L, enum jtok_kind k, int line, const char *s, size_t n)
{
    MB_GROW(L->out->v, L->out->cap, L->out->n + 1);
    L->out->v[L->out->n++] = (struct jtok){ .k = k, .line = line, .s = { s, n } };
}

/* "\r\n" and "\r" become "\n" (jinja2's newline_re); one final newline is dropped. */
static char *normalise_newlines(struct jarena *a, const char *src, size_t len, size_t *out_len)
{
    char *o = jarena_alloc(a, len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
            o[k++] = '\n';
        } else {
            o[k++] = src[i];
        }
    }
    if (k && o[k - 1] == '\n')
        k--;
    o[k] = 0;
    *out_len = k;
    return o;
}

/* Length of the whitespace character (Python \s) at S, or 0. */
static size_t space_at(const char *s, size_t n)
{
    unsigned char c = (unsigned char)*s;
    if (c < 0x80)
        return (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F)) ? 1 : 0;
    int bad;
    int len = mb_utf8_seq_len((const unsigned char *)s, n, &bad);
    if (len == 0)
        return 0;
    uint32_t cp;
    mb_utf8_decode((const unsigned char *)s, &cp);
    return py_isspace(cp) ? (size_t)len : 0;
}

/* Text without its trailing whitespace (Python str.rstrip()). */
static size_t rstrip_len(const char *s, size_t n)
{
    while (n > 0) {
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
            start--;
        if (space_at(s + start, n - start) != n - start)
            break;
        n = start;
    }
    return n;
}

/* Emit the text S[0..n) before a tag of kind KIND ('{', '%', '#') with control MARK. */
static void emit_text(struct lexer *L, size_t start, size_t n, char kind, char mark,
                      int line)
{
    const char *s = L->src + start;
    if (mark == '-') {
        n = rstrip_len(s, n);
    } else if (mark != '+' && kind != '{') {
        size_t l_pos = n;
        while (l_pos > 0 && s[l_pos - 1] != '\n')
            l_pos--;
        int line_starting = start == 0 || L->src[start - 1] == '\n';
        if ((l_pos > 0 || line_starting) && l_pos < n) {
            size_t i = l_pos;
            while (i < n) {
                size_t w = space_at(s + i, n - i);
                if (!w)
                    break;
                i += w;
            }
            if (i == n)
                n = l_pos;
        }
    }
    if (n)
        push(L, JT_TEXT, line, s, n);
}

/* Decode a Python string literal body (unicode-escape over the raw text). */
static int decode_string(struct lexer *L, size_t start, size_t end, int line, struct jstr *out)
{
    /* an escaped non-ASCII character grows: backslash + U+00E9 (3 bytes) -> 5 bytes */
    char *o = jarena_alloc(L->a, 3 * (end - start) + 1);
    size_t k = 0;
    for (size_t i = start; i < end; i++) {
        char c = L->src[i];
        if (c != '\\' || i + 1 >= end) {
            o[k++] = c;
            continue;
        }
        char e = L->src[++i];
        uint32_t cp = 0;
        int hex = 0;
        if ((unsigned char)e >= 0x80) {
            /* backslashreplace turned the character into \xNN, \uNNNN or \UNNNNNNNN, whose
             * backslash this one escapes: the text stays, with a backslash */
            int bad, len = mb_utf8_seq_len((const unsigned char *)L->src + i, end - i, &bad);
            if (len == 0)
                return lex_fail(L, line, "ill-formed UTF-8 in a string");
            mb_utf8_decode((const unsigned char *)L->src + i, &cp);
            char esc[16];
            int w = snprintf(esc, sizeof esc, cp <= 0xFF ? "\\x%02x" : cp <= 0xFFFF ? "\\u%04x"
                             : "\\U%08x", cp);
            memcpy(o + k, esc, (size_t)w);
            k += (size_t)w;
            i += (size_t)len - 1;
            continue;
        }
        switch (e) {
        case 'n': o[k++] = '\n'; break;
        case 't': o[k++] = '\t'; break;
        case 'r': o[k++] = '\r'; break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'v': o[k++] = '\v'; break;
        case '\n': break; /* line continuation */
        case 'N':
            return lex_fail(L, line, "unsupported construct: \\N{...} escape in a string");
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                int d = 0;
                while (d < 3 && i < end && L->src[i] >= '0' && L->src[i] <= '7')
                    cp = cp * 8 + (uint32_t)(L->src[i++] - '0'), d++;
                i--;
                k += (size_t)mb_utf8_encode(cp, o + k);
            } else {
                o[k++] = '\\';
                o[k++] = e;
            }
        }
        if (hex) {
            for (int d = 0; d < hex; d++) {
                char h = i + 1 < end ? L->src[i + 1] : 0;
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (v < 0)
                    return lex_fail(L, line, "malformed \\x, \\u or \\U escape in a string");
                cp = cp * 16 + (uint32_t)v;
                i++;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return lex_fail(L, line, "escape outside Unicode scalar values in a string");
            k += (size_t)mb_utf8_encode(cp, o + k);
        }
    }
    *out = (struct jstr){ o, k };
    return 0;
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_digit_in(char c, int base)
{
    if (base == 16)
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    return c >= '0' && c < '0' + base;
}

/* (\d+_)*\d+ from I: the end, or I when there is none. */
static size_t digit_groups(const char *s, size_t n, size_t i)
{
    size_t end = i;
    while (i < n && is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
        end = i;
        if (i + 1 < n && s[i] == '_' && is_digit(s[i + 1]))
            i++;
        else
            break;
    }
    return end;
}

/* The float of jinja2's float_re at I: (\d+_)*\d+ then .digits and/or an exponent;
 * its end, or I. */
static size_t float_end(const char *s, size_t n, size_t i)
{
    size_t m = digit_groups(s, n, i), e;
    if (m == i)
        return i;
    size_t f = m;
    if (m + 1 < n && s[m] == '.' && (e = digit_groups(s, n, m + 1)) > m + 1)
        f = e;
    size_t x = f;
    if (x < n && (s[x] == 'e' || s[x] == 'E')) {
        x++;
        if (x < n && (s[x] == '+' || s[x] == '-'))
            x++;
        if ((e = digit_groups(s, n, x)) > x)
            return e;
    }
    return f > m ? f : i;
}

/* The integer of jinja2's integer_re at I (0b, 0o, 0x, [1-9](_?\d)*, 0(_?0)*): its end
 * and base. */
static size_t int_end(const char *s, size_t n, size_t i, int *base)
{
    *base = 10;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
        int b = (s[i + 1] | 32) == 'b' ? 2 : (s[i + 1] | 32) == 'o' ? 8 : 16;
        size_t k = i + 2, end = i;
        while (k < n) {
            size_t d = k + (s[k] == '_');
            if (d < n && is_digit_in(s[d], b))
                k = end = d + 1;
            else
                break;
        }
        if (end > i) {
            *base = b;
            return end;
        }
    }
    char lead = s[i];
    size_t k = i + 1;
    while (k < n) {
        size_t d = k + (s[k] == '_');
        if (d < n && (lead == '0' ? s[d] == '0' : is_digit(s[d])))
            k = d + 1;
        else
            break;
    }
    return k;
}

static int lex_number(struct lexer *L)
{
    const char *s = L->src;
    size_t start = L->pos, end;
    int base = 10;
    int is_float = !(start > 0 && s[start - 1] == '.') &&
                   (end = float_end(s, L->n, start)) > start;
    if (!is_float)
        end = int_end(s, L->n, start, &base);
    char buf[80];
    size_t k = 0;
    for (size_t i = start + (base != 10 ? 2 : 0); i < end; i++)
        if (s[i] != '_') {
            if (k == sizeof buf - 1)
                return lex_fail(L, L->line, "number literal too long");
            buf[k++] = s[i];
        }
    buf[k] = 0;
    push(L, is_float ? JT_FLOAT : JT_INT, L->line, s + start, end - start);
    L->pos = end;
    struct jtok *t = &L->out->v[L->out->n - 1];
    errno = 0;
    if (is_float)
        t->f = strtod(buf, NULL);
    else
        t->i = strtoll(buf, NULL, base);
    if (errno == ERANGE && !is_float)
        return lex_fail(L, L->line, "integer literal outside 64 bits");
    return 0;
}

static const char *const ops2[] = { "//", "**", "==", "!=", "<=", ">=" };
static const char ops1[] = "+-*/%~<>=()[]{},.:|";

/* Tokens inside "{{ }}" or "{% %}" up to the closing delimiter; returns its mark. */
static int lex_tag(struct lexer *L, char kind, int open_line)
{
    char close = kind == '{' ? '}' : '%';
    int depth = 0;
    for (;;) {
        for (size_t w; L->pos < L->n && (w = space_at(L->src + L->pos, L->n - L->pos));) {
            if (L->src[L->pos] == '\n')
                L->line++;
            L->pos += w;
        }
        if (L->pos >= L->n)
            return lex_fail(L, open_line, kind == '{' ? "unclosed '{{'" : "unclosed '{%'");
        const char *p = L->src + L->pos;
        size_t left = L->n - L->pos;
        if (depth == 0 || kind == '%') {
            int mark = (p[0] == '-' || p[0] == '+') ? p[0] : 0;
            const char *q = mark ? p + 1 : p;
            if ((size_t)(q - p) + 2 <= left && q[0] == close && q[1] == '}' &&
                (mark != '+' || kind == '%')) {
                push(L, kind == '{' ? JT_VAR_END : JT_BLOCK_END, L->line, NULL, 0);
                L->pos += (size_t)(q - p) + 2;
                return mark ? mark : ' ';
            }
        }
        char c = p[0];
        if (is_name_start(c)) {
            size_t s = L->pos;
            while (L->pos < L->n && (is_name_start(L->src[L->pos]) || is_digit(L->src[L->pos])))
                L->pos++;
            push(L, JT_NAME, L->line, L->src + s, L->pos - s);
        } else if (is_digit(c)) {
            if (lex_number(L) < 0)
                return -1;
        } else if (c == '\'' || c == '"') {
            size_t s = ++L->pos;
            int line = L->line;
            while (L->pos < L->n && L->src[L->pos] != c) {
                if (L->src[L->pos] == '\\')
                    L->pos++;
                if (L->pos < L->n && L->src[L->pos] == '\n')
                    L->line++;
                L->pos++;
            }
            if (L->pos >= L->n)
                return lex_fail(L, line, "unterminated string");
            struct jstr str = { 0 };
            if (decode_string(L, s, L->pos, line, &str) < 0)
                return -1;
            L->pos++;
            push(L, JT_STRING, line, str.s, str.n);
        } else {
            size_t oplen = 0;
            for (size_t i = 0; i < MB_ARRAY_LEN(ops2); i++)
                if (left >= 2 && memcmp(p, ops2[i], 2) == 0)
                    oplen = 2;
            if (!oplen && c && strchr(ops1, c))
                oplen = 1;
            if (!oplen) { /* the whole character, so the message stays valid UTF-8 */
                int bad, len = mb_utf8_seq_len((const unsigned char *)p, left, &bad);
                char msg[64];
                if (len > 0)
                    snprintf(msg, sizeof msg, "unexpected character '%.*s' in a tag", len, p);
                else
                    snprintf(msg, sizeof msg, "unexpected byte 0x%02x in a tag",
                             (unsigned char)c);
                return lex_fail(L, L->line, msg);
            }
            if (c == '{' || c == '(' || c == '[')
                depth++;
            else if (c == '}' || c == ')' || c == ']')
                depth--;
            push(L, JT_OP, L->line, p, oplen);
            L->pos += oplen;
        }
    }
}

/* After a closing "-%}" (all whitespace) or "%}" (one newline, trim_blocks). */
static void after_tag(struct lexer *L, char kind, int mark)
{
    if (mark == '-') {
        while (L->pos < L->n) {
            size_t w = space_at(L->src + L->pos, L->n - L->pos);
            if (!w)
                break;
            if (L->src[L->pos] == '\n')
                L->line++;
            L->pos += w;
        }
    } else if (kind != '{' && mark != '+' && L->pos < L->n && L->src[L->pos] == '\n') {
        L->pos++;
        L->line++;
    }
}

static int count_lines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

int jinja_lex(struct jarena *a, const char *src, size_t len, const char *name,
              struct jtoks *out)
{
    struct lexer L = { .a = a, .line = 1, .name = name, .out = out };
    L.src = normalise_newlines(a, src, len, &L.n);
    while (L.pos < L.n) {
        const char *open = NULL;
        for (const char *p = L.src + L.pos; (p = memchr(p, '{', (size_t)(L.src + L.n - p)));
             p++)
            if (p + 1 < L.src + L.n && (p[1] == '{' || p[1] == '%' || p[1] == '#')) {
                open = p;
                break;
            }
        size_t tpos = open ? (size_t)(open - L.src) : L.n;
        char kind = open ? open[1] : 0;
        char mark = open && tpos + 2 < L.n ? L.src[tpos + 2] : 0;
        int text_line = L.line;
        emit_text(&L, L.pos, tpos - L.pos, open ? kind : '{', open ? mark : 0, text_line);
        L.line += count_lines(L.src + L.pos, tpos - L.pos);
        if (!open)
            break;
        int tag_line = L.line;
        L.pos = tpos + 2 + (mark == '-' || mark == '+');
        if (kind == '#') {
            const char *end = NULL;
            for (const char *p = L.src + L.pos; p + 1 < L.src + L.n; p++)
                if (p[0] == '#' && p[1] == '}') {
                    end = p;
                    break;
                }
            if (!end)
                return lex_fail(&L, tag_line, "unclosed comment '{#'");
            int cmark = end > L.src + L.pos && end[-1] == '-' ? '-' : ' ';
            L.line += count_lines(L.src + L.pos, (size_t)(end - L.src) - L.pos);
            L.pos = (size_t)(end - L.src) + 2;
            after_tag(&L, '#', cmark);
            continue;
        }
        push(&L, kind == '{' ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, tag_line, NULL, 0);
        int cmark = lex_tag(&L, kind, tag_line);
        if (cmark < 0)
            return -1;
        after_tag(&L, kind, cmark);
    }
    push(&L, JT_EOF, L.line, NULL, 0);
    return 0;
}
