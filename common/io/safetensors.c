/* io/safetensors.c - safetensors reading: dtypes, one mapped file, a model directory.
 *
 * The header is parsed by a small JSON reader of our own rather than core/json, for
 * three reasons: errors carry the byte offset in the header ("header byte 812"),
 * duplicate names are seen (the JSON library keeps the last), and the strictness
 * follows the reference reader (serde_json): UTF-8 checked, any JSON whitespace
 * around the object, unknown members of a tensor entry ignored. Writing is in
 * io/st_writer.c.
 */
#include "io/safetensors.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/str.h"

#define MAX_HEADER   100000000u /* the reference reader's limit */
#define MAX_DEPTH    64         /* nesting allowed in skipped values */

/* ---- dtypes ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} dtypes[MB_ST_DTYPE_COUNT] = {
    [MB_ST_BOOL] = { "BOOL", 1 }, [MB_ST_U8] = { "U8", 1 },     [MB_ST_I8] = { "I8", 1 },
    [MB_ST_I16] = { "I16", 2 },   [MB_ST_U16] = { "U16", 2 },   [MB_ST_F16] = { "F16", 2 },
    [MB_ST_BF16] = { "BF16", 2 }, [MB_ST_I32] = { "I32", 4 },   [MB_ST_U32] = { "U32", 4 },
    [MB_ST_F32] = { "F32", 4 },   [MB_ST_F64] = { "F64", 8 },   [MB_ST_I64] = { "I64", 8 },
    [MB_ST_U64] = { "U64", 8 },
};

const char *mb_st_dtype_name(enum mb_st_dtype t)
{
    return (unsigned)t < MB_ST_DTYPE_COUNT ? dtypes[t].name : NULL;
}

int mb_st_dtype_parse(const char *s, size_t len, enum mb_st_dtype *out)
{
    for (int i = 0; i < MB_ST_DTYPE_COUNT; i++) {
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, s, len) == 0) {
            *out = (enum mb_st_dtype)i;
            return 0;
        }
    }
    return -1;
}

size_t mb_st_dtype_size(enum mb_st_dtype t)
{
    return (unsigned)t < MB_ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

/* ---- one file ---------------------------------------------------------------------- */

struct entry {            /* a tensor while the header is parsed */
    struct mb_st_tensor t;
    uint64_t begin, end;  /* data_offsets */
    size_t at;            /* header byte of the name, for messages */
};

struct mb_st_file {
    char *path;
    const unsigned char *map;
    size_t size;
    int n;
    struct mb_st_tensor *t;  /* [n] in data order */
    int *by_name;            /* [n] indices into t, sorted by name */
    int nmeta;
    char **meta;             /* [2 * nmeta]: key, value, in header order */
};

struct parser {
    const unsigned char *s; /* the header, N bytes */
    size_t n, pos;
    const char *path;
};

MB_PRINTF(3, 4) static int perr(const struct parser *p, size_t at, const char *fmt, ...)
{
    char where[4096], what[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(where, sizeof where, "%s: header byte %zu", p->path, at);
    return mb_err_set(MB_E_PARSE, where, "%s", what);
}

MB_PRINTF(4, 5)
static int terr(enum mb_errc code, const char *path, const char *name, const char *fmt, ...)
{
    char where[4096], what[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(where, sizeof where, "%s: tensor '%s'", path, name);
    return mb_err_set(code, where, "%s", what);
}

/* Length of the UTF-8 sequence at S[0..n), or 0 if it is not a valid one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || c == 0xC0 || c == 0xC1 || c > 0xF4)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a surrogate */
    if (len == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)))
        return 0;
    return len;
}

static int check_utf8(const struct parser *p)
{
    for (size_t i = 0; i < p->n;) {
        size_t len = utf8_len(p->s + i, p->n - i);
        if (len == 0)
            return perr(p, i, "invalid UTF-8");
        i += len;
    }
    return 0;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->n && strchr(" \t\n\r", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

/* Skip whitespace and consume C, or fail naming WHAT was expected. */
static int expect(struct parser *p, char c, const char *what)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return perr(p, p->pos, "header ends where %s was expected", what);
    if (p->s[p->pos] != (unsigned char)c)
        return perr(p, p->pos, "expected %s", what);
    p->pos++;
    return 0;
}

/* Skip whitespace; 1 and consume C if it is next. */
static int accept(struct parser *p, char c)
{
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (unsigned char)c) {
        p->pos++;
        return 1;
    }
    return 0;
}

static int hex4(struct parser *p, unsigned *out)
{
    unsigned v = 0;

    if (p->n - p->pos < 4)
        return perr(p, p->pos, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        int c = p->s[p->pos + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return perr(p, p->pos + i, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static void put_utf8(struct mb_buf *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    mb_buf_add(b, u, n);
}

/* The code point of a \u escape (P at the 'u'), joining a surrogate pair. */
static int unicode_escape(struct parser *p, unsigned *cp)
{
    size_t at = p->pos - 1;

    p->pos++;
    if (hex4(p, cp) != 0)
        return -1;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return perr(p, at, "lone trailing surrogate in \\u escape");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        unsigned lo;
        if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return perr(p, at, "lone leading surrogate in \\u escape");
        p->pos += 2;
        if (hex4(p, &lo) != 0)
            return -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return perr(p, at, "lone leading surrogate in \\u escape");
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (*cp == 0)
        return perr(p, at, "NUL character in a string");
    return 0;
}

static int escape(struct parser *p, struct mb_buf *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e;
    unsigned cp;

    if (p->pos >= p->n)
        return perr(p, p->pos - 1, "truncated escape");
    if (p->s[p->pos] == 'u') {
        if (unicode_escape(p, &cp) != 0)
            return -1;
        put_utf8(out, cp);
        return 0;
    }
    if (!p->s[p->pos] || !(e = strchr(from, p->s[p->pos])))
        return perr(p, p->pos - 1, "bad escape");
    mb_buf_addc(out, to[e - from]);
    p->pos++;
    return 0;
}

/* A JSON string into OUT (reset first, NUL-terminated). */
static int parse_string(struct parser *p, struct mb_buf *out)
{
    mb_buf_reset(out);
    mb_buf_reserve(out, 1); /* data non-NULL and terminated even for "" */
    out->data[0] = '\0';
    if (expect(p, '"', "a string") != 0)
        return -1;
    for (;;) {
        if (p->pos >= p->n)
            return perr(p, p->pos, "unterminated string");
        unsigned char c = p->s[p->pos++];
        if (c == '"')
            return 0;
        if (c < 0x20)
            return perr(p, p->pos - 1, "control character in a string");
        if (c == '\\') {
            if (escape(p, out) != 0)
                return -1;
        } else {
            mb_buf_addc(out, (char)c);
        }
    }
}

/* A non-negative JSON integer that fits in 64 bits. */
static int parse_u64(struct parser *p, uint64_t *out, const char *what)
{
    skip_ws(p);
    size_t at = p->pos;
    uint64_t v = 0;

    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = p->s[p->pos++] - '0';
        if (v > (UINT64_MAX - d) / 10)
            return perr(p, at, "%s does not fit in 64 bits", what);
        v = v * 10 + d;
    }
    if (p->pos == at)
        return perr(p, at, "%s is not a non-negative integer", what);
    if (p->pos < p->n && strchr(".eE", p->s[p->pos]) && p->s[p->pos])
        return perr(p, at, "%s is not an integer", what);
    if (p->pos - at > 1 && p->s[at] == '0')
        return perr(p, at, "%s has a leading zero", what);
    *out = v;
    return 0;
}

static int skip_value(struct parser *p, int depth);

static int skip_members(struct parser *p, char close, int depth)
{
    struct mb_buf tmp = MB_BUF_INIT;
    int rc = 0;

    if (accept(p, close))
        return 0;
    do {
        if (close == '}' && (parse_string(p, &tmp) != 0 || expect(p, ':', "':'") != 0)) {
            rc = -1;
            break;
        }
        if ((rc = skip_value(p, depth + 1)) != 0)
            break;
    } while (accept(p, ','));
    mb_buf_release(&tmp);
    if (rc == 0)
        rc = expect(p, close, close == '}' ? "',' or '}'" : "',' or ']'");
    return rc;
}

static int skip_digits(struct parser *p, size_t at)
{
    size_t start = p->pos;

    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos == start ? perr(p, at, "malformed value") : 0;
}

static int next_is(const struct parser *p, const char *set)
{
    return p->pos < p->n && p->s[p->pos] && strchr(set, p->s[p->pos]);
}

/* -?digits(.digits)?([eE][+-]?digits)? */
static int skip_number(struct parser *p)
{
    size_t at = p->pos;

    if (next_is(p, "-"))
        p->pos++;
    if (skip_digits(p, at) != 0)
        return -1;
    if (next_is(p, ".") && (p->pos++, skip_digits(p, at) != 0))
        return -1;
    if (next_is(p, "eE")) {
        p->pos++;
        if (next_is(p, "+-"))
            p->pos++;
        return skip_digits(p, at);
    }
    return 0;
}

/* Any JSON value, checked and dropped (unknown members of a tensor entry). */
static int skip_value(struct parser *p, int depth)
{
    static const char *const words[] = { "true", "false", "null" };
    struct mb_buf tmp = MB_BUF_INIT;

    skip_ws(p);
    if (depth > MAX_DEPTH)
        return perr(p, p->pos, "nested too deeply");
    if (p->pos >= p->n)
        return perr(p, p->pos, "header ends where a value was expected");
    unsigned char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        p->pos++;
        return skip_members(p, c == '{' ? '}' : ']', depth);
    }
    if (c == '"') {
        int rc = parse_string(p, &tmp);
        mb_buf_release(&tmp);
        return rc;
    }
    for (size_t i = 0; i < MB_ARRAY_LEN(words); i++) {
        size_t len = strlen(words[i]);
        if (p->n - p->pos >= len && memcmp(p->s + p->pos, words[i], len) == 0) {
            p->pos += len;
            return 0;
        }
    }
    return skip_number(p);
}

static int parse_dtype(struct parser *p, struct entry *e, struct mb_buf *tmp)
{
    if (parse_string(p, tmp) != 0)
        return -1;
    if (mb_st_dtype_parse(tmp->data, tmp->len, &e->t.dtype) != 0)
        return terr(MB_E_UNSUPPORTED, p->path, e->t.name, "unknown dtype '%s'", tmp->data);
    return 0;
}

static int parse_shape(struct parser *p, struct entry *e)
{
    char what[64];

    e->t.ndim = 0;
    if (expect(p, '[', "'[' opening the shape") != 0)
        return -1;
    if (accept(p, ']'))
        return 0;
    do {
        uint64_t d;
        size_t at = (skip_ws(p), p->pos);
        snprintf(what, sizeof what, "shape[%d]", e->t.ndim);
        if (parse_u64(p, &d, what) != 0)
            return -1;
        if (e->t.ndim == MB_ST_MAX_DIM)
            return perr(p, at, "tensor '%s': more than %d dimensions", e->t.name,
                        MB_ST_MAX_DIM);
        if (d > INT64_MAX)
            return perr(p, at, "tensor '%s': %s is too large", e->t.name, what);
        e->t.shape[e->t.ndim++] = (int64_t)d;
    } while (accept(p, ','));
    return expect(p, ']', "',' or ']' in the shape");
}

static int parse_offsets(struct parser *p, struct entry *e)
{
    if (expect(p, '[', "'[' opening data_offsets") != 0 ||
        parse_u64(p, &e->begin, "data_offsets[0]") != 0 ||
        expect(p, ',', "',' and the end offset in data_offsets") != 0 ||
        parse_u64(p, &e->end, "data_offsets[1]") != 0 ||
        expect(p, ']', "']' after two data_offsets") != 0)
        return -1;
    return 0;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}; other members ignored. */
static int parse_entry(struct parser *p, struct entry *e)
{
    struct mb_buf key = MB_BUF_INIT;
    unsigned seen = 0;
    size_t open_at = (skip_ws(p), p->pos);
    int rc = expect(p, '{', "'{' opening a tensor entry");

    if (rc == 0 && !accept(p, '}')) {
        do {
            if ((rc = parse_string(p, &key)) != 0 || (rc = expect(p, ':', "':'")) != 0)
                break;
            if (strcmp(key.data, "dtype") == 0)
                rc = parse_dtype(p, e, &key), seen |= 1;
            else if (strcmp(key.data, "shape") == 0)
                rc = parse_shape(p, e), seen |= 2;
            else if (strcmp(key.data, "data_offsets") == 0)
                rc = parse_offsets(p, e), seen |= 4;
            else
                rc = skip_value(p, 1);
        } while (rc == 0 && accept(p, ','));
        if (rc == 0)
            rc = expect(p, '}', "',' or '}' in a tensor entry");
    }
    mb_buf_release(&key);
    if (rc == 0 && seen != 7)
        rc = perr(p, open_at, "tensor '%s': entry has no '%s'", e->t.name,
                  !(seen & 1) ? "dtype" : !(seen & 2) ? "shape" : "data_offsets");
    return rc;
}

static void meta_add(mb_st_file *f, const char *key, const char *value)
{
    f->meta = mb_xrealloc(f->meta, (size_t)(f->nmeta + 1) * 2 * sizeof *f->meta);
    f->meta[2 * f->nmeta] = mb_xstrdup(key);
    f->meta[2 * f->nmeta + 1] = mb_xstrdup(value);
    f->nmeta++;
}

/* "__metadata__": an object of string values. */
static int parse_metadata(struct parser *p, mb_st_file *f, int *seen)
{
    struct mb_buf key = MB_BUF_INIT, value = MB_BUF_INIT;
    int rc = 0;

    if ((*seen)++)
        return perr(p, p->pos, "second '__metadata__'");
    skip_ws(p);
    if (p->n - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) { /* None for serde */
        p->pos += 4;
        return 0;
    }
    if (expect(p, '{', "'{' opening __metadata__") != 0)
        return -1;
    if (accept(p, '}'))
        return 0;
    do {
        if ((rc = parse_string(p, &key)) != 0 || (rc = expect(p, ':', "':'")) != 0)
            break;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] != '"') {
            rc = perr(p, p->pos, "__metadata__ value of '%s' is not a string", key.data);
            break;
        }
        if ((rc = parse_string(p, &value)) != 0)
            break;
        meta_add(f, key.data, value.data);
    } while (accept(p, ','));
    mb_buf_release(&key);
    mb_buf_release(&value);
    return rc == 0 ? expect(p, '}', "',' or '}' in __metadata__") : -1;
}

/* The header object into *ENTRIES[*N]. */
static int parse_header(struct parser *p, mb_st_file *f, struct entry **entries, int *n)
{
    struct mb_buf name = MB_BUF_INIT;
    size_t cap = 0;
    int rc = 0, seen_meta = 0;

    if (check_utf8(p) != 0 || expect(p, '{', "'{' opening the header") != 0)
        return -1;
    if (!accept(p, '}')) {
        do {
            size_t at = (skip_ws(p), p->pos);
            if ((rc = parse_string(p, &name)) != 0 || (rc = expect(p, ':', "':'")) != 0)
                break;
            if (strcmp(name.data, "__metadata__") == 0) {
                rc = parse_metadata(p, f, &seen_meta);
                continue;
            }
            MB_GROW(*entries, cap, (size_t)*n + 1);
            struct entry *e = &(*entries)[(*n)++];
            memset(e, 0, sizeof *e);
            e->t.name = mb_xstrdup(name.data);
            e->at = at;
            rc = parse_entry(p, e);
        } while (rc == 0 && accept(p, ','));
        if (rc == 0)
            rc = expect(p, '}', "',' or '}' after a tensor entry");
    }
    mb_buf_release(&name);
    skip_ws(p);
    if (rc == 0 && p->pos != p->n)
        rc = perr(p, p->pos, "text after the header object");
    return rc;
}

/* numel and nbytes from the shape, checked against data_offsets. */
static int check_sizes(const char *path, struct entry *e)
{
    uint64_t numel = 1;
    size_t size = mb_st_dtype_size(e->t.dtype);

    for (int i = 0; i < e->t.ndim; i++) {
        uint64_t d = (uint64_t)e->t.shape[i];
        if (d && numel > UINT64_MAX / d)
            return terr(MB_E_INVALID, path, e->t.name, "shape overflows 64 bits");
        numel *= d;
    }
    if (numel > (uint64_t)INT64_MAX / size)
        return terr(MB_E_INVALID, path, e->t.name, "byte size overflows 64 bits");
    if (e->end < e->begin)
        return terr(MB_E_INVALID, path, e->t.name,
                    "data_offsets [%llu, %llu] end before they begin",
                    (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != numel * size)
        return terr(MB_E_INVALID, path, e->t.name,
                    "data_offsets [%llu, %llu] hold %llu bytes, but %llu elements of %s need %llu",
                    (unsigned long long)e->begin, (unsigned long long)e->end,
                    (unsigned long long)(e->end - e->begin), (unsigned long long)numel,
                    mb_st_dtype_name(e->t.dtype), (unsigned long long)(numel * size));
    e->t.numel = (int64_t)numel;
    e->t.nbytes = (size_t)(numel * size);
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* Sorted by offset: no gap, no overlap, from 0 to the end of the data. */
static int check_layout(const char *path, struct entry *e, int n, uint64_t data_len)
{
    uint64_t at = 0;

    if (n > 0) /* E is NULL for a header without tensors */
        qsort(e, (size_t)n, sizeof *e, by_offset);
    for (int i = 0; i < n; i++) {
        if (e[i].end > data_len)
            return terr(MB_E_INVALID, path, e[i].t.name,
                        "data_offsets end %llu is beyond the data (%llu bytes)",
                        (unsigned long long)e[i].end, (unsigned long long)data_len);
        if (e[i].begin != at)
            return terr(MB_E_INVALID, path, e[i].t.name,
                        "begins at data byte %llu, but the previous tensor ends at %llu (%s)",
                        (unsigned long long)e[i].begin, (unsigned long long)at,
                        e[i].begin > at ? "a gap" : "they overlap");
        at = e[i].end;
    }
    if (at != data_len)
        return mb_err_set(MB_E_INVALID, path,
                          "tensors end at data byte %llu, but the data has %llu bytes",
                          (unsigned long long)at, (unsigned long long)data_len);
    return 0;
}

static int by_tensor_name(const void *a, const void *b)
{
    const struct mb_st_tensor *x = *(const struct mb_st_tensor *const *)a;
    const struct mb_st_tensor *y = *(const struct mb_st_tensor *const *)b;

    return strcmp(x->name, y->name);
}

/* Move the checked entries into F (data order) and build the name index. */
static int adopt_entries(mb_st_file *f, struct entry *e, int n, size_t data_start)
{
    f->n = n;
    f->t = mb_xcalloc((size_t)(n ? n : 1), sizeof *f->t);
    f->by_name = mb_xcalloc((size_t)(n ? n : 1), sizeof *f->by_name);
    for (int i = 0; i < n; i++) {
        f->t[i] = e[i].t;
        f->t[i].data = f->map + data_start + e[i].begin;
        f->t[i].file = f->path;
        e[i].t.name = NULL; /* now owned by f */
    }
    const struct mb_st_tensor **order = mb_xcalloc((size_t)(n ? n : 1), sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = &f->t[i];
    qsort(order, (size_t)n, sizeof *order, by_tensor_name);
    for (int i = 0; i < n; i++)
        f->by_name[i] = (int)(order[i] - f->t);
    free(order);
    for (int i = 1; i < n; i++) {
        if (strcmp(f->t[f->by_name[i - 1]].name, f->t[f->by_name[i]].name) == 0)
            return terr(MB_E_INVALID, f->path, f->t[f->by_name[i]].name,
                        "appears twice in the header");
    }
    return 0;
}

static int validate(mb_st_file *f)
{
    uint64_t hlen = 0;

    if (f->size < 8)
        return mb_err_set(MB_E_PARSE, f->path,
                          "%zu bytes: too short for a safetensors file (8-byte header length)",
                          f->size);
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map[i];
    if (hlen > MAX_HEADER)
        return mb_err_set(MB_E_PARSE, f->path, "header length %llu is over the limit of %u bytes",
                          (unsigned long long)hlen, MAX_HEADER);
    if (hlen > f->size - 8)
        return mb_err_set(MB_E_PARSE, f->path,
                          "header length %llu goes beyond the end of the file (%zu bytes)",
                          (unsigned long long)hlen, f->size);

    struct parser p = { f->map + 8, (size_t)hlen, 0, f->path };
    struct entry *e = NULL;
    int n = 0;
    int rc = parse_header(&p, f, &e, &n);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = check_sizes(f->path, &e[i]);
    if (rc == 0)
        rc = check_layout(f->path, e, n, f->size - 8 - hlen);
    if (rc == 0)
        rc = adopt_entries(f, e, n, 8 + (size_t)hlen);
    for (int i = 0; i < n; i++)
        free((char *)e[i].t.name);
    free(e);
    return rc;
}

mb_st_file *mb_st_open(const char *path)
{
    mb_st_file *f = mb_xcalloc(1, sizeof *f);
    const void *map;

    f->path = mb_xstrdup(path);
    if (mb_fs_map(path, &map, &f->size) != 0) {
        mb_st_close(f);
        return NULL;
    }
    f->map = map;
    if (validate(f) != 0) {
        mb_st_close(f);
        return NULL;
    }
    return f;
}

void mb_st_close(mb_st_file *f)
{
    if (!f)
        return;
    if (f->map)
        mb_fs_unmap(f->map, f->size);
    for (int i = 0; i < f->n; i++)
        free((char *)f->t[i].name);
    for (int i = 0; i < 2 * f->nmeta; i++)
        free(f->meta[i]);
    free(f->meta);
    free(f->t);
    free(f->by_name);
    free(f->path);
    free(f);
}

int mb_st_count(const mb_st_file *f)
{
    return f->n;
}

const struct mb_st_tensor *mb_st_at(const mb_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const struct mb_st_tensor *mb_st_find(const mb_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->t[f->by_name[mid]].name);
        if (c == 0)
            return &f->t[f->by_name[mid]];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *mb_st_metadata(const mb_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

/* ---- a model directory --------------------------------------------------------------- */

struct mb_st_dir {
    int nfiles;
    mb_st_file **files;
    char **base;                     /* [nfiles] shard base names */
    int sharded;
    int n;
    const struct mb_st_tensor **all; /* [n] sorted by name */
    int *file_of;                    /* [n] index into files */
};

static char *join(const char *dir, const char *name)
{
    struct mb_buf b = MB_BUF_INIT;

    mb_buf_addf(&b, "%s/%s", dir, name);
    return b.data;
}

static int add_file(mb_st_dir *d, const char *dir, const char *base)
{
    for (int i = 0; i < d->nfiles; i++)
        if (strcmp(d->base[i], base) == 0)
            return i;
    char *path = join(dir, base);
    mb_st_file *f = mb_st_open(path);
    free(path);
    if (!f)
        return -1;
    d->files = mb_xrealloc(d->files, (size_t)(d->nfiles + 1) * sizeof *d->files);
    d->base = mb_xrealloc(d->base, (size_t)(d->nfiles + 1) * sizeof *d->base);
    d->files[d->nfiles] = f;
    d->base[d->nfiles] = mb_xstrdup(base);
    return d->nfiles++;
}

/* Every tensor of every shard is in weight_map, under that shard. */
static int check_covered(const mb_st_dir *d, const char *index, const mb_json *map)
{
    for (int k = 0; k < d->nfiles; k++) {
        const mb_st_file *f = d->files[k];
        for (int i = 0; i < f->n; i++) {
            const char *base = mb_json_str(mb_json_get(map, f->t[i].name), NULL);
            if (!base)
                return terr(MB_E_INVALID, f->path, f->t[i].name, "not in %s", index);
            if (strcmp(base, d->base[k]) != 0)
                return terr(MB_E_INVALID, f->path, f->t[i].name,
                            "also in %s, which the index names for it", base);
        }
    }
    return 0;
}

/* Every weight_map entry names a tensor of its shard, and the reverse. */
static int read_index(mb_st_dir *d, const char *dir, const char *index)
{
    mb_json *root = mb_json_parse_file(index);
    mb_json *map = mb_json_get(root, "weight_map");
    void *it = NULL;
    const char *name;
    mb_json *v;
    int rc = 0;

    if (!root)
        return -1;
    if (!map || mb_json_type_of(map) != MB_JSON_OBJECT) {
        mb_json_free(root);
        return mb_err_set(MB_E_INVALID, index, "'weight_map' is %s, not an object",
                          mb_json_type_name(map));
    }
    while (rc == 0 && mb_json_next(map, &it, &name, &v)) {
        size_t len;
        const char *base = mb_json_str(v, &len);
        if (!base || len == 0 || strlen(base) != len || strchr(base, '/')) {
            rc = terr(MB_E_INVALID, index, name, "weight_map value is not a file name");
            break;
        }
        int k = add_file(d, dir, base);
        if (k < 0)
            rc = -1;
        else if (!mb_st_find(d->files[k], name))
            rc = terr(MB_E_INVALID, index, name, "not in %s", base);
    }
    if (rc == 0)
        rc = check_covered(d, index, map);
    mb_json_free(root);
    return rc;
}

/* All tensors by name; a name in two files is an error. */
static int gather(mb_st_dir *d)
{
    for (int k = 0; k < d->nfiles; k++)
        d->n += d->files[k]->n;
    d->all = mb_xcalloc((size_t)(d->n ? d->n : 1), sizeof *d->all);
    d->file_of = mb_xcalloc((size_t)(d->n ? d->n : 1), sizeof *d->file_of);
    int j = 0;
    for (int k = 0; k < d->nfiles; k++)
        for (int i = 0; i < d->files[k]->n; i++)
            d->all[j++] = &d->files[k]->t[i];
    qsort(d->all, (size_t)d->n, sizeof *d->all, by_tensor_name);
    for (int i = 0; i < d->n; i++) {
        if (i > 0 && strcmp(d->all[i - 1]->name, d->all[i]->name) == 0)
            return terr(MB_E_INVALID, d->all[i]->file, d->all[i]->name, "also in %s",
                        d->all[i - 1]->file);
        for (int k = 0; k < d->nfiles; k++)
            if (d->all[i]->file == d->files[k]->path)
                d->file_of[i] = k;
    }
    return 0;
}

mb_st_dir *mb_st_dir_open(const char *dir)
{
    mb_st_dir *d = mb_xcalloc(1, sizeof *d);
    char *index = join(dir, "model.safetensors.index.json");
    char *single = join(dir, "model.safetensors");
    int rc;

    if (mb_fs_exists(index)) {
        d->sharded = 1;
        rc = read_index(d, dir, index);
    } else if (mb_fs_exists(single)) {
        rc = add_file(d, dir, "model.safetensors") < 0 ? -1 : 0;
    } else {
        rc = mb_err_set(MB_E_INVALID, dir,
                        "no model.safetensors or model.safetensors.index.json");
    }
    if (rc == 0)
        rc = gather(d);
    free(index);
    free(single);
    if (rc != 0) {
        mb_st_dir_close(d);
        return NULL;
    }
    return d;
}

void mb_st_dir_close(mb_st_dir *d)
{
    if (!d)
        return;
    for (int k = 0; k < d->nfiles; k++) {
        mb_st_close(d->files[k]);
        free(d->base[k]);
    }
    free(d->files);
    free(d->base);
    free(d->all);
    free(d->file_of);
    free(d);
}

int mb_st_dir_count(const mb_st_dir *d)
{
    return d->n;
}

const struct mb_st_tensor *mb_st_dir_at(const mb_st_dir *d, int i)
{
    return i >= 0 && i < d->n ? d->all[i] : NULL;
}

static int dir_index(const mb_st_dir *d, const char *name)
{
    int lo = 0, hi = d->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, d->all[mid]->name);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

const struct mb_st_tensor *mb_st_dir_find(const mb_st_dir *d, const char *name)
{
    int i = dir_index(d, name);

    return i < 0 ? NULL : d->all[i];
}

int mb_st_dir_shards(const mb_st_dir *d)
{
    return d->nfiles;
}

int mb_st_dir_is_sharded(const mb_st_dir *d)
{
    return d->sharded;
}

const char *mb_st_dir_shard_of(const mb_st_dir *d, const char *name)
{
    int i = dir_index(d, name);

    return i < 0 ? NULL : d->base[d->file_of[i]];
}

void mb_st_release(const struct mb_st_tensor *t)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)t->data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)t->data + t->nbytes) & ~(page - 1);
    /* whole pages only: the neighbours' first and last pages stay; on a read-only file
     * mapping MADV_DONTNEED just drops our mapping of the pages */
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
