/* tok/jinja_value.c - Jinja values with Python's semantics: the arena they live in,
 * lists and insertion-ordered dicts, truthiness, equality, str() and json.dumps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"
#include "tok/jinja_internal.h"

/* ---- arena ------------------------------------------------------------------- */

struct jblock {
    struct jblock *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(struct jarena *a, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    struct jblock *b = a->head;
    if (!b || b->size - b->used < bytes) {
        size_t size = MB_MAX(bytes, (size_t)60000);
        b = mb_xmalloc_for(sizeof *b + size, "a chat template");
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *jarena_strdup(struct jarena *a, const char *s, size_t n)
{
    char *p = jarena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    return p;
}

void jarena_release(struct jarena *a)
{
    while (a->head) {
        struct jblock *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- containers ------------------------------------------------------------------ */

struct jv jv_list_new(struct jarena *a, size_t cap)
{
    struct jlist *l = jarena_alloc(a, sizeof *l);
    l->cap = cap ? cap : 4;
    l->v = jarena_alloc(a, l->cap * sizeof *l->v);
    return (struct jv){ .k = JV_LIST, .l = l };
}

void jv_list_push(struct jarena *a, struct jv list, struct jv item)
{
    struct jlist *l = list.l;
    if (l->n == l->cap) {
        struct jv *v = jarena_alloc(a, 2 * l->cap * sizeof *v);
        memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap *= 2;
    }
    l->v[l->n++] = item;
}

struct jv jv_dict_new(struct jarena *a, size_t cap)
{
    struct jdict *d = jarena_alloc(a, sizeof *d);
    d->cap = cap ? cap : 4;
    d->key = jarena_alloc(a, d->cap * sizeof *d->key);
    d->val = jarena_alloc(a, d->cap * sizeof *d->val);
    return (struct jv){ .k = JV_DICT, .d = d };
}

struct jv *jv_dict_get(struct jv dict, const char *key, size_t n)
{
    struct jdict *d = dict.d;
    for (size_t i = 0; i < d->n; i++)
        if (d->key[i].n == n && memcmp(d->key[i].s, key, n) == 0)
            return &d->val[i];
    return NULL;
}

void jv_dict_set(struct jarena *a, struct jv dict, struct jstr key, struct jv val)
{
    struct jv *old = jv_dict_get(dict, key.s, key.n);
    if (old) {
        *old = val;
        return;
    }
    struct jdict *d = dict.d;
    if (d->n == d->cap) {
        struct jstr *k = jarena_alloc(a, 2 * d->cap * sizeof *k);
        struct jv *v = jarena_alloc(a, 2 * d->cap * sizeof *v);
        memcpy(k, d->key, d->n * sizeof *k);
        memcpy(v, d->val, d->n * sizeof *v);
        d->key = k;
        d->val = v;
        d->cap *= 2;
    }
    d->key[d->n] = key;
    d->val[d->n++] = val;
}

struct jv jv_from_json(struct jarena *a, const mb_json *j)
{
    switch (mb_json_type_of(j)) {
    case MB_JSON_NULL:
        return jv_none();
    case MB_JSON_BOOL:
        return jv_bool(mb_json_is_true(j));
    case MB_JSON_INT:
        return jv_int(mb_json_int(j));
    case MB_JSON_REAL:
        return jv_float(mb_json_number(j));
    case MB_JSON_STRING: {
        size_t n;
        const char *s = mb_json_str(j, &n);
        return jv_str(s, n);
    }
    case MB_JSON_ARRAY: {
        struct jv l = jv_list_new(a, mb_json_len(j));
        for (size_t i = 0; i < mb_json_len(j); i++)
            jv_list_push(a, l, jv_from_json(a, mb_json_at(j, i)));
        return l;
    }
    case MB_JSON_OBJECT: {
        struct jv d = jv_dict_new(a, mb_json_len(j));
        void *it = NULL;
        const char *key;
        mb_json *val;
        while (mb_json_next(j, &it, &key, &val))
            jv_dict_set(a, d, (struct jstr){ key, strlen(key) }, jv_from_json(a, val));
        return d;
    }
    }
    return jv_undef();
}

/* ---- strings ------------------------------------------------------------------------ */

int jstr_eq(struct jstr s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.s, lit, n) == 0;
}

size_t jstr_chars(struct jstr s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        n += ((unsigned char)s.s[i] & 0xC0) != 0x80;
    return n;
}

size_t jstr_char_off(struct jstr s, size_t i)
{
    size_t off = 0;
    while (off < s.n && i > 0) {
        off++;
        while (off < s.n && ((unsigned char)s.s[off] & 0xC0) == 0x80)
            off++;
        i--;
    }
    return off;
}

int py_isspace(uint32_t cp)
{
    return mb_unicode_is_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

/* ---- truthiness and equality ---------------------------------------------------------- */

const char *jv_type_name(struct jv v)
{
    static const char *names[] = { "undefined", "NoneType", "bool", "int", "float",
                                   "str", "list", "dict", "namespace", "function", "macro" };
    return names[v.k];
}

int jv_truthy(struct jv v)
{
    switch (v.k) {
    case JV_UNDEF:
    case JV_NONE:
        return 0;
    case JV_BOOL:
        return v.b;
    case JV_INT:
        return v.i != 0;
    case JV_FLOAT:
        return v.f != 0.0;
    case JV_STR:
        return v.s.n != 0;
    case JV_LIST:
        return v.l->gen || v.l->n != 0;
    case JV_DICT:
        return v.d->n != 0;
    case JV_NS:
    case JV_FUNC:
    case JV_MACRO:
        return 1;
    }
    return 0;
}

static int is_number(struct jv v)
{
    return v.k == JV_BOOL || v.k == JV_INT || v.k == JV_FLOAT;
}

static double as_double(struct jv v)
{
    return v.k == JV_FLOAT ? v.f : v.k == JV_INT ? (double)v.i : (double)v.b;
}

int jv_equal(struct jv a, struct jv b)
{
    if (is_number(a) && is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            return (a.k == JV_INT ? a.i : a.b) == (b.k == JV_INT ? b.i : b.b);
        return as_double(a) == as_double(b);
    }
    if (a.k != b.k)
        return 0;
    switch (a.k) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_STR:
        return a.s.n == b.s.n && memcmp(a.s.s, b.s.s, a.s.n) == 0;
    case JV_LIST:
        if (a.l->gen || b.l->gen)
            return a.l == b.l;
        if (a.l->n != b.l->n || a.l->tuple != b.l->tuple)
            return 0;
        for (size_t i = 0; i < a.l->n; i++)
            if (!jv_equal(a.l->v[i], b.l->v[i]))
                return 0;
        return 1;
    case JV_DICT:
        if (a.d->n != b.d->n)
            return 0;
        for (size_t i = 0; i < a.d->n; i++) {
            struct jv *o = jv_dict_get(b, a.d->key[i].s, a.d->key[i].n);
            if (!o || !jv_equal(a.d->val[i], *o))
                return 0;
        }
        return 1;
    case JV_NS:
        return a.d == b.d;
    case JV_FUNC:
        return a.s.s == b.s.s;
    case JV_MACRO:
        return a.macro == b.macro;
    default:
        return 0;
    }
}

/* ---- str() and repr() ------------------------------------------------------------------ */

/* Python's repr(float): the shortest digits that read back, in fixed notation for
 * exponents -4..15, else scientific with a two-digit exponent. */
static void add_py_float(struct mb_buf *out, double f, int json)
{
    if (isnan(f)) {
        mb_buf_adds(out, json ? "NaN" : "nan");
        return;
    }
    if (isinf(f)) {
        mb_buf_adds(out, f < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
        return;
    }
    char digits[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, f);
        if (strtod(digits, NULL) == f)
            break;
    }
    /* digits: "-d.ddde+XX" */
    char mant[24];
    int neg = digits[0] == '-', k = 0;
    for (const char *p = digits + neg; *p && *p != 'e'; p++)
        if (*p != '.')
            mant[k++] = *p;
    mant[k] = 0;
    int exp10 = atoi(strchr(digits, 'e') + 1);
    if (neg)
        mb_buf_addc(out, '-');
    if (exp10 < -4 || exp10 >= 16) {
        mb_buf_addc(out, mant[0]);
        if (k > 1) {
            mb_buf_addc(out, '.');
            mb_buf_adds(out, mant + 1);
        }
        mb_buf_addf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) {
        mb_buf_adds(out, "0.");
        for (int i = 0; i < -exp10 - 1; i++)
            mb_buf_addc(out, '0');
        mb_buf_adds(out, mant);
    } else {
        for (int i = 0; i <= exp10; i++)
            mb_buf_addc(out, i < k ? mant[i] : '0');
        mb_buf_addc(out, '.');
        mb_buf_adds(out, k > exp10 + 1 ? mant + exp10 + 1 : "0");
    }
}

/* Python repr(str): single quotes unless the text has ' and no ". */
static void add_py_repr_str(struct mb_buf *out, struct jstr s)
{
    char q = memchr(s.s, '\'', s.n) && !memchr(s.s, '"', s.n) ? '"' : '\'';
    mb_buf_addc(out, q);
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.s[i];
        if (c == (unsigned char)q || c == '\\')
            mb_buf_addf(out, "\\%c", c);
        else if (c == '\n')
            mb_buf_adds(out, "\\n");
        else if (c == '\r')
            mb_buf_adds(out, "\\r");
        else if (c == '\t')
            mb_buf_adds(out, "\\t");
        else if (c < 0x20 || c == 0x7F)
            mb_buf_addf(out, "\\x%02x", c);
        else
            mb_buf_addc(out, (char)c);
    }
    mb_buf_addc(out, q);
}

static int add_repr(struct jv v, struct mb_buf *out)
{
    if (v.k == JV_STR) {
        add_py_repr_str(out, v.s);
        return 0;
    }
    return jv_to_str(v, out);
}

int jv_to_str(struct jv v, struct mb_buf *out)
{
    switch (v.k) {
    case JV_UNDEF:
        return 0;
    case JV_NONE:
        mb_buf_adds(out, "None");
        return 0;
    case JV_BOOL:
        mb_buf_adds(out, v.b ? "True" : "False");
        return 0;
    case JV_INT:
        mb_buf_addf(out, "%lld", (long long)v.i);
        return 0;
    case JV_FLOAT:
        add_py_float(out, v.f, 0);
        return 0;
    case JV_STR:
        mb_buf_add(out, v.s.s, v.s.n);
        return 0;
    case JV_LIST:
        if (v.l->gen)
            return mb_err_set(MB_E_UNSUPPORTED, NULL, "printing a generator (add | list)");
        mb_buf_addc(out, v.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i)
                mb_buf_adds(out, ", ");
            if (v.l->v[i].k == JV_UNDEF || v.l->v[i].k >= JV_NS)
                return mb_err_set(MB_E_UNSUPPORTED, NULL, "printing a list holding %s",
                                  jv_type_name(v.l->v[i]));
            if (add_repr(v.l->v[i], out) < 0)
                return -1;
        }
        mb_buf_adds(out, !v.l->tuple ? "]" : v.l->n == 1 ? ",)" : ")");
        return 0;
    case JV_DICT:
        mb_buf_addc(out, '{');
        for (size_t i = 0; i < v.d->n; i++) {
            if (i)
                mb_buf_adds(out, ", ");
            add_py_repr_str(out, v.d->key[i]);
            mb_buf_adds(out, ": ");
            if (v.d->val[i].k == JV_UNDEF || v.d->val[i].k >= JV_NS)
                return mb_err_set(MB_E_UNSUPPORTED, NULL, "printing a dict holding %s",
                                  jv_type_name(v.d->val[i]));
            if (add_repr(v.d->val[i], out) < 0)
                return -1;
        }
        mb_buf_addc(out, '}');
        return 0;
    case JV_NS:
    case JV_FUNC:
    case JV_MACRO:
        return mb_err_set(MB_E_UNSUPPORTED, NULL, "printing a %s", jv_type_name(v));
    }
    return 0;
}

int jv_stringify(struct jarena *a, struct jv v, struct jv *out)
{
    if (v.k == JV_STR) {
        *out = v;
        return 0;
    }
    struct mb_buf b = MB_BUF_INIT;
    if (jv_to_str(v, &b) < 0) {
        mb_buf_release(&b);
        return -1;
    }
    *out = jv_str(jarena_strdup(a, b.data ? b.data : "", b.len), b.len);
    mb_buf_release(&b);
    return 0;
}

/* ---- json.dumps --------------------------------------------------------------------------- */

static void add_json_str(struct mb_buf *out, struct jstr s)
{
    mb_buf_addc(out, '"');
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.s[i];
        switch (c) {
        case '"': mb_buf_adds(out, "\\\""); break;
        case '\\': mb_buf_adds(out, "\\\\"); break;
        case '\n': mb_buf_adds(out, "\\n"); break;
        case '\r': mb_buf_adds(out, "\\r"); break;
        case '\t': mb_buf_adds(out, "\\t"); break;
        case '\b': mb_buf_adds(out, "\\b"); break;
        case '\f': mb_buf_adds(out, "\\f"); break;
        default:
            if (c < 0x20)
                mb_buf_addf(out, "\\u%04x", c);
            else
                mb_buf_addc(out, (char)c);
        }
    }
    mb_buf_addc(out, '"');
}

static void add_indent(struct mb_buf *out, int indent, int depth)
{
    mb_buf_addc(out, '\n');
    for (int i = 0; i < indent * depth; i++)
        mb_buf_addc(out, ' ');
}

static int key_cmp(const void *x, const void *y)
{
    const struct jstr *a = *(struct jstr *const *)x, *b = *(struct jstr *const *)y;
    int c = memcmp(a->s, b->s, MB_MIN(a->n, b->n));
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static int json_value(struct jv v, const struct json_opts *o, int depth, struct mb_buf *out);

static void add_item_sep(struct mb_buf *out, const struct json_opts *o)
{
    if (o->item_sep.s)
        mb_buf_add(out, o->item_sep.s, o->item_sep.n);
    else
        mb_buf_adds(out, o->indent >= 0 ? "," : ", ");
}

static void add_key_sep(struct mb_buf *out, const struct json_opts *o)
{
    if (o->key_sep.s)
        mb_buf_add(out, o->key_sep.s, o->key_sep.n);
    else
        mb_buf_adds(out, ": ");
}

static int json_dict(struct jv v, const struct json_opts *o, int depth, struct mb_buf *out)
{
    struct jdict *d = v.d;
    if (d->n == 0) {
        mb_buf_adds(out, "{}");
        return 0;
    }
    size_t *order = mb_xmalloc(d->n * sizeof *order);
    for (size_t i = 0; i < d->n; i++)
        order[i] = i;
    if (o->sort) {
        /* sort pointers to keys, then map back to indices */
        struct jstr **keys = mb_xmalloc(d->n * sizeof *keys);
        for (size_t i = 0; i < d->n; i++)
            keys[i] = &d->key[i];
        qsort(keys, d->n, sizeof *keys, key_cmp);
        for (size_t i = 0; i < d->n; i++)
            order[i] = (size_t)(keys[i] - d->key);
        free(keys);
    }
    int rc = 0;
    mb_buf_addc(out, '{');
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        if (i)
            add_item_sep(out, o);
        if (o->indent >= 0)
            add_indent(out, o->indent, depth + 1);
        add_json_str(out, d->key[order[i]]);
        add_key_sep(out, o);
        rc = json_value(d->val[order[i]], o, depth + 1, out);
    }
    free(order);
    if (o->indent >= 0)
        add_indent(out, o->indent, depth);
    mb_buf_addc(out, '}');
    return rc;
}

static int json_value(struct jv v, const struct json_opts *o, int depth, struct mb_buf *out)
{
    switch (v.k) {
    case JV_NONE:
        mb_buf_adds(out, "null");
        return 0;
    case JV_BOOL:
        mb_buf_adds(out, v.b ? "true" : "false");
        return 0;
    case JV_INT:
        mb_buf_addf(out, "%lld", (long long)v.i);
        return 0;
    case JV_FLOAT:
        add_py_float(out, v.f, 1);
        return 0;
    case JV_STR:
        add_json_str(out, v.s);
        return 0;
    case JV_LIST:
        if (v.l->gen)
            return mb_err_set(MB_E_INVALID, NULL, "tojson: a generator is not JSON "
                              "serializable (add | list)");
        if (v.l->n == 0) {
            mb_buf_adds(out, "[]");
            return 0;
        }
        mb_buf_addc(out, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i)
                add_item_sep(out, o);
            if (o->indent >= 0)
                add_indent(out, o->indent, depth + 1);
            if (json_value(v.l->v[i], o, depth + 1, out) < 0)
                return -1;
        }
        if (o->indent >= 0)
            add_indent(out, o->indent, depth);
        mb_buf_addc(out, ']');
        return 0;
    case JV_DICT:
        return json_dict(v, o, depth, out);
    default:
        return mb_err_set(MB_E_INVALID, NULL, "tojson: object of type %s is not JSON "
                          "serializable", jv_type_name(v));
    }
}

int jv_to_json(struct jv v, const struct json_opts *o, struct mb_buf *out)
{
    return json_value(v, o, 0, out);
}
