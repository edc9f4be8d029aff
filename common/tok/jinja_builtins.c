/* tok/jinja_builtins.c - the filters, tests, Python str/dict methods and global
 * functions chat templates call, each as jinja2 (and transformers, for tojson,
 * raise_exception and strftime_now) defines it. A name not listed here is an error
 * naming it; so is a case handled only for ASCII text (upper, lower, title,
 * capitalize on other text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/utf8.h"
#include "tok/jinja_internal.h"

#define NAME_FMT(n) (int)MB_MIN((n)->name.n, (size_t)60), (n)->name.s

static struct jv jv_dup_str(struct jctx *c, const char *s, size_t n)
{
    return jv_str(jarena_strdup(jctx_arena(c), s, n), n);
}

/* The argument named NAME, or positional POS, or NULL. */
static const struct jv *arg(const struct jv *args, const struct jstr *names, size_t nargs,
                            size_t pos, const char *name)
{
    size_t positional = 0;
    for (size_t i = 0; i < nargs; i++) {
        if (names && names[i].n) {
            if (jstr_eq(names[i], name))
                return &args[i];
        } else if (positional++ == pos) {
            return &args[i];
        }
    }
    return NULL;
}

/* The parameters a filter or method takes, in order; KW: they may be given by keyword;
 * VARIADIC: any number of positional arguments (select's test arguments). */
struct signature {
    const char *name;
    const char *params[4];
    int kw, variadic;
};

static const struct signature filter_sigs[] = {
    { "trim", { "chars" }, 1, 0 },
    { "length", { NULL }, 1, 0 },
    { "count", { NULL }, 1, 0 },
    { "tojson", { "ensure_ascii", "indent", "separators", "sort_keys" }, 1, 0 },
    { "join", { "d", "attribute" }, 1, 0 },
    { "select", { NULL }, 0, 1 },
    { "reject", { NULL }, 0, 1 },
    { "selectattr", { NULL }, 0, 1 },
    { "rejectattr", { NULL }, 0, 1 },
    { "map", { NULL }, 1, 1 },
    { "list", { NULL }, 1, 0 },
    { "items", { NULL }, 1, 0 },
    { "string", { NULL }, 1, 0 },
    { "default", { "default_value", "boolean" }, 1, 0 },
    { "d", { "default_value", "boolean" }, 1, 0 },
    { "first", { NULL }, 1, 0 },
    { "last", { NULL }, 1, 0 },
    { "upper", { NULL }, 1, 0 },
    { "lower", { NULL }, 1, 0 },
    { "title", { NULL }, 1, 0 },
    { "capitalize", { NULL }, 1, 0 },
    { "replace", { "old", "new", "count" }, 1, 0 },
    { "int", { NULL }, 1, 0 },
    { "abs", { NULL }, 1, 0 },
    { "indent", { "width", "first", "blank" }, 1, 0 },
};

/* Python's str and dict methods take positional arguments only, but split. */
static const struct signature method_sigs[] = {
    { "strip", { "chars" }, 0, 0 },
    { "lstrip", { "chars" }, 0, 0 },
    { "rstrip", { "chars" }, 0, 0 },
    { "split", { "sep", "maxsplit" }, 1, 0 },
    { "startswith", { "prefix" }, 0, 0 },
    { "endswith", { "suffix" }, 0, 0 },
    { "upper", { NULL }, 0, 0 },
    { "lower", { NULL }, 0, 0 },
    { "title", { NULL }, 0, 0 },
    { "capitalize", { NULL }, 0, 0 },
    { "replace", { "old", "new", "count" }, 0, 0 },
    { "items", { NULL }, 0, 0 },
    { "keys", { NULL }, 0, 0 },
    { "values", { NULL }, 0, 0 },
    { "get", { "key", "default" }, 0, 0 },
};

static const struct signature *find_sig(const struct signature *sigs, size_t n, struct jstr name)
{
    for (size_t i = 0; i < n; i++)
        if (jstr_eq(name, sigs[i].name))
            return &sigs[i];
    return NULL;
}

/* The arguments of a call to SIG as Python checks them: no more positional ones than
 * parameters, keywords only where allowed and known, none given twice. */
static int check_sig(struct jctx *c, const struct jnode *n, const struct signature *sig,
                     const struct jstr *names, size_t nargs)
{
    size_t nparams = 0, positional = 0;
    while (nparams < 4 && sig->params[nparams])
        nparams++;
    for (size_t i = 0; i < nargs; i++) {
        if (!names[i].n) {
            if (positional < i)
                return jinja_fail(c, n->line, "'%s': a positional argument after a keyword",
                                  sig->name);
            positional++;
            continue;
        }
        for (size_t k = 0; k < i; k++)
            if (names[k].n == names[i].n && memcmp(names[k].s, names[i].s, names[i].n) == 0)
                return jinja_fail(c, n->line, "'%s': keyword '%.*s' given twice", sig->name,
                                  (int)names[i].n, names[i].s);
        if (sig->variadic && sig->kw)
            continue; /* map checks its own keywords */
        size_t p = 0;
        while (p < nparams && !jstr_eq(names[i], sig->params[p]))
            p++;
        if (!sig->kw || p == nparams)
            return jinja_fail(c, n->line, "'%s' got an unexpected keyword argument '%.*s'",
                              sig->name, (int)MB_MIN(names[i].n, (size_t)60), names[i].s);
        if (p < positional)
            return jinja_fail(c, n->line, "'%s' got multiple values for '%s'", sig->name,
                              sig->params[p]);
    }
    if (!sig->variadic && positional > nparams)
        return jinja_fail(c, n->line, "'%s' takes at most %zu arguments (%zu given)",
                          sig->name, nparams, positional);
    return 0;
}

static int want_str(struct jctx *c, const struct jnode *n, struct jv v, const char *what)
{
    if (v.k == JV_STR)
        return 0;
    return jinja_fail(c, n->line, "%s: expected a string, got %s", what, jv_type_name(v));
}

/* ---- string helpers (Python semantics) ------------------------------------------- */

static int char_in(uint32_t cp, struct jstr set)
{
    for (size_t i = 0; i < set.n;) {
        uint32_t x;
        i += (size_t)mb_utf8_decode((const unsigned char *)set.s + i, &x);
        if (x == cp)
            return 1;
    }
    return 0;
}

/* str.strip / lstrip / rstrip with CHARS (NULL: whitespace). WHICH: 1 left, 2 right. */
static struct jstr py_strip(struct jstr s, const struct jstr *chars, int which)
{
    size_t b = 0, e = s.n;
    if (which & 1)
        while (b < e) {
            uint32_t cp;
            int len = mb_utf8_decode((const unsigned char *)s.s + b, &cp);
            if (chars ? !char_in(cp, *chars) : !py_isspace(cp))
                break;
            b += (size_t)len;
        }
    if (which & 2)
        while (e > b) {
            size_t p = e - 1;
            while (p > b && ((unsigned char)s.s[p] & 0xC0) == 0x80)
                p--;
            uint32_t cp;
            mb_utf8_decode((const unsigned char *)s.s + p, &cp);
            if (chars ? !char_in(cp, *chars) : !py_isspace(cp))
                break;
            e = p;
        }
    return (struct jstr){ s.s + b, e - b };
}

static int ascii_only(struct jctx *c, const struct jnode *n, struct jstr s)
{
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.s[i] >= 0x80)
            return jinja_fail(c, n->line, "'%.*s' on non-ASCII text is not supported",
                              NAME_FMT(n));
    return 0;
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* upper, lower, title, capitalize for ASCII text. */
static int change_case(struct jctx *c, const struct jnode *n, struct jstr s, const char *how,
                       struct jv *out)
{
    if (ascii_only(c, n, s) < 0)
        return -1;
    char *o = jarena_strdup(jctx_arena(c), s.s, s.n);
    int prev_alpha = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = o[i];
        int up;
        if (strcmp(how, "upper") == 0)
            up = 1;
        else if (strcmp(how, "lower") == 0)
            up = 0;
        else if (strcmp(how, "title") == 0)
            up = !prev_alpha;
        else
            up = i == 0;
        if (up && ch >= 'a' && ch <= 'z')
            o[i] = (char)(ch - 32);
        else if (!up && ch >= 'A' && ch <= 'Z')
            o[i] = (char)(ch + 32);
        prev_alpha = is_alpha(ch);
    }
    *out = jv_str(o, s.n);
    return 0;
}

static int str_split(struct jctx *c, struct jstr s, const struct jv *sep, int64_t maxsplit,
                     struct jv *out)
{
    struct jarena *a = jctx_arena(c);
    *out = jv_list_new(a, 0);
    if (sep && sep->k == JV_STR) {
        size_t start = 0, i = 0;
        while (i + sep->s.n <= s.n && maxsplit != 0) {
            if (memcmp(s.s + i, sep->s.s, sep->s.n) == 0) {
                jv_list_push(a, *out, jv_str(s.s + start, i - start));
                i += sep->s.n;
                start = i;
                maxsplit--;
            } else {
                i++;
            }
        }
        jv_list_push(a, *out, jv_str(s.s + start, s.n - start));
        return 0;
    }
    size_t i = 0;
    for (;;) {
        struct jstr rest = py_strip((struct jstr){ s.s + i, s.n - i }, NULL, 1);
        i = (size_t)(rest.s - s.s);
        if (i >= s.n)
            break;
        if (maxsplit == 0) {
            jv_list_push(a, *out, jv_str(s.s + i, py_strip(rest, NULL, 2).n));
            break;
        }
        size_t e = i;
        while (e < s.n) {
            uint32_t cp;
            int len = mb_utf8_decode((const unsigned char *)s.s + e, &cp);
            if (py_isspace(cp))
                break;
            e += (size_t)len;
        }
        jv_list_push(a, *out, jv_str(s.s + i, e - i));
        i = e;
        maxsplit--;
    }
    return 0;
}

static int str_replace(struct jctx *c, struct jstr s, struct jstr old, struct jstr new,
                       int64_t count, struct jv *out)
{
    struct mb_buf b = MB_BUF_INIT;
    size_t i = 0;
    if (old.n == 0) {
        /* Python inserts NEW between characters and at both ends */
        for (size_t k = 0; k <= jstr_chars(s); k++) {
            if (count >= 0 && (int64_t)k >= count) {
                mb_buf_add(&b, s.s + i, s.n - i);
                i = s.n;
                break;
            }
            mb_buf_add(&b, new.s, new.n);
            size_t e = jstr_char_off(s, k + 1);
            mb_buf_add(&b, s.s + i, e - i);
            i = e;
        }
    } else {
        while (i < s.n) {
            if (count != 0 && i + old.n <= s.n && memcmp(s.s + i, old.s, old.n) == 0) {
                mb_buf_add(&b, new.s, new.n);
                i += old.n;
                count--;
            } else {
                mb_buf_addc(&b, s.s[i++]);
            }
        }
    }
    *out = jv_dup_str(c, b.data ? b.data : "", b.len);
    mb_buf_release(&b);
    return 0;
}

static int affix(struct jctx *c, const struct jnode *n, struct jstr s, struct jv what, int end,
                 int *r)
{
    *r = 0;
    if (what.k == JV_LIST) {
        for (size_t i = 0; i < what.l->n && !*r; i++)
            if (affix(c, n, s, what.l->v[i], end, r) < 0)
                return -1;
        return 0;
    }
    if (want_str(c, n, what, end ? "endswith" : "startswith") < 0)
        return -1;
    *r = what.s.n <= s.n &&
         memcmp(s.s + (end ? s.n - what.s.n : 0), what.s.s, what.s.n) == 0;
    return 0;
}

/* ---- tests -------------------------------------------------------------------------- */

int jinja_test(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
               size_t nargs, int *out)
{
    struct jstr t = n->name;
    static const char *const one_arg[] = { "equalto", "eq", "==", "ne", "!=", "sameas", "in" };
    static const char *const no_arg[] = { "defined", "undefined", "none", "string", "mapping",
                                          "iterable", "sequence", "number", "integer", "float",
                                          "boolean", "true", "false", "odd", "even" };
    int wants_one = 0, known = 0;
    for (size_t i = 0; i < MB_ARRAY_LEN(one_arg); i++)
        wants_one |= jstr_eq(t, one_arg[i]);
    for (size_t i = 0; i < MB_ARRAY_LEN(no_arg); i++)
        known |= jstr_eq(t, no_arg[i]);
    if ((known || wants_one) && (size_t)wants_one != nargs)
        return jinja_fail(c, n->line, "test '%.*s' takes %d argument%s, %zu given", NAME_FMT(n),
                          wants_one, wants_one ? "" : "s", nargs);
    if (jstr_eq(t, "defined") || jstr_eq(t, "undefined"))
        *out = (v.k != JV_UNDEF) == jstr_eq(t, "defined");
    else if (jstr_eq(t, "none"))
        *out = v.k == JV_NONE;
    else if (jstr_eq(t, "string"))
        *out = v.k == JV_STR;
    else if (jstr_eq(t, "mapping"))
        *out = v.k == JV_DICT;
    else if (jstr_eq(t, "iterable"))
        *out = v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
    else if (jstr_eq(t, "sequence")) {
        if (v.k == JV_UNDEF)
            return jinja_fail(c, n->line, "test 'sequence' on an undefined value");
        *out = v.k == JV_STR || (v.k == JV_LIST && !v.l->gen) || v.k == JV_DICT;
    } else if (jstr_eq(t, "number"))
        *out = v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL;
    else if (jstr_eq(t, "integer"))
        *out = v.k == JV_INT;
    else if (jstr_eq(t, "float"))
        *out = v.k == JV_FLOAT;
    else if (jstr_eq(t, "boolean"))
        *out = v.k == JV_BOOL;
    else if (jstr_eq(t, "true") || jstr_eq(t, "false"))
        *out = v.k == JV_BOOL && v.b == jstr_eq(t, "true");
    else if (jstr_eq(t, "equalto") || jstr_eq(t, "eq") || jstr_eq(t, "==") ||
             jstr_eq(t, "ne") || jstr_eq(t, "!=")) {
        if (nargs != 1)
            return jinja_fail(c, n->line, "test '%.*s' takes one argument", NAME_FMT(n));
        *out = jv_equal(v, args[0]) == (jstr_eq(t, "equalto") || jstr_eq(t, "eq"));
    } else if (jstr_eq(t, "sameas")) {
        if (nargs != 1)
            return jinja_fail(c, n->line, "test 'sameas' takes one argument");
        struct jv o = args[0];
        if (!((v.k == JV_NONE || v.k == JV_BOOL) && (o.k == JV_NONE || o.k == JV_BOOL)))
            return jinja_fail(c, n->line, "test 'sameas' is supported for none, true and "
                              "false only");
        *out = v.k == o.k && (v.k == JV_NONE || v.b == o.b);
    } else if (jstr_eq(t, "in")) {
        if (nargs != 1 || args[0].k != JV_LIST)
            return jinja_fail(c, n->line, "test 'in' is supported with a list argument only");
        *out = 0;
        for (size_t i = 0; i < args[0].l->n && !*out; i++)
            *out = jv_equal(v, args[0].l->v[i]);
    } else if (jstr_eq(t, "odd") || jstr_eq(t, "even")) {
        if (v.k != JV_INT)
            return jinja_fail(c, n->line, "test '%.*s' on a %s", NAME_FMT(n), jv_type_name(v));
        *out = (v.i % 2 != 0) == jstr_eq(t, "odd");
    } else {
        return jinja_fail(c, n->line, "unsupported construct: test '%.*s'", NAME_FMT(n));
    }
    return 0;
}

/* ---- filters --------------------------------------------------------------------------- */

static int to_list(struct jctx *c, const struct jnode *n, struct jv v, struct jv *out)
{
    struct jarena *a = jctx_arena(c);
    switch (v.k) {
    case JV_UNDEF:
        *out = jv_list_new(a, 0);
        return 0;
    case JV_LIST:
        *out = jv_list_new(a, v.l->n);
        for (size_t i = 0; i < v.l->n; i++)
            jv_list_push(a, *out, v.l->v[i]);
        return 0;
    case JV_DICT:
        *out = jv_list_new(a, v.d->n);
        for (size_t i = 0; i < v.d->n; i++)
            jv_list_push(a, *out, jv_str(v.d->key[i].s, v.d->key[i].n));
        return 0;
    case JV_STR: {
        size_t k = jstr_chars(v.s);
        *out = jv_list_new(a, k);
        for (size_t i = 0; i < k; i++) {
            size_t b = jstr_char_off(v.s, i), e = jstr_char_off(v.s, i + 1);
            jv_list_push(a, *out, jv_str(v.s.s + b, e - b));
        }
        return 0;
    }
    default:
        return jinja_fail(c, n->line, "'%s' object is not iterable", jv_type_name(v));
    }
}

static int dict_items(struct jctx *c, const struct jnode *n, struct jv v, struct jv *out)
{
    struct jarena *a = jctx_arena(c);
    if (v.k == JV_UNDEF) {
        *out = jv_list_new(a, 0);
        return 0;
    }
    if (v.k != JV_DICT)
        return jinja_fail(c, n->line, "items of a %s (a mapping is needed)", jv_type_name(v));
    *out = jv_list_new(a, v.d->n);
    for (size_t i = 0; i < v.d->n; i++) {
        struct jv pair = jv_list_new(a, 2);
        pair.l->tuple = 1;
        jv_list_push(a, pair, jv_str(v.d->key[i].s, v.d->key[i].n));
        jv_list_push(a, pair, v.d->val[i]);
        jv_list_push(a, *out, pair);
    }
    return 0;
}

/* select / reject / selectattr / rejectattr. */
static int filter_select(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                         size_t nargs, int attr, int keep, struct jv *out)
{
    struct jv items;
    if (to_list(c, n, v, &items) < 0)
        return -1;
    size_t first = attr ? 1 : 0;
    if (attr && (nargs < 1 || args[0].k != JV_STR))
        return jinja_fail(c, n->line, "'%.*s' needs an attribute name", NAME_FMT(n));
    struct jnode test = { .k = JN_TEST, .line = n->line };
    if (nargs > first) {
        if (args[first].k != JV_STR)
            return jinja_fail(c, n->line, "'%.*s': the test name must be a string",
                              NAME_FMT(n));
        test.name = args[first].s;
    }
    *out = jv_list_new(jctx_arena(c), items.l->n);
    out->l->gen = 1;
    for (size_t i = 0; i < items.l->n; i++) {
        struct jv x = items.l->v[i];
        if (attr) {
            struct jv *f = x.k == JV_DICT ? jv_dict_get(x, args[0].s.s, args[0].s.n) : NULL;
            x = f ? *f : jv_undef();
        }
        int r;
        if (test.name.n) {
            if (jinja_test(c, &test, x, args + first + 1, nargs - first - 1, &r) < 0)
                return -1;
        } else {
            r = jv_truthy(x);
        }
        if (r == keep)
            jv_list_push(jctx_arena(c), *out, items.l->v[i]);
    }
    return 0;
}

static int filter_join(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                       const struct jstr *names, size_t nargs, struct jv *out)
{
    const struct jv *sep = arg(args, names, nargs, 0, "d");
    const struct jv *attr = arg(args, names, nargs, 1, "attribute");
    if (sep && want_str(c, n, *sep, "join separator") < 0)
        return -1;
    struct jv items;
    if (to_list(c, n, v, &items) < 0)
        return -1;
    struct mb_buf b = MB_BUF_INIT;
    for (size_t i = 0; i < items.l->n; i++) {
        struct jv x = items.l->v[i];
        if (attr) {
            struct jv *f = x.k == JV_DICT && attr->k == JV_STR
                           ? jv_dict_get(x, attr->s.s, attr->s.n) : NULL;
            x = f ? *f : jv_undef();
        }
        if (i && sep)
            mb_buf_add(&b, sep->s.s, sep->s.n);
        if (jv_to_str(x, &b) < 0) {
            mb_buf_release(&b);
            return jinja_fail(c, n->line, "join: %s", mb_err_what());
        }
    }
    *out = jv_dup_str(c, b.data ? b.data : "", b.len);
    mb_buf_release(&b);
    return 0;
}

/* transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
static int filter_tojson(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                         const struct jstr *names, size_t nargs, struct jv *out)
{
    const struct jv *ascii = arg(args, names, nargs, 0, "ensure_ascii");
    const struct jv *indent = arg(args, names, nargs, 1, "indent");
    const struct jv *seps = arg(args, names, nargs, 2, "separators");
    const struct jv *sort = arg(args, names, nargs, 3, "sort_keys");
    if (ascii && jv_truthy(*ascii))
        return jinja_fail(c, n->line, "unsupported construct: tojson(ensure_ascii=true)");
    struct json_opts o = { .indent = -1 };
    if (seps && seps->k != JV_NONE) {
        if (seps->k != JV_LIST || seps->l->n != 2 || seps->l->v[0].k != JV_STR ||
            seps->l->v[1].k != JV_STR)
            return jinja_fail(c, n->line, "tojson: separators must be two strings");
        o.item_sep = seps->l->v[0].s;
        o.key_sep = seps->l->v[1].s;
    }
    if (indent && indent->k != JV_NONE && indent->k != JV_INT)
        return jinja_fail(c, n->line, "unsupported construct: tojson(indent=<%s>)",
                          jv_type_name(*indent));
    o.indent = indent && indent->k == JV_INT ? (int)MB_MAX(0, MB_MIN(indent->i, 64)) : -1;
    o.sort = sort && jv_truthy(*sort);
    struct mb_buf b = MB_BUF_INIT;
    if (jv_to_json(v, &o, &b) < 0) {
        mb_buf_release(&b);
        return jinja_fail(c, n->line, "%s", mb_err_what());
    }
    *out = jv_dup_str(c, b.data ? b.data : "", b.len);
    mb_buf_release(&b);
    return 0;
}

static int filter_length(struct jctx *c, const struct jnode *n, struct jv v, struct jv *out)
{
    switch (v.k) {
    case JV_UNDEF: *out = jv_int(0); return 0;
    case JV_STR: *out = jv_int((int64_t)jstr_chars(v.s)); return 0;
    case JV_LIST:
        if (v.l->gen)
            return jinja_fail(c, n->line, "object of type 'generator' has no len() (add | list)");
        *out = jv_int((int64_t)v.l->n);
        return 0;
    case JV_DICT: *out = jv_int((int64_t)v.d->n); return 0;
    default:
        return jinja_fail(c, n->line, "object of type %s has no length", jv_type_name(v));
    }
}


/* jinja2's indent(width=4, first=False, blank=False): lines after the first indented,
 * blank ones too only with BLANK. Only "\n" line breaks (str.splitlines knows more). */
static int filter_indent(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                         const struct jstr *names, size_t nargs, struct jv *out)
{
    const struct jv *width = arg(args, names, nargs, 0, "width");
    const struct jv *first = arg(args, names, nargs, 1, "first");
    const struct jv *blank = arg(args, names, nargs, 2, "blank");
    struct jv s;
    if (jv_stringify(jctx_arena(c), v, &s) < 0)
        return jinja_fail(c, n->line, "%s", mb_err_what());
    if (width && width->k != JV_STR && width->k != JV_INT)
        return jinja_fail(c, n->line, "indent: the width must be a number or a string, not %s",
                          jv_type_name(*width));
    struct mb_buf ind = MB_BUF_INIT, b = MB_BUF_INIT;
    if (width && width->k == JV_STR)
        mb_buf_add(&ind, width->s.s, width->s.n);
    else
        for (int64_t i = 0; i < (width && width->k == JV_INT ? width->i : 4) && i < 256; i++)
            mb_buf_addc(&ind, ' ');
    for (size_t i = 0; i < s.s.n; i++)
        if ((s.s.s[i] && strchr("\r\v\f\x1c\x1d\x1e", s.s.s[i])) ||
            (i + 1 < s.s.n && (unsigned char)s.s.s[i] == 0xC2 &&
             (unsigned char)s.s.s[i + 1] == 0x85) ||
            (i + 2 < s.s.n && memcmp(s.s.s + i, "\xE2\x80", 2) == 0 &&
             ((unsigned char)s.s.s[i + 2] == 0xA8 || (unsigned char)s.s.s[i + 2] == 0xA9))) {
            mb_buf_release(&ind);
            return jinja_fail(c, n->line, "indent: line breaks other than \\n are not "
                              "supported");
        }
    if (first && jv_truthy(*first))
        mb_buf_add(&b, ind.data, ind.len);
    /* as jinja2: the lines of s + "\n", so a final newline leaves an empty last line */
    size_t start = 0;
    for (int line = 0; start < s.s.n + 1; line++) {
        const char *nl = memchr(s.s.s + start, '\n', s.s.n - start);
        size_t end = nl ? (size_t)(nl - s.s.s) : s.s.n;
        if (line > 0) {
            mb_buf_addc(&b, '\n');
            if (end > start || (blank && jv_truthy(*blank)))
                mb_buf_add(&b, ind.data, ind.len);
        }
        mb_buf_add(&b, s.s.s + start, end - start);
        start = end + 1;
    }
    *out = jv_dup_str(c, b.data ? b.data : "", b.len);
    mb_buf_release(&ind);
    mb_buf_release(&b);
    return 0;
}

/* map(attribute='a.b', default=d) or map('filter', args...). */
static int filter_map(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                      const struct jstr *names, size_t nargs, struct jv *out)
{
    const struct jv *attr = NULL, *dflt = NULL;
    for (size_t i = 0; i < nargs; i++) {
        if (names[i].n && jstr_eq(names[i], "attribute"))
            attr = &args[i];
        else if (names[i].n && jstr_eq(names[i], "default"))
            dflt = &args[i];
        else if (names[i].n)
            return jinja_fail(c, n->line, "map: unknown argument '%.*s'", (int)names[i].n,
                              names[i].s);
    }
    struct jv items;
    if (to_list(c, n, v, &items) < 0)
        return -1;
    struct jnode f = { .k = JN_FILTER, .line = n->line };
    if (!attr) {
        if (nargs < 1 || args[0].k != JV_STR || names[0].n)
            return jinja_fail(c, n->line, "map needs attribute= or a filter name");
        f.name = args[0].s;
    } else if (attr->k != JV_STR) {
        return jinja_fail(c, n->line, "map: the attribute must be a string");
    }
    *out = jv_list_new(jctx_arena(c), items.l->n);
    out->l->gen = 1;
    for (size_t i = 0; i < items.l->n; i++) {
        struct jv x = items.l->v[i];
        if (attr) {
            struct jstr path = attr->s;
            while (x.k != JV_UNDEF) { /* a dotted path: "function.name" */
                const char *dot = memchr(path.s, '.', path.n);
                size_t len = dot ? (size_t)(dot - path.s) : path.n;
                struct jv *f2 = x.k == JV_DICT ? jv_dict_get(x, path.s, len) : NULL;
                x = f2 ? *f2 : jv_undef();
                if (!dot)
                    break;
                path = (struct jstr){ dot + 1, path.n - len - 1 };
            }
            if (x.k == JV_UNDEF && dflt)
                x = *dflt;
        } else if (jinja_filter(c, &f, x, args + 1, names + 1, nargs - 1, &x) < 0) {
            return -1;
        }
        jv_list_push(jctx_arena(c), *out, x);
    }
    return 0;
}

int jinja_filter(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out)
{
    struct jstr f = n->name;
    struct jarena *a = jctx_arena(c);
    const struct signature *sig = find_sig(filter_sigs, MB_ARRAY_LEN(filter_sigs), f);
    if (!sig)
        return jinja_fail(c, n->line, "unsupported construct: filter '%.*s'", NAME_FMT(n));
    if (check_sig(c, n, sig, names, nargs) < 0)
        return -1;
    if ((jstr_eq(f, "int") || jstr_eq(f, "first") || jstr_eq(f, "last")) && nargs)
        return jinja_fail(c, n->line, "unsupported construct: arguments of filter '%.*s'",
                          NAME_FMT(n));
    if (jstr_eq(f, "trim")) {
        const struct jv *chars = arg(args, names, nargs, 0, "chars");
        struct jv s;
        if (jv_stringify(a, v, &s) < 0)
            return jinja_fail(c, n->line, "%s", mb_err_what());
        if (chars && chars->k != JV_NONE && want_str(c, n, *chars, "trim chars") < 0)
            return -1;
        struct jstr r = py_strip(s.s, chars && chars->k == JV_STR ? &chars->s : NULL, 3);
        *out = jv_str(r.s, r.n);
        return 0;
    }
    if (jstr_eq(f, "length") || jstr_eq(f, "count"))
        return filter_length(c, n, v, out);
    if (jstr_eq(f, "tojson"))
        return filter_tojson(c, n, v, args, names, nargs, out);
    if (jstr_eq(f, "join"))
        return filter_join(c, n, v, args, names, nargs, out);
    if (jstr_eq(f, "select") || jstr_eq(f, "reject"))
        return filter_select(c, n, v, args, nargs, 0, jstr_eq(f, "select"), out);
    if (jstr_eq(f, "selectattr") || jstr_eq(f, "rejectattr"))
        return filter_select(c, n, v, args, nargs, 1, jstr_eq(f, "selectattr"), out);
    if (jstr_eq(f, "list"))
        return to_list(c, n, v, out);
    if (jstr_eq(f, "indent"))
        return filter_indent(c, n, v, args, names, nargs, out);
    if (jstr_eq(f, "map"))
        return filter_map(c, n, v, args, names, nargs, out);
    if (jstr_eq(f, "items"))
        return dict_items(c, n, v, out);
    if (jstr_eq(f, "string"))
        return jv_stringify(a, v, out) < 0 ? jinja_fail(c, n->line, "%s", mb_err_what()) : 0;
    if (jstr_eq(f, "default") || jstr_eq(f, "d")) {
        const struct jv *dflt = arg(args, names, nargs, 0, "default_value");
        const struct jv *boolean = arg(args, names, nargs, 1, "boolean");
        int use = v.k == JV_UNDEF || (boolean && jv_truthy(*boolean) && !jv_truthy(v));
        *out = use ? (dflt ? *dflt : jv_str("", 0)) : v;
        return 0;
    }
    if (jstr_eq(f, "first") || jstr_eq(f, "last")) {
        struct jv items;
        if (jstr_eq(f, "last") && v.k == JV_LIST && v.l->gen)
            return jinja_fail(c, n->line, "'last' of a generator (add | list)");
        if (to_list(c, n, v, &items) < 0)
            return -1;
        *out = items.l->n == 0 ? jv_undef()
               : items.l->v[jstr_eq(f, "first") ? 0 : items.l->n - 1];
        return 0;
    }
    if (jstr_eq(f, "upper") || jstr_eq(f, "lower") || jstr_eq(f, "title") ||
        jstr_eq(f, "capitalize")) {
        struct jv s;
        if (jv_stringify(a, v, &s) < 0)
            return jinja_fail(c, n->line, "%s", mb_err_what());
        char how[16];
        snprintf(how, sizeof how, "%.*s", (int)f.n, f.s);
        return change_case(c, n, s.s, how, out);
    }
    if (jstr_eq(f, "replace")) {
        const struct jv *old = arg(args, names, nargs, 0, "old");
        const struct jv *new = arg(args, names, nargs, 1, "new");
        const struct jv *count = arg(args, names, nargs, 2, "count");
        struct jv s;
        if (!old || !new || jv_stringify(a, v, &s) < 0 || want_str(c, n, *old, "replace") < 0 ||
            want_str(c, n, *new, "replace") < 0)
            return old && new ? -1 : jinja_fail(c, n->line, "replace needs two strings");
        return str_replace(c, s.s, old->s, new->s,
                           count && count->k == JV_INT ? count->i : -1, out);
    }
    if (jstr_eq(f, "int")) {
        if (v.k == JV_INT || v.k == JV_BOOL)
            *out = jv_int(v.k == JV_INT ? v.i : v.b);
        else if (v.k == JV_FLOAT && v.f > -9.2e18 && v.f < 9.2e18)
            *out = jv_int((int64_t)v.f);
        else if (v.k == JV_FLOAT)
            return jinja_fail(c, n->line, "filter 'int' on a float outside 64-bit integers");
        else
            return jinja_fail(c, n->line, "filter 'int' is supported on numbers only");
        return 0;
    }
    if (jstr_eq(f, "abs")) {
        if (v.k == JV_INT && v.i == INT64_MIN)
            return jinja_fail(c, n->line, "abs() outside 64 bits");
        if (v.k == JV_INT)
            *out = jv_int(v.i < 0 ? -v.i : v.i);
        else if (v.k == JV_FLOAT)
            *out = jv_float(v.f < 0 ? -v.f : v.f);
        else
            return jinja_fail(c, n->line, "bad operand type for abs(): %s", jv_type_name(v));
        return 0;
    }
    return jinja_fail(c, n->line, "unsupported construct: filter '%.*s'", NAME_FMT(n));
}

/* ---- methods ----------------------------------------------------------------------------- */

static int str_method(struct jctx *c, const struct jnode *n, struct jstr s, const struct jv *args,
                      const struct jstr *names, size_t nargs, struct jv *out)
{
    struct jstr m = n->a->name;
    const struct signature *sig = find_sig(method_sigs, MB_ARRAY_LEN(method_sigs), m);
    if (sig && check_sig(c, n, sig, names, nargs) < 0)
        return -1;
    const struct jv *a0 = arg(args, names, nargs, 0, "");
    int which = jstr_eq(m, "strip") ? 3 : jstr_eq(m, "lstrip") ? 1 : jstr_eq(m, "rstrip") ? 2 : 0;
    if (which) {
        if (a0 && a0->k != JV_NONE && want_str(c, n, *a0, "strip characters") < 0)
            return -1;
        struct jstr r = py_strip(s, a0 && a0->k == JV_STR ? &a0->s : NULL, which);
        *out = jv_str(r.s, r.n);
        return 0;
    }
    if (jstr_eq(m, "split")) {
        const struct jv *sep = arg(args, names, nargs, 0, "sep");
        const struct jv *max = arg(args, names, nargs, 1, "maxsplit");
        if (sep && sep->k == JV_STR && sep->s.n == 0)
            return jinja_fail(c, n->line, "split: empty separator");
        if (sep && sep->k != JV_STR && sep->k != JV_NONE)
            return want_str(c, n, *sep, "split separator");
        return str_split(c, s, sep, max && max->k == JV_INT ? max->i : -1, out);
    }
    if (jstr_eq(m, "startswith") || jstr_eq(m, "endswith")) {
        int r;
        if (!a0)
            return jinja_fail(c, n->line, "%.*s needs an argument", (int)m.n, m.s);
        if (affix(c, n, s, *a0, jstr_eq(m, "endswith"), &r) < 0)
            return -1;
        *out = jv_bool(r);
        return 0;
    }
    if (jstr_eq(m, "upper") || jstr_eq(m, "lower") || jstr_eq(m, "title") ||
        jstr_eq(m, "capitalize")) {
        char how[16];
        snprintf(how, sizeof how, "%.*s", (int)m.n, m.s);
        struct jnode named = *n;
        named.name = m;
        return change_case(c, &named, s, how, out);
    }
    if (jstr_eq(m, "replace")) {
        const struct jv *a1 = arg(args, names, nargs, 1, "");
        const struct jv *a2 = arg(args, names, nargs, 2, "");
        if (!a0 || !a1 || a0->k != JV_STR || a1->k != JV_STR)
            return jinja_fail(c, n->line, "replace needs two strings");
        return str_replace(c, s, a0->s, a1->s, a2 && a2->k == JV_INT ? a2->i : -1, out);
    }
    return jinja_fail(c, n->line, "unsupported construct: string method '%.*s'", (int)m.n, m.s);
}

static int dict_method(struct jctx *c, const struct jnode *n, struct jv d, const struct jv *args,
                       const struct jstr *names, size_t nargs, struct jv *out)
{
    struct jstr m = n->a->name;
    struct jarena *a = jctx_arena(c);
    const struct signature *sig = find_sig(method_sigs, MB_ARRAY_LEN(method_sigs), m);
    if (sig && check_sig(c, n, sig, names, nargs) < 0)
        return -1;
    if (jstr_eq(m, "items"))
        return dict_items(c, n, d, out);
    if (jstr_eq(m, "keys") || jstr_eq(m, "values")) {
        *out = jv_list_new(a, d.d->n);
        for (size_t i = 0; i < d.d->n; i++)
            jv_list_push(a, *out, jstr_eq(m, "keys") ? jv_str(d.d->key[i].s, d.d->key[i].n)
                                                    : d.d->val[i]);
        return 0;
    }
    if (jstr_eq(m, "get")) {
        const struct jv *k = arg(args, names, nargs, 0, "");
        const struct jv *dflt = arg(args, names, nargs, 1, "");
        if (!k || k->k != JV_STR)
            return jinja_fail(c, n->line, "dict.get needs a string key");
        struct jv *v = jv_dict_get(d, k->s.s, k->s.n);
        *out = v ? *v : dflt ? *dflt : jv_none();
        return 0;
    }
    return jinja_fail(c, n->line, "unsupported construct: dict method '%.*s'", (int)m.n, m.s);
}

int jinja_method(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out)
{
    if (v.k == JV_STR)
        return str_method(c, n, v.s, args, names, nargs, out);
    if (v.k == JV_DICT)
        return dict_method(c, n, v, args, names, nargs, out);
    return jinja_fail(c, n->line, "unsupported construct: method '%.*s' of a %s",
                      (int)n->a->name.n, n->a->name.s, jv_type_name(v));
}

/* ---- global functions --------------------------------------------------------------------- */

static int global_range(struct jctx *c, const struct jnode *n, const struct jv *args,
                        size_t nargs, struct jv *out)
{
    int64_t v[3] = { 0, 0, 1 };
    if (nargs < 1 || nargs > 3)
        return jinja_fail(c, n->line, "range takes 1 to 3 arguments");
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].k != JV_INT)
            return jinja_fail(c, n->line, "range: integer arguments expected");
        v[nargs == 1 ? 1 : i] = args[i].i;
    }
    if (v[2] == 0)
        return jinja_fail(c, n->line, "range: step must not be zero");
    *out = jv_list_new(jctx_arena(c), 0);
    size_t count = 0;
    for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
        if (++count > 100000) /* jinja2's sandbox limit (MAX_RANGE) */
            return jinja_fail(c, n->line, "range too big");
        jv_list_push(jctx_arena(c), *out, jv_int(i));
    }
    return 0;
}

static int global_strftime(struct jctx *c, const struct jnode *n, const struct jv *args,
                           size_t nargs, struct jv *out)
{
    if (nargs != 1 || args[0].k != JV_STR)
        return jinja_fail(c, n->line, "strftime_now takes one format string");
    char fmt[256], buf[512];
    snprintf(fmt, sizeof fmt, "%.*s", (int)MB_MIN(args[0].s.n, (size_t)255), args[0].s.s);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t len = strftime(buf, sizeof buf, fmt, &tm);
    *out = jv_dup_str(c, buf, len);
    return 0;
}

static const char *const globals[] = { "raise_exception", "namespace", "dict", "range",
                                       "strftime_now" };

int jinja_is_global(struct jstr name)
{
    for (size_t i = 0; i < MB_ARRAY_LEN(globals); i++)
        if (jstr_eq(name, globals[i]))
            return 1;
    return 0;
}

int jinja_global(struct jctx *c, const struct jnode *n, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out)
{
    struct jstr f = n->a->name;
    if (jstr_eq(f, "raise_exception")) {
        struct jv msg = nargs ? args[0] : jv_str("", 0);
        struct jv s;
        if (jv_stringify(jctx_arena(c), msg, &s) < 0)
            s = jv_str("", 0);
        return jinja_fail(c, n->line, "the template raised an exception: %.*s",
                          (int)MB_MIN(s.s.n, (size_t)600), s.s.s);
    }
    if (jstr_eq(f, "namespace") || jstr_eq(f, "dict")) {
        *out = jv_dict_new(jctx_arena(c), nargs);
        if (jstr_eq(f, "namespace"))
            out->k = JV_NS;
        for (size_t i = 0; i < nargs; i++) {
            if (names[i].n) {
                jv_dict_set(jctx_arena(c), *out, names[i], args[i]);
            } else if (args[i].k == JV_DICT) {
                for (size_t k = 0; k < args[i].d->n; k++)
                    jv_dict_set(jctx_arena(c), *out, args[i].d->key[k], args[i].d->val[k]);
            } else {
                return jinja_fail(c, n->line, "%.*s: positional argument of type %s",
                                  (int)f.n, f.s, jv_type_name(args[i]));
            }
        }
        return 0;
    }
    if (jstr_eq(f, "range"))
        return global_range(c, n, args, nargs, out);
    if (jstr_eq(f, "strftime_now"))
        return global_strftime(c, n, args, nargs, out);
    return jinja_fail(c, n->line, "unsupported construct: function '%.*s'", (int)f.n, f.s);
}
