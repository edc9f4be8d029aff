/* tok/jinja_eval.c - render a parsed template: scopes, expressions and statements.
 *
 * Scopes follow jinja2: the variables given to the render are the outermost frame; a
 * "set" writes into the innermost frame; each iteration of a for loop runs in a fresh
 * frame (holding the loop variables and "loop"), so a "set" in a loop body neither
 * survives the iteration nor leaks out of the loop (hence namespace()). Undefined is
 * jinja2's lenient one: it prints as "", is false and iterates as empty, but taking an
 * attribute or an item of it, or computing with it, is an error.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "tok/jinja_internal.h"

struct var {
    struct jstr name;
    struct jv val;
};

struct frame {
    struct var *v;
    size_t n, cap;
};

enum { FLOW_NONE, FLOW_BREAK, FLOW_CONTINUE };

struct jctx {
    const struct mb_jinja *t;
    struct jarena a;
    struct frame *frames;
    size_t nframes, capframes;
    struct mb_buf *out;
    struct mb_jinja_spans *spans;
    int flow;
    size_t floor;   /* frames below it (but frame 0) are hidden: a macro's caller */
    int captured;   /* output goes to a macro's or block set's buffer */
    int depth;      /* macro calls in progress */
    int64_t steps;  /* loop iterations so far */
};

/* A render that runs past these is stopped with an error rather than hanging or
 * filling memory (a chat template renders a conversation in well under both). */
#define MAX_STEPS ((int64_t)10000000)
#define MAX_OUTPUT ((size_t)256 << 20)

struct jarena *jctx_arena(struct jctx *c)
{
    return &c->a;
}

int jinja_fail(const struct jctx *c, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mb_err_set(MB_E_INVALID, mb_at_line(c->t->name, line), "%s", msg);
}

/* A library error (no WHERE yet) reported at the template line. */
static int fail_here(const struct jctx *c, int line)
{
    return jinja_fail(c, line, "%s", mb_err_what());
}

/* ---- scopes --------------------------------------------------------------------- */

/* A frame slot keeps its variable array when popped: the next frame pushed there (the
 * next loop iteration) reuses it, so a long loop does not grow the arena. */
static void push_frame(struct jctx *c)
{
    if (c->nframes == c->capframes) {
        size_t old = c->capframes;
        MB_GROW(c->frames, c->capframes, c->nframes + 1);
        memset(c->frames + old, 0, (c->capframes - old) * sizeof *c->frames);
    }
    c->frames[c->nframes++].n = 0;
}

static void pop_frame(struct jctx *c)
{
    c->nframes--;
}

static void set_var(struct jctx *c, struct jstr name, struct jv val)
{
    struct frame *f = &c->frames[c->nframes - 1];
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].name.n == name.n && memcmp(f->v[i].name.s, name.s, name.n) == 0) {
            f->v[i].val = val;
            return;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        struct var *v = jarena_alloc(&c->a, cap * sizeof *v);
        if (f->n)
            memcpy(v, f->v, f->n * sizeof *v);
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (struct var){ name, val };
}

static struct jv lookup(const struct jctx *c, struct jstr name)
{
    for (size_t k = c->nframes; k-- > 0;) {
        if (k < c->floor && k > 0)
            k = 0;
        const struct frame *f = &c->frames[k];
        for (size_t i = f->n; i-- > 0;)
            if (f->v[i].name.n == name.n && memcmp(f->v[i].name.s, name.s, name.n) == 0)
                return f->v[i].val;
    }
    return jv_undef();
}

/* ---- expressions -------------------------------------------------------------------- */

static int eval(struct jctx *c, const struct jnode *n, struct jv *out);

static const char *describe(const struct jnode *n)
{
    static _Thread_local char buf[96];
    if (n->k == JN_NAME)
        snprintf(buf, sizeof buf, "'%.*s'", (int)MB_MIN(n->name.n, (size_t)60), n->name.s);
    else if (n->k == JN_ATTR)
        snprintf(buf, sizeof buf, "attribute '%.*s'", (int)MB_MIN(n->name.n, (size_t)60),
                 n->name.s);
    else
        snprintf(buf, sizeof buf, "the value");
    return buf;
}

static int undefined_error(const struct jctx *c, const struct jnode *n, const char *what)
{
    return jinja_fail(c, n->line, "%s is undefined (%s)", describe(n), what);
}

/* Python methods of str, list and dict: jinja2 finds them before any dict key, so
 * "x.items" without a call is the method object, which mb does not print. */
static int is_method_name(struct jv obj, struct jstr name)
{
    static const char *const str_methods[] = {
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs",
        "find", "format", "format_map", "index", "isalnum", "isalpha", "isascii",
        "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable",
        "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans",
        "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "translate", "upper", "zfill", NULL };
    static const char *const list_methods[] = { "append", "clear", "copy", "count", "extend",
        "index", "insert", "pop", "remove", "reverse", "sort", NULL };
    static const char *const dict_methods[] = { "clear", "copy", "fromkeys", "get", "items",
        "keys", "pop", "popitem", "setdefault", "update", "values", NULL };
    const char *const *names = obj.k == JV_STR ? str_methods : obj.k == JV_LIST ? list_methods
                               : obj.k == JV_DICT ? dict_methods : NULL;
    for (size_t i = 0; names && names[i]; i++)
        if (jstr_eq(name, names[i]))
            return 1;
    return 0;
}

static int eval_attr(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv obj;
    if (eval(c, n->a, &obj) < 0)
        return -1;
    if (obj.k == JV_UNDEF)
        return undefined_error(c, n->a, "taking an attribute");
    if (is_method_name(obj, n->name))
        return jinja_fail(c, n->line, "unsupported construct: the method '%.*s' of a %s used "
                          "without a call", (int)n->name.n, n->name.s, jv_type_name(obj));
    *out = jv_undef();
    if (obj.k == JV_DICT || obj.k == JV_NS) {
        struct jv *v = jv_dict_get(obj, n->name.s, n->name.n);
        if (v)
            *out = *v;
    }
    return 0;
}

static int eval_item(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv obj, idx;
    if (eval(c, n->a, &obj) < 0 || eval(c, n->b, &idx) < 0)
        return -1;
    if (obj.k == JV_UNDEF)
        return undefined_error(c, n->a, "taking an item");
    if (obj.k == JV_LIST && obj.l->gen)
        return jinja_fail(c, n->line, "indexing a generator (add | list)");
    *out = jv_undef();
    if ((obj.k == JV_DICT || obj.k == JV_NS) && idx.k == JV_STR) {
        struct jv *v = jv_dict_get(obj, idx.s.s, idx.s.n);
        if (v)
            *out = *v;
    } else if ((obj.k == JV_LIST || obj.k == JV_STR) && (idx.k == JV_INT || idx.k == JV_BOOL)) {
        int64_t i = idx.k == JV_INT ? idx.i : idx.b;
        int64_t len = obj.k == JV_LIST ? (int64_t)obj.l->n : (int64_t)jstr_chars(obj.s);
        if (i < 0)
            i += len;
        if (i >= 0 && i < len) {
            if (obj.k == JV_LIST) {
                *out = obj.l->v[i];
            } else {
                size_t b = jstr_char_off(obj.s, (size_t)i);
                size_t e = jstr_char_off(obj.s, (size_t)i + 1);
                *out = jv_str(obj.s.s + b, e - b);
            }
        }
    } else if (obj.k == JV_DICT && idx.k != JV_STR) {
        return jinja_fail(c, n->line, "dict key of type %s (only strings are supported)",
                          jv_type_name(idx));
    }
    return 0;
}

/* Python's slice.indices(len). */
static int slice_indices(struct jctx *c, int line, const struct jv *parts, int64_t len,
                         int64_t *start, int64_t *stop, int64_t *step)
{
    int64_t v[3];
    int given[3];
    for (int i = 0; i < 3; i++) {
        given[i] = parts[i].k != JV_NONE && parts[i].k != JV_UNDEF;
        if (given[i] && parts[i].k != JV_INT)
            return jinja_fail(c, line, "slice index of type %s", jv_type_name(parts[i]));
        v[i] = given[i] ? parts[i].i : 0;
    }
    *step = given[2] ? v[2] : 1;
    if (*step == 0)
        return jinja_fail(c, line, "slice step cannot be zero");
    int64_t lo = *step < 0 ? -1 : 0, hi = *step < 0 ? len - 1 : len;
    for (int i = 0; i < 2; i++) {
        int64_t x;
        if (!given[i]) {
            x = (i == 0) == (*step > 0) ? lo : hi;
        } else {
            x = v[i];
            if (x < 0) {
                x += len;
                if (x < lo)
                    x = lo;
            } else if (x > hi) {
                x = hi;
            }
        }
        if (i == 0)
            *start = x;
        else
            *stop = x;
    }
    return 0;
}

static int eval_slice(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv obj, parts[3];
    if (eval(c, n->a, &obj) < 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        parts[i] = jv_none();
        if (n->args.v[i] && eval(c, n->args.v[i], &parts[i]) < 0)
            return -1;
    }
    if (obj.k == JV_UNDEF)
        return undefined_error(c, n->a, "slicing");
    if ((obj.k != JV_LIST && obj.k != JV_STR) || (obj.k == JV_LIST && obj.l->gen))
        return jinja_fail(c, n->line, "slicing a %s", obj.k == JV_LIST ? "generator"
                          : jv_type_name(obj));
    int64_t len = obj.k == JV_LIST ? (int64_t)obj.l->n : (int64_t)jstr_chars(obj.s);
    int64_t start = 0, stop = 0, step = 1;
    if (slice_indices(c, n->line, parts, len, &start, &stop, &step) < 0)
        return -1;
    if (obj.k == JV_LIST) {
        *out = jv_list_new(&c->a, 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jv_list_push(&c->a, *out, obj.l->v[i]);
        return 0;
    }
    struct mb_buf b = MB_BUF_INIT;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        size_t s = jstr_char_off(obj.s, (size_t)i), e = jstr_char_off(obj.s, (size_t)i + 1);
        mb_buf_add(&b, obj.s.s + s, e - s);
    }
    *out = jv_str(jarena_strdup(&c->a, b.data ? b.data : "", b.len), b.len);
    mb_buf_release(&b);
    return 0;
}

static int eval_args(struct jctx *c, const struct jnode *n, struct jv *args)
{
    for (size_t i = 0; i < n->args.n; i++)
        if (eval(c, n->args.v[i], &args[i]) < 0)
            return -1;
    return 0;
}

static int exec_body(struct jctx *c, const struct jnodes *body);

/* Run BODY with its output into a string (a macro call, a block set). */
static int capture(struct jctx *c, const struct jnodes *body, struct jv *out)
{
    struct mb_buf buf = MB_BUF_INIT, *saved = c->out;
    c->out = &buf;
    c->captured++;
    int rc = exec_body(c, body);
    c->captured--;
    c->out = saved;
    if (rc == 0)
        *out = jv_str(jarena_strdup(&c->a, buf.data ? buf.data : "", buf.len), buf.len);
    mb_buf_release(&buf);
    return rc;
}

/* A macro call: its parameters in a fresh frame above the template's globals only. */
static int call_macro(struct jctx *c, const struct jnode *call, const struct jnode *m,
                      const struct jv *args, struct jv *out)
{
    if (c->depth >= 64)
        return jinja_fail(c, call->line, "macro calls nested more than 64 deep");
    size_t positional = 0;
    for (size_t i = 0; i < call->args.n; i++)
        positional += call->argname[i].n == 0;
    if (positional > m->nvars)
        return jinja_fail(c, call->line, "macro '%.*s' takes %zu arguments, %zu given",
                          (int)m->name.n, m->name.s, m->nvars, positional);
    size_t saved_floor = c->floor;
    int saved_flow = c->flow;
    push_frame(c);
    c->floor = c->nframes - 1;
    c->flow = 0;
    int rc = 0;
    for (size_t p = 0; p < m->nvars && rc == 0; p++) {
        const struct jv *given = p < positional ? &args[p] : NULL;
        for (size_t i = positional; i < call->args.n; i++)
            if (call->argname[i].n == m->vars[p].n &&
                memcmp(call->argname[i].s, m->vars[p].s, m->vars[p].n) == 0)
                given = &args[i];
        struct jv v = jv_undef();
        if (given)
            v = *given;
        else if (m->defaults.v[p])
            rc = eval(c, m->defaults.v[p], &v);
        set_var(c, m->vars[p], v);
    }
    for (size_t i = positional; i < call->args.n && rc == 0; i++) {
        size_t p = 0;
        while (p < m->nvars && !(call->argname[i].n == m->vars[p].n &&
                                memcmp(call->argname[i].s, m->vars[p].s, m->vars[p].n) == 0))
            p++;
        if (p == m->nvars || p < positional)
            rc = jinja_fail(c, call->line, "macro '%.*s' takes no keyword argument '%.*s'%s",
                            (int)m->name.n, m->name.s, (int)call->argname[i].n,
                            call->argname[i].s, p < positional ? " (given by position)" : "");
    }
    c->depth++;
    if (rc == 0)
        rc = capture(c, &m->args, out);
    c->depth--;
    pop_frame(c);
    c->floor = saved_floor;
    c->flow = saved_flow;
    return rc;
}

static int eval_call(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv args[32];
    if (eval_args(c, n, args) < 0)
        return -1;
    const struct jnode *f = n->a;
    if (f->k == JN_NAME) {
        struct jv v = lookup(c, f->name);
        if (v.k == JV_MACRO)
            return call_macro(c, n, v.macro, args, out);
        return jinja_global(c, n, args, n->argname, n->args.n, out);
    }
    if (f->k == JN_ATTR) {
        struct jv obj;
        if (eval(c, f->a, &obj) < 0)
            return -1;
        if (obj.k == JV_UNDEF)
            return undefined_error(c, f->a, "calling a method");
        return jinja_method(c, n, obj, args, n->argname, n->args.n, out);
    }
    return jinja_fail(c, n->line, "unsupported construct: calling an expression");
}

static int is_num(struct jv v)
{
    return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL;
}

static int64_t as_int(struct jv v)
{
    return v.k == JV_INT ? v.i : v.b;
}

static double as_dbl(struct jv v)
{
    return v.k == JV_FLOAT ? v.f : (double)as_int(v);
}

static int concat(struct jctx *c, struct jv a, struct jv b, struct jv *out)
{
    size_t total = a.k == JV_STR ? a.s.n + b.s.n : (a.l->n + b.l->n) * sizeof(struct jv);
    if (total > MAX_OUTPUT)
        return mb_err_set(MB_E_INVALID, NULL, "a string or list longer than %zu MiB",
                          MAX_OUTPUT >> 20);
    if (a.k == JV_STR && b.k == JV_STR) {
        char *s = jarena_alloc(&c->a, a.s.n + b.s.n + 1);
        memcpy(s, a.s.s, a.s.n);
        memcpy(s + a.s.n, b.s.s, b.s.n);
        *out = jv_str(s, a.s.n + b.s.n);
        return 0;
    }
    *out = jv_list_new(&c->a, a.l->n + b.l->n);
    for (size_t i = 0; i < a.l->n; i++)
        jv_list_push(&c->a, *out, a.l->v[i]);
    for (size_t i = 0; i < b.l->n; i++)
        jv_list_push(&c->a, *out, b.l->v[i]);
    return 0;
}

static int repeat(struct jctx *c, struct jv seq, int64_t k, struct jv *out)
{
    if (k < 0)
        k = 0;
    size_t unit = seq.k == JV_STR ? seq.s.n : seq.l->n * sizeof(struct jv);
    if (unit && (uint64_t)k > MAX_OUTPUT / unit)
        return mb_err_set(MB_E_INVALID, NULL, "a string or list longer than %zu MiB",
                          MAX_OUTPUT >> 20);
    if (seq.k == JV_STR) {
        char *s = jarena_alloc(&c->a, seq.s.n * (size_t)k + 1);
        for (int64_t i = 0; i < k; i++)
            memcpy(s + (size_t)i * seq.s.n, seq.s.s, seq.s.n);
        *out = jv_str(s, seq.s.n * (size_t)k);
        return 0;
    }
    *out = jv_list_new(&c->a, seq.l->n * (size_t)k);
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.l->n; j++)
            jv_list_push(&c->a, *out, seq.l->v[j]);
    return 0;
}

/* Python's float divmod (floatobject.c float_divmod): the remainder takes the sign of
 * the divisor, and the quotient is the floor of the exact one. */
static void py_float_divmod(double vx, double wx, double *floordiv, double *mod)
{
    double m = fmod(vx, wx), div = (vx - m) / wx;
    if (m != 0) {
        if ((wx < 0) != (m < 0)) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, wx);
    }
    if (div != 0) {
        double f = floor(div);
        if (div - f > 0.5)
            f += 1.0;
        div = f;
    } else {
        div = copysign(0.0, vx / wx);
    }
    *floordiv = div;
    *mod = m;
}

static int floor_div(int64_t a, int64_t b, int64_t *q)
{
    if (b == 0)
        return -1;
    int64_t d = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        d--;
    *q = d;
    return 0;
}

static int arith(struct jctx *c, const struct jnode *n, struct jv a, struct jv b, struct jv *out)
{
    struct jstr op = n->op;
    int same_seq = (a.k == JV_STR && b.k == JV_STR) ||
                   (a.k == JV_LIST && b.k == JV_LIST && !a.l->gen && !b.l->gen);
    if (jstr_eq(op, "+") && same_seq)
        return concat(c, a, b, out) < 0 ? fail_here(c, n->line) : 0;
    if (jstr_eq(op, "*") && (a.k == JV_STR || (a.k == JV_LIST && !a.l->gen)) &&
        (b.k == JV_INT || b.k == JV_BOOL))
        return repeat(c, a, as_int(b), out) < 0 ? fail_here(c, n->line) : 0;
    if (jstr_eq(op, "*") && (b.k == JV_STR || (b.k == JV_LIST && !b.l->gen)) &&
        (a.k == JV_INT || a.k == JV_BOOL))
        return repeat(c, b, as_int(a), out) < 0 ? fail_here(c, n->line) : 0;
    if (a.k == JV_UNDEF || b.k == JV_UNDEF)
        return undefined_error(c, a.k == JV_UNDEF ? n->a : n->b, "used with an operator");
    if (!is_num(a) || !is_num(b))
        return jinja_fail(c, n->line, "unsupported operand types for %.*s: %s and %s",
                          (int)op.n, op.s, jv_type_name(a), jv_type_name(b));
    int ints = a.k != JV_FLOAT && b.k != JV_FLOAT;
    int64_t x = as_int(a), y = as_int(b), r = 0;
    double fx = as_dbl(a), fy = as_dbl(b);
    int over = 0;
    if (jstr_eq(op, "+")) {
        over = ints && __builtin_add_overflow(x, y, &r);
        *out = ints ? jv_int(r) : jv_float(fx + fy);
    } else if (jstr_eq(op, "-")) {
        over = ints && __builtin_sub_overflow(x, y, &r);
        *out = ints ? jv_int(r) : jv_float(fx - fy);
    } else if (jstr_eq(op, "*")) {
        over = ints && __builtin_mul_overflow(x, y, &r);
        *out = ints ? jv_int(r) : jv_float(fx * fy);
    } else if (jstr_eq(op, "/")) {
        if (fy == 0)
            return jinja_fail(c, n->line, "division by zero");
        *out = jv_float(fx / fy);
    } else if (jstr_eq(op, "//") || jstr_eq(op, "%")) {
        if (fy == 0)
            return jinja_fail(c, n->line, "integer division or modulo by zero");
        if (ints) {
            int64_t q = 0;
            over = x == INT64_MIN && y == -1;
            if (!over)
                floor_div(x, y, &q);
            *out = jstr_eq(op, "//") ? jv_int(q) : jv_int(over ? 0 : x - q * y);
        } else {
            double q, m;
            py_float_divmod(fx, fy, &q, &m);
            *out = jstr_eq(op, "//") ? jv_float(q) : jv_float(m);
        }
    } else if (jstr_eq(op, "**")) {
        if (ints && y >= 0) {
            r = 1;
            for (int64_t i = 0; i < y && !over; i++) {
                over = __builtin_mul_overflow(r, x, &r);
                if (r == 0 || r == 1)
                    break;
                if (r == -1 && x == -1) {
                    r = (y % 2) ? -1 : 1;
                    break;
                }
            }
            *out = jv_int(r);
        } else {
            if (fx == 0 && fy < 0)
                return jinja_fail(c, n->line, "0.0 cannot be raised to a negative power");
            double p = pow(fx, fy);
            if ((isnan(p) && !isnan(fx) && !isnan(fy)) ||
                (isinf(p) && !isinf(fx) && !isinf(fy)))
                return jinja_fail(c, n->line, "'**' result out of range or complex");
            *out = jv_float(p);
        }
    } else {
        return jinja_fail(c, n->line, "unsupported operator '%.*s'", (int)op.n, op.s);
    }
    if (over)
        return jinja_fail(c, n->line, "integer result of '%.*s' outside 64 bits (Python "
                          "computes it exactly; mb does not)", (int)op.n, op.s);
    return 0;
}

static int compare(struct jctx *c, const struct jnode *n, struct jv a, struct jv b, struct jv *out)
{
    struct jstr op = n->op;
    if (jstr_eq(op, "==") || jstr_eq(op, "!=")) {
        *out = jv_bool(jv_equal(a, b) == jstr_eq(op, "=="));
        return 0;
    }
    int cmp;
    if (is_num(a) && is_num(b)) {
        double x = as_dbl(a), y = as_dbl(b);
        if (a.k != JV_FLOAT && b.k != JV_FLOAT)
            cmp = (as_int(a) > as_int(b)) - (as_int(a) < as_int(b));
        else
            cmp = (x > y) - (x < y);
    } else if (a.k == JV_STR && b.k == JV_STR) {
        int m = memcmp(a.s.s, b.s.s, MB_MIN(a.s.n, b.s.n));
        cmp = m ? (m > 0) - (m < 0) : (a.s.n > b.s.n) - (a.s.n < b.s.n);
    } else {
        return jinja_fail(c, n->line, "'%.*s' not supported between %s and %s", (int)op.n,
                          op.s, jv_type_name(a), jv_type_name(b));
    }
    int r = jstr_eq(op, "<") ? cmp < 0 : jstr_eq(op, ">") ? cmp > 0
            : jstr_eq(op, "<=") ? cmp <= 0 : cmp >= 0;
    *out = jv_bool(r);
    return 0;
}

static int contains(struct jctx *c, const struct jnode *n, struct jv item, struct jv seq,
                    int *found)
{
    *found = 0;
    if (seq.k == JV_STR) {
        if (item.k != JV_STR)
            return jinja_fail(c, n->line, "'in <string>' requires a string, not %s",
                              jv_type_name(item));
        if (item.s.n == 0)
            *found = 1;
        for (size_t i = 0; !*found && i + item.s.n <= seq.s.n; i++)
            *found = memcmp(seq.s.s + i, item.s.s, item.s.n) == 0;
    } else if (seq.k == JV_LIST && seq.l->gen) {
        return jinja_fail(c, n->line, "'in' on a generator (add | list)");
    } else if (seq.k == JV_LIST) {
        for (size_t i = 0; !*found && i < seq.l->n; i++)
            *found = jv_equal(item, seq.l->v[i]);
    } else if (seq.k == JV_DICT) {
        *found = item.k == JV_STR && jv_dict_get(seq, item.s.s, item.s.n) != NULL;
    } else if (seq.k != JV_UNDEF) {
        return jinja_fail(c, n->line, "'in' on a %s", jv_type_name(seq));
    }
    return 0;
}

static int eval_binop(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv a, b;
    if (eval(c, n->a, &a) < 0 || eval(c, n->b, &b) < 0)
        return -1;
    struct jstr op = n->op;
    if (jstr_eq(op, "~")) {
        struct jv sa, sb;
        if (jv_stringify(&c->a, a, &sa) < 0 || jv_stringify(&c->a, b, &sb) < 0 ||
            concat(c, sa, sb, out) < 0)
            return fail_here(c, n->line);
        return 0;
    }
    if (jstr_eq(op, "in") || jstr_eq(op, "not in")) {
        int found;
        if (contains(c, n, a, b, &found) < 0)
            return -1;
        *out = jv_bool(found == jstr_eq(op, "in"));
        return 0;
    }
    if (jstr_eq(op, "==") || jstr_eq(op, "!=") || jstr_eq(op, "<") || jstr_eq(op, ">") ||
        jstr_eq(op, "<=") || jstr_eq(op, ">="))
        return compare(c, n, a, b, out);
    return arith(c, n, a, b, out);
}

static int eval(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv v;
    switch (n->k) {
    case JN_LIT:
        *out = n->lit;
        return 0;
    case JN_NAME:
        *out = lookup(c, n->name);
        if (out->k == JV_UNDEF && jinja_is_global(n->name))
            *out = (struct jv){ .k = JV_FUNC, .s = n->name };
        return 0;
    case JN_LIST:
        *out = jv_list_new(&c->a, n->args.n);
        out->l->tuple = n->op.n != 0;
        for (size_t i = 0; i < n->args.n; i++) {
            if (eval(c, n->args.v[i], &v) < 0)
                return -1;
            jv_list_push(&c->a, *out, v);
        }
        return 0;
    case JN_DICT:
        *out = jv_dict_new(&c->a, n->args.n / 2);
        for (size_t i = 0; i + 1 < n->args.n; i += 2) {
            struct jv k;
            if (eval(c, n->args.v[i], &k) < 0 || eval(c, n->args.v[i + 1], &v) < 0)
                return -1;
            if (k.k != JV_STR)
                return jinja_fail(c, n->line, "dict key of type %s (only strings are "
                                  "supported)", jv_type_name(k));
            jv_dict_set(&c->a, *out, k.s, v);
        }
        return 0;
    case JN_ATTR:
        return eval_attr(c, n, out);
    case JN_ITEM:
        return eval_item(c, n, out);
    case JN_SLICE:
        return eval_slice(c, n, out);
    case JN_CALL:
        return eval_call(c, n, out);
    case JN_FILTER: {
        struct jv args[32];
        if (eval(c, n->a, &v) < 0 || eval_args(c, n, args) < 0)
            return -1;
        return jinja_filter(c, n, v, args, n->argname, n->args.n, out);
    }
    case JN_TEST: {
        struct jv args[32];
        int r;
        if (eval(c, n->a, &v) < 0 || eval_args(c, n, args) < 0 ||
            jinja_test(c, n, v, args, n->args.n, &r) < 0)
            return -1;
        *out = jv_bool(r != (n->op.n != 0));
        return 0;
    }
    case JN_NEG:
        if (eval(c, n->a, &v) < 0)
            return -1;
        if (!is_num(v))
            return v.k == JV_UNDEF ? undefined_error(c, n->a, "with a unary sign")
                   : jinja_fail(c, n->line, "bad operand type for unary %.*s: %s", (int)n->op.n,
                                n->op.s, jv_type_name(v));
        if (jstr_eq(n->op, "+")) {
            *out = v.k == JV_BOOL ? jv_int(v.b) : v;
            return 0;
        }
        if (v.k != JV_FLOAT && as_int(v) == INT64_MIN)
            return jinja_fail(c, n->line, "integer result of '-' outside 64 bits");
        *out = v.k == JV_FLOAT ? jv_float(-v.f) : jv_int(-as_int(v));
        return 0;
    case JN_NOT:
        if (eval(c, n->a, &v) < 0)
            return -1;
        *out = jv_bool(!jv_truthy(v));
        return 0;
    case JN_AND:
    case JN_OR:
        if (eval(c, n->a, &v) < 0)
            return -1;
        if (jv_truthy(v) == (n->k == JN_OR)) {
            *out = v;
            return 0;
        }
        return eval(c, n->b, out);
    case JN_COND:
        if (eval(c, n->b, &v) < 0)
            return -1;
        if (jv_truthy(v))
            return eval(c, n->a, out);
        if (n->c)
            return eval(c, n->c, out);
        *out = jv_undef();
        return 0;
    case JN_BINOP:
        return eval_binop(c, n, out);
    default:
        return jinja_fail(c, n->line, "BUG: statement in an expression");
    }
}

/* ---- statements ------------------------------------------------------------------------ */

static int iteration_items(struct jctx *c, const struct jnode *n, struct jv seq, struct jv *items)
{
    switch (seq.k) {
    case JV_UNDEF:
        *items = jv_list_new(&c->a, 0);
        return 0;
    case JV_LIST:
        *items = seq;
        return 0;
    case JV_DICT:
        *items = jv_list_new(&c->a, seq.d->n);
        for (size_t i = 0; i < seq.d->n; i++)
            jv_list_push(&c->a, *items, jv_str(seq.d->key[i].s, seq.d->key[i].n));
        return 0;
    case JV_STR: {
        size_t chars = jstr_chars(seq.s);
        *items = jv_list_new(&c->a, chars);
        for (size_t i = 0; i < chars; i++) {
            size_t b = jstr_char_off(seq.s, i), e = jstr_char_off(seq.s, i + 1);
            jv_list_push(&c->a, *items, jv_str(seq.s.s + b, e - b));
        }
        return 0;
    }
    default:
        return jinja_fail(c, n->line, "'%s' object is not iterable", jv_type_name(seq));
    }
}

static int bind_loop_vars(struct jctx *c, const struct jnode *n, struct jv item)
{
    if (n->nvars == 1) {
        set_var(c, n->vars[0], item);
        return 0;
    }
    if (item.k != JV_LIST || item.l->n != n->nvars)
        return jinja_fail(c, n->line, "cannot unpack a %s into %zu loop variables",
                          jv_type_name(item), n->nvars);
    for (size_t i = 0; i < n->nvars; i++)
        set_var(c, n->vars[i], item.l->v[i]);
    return 0;
}

/* jinja2's LoopContext as a dict (cycle and changed are methods: refused when called),
 * one per loop, updated in place for each iteration as jinja2's is. */
static void loop_object(struct jctx *c, struct jv d, struct jv items, size_t i)
{
    size_t len = items.l->n;
    static const char *const keys[] = { "index0", "index", "revindex0", "revindex", "first",
                                        "last", "length", "depth", "depth0", "previtem",
                                        "nextitem" };
    struct jv vals[] = { jv_int((int64_t)i), jv_int((int64_t)i + 1),
                         jv_int((int64_t)(len - i - 1)), jv_int((int64_t)(len - i)),
                         jv_bool(i == 0), jv_bool(i + 1 == len), jv_int((int64_t)len),
                         jv_int(1), jv_int(0), i > 0 ? items.l->v[i - 1] : jv_undef(),
                         i + 1 < len ? items.l->v[i + 1] : jv_undef() };
    for (size_t k = 0; k < MB_ARRAY_LEN(keys); k++)
        jv_dict_set(&c->a, d, (struct jstr){ keys[k], strlen(keys[k]) }, vals[k]);
}

static int exec_for(struct jctx *c, const struct jnode *n)
{
    struct jv seq, items;
    if (eval(c, n->b, &seq) < 0 || iteration_items(c, n, seq, &items) < 0)
        return -1;
    if (n->c) { /* the inline filter runs first: loop.length counts what it keeps */
        struct jv kept = jv_list_new(&c->a, items.l->n);
        for (size_t i = 0; i < items.l->n; i++) {
            struct jv keep;
            push_frame(c);
            int rc = bind_loop_vars(c, n, items.l->v[i]);
            if (rc == 0)
                rc = eval(c, n->c, &keep);
            pop_frame(c);
            if (rc < 0)
                return -1;
            if (jv_truthy(keep))
                jv_list_push(&c->a, kept, items.l->v[i]);
        }
        items = kept;
    }
    size_t len = items.l->n;
    struct jv loop = jv_dict_new(&c->a, 12);
    for (size_t i = 0; i < len; i++) {
        if (++c->steps > MAX_STEPS || c->out->len > MAX_OUTPUT)
            return jinja_fail(c, n->line, "the template runs too long (more than %lld loop "
                              "iterations or %zu MiB of output)", (long long)MAX_STEPS,
                              MAX_OUTPUT >> 20);
        push_frame(c);
        loop_object(c, loop, items, i);
        set_var(c, (struct jstr){ "loop", 4 }, loop);
        int rc = bind_loop_vars(c, n, items.l->v[i]);
        if (rc == 0)
            rc = exec_body(c, &n->args);
        pop_frame(c);
        if (rc < 0)
            return -1;
        int flow = c->flow;
        c->flow = FLOW_NONE;
        if (flow == FLOW_BREAK)
            break;
    }
    if (len == 0)
        return exec_body(c, &n->els);
    return 0;
}

static int exec_set(struct jctx *c, const struct jnode *n)
{
    struct jv v;
    if (n->a ? eval(c, n->a, &v) < 0 : capture(c, &n->els, &v) < 0)
        return -1;
    if (!n->name.n) {
        set_var(c, n->vars[0], v);
        return 0;
    }
    struct jv target = lookup(c, n->vars[0]);
    if (target.k != JV_NS)
        return jinja_fail(c, n->line, "cannot assign attribute '%.*s' on '%.*s' (a %s, not a "
                          "namespace)", (int)n->name.n, n->name.s, (int)n->vars[0].n,
                          n->vars[0].s, jv_type_name(target));
    jv_dict_set(&c->a, target, n->name, v);
    return 0;
}

static int exec_node(struct jctx *c, const struct jnode *n)
{
    struct jv v;
    switch (n->k) {
    case JN_TEXT:
        mb_buf_add(c->out, n->lit.s.s, n->lit.s.n);
        return 0;
    case JN_OUTPUT:
        if (eval(c, n->a, &v) < 0)
            return -1;
        return jv_to_str(v, c->out) < 0 ? fail_here(c, n->line) : 0;
    case JN_IF:
        if (eval(c, n->a, &v) < 0)
            return -1;
        return exec_body(c, jv_truthy(v) ? &n->args : &n->els);
    case JN_FOR:
        return exec_for(c, n);
    case JN_SET:
        return exec_set(c, n);
    case JN_MACRO:
        set_var(c, n->name, (struct jv){ .k = JV_MACRO, .macro = n });
        return 0;
    case JN_GENERATION: {
        if (c->captured)
            return jinja_fail(c, n->line, "unsupported construct: {%% generation %%} inside "
                              "a macro or a block set");
        size_t start = c->out->len;
        if (exec_body(c, &n->args) < 0)
            return -1;
        if (c->spans) {
            MB_GROW(c->spans->v, c->spans->cap, c->spans->n + 1);
            c->spans->v[c->spans->n][0] = start;
            c->spans->v[c->spans->n][1] = c->out->len;
            c->spans->n++;
        }
        return 0;
    }
    case JN_BREAK:
        c->flow = FLOW_BREAK;
        return 0;
    case JN_CONTINUE:
        c->flow = FLOW_CONTINUE;
        return 0;
    default:
        return jinja_fail(c, n->line, "BUG: expression as a statement");
    }
}

static int exec_body(struct jctx *c, const struct jnodes *body)
{
    for (size_t i = 0; i < body->n && c->flow == FLOW_NONE; i++)
        if (exec_node(c, body->v[i]) < 0)
            return -1;
    return 0;
}

/* ---- the interface ------------------------------------------------------------------------ */

mb_jinja *mb_jinja_parse(const char *src, size_t len, const char *name)
{
    mb_jinja *t = mb_xcalloc(1, sizeof *t);
    t->name = mb_xstrdup(name);
    struct jtoks toks = { 0 };
    int rc = jinja_lex(&t->arena, src, len, name, &toks);
    if (rc == 0)
        rc = jinja_parse_tokens(t, &toks);
    free(toks.v);
    if (rc < 0) {
        mb_jinja_free(t);
        return NULL;
    }
    return t;
}

void mb_jinja_free(mb_jinja *t)
{
    if (!t)
        return;
    jarena_release(&t->arena);
    free(t->name);
    free(t);
}

int mb_jinja_has_generation(const mb_jinja *t)
{
    return t->has_generation;
}

void mb_jinja_spans_release(struct mb_jinja_spans *s)
{
    free(s->v);
    *s = (struct mb_jinja_spans){ 0 };
}

int mb_jinja_render(const mb_jinja *t, const mb_json *vars, struct mb_buf *out,
                    struct mb_jinja_spans *spans)
{
    struct jctx c = { .t = t, .out = out, .spans = spans };
    size_t start = out->len;
    push_frame(&c);
    void *it = NULL;
    const char *key;
    mb_json *val;
    while (mb_json_next(vars, &it, &key, &val))
        set_var(&c, (struct jstr){ key, strlen(key) }, jv_from_json(&c.a, val));
    int rc = exec_body(&c, &t->body);
    free(c.frames);
    jarena_release(&c.a);
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = 0;
        if (spans)
            spans->n = 0;
    }
    return rc;
}
