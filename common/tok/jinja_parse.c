/* tok/jinja_parse.c - tokens to a syntax tree, by recursive descent with jinja2's
 * operator precedence (lowest first): conditional "a if c else b", or, and, not,
 * comparisons and in, + -, ~, * / // %, **, unary minus, then primaries with their
 * postfixes (.attr, [index], [a:b:c], (call)) and filters and tests ("x | f", "x is t"),
 * which bind tighter than any binary operator. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "tok/jinja_internal.h"

struct parser {
    struct mb_jinja *t;
    const struct jtoks *tk;
    size_t i;
    int depth; /* nesting of expressions and blocks being parsed */
};

#define MAX_ARGS 32
/* Deeper nesting is refused rather than risking the stack on hostile input; real
 * templates nest a few levels. */
#define MAX_DEPTH 200

MB_PRINTF(3, 4) static int pfail(const struct parser *P, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mb_err_set(MB_E_UNSUPPORTED, mb_at_line(P->t->name, line), "%s", msg);
}

static const struct jtok *peek(const struct parser *P)
{
    return &P->tk->v[P->i];
}

static const struct jtok *peek2(const struct parser *P)
{
    return P->i + 1 < P->tk->n ? &P->tk->v[P->i + 1] : &P->tk->v[P->i];
}

static const struct jtok *next(struct parser *P)
{
    const struct jtok *t = &P->tk->v[P->i];
    if (t->k != JT_EOF)
        P->i++;
    return t;
}

static int is_op(const struct jtok *t, const char *op)
{
    return t->k == JT_OP && jstr_eq(t->s, op);
}

static int is_name(const struct jtok *t, const char *name)
{
    return t->k == JT_NAME && jstr_eq(t->s, name);
}

static const char *tok_text(const struct jtok *t)
{
    static _Thread_local char buf[80];
    switch (t->k) {
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_END: return "'%}'";
    case JT_EOF: return "the end of the template";
    case JT_TEXT: return "template text";
    case JT_STRING: return "a string";
    default:
        snprintf(buf, sizeof buf, "'%.*s'", (int)MB_MIN(t->s.n, (size_t)60), t->s.s);
        return buf;
    }
}

static int expect_op(struct parser *P, const char *op)
{
    if (!is_op(peek(P), op))
        return pfail(P, peek(P)->line, "expected '%s', found %s", op, tok_text(peek(P)));
    next(P);
    return 0;
}

static int expect_end(struct parser *P, enum jtok_kind k)
{
    if (peek(P)->k != k)
        return pfail(P, peek(P)->line, "expected %s, found %s",
                     k == JT_VAR_END ? "'}}'" : "'%}'", tok_text(peek(P)));
    next(P);
    return 0;
}

void jnodes_push(struct jarena *a, struct jnodes *l, struct jnode *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        struct jnode **v = jarena_alloc(a, cap * sizeof *v);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static struct jnode *node(struct parser *P, enum jn_kind k, int line)
{
    struct jnode *n = jarena_alloc(&P->t->arena, sizeof *n);
    n->k = k;
    n->line = line;
    return n;
}

/* ---- expressions ---------------------------------------------------------------- */

static struct jnode *parse_expr(struct parser *P);
static struct jnode *parse_or(struct parser *P);
static struct jnode *parse_unary(struct parser *P, int with_filter);

/* "(a, k=v, ...)" after the '(' has been seen: into N's args and argname. */
static int parse_call_args(struct parser *P, struct jnode *n)
{
    struct jstr names[MAX_ARGS] = { { 0 } };
    next(P); /* '(' */
    while (!is_op(peek(P), ")")) {
        if (n->args.n == MAX_ARGS)
            return pfail(P, peek(P)->line, "more than %d arguments", MAX_ARGS);
        if (peek(P)->k == JT_NAME && is_op(peek2(P), "=")) {
            names[n->args.n] = next(P)->s;
            next(P);
        }
        struct jnode *arg = parse_expr(P);
        if (!arg)
            return -1;
        jnodes_push(&P->t->arena, &n->args, arg);
        if (!is_op(peek(P), ",")) {
            if (!is_op(peek(P), ")"))
                return pfail(P, peek(P)->line, "expected ',' or ')', found %s",
                             tok_text(peek(P)));
            break;
        }
        next(P);
    }
    next(P); /* ')' */
    n->argname = jarena_alloc(&P->t->arena, (n->args.n + 1) * sizeof *n->argname);
    memcpy(n->argname, names, n->args.n * sizeof *names);
    return 0;
}

/* "[a, b]", "{k: v}" or "(a)" / "(a, b)" after the opening bracket has been seen. */
static struct jnode *parse_collection(struct parser *P, const char *close, int dict)
{
    struct jnode *n = node(P, dict ? JN_DICT : JN_LIST, peek(P)->line);
    next(P);
    while (!is_op(peek(P), close)) {
        struct jnode *e = parse_expr(P);
        if (!e)
            return NULL;
        jnodes_push(&P->t->arena, &n->args, e);
        if (dict) {
            if (expect_op(P, ":") < 0 || !(e = parse_expr(P)))
                return NULL;
            jnodes_push(&P->t->arena, &n->args, e);
        }
        if (!is_op(peek(P), ","))
            break;
        next(P);
    }
    return expect_op(P, close) < 0 ? NULL : n;
}

static struct jnode *parse_primary(struct parser *P)
{
    const struct jtok *t = peek(P);
    struct jnode *n;
    if (t->k == JT_NAME) {
        next(P);
        n = node(P, JN_LIT, t->line);
        if (jstr_eq(t->s, "true") || jstr_eq(t->s, "True"))
            n->lit = jv_bool(1);
        else if (jstr_eq(t->s, "false") || jstr_eq(t->s, "False"))
            n->lit = jv_bool(0);
        else if (jstr_eq(t->s, "none") || jstr_eq(t->s, "None"))
            n->lit = jv_none();
        else {
            n->k = JN_NAME;
            n->name = t->s;
        }
        return n;
    }
    if (t->k == JT_STRING) {
        /* adjacent literals concatenate, as in Python */
        struct mb_buf b = MB_BUF_INIT;
        int line = t->line;
        while (peek(P)->k == JT_STRING) {
            t = next(P);
            mb_buf_add(&b, t->s.s, t->s.n);
        }
        n = node(P, JN_LIT, line);
        n->lit = jv_str(jarena_strdup(&P->t->arena, b.data ? b.data : "", b.len), b.len);
        mb_buf_release(&b);
        return n;
    }
    if (t->k == JT_INT || t->k == JT_FLOAT) {
        next(P);
        n = node(P, JN_LIT, t->line);
        n->lit = t->k == JT_INT ? jv_int(t->i) : jv_float(t->f);
        return n;
    }
    if (is_op(t, "(")) {
        next(P);
        struct jnode *e = parse_expr(P);
        if (!e)
            return NULL;
        if (is_op(peek(P), ",")) {
            /* a tuple: behaves as a list here */
            n = node(P, JN_LIST, t->line);
            n->op = (struct jstr){ "tuple", 5 };
            jnodes_push(&P->t->arena, &n->args, e);
            while (is_op(peek(P), ",")) {
                next(P);
                if (is_op(peek(P), ")"))
                    break;
                if (!(e = parse_expr(P)))
                    return NULL;
                jnodes_push(&P->t->arena, &n->args, e);
            }
            e = n;
        }
        return expect_op(P, ")") < 0 ? NULL : e;
    }
    if (is_op(t, "["))
        return parse_collection(P, "]", 0);
    if (is_op(t, "{"))
        return parse_collection(P, "}", 1);
    pfail(P, t->line, "unexpected %s in an expression", tok_text(t));
    return NULL;
}

static struct jnode *parse_subscript(struct parser *P, struct jnode *obj)
{
    int line = next(P)->line; /* '[' */
    struct jnode *parts[3] = { NULL, NULL, NULL };
    int slice = 0;
    if (!is_op(peek(P), ":") && !(parts[0] = parse_expr(P)))
        return NULL;
    if (is_op(peek(P), ":")) {
        slice = 1;
        next(P);
        if (!is_op(peek(P), ":") && !is_op(peek(P), "]") && !(parts[1] = parse_expr(P)))
            return NULL;
        if (is_op(peek(P), ":")) {
            next(P);
            if (!is_op(peek(P), "]") && !(parts[2] = parse_expr(P)))
                return NULL;
        }
    }
    if (expect_op(P, "]") < 0)
        return NULL;
    struct jnode *n = node(P, slice ? JN_SLICE : JN_ITEM, line);
    n->a = obj;
    if (slice) {
        for (int i = 0; i < 3; i++)
            jnodes_push(&P->t->arena, &n->args, parts[i]);
    } else {
        n->b = parts[0];
    }
    return n;
}

static struct jnode *parse_postfix(struct parser *P, struct jnode *n)
{
    for (;;) {
        const struct jtok *t = peek(P);
        if (is_op(t, ".")) {
            next(P);
            const struct jtok *name = next(P);
            struct jnode *m;
            if (name->k == JT_NAME) {
                m = node(P, JN_ATTR, name->line);
                m->name = name->s;
            } else if (name->k == JT_INT) {
                m = node(P, JN_ITEM, name->line);
                m->b = node(P, JN_LIT, name->line);
                m->b->lit = jv_int(name->i);
            } else {
                pfail(P, name->line, "expected an attribute name after '.', found %s",
                      tok_text(name));
                return NULL;
            }
            m->a = n;
            n = m;
        } else if (is_op(t, "[")) {
            if (!(n = parse_subscript(P, n)))
                return NULL;
        } else if (is_op(t, "(")) {
            struct jnode *c = node(P, JN_CALL, t->line);
            c->a = n;
            if (parse_call_args(P, c) < 0)
                return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

/* A test's single argument without parentheses: "x is equalto 'a'", "x is sameas false".
 * As in jinja2, any name but else, or, and starts one (so "x is defined if c" does not
 * parse, there or here). */
static int test_has_bare_arg(const struct jtok *t)
{
    if (t->k == JT_NAME)
        return !jstr_eq(t->s, "else") && !jstr_eq(t->s, "or") && !jstr_eq(t->s, "and");
    return t->k == JT_STRING || t->k == JT_INT || t->k == JT_FLOAT || is_op(t, "[") ||
           is_op(t, "{");
}

static struct jnode *parse_filter_expr(struct parser *P, struct jnode *n)
{
    for (;;) {
        const struct jtok *t = peek(P);
        if (is_op(t, "|")) {
            next(P);
            const struct jtok *name = next(P);
            if (name->k != JT_NAME) {
                pfail(P, name->line, "expected a filter name after '|', found %s",
                      tok_text(name));
                return NULL;
            }
            struct jnode *f = node(P, JN_FILTER, name->line);
            f->name = name->s;
            f->a = n;
            if (is_op(peek(P), "(")) {
                if (parse_call_args(P, f) < 0)
                    return NULL;
            } else {
                f->argname = jarena_alloc(&P->t->arena, sizeof *f->argname);
            }
            n = f;
        } else if (is_name(t, "is")) {
            next(P);
            struct jnode *f = node(P, JN_TEST, t->line);
            if (is_name(peek(P), "not")) {
                next(P);
                f->op = (struct jstr){ "not", 3 };
            }
            const struct jtok *name = next(P);
            if (name->k != JT_NAME) {
                pfail(P, name->line, "expected a test name after 'is', found %s",
                      tok_text(name));
                return NULL;
            }
            f->name = name->s;
            f->a = n;
            if (is_op(peek(P), "(")) {
                if (parse_call_args(P, f) < 0)
                    return NULL;
            } else if (test_has_bare_arg(peek(P))) {
                if (is_name(peek(P), "is")) {
                    pfail(P, peek(P)->line, "tests cannot be chained with 'is'");
                    return NULL;
                }
                struct jnode *arg = parse_primary(P);
                if (!arg || !(arg = parse_postfix(P, arg)))
                    return NULL;
                jnodes_push(&P->t->arena, &f->args, arg);
            }
            n = f;
        } else if (is_op(t, "(")) {
            struct jnode *c = node(P, JN_CALL, t->line);
            c->a = n;
            if (parse_call_args(P, c) < 0)
                return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static struct jnode *parse_unary(struct parser *P, int with_filter)
{
    const struct jtok *t = peek(P);
    struct jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        next(P);
        if (++P->depth > MAX_DEPTH) {
            pfail(P, t->line, "expressions nested more than %d deep", MAX_DEPTH);
            return NULL;
        }
        struct jnode *e = parse_unary(P, 0);
        P->depth--;
        if (!e)
            return NULL;
        n = node(P, JN_NEG, t->line);
        n->a = e;
        n->op = is_op(t, "+") ? (struct jstr){ "+", 1 } : (struct jstr){ "-", 1 };
    } else if (!(n = parse_primary(P))) {
        return NULL;
    }
    if (!(n = parse_postfix(P, n)))
        return NULL;
    return with_filter ? parse_filter_expr(P, n) : n;
}

static struct jnode *binop(struct parser *P, const struct jtok *op, struct jnode *a,
                           struct jnode *b)
{
    if (!b)
        return NULL;
    struct jnode *n = node(P, JN_BINOP, op->line);
    n->op = op->s;
    n->a = a;
    n->b = b;
    return n;
}

static struct jnode *parse_pow(struct parser *P)
{
    struct jnode *n = parse_unary(P, 1);
    while (n && is_op(peek(P), "**")) {
        const struct jtok *op = next(P);
        n = binop(P, op, n, parse_unary(P, 1));
    }
    return n;
}

static struct jnode *parse_math2(struct parser *P)
{
    struct jnode *n = parse_pow(P);
    while (n && (is_op(peek(P), "*") || is_op(peek(P), "/") || is_op(peek(P), "//") ||
                 is_op(peek(P), "%"))) {
        const struct jtok *op = next(P);
        n = binop(P, op, n, parse_pow(P));
    }
    return n;
}

static struct jnode *parse_concat(struct parser *P)
{
    struct jnode *n = parse_math2(P);
    while (n && is_op(peek(P), "~")) {
        const struct jtok *op = next(P);
        n = binop(P, op, n, parse_math2(P));
    }
    return n;
}

static struct jnode *parse_math1(struct parser *P)
{
    struct jnode *n = parse_concat(P);
    while (n && (is_op(peek(P), "+") || is_op(peek(P), "-"))) {
        const struct jtok *op = next(P);
        n = binop(P, op, n, parse_concat(P));
    }
    return n;
}

/* Comparisons chain as in Python: a < b < c is (a < b) and (b < c). */
static struct jnode *parse_compare(struct parser *P)
{
    static const char *const ops[] = { "==", "!=", "<", ">", "<=", ">=" };
    struct jnode *n = parse_math1(P), *last = NULL;
    while (n) {
        const struct jtok *t = peek(P);
        struct jtok op = *t;
        int cmp = 0;
        for (size_t i = 0; i < MB_ARRAY_LEN(ops); i++)
            cmp |= is_op(t, ops[i]);
        if (cmp || is_name(t, "in")) {
            next(P);
        } else if (is_name(t, "not") && is_name(peek2(P), "in")) {
            next(P);
            next(P);
            op.s = (struct jstr){ "not in", 6 };
        } else {
            break;
        }
        struct jnode *c = binop(P, &op, last ? last->b : n, parse_math1(P));
        if (!c)
            return NULL;
        if (last) {
            struct jnode *both = node(P, JN_AND, op.line);
            both->a = n;
            both->b = c;
            n = both;
        } else {
            n = c;
        }
        last = c;
    }
    return n;
}

static struct jnode *parse_not(struct parser *P)
{
    if (is_name(peek(P), "not")) {
        struct jnode *n = node(P, JN_NOT, next(P)->line);
        if (++P->depth > MAX_DEPTH) {
            pfail(P, n->line, "expressions nested more than %d deep", MAX_DEPTH);
            return NULL;
        }
        n->a = parse_not(P);
        P->depth--;
        return n->a ? n : NULL;
    }
    return parse_compare(P);
}

/* OPERAND (WORD OPERAND)*, left-associative, into KIND nodes ("and", "or"). */
static struct jnode *parse_left_assoc(struct parser *P, const char *word, enum jn_kind kind,
                                      struct jnode *(*operand)(struct parser *))
{
    struct jnode *n = operand(P);
    while (n && is_name(peek(P), word)) {
        struct jnode *m = node(P, kind, next(P)->line);
        m->a = n;
        if (!(m->b = operand(P)))
            return NULL;
        n = m;
    }
    return n;
}

static struct jnode *parse_and(struct parser *P)
{
    return parse_left_assoc(P, "and", JN_AND, parse_not);
}

static struct jnode *parse_or(struct parser *P)
{
    return parse_left_assoc(P, "or", JN_OR, parse_and);
}

static struct jnode *parse_expr_nested(struct parser *P);

static struct jnode *parse_expr(struct parser *P)
{
    if (++P->depth > MAX_DEPTH) {
        pfail(P, peek(P)->line, "expressions nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    struct jnode *n = parse_expr_nested(P);
    P->depth--;
    return n;
}

static struct jnode *parse_expr_nested(struct parser *P)
{
    struct jnode *n = parse_or(P);
    while (n && is_name(peek(P), "if")) {
        struct jnode *c = node(P, JN_COND, next(P)->line);
        c->a = n;
        if (!(c->b = parse_or(P)))
            return NULL;
        if (is_name(peek(P), "else")) {
            next(P);
            if (!(c->c = parse_expr(P)))
                return NULL;
        }
        n = c;
    }
    return n;
}

/* ---- statements ---------------------------------------------------------------------- */

static int parse_body(struct parser *P, struct jnodes *body, const char *const *stops,
                      const char **found);

/* After "{% if" (or "{% elif"): the condition, the body and its elif/else chain. */
static struct jnode *parse_if(struct parser *P, int line)
{
    static const char *const stops[] = { "elif", "else", "endif", NULL };
    static const char *const endif[] = { "endif", NULL };
    struct jnode *n = node(P, JN_IF, line);
    const char *found;
    if (!(n->a = parse_expr(P)) || expect_end(P, JT_BLOCK_END) < 0 ||
        parse_body(P, &n->args, stops, &found) < 0)
        return NULL;
    if (strcmp(found, "elif") == 0) {
        struct jnode *e = parse_if(P, peek(P)->line);
        if (!e)
            return NULL;
        jnodes_push(&P->t->arena, &n->els, e);
        return n;
    }
    if (strcmp(found, "else") == 0 &&
        (expect_end(P, JT_BLOCK_END) < 0 || parse_body(P, &n->els, endif, &found) < 0))
        return NULL;
    return expect_end(P, JT_BLOCK_END) < 0 ? NULL : n;
}

static struct jnode *parse_for(struct parser *P, int line)
{
    static const char *const stops[] = { "else", "endfor", NULL };
    static const char *const endfor[] = { "endfor", NULL };
    struct jnode *n = node(P, JN_FOR, line);
    struct jstr vars[8];
    for (;;) {
        const struct jtok *v = next(P);
        if (v->k != JT_NAME || n->nvars == MB_ARRAY_LEN(vars)) {
            pfail(P, v->line, "expected a loop variable, found %s", tok_text(v));
            return NULL;
        }
        vars[n->nvars++] = v->s;
        if (!is_op(peek(P), ","))
            break;
        next(P);
    }
    n->vars = jarena_alloc(&P->t->arena, n->nvars * sizeof *vars);
    memcpy(n->vars, vars, n->nvars * sizeof *vars);
    if (!is_name(peek(P), "in")) {
        pfail(P, peek(P)->line, "expected 'in' in a for loop, found %s", tok_text(peek(P)));
        return NULL;
    }
    next(P);
    if (!(n->b = parse_or(P)))
        return NULL;
    if (is_name(peek(P), "if")) {
        next(P);
        if (!(n->c = parse_expr(P)))
            return NULL;
    }
    if (is_name(peek(P), "recursive")) {
        pfail(P, peek(P)->line, "unsupported construct: recursive for loop");
        return NULL;
    }
    const char *found;
    if (expect_end(P, JT_BLOCK_END) < 0 || parse_body(P, &n->args, stops, &found) < 0)
        return NULL;
    if (strcmp(found, "else") == 0 &&
        (expect_end(P, JT_BLOCK_END) < 0 || parse_body(P, &n->els, endfor, &found) < 0))
        return NULL;
    return expect_end(P, JT_BLOCK_END) < 0 ? NULL : n;
}

/* "{% macro name(a, b=default) %}...{% endmacro %}" after the "macro" keyword. */
static struct jnode *parse_macro(struct parser *P, int line)
{
    static const char *const stops[] = { "endmacro", NULL };
    struct jnode *n = node(P, JN_MACRO, line);
    struct jstr params[MAX_ARGS];
    const struct jtok *name = next(P);
    if (name->k != JT_NAME || !is_op(peek(P), "(")) {
        pfail(P, name->line, "expected a macro name and '(', found %s", tok_text(name));
        return NULL;
    }
    n->name = name->s;
    next(P);
    while (!is_op(peek(P), ")")) {
        const struct jtok *p = next(P);
        if (p->k != JT_NAME || n->nvars == MAX_ARGS) {
            pfail(P, p->line, "expected a macro parameter, found %s", tok_text(p));
            return NULL;
        }
        params[n->nvars++] = p->s;
        struct jnode *dflt = NULL;
        if (is_op(peek(P), "=")) {
            next(P);
            if (!(dflt = parse_expr(P)))
                return NULL;
        }
        jnodes_push(&P->t->arena, &n->defaults, dflt);
        if (!is_op(peek(P), ","))
            break;
        next(P);
    }
    if (expect_op(P, ")") < 0 || expect_end(P, JT_BLOCK_END) < 0)
        return NULL;
    n->vars = jarena_alloc(&P->t->arena, (n->nvars + 1) * sizeof *params);
    memcpy(n->vars, params, n->nvars * sizeof *params);
    const char *found;
    if (parse_body(P, &n->args, stops, &found) < 0 || expect_end(P, JT_BLOCK_END) < 0)
        return NULL;
    return n;
}

static struct jnode *parse_set(struct parser *P, int line)
{
    struct jnode *n = node(P, JN_SET, line);
    const struct jtok *v = next(P);
    if (v->k != JT_NAME) {
        pfail(P, v->line, "expected a variable name after 'set', found %s", tok_text(v));
        return NULL;
    }
    n->vars = jarena_alloc(&P->t->arena, sizeof *n->vars);
    n->vars[0] = v->s;
    n->nvars = 1;
    if (is_op(peek(P), ".")) {
        next(P);
        const struct jtok *attr = next(P);
        if (attr->k != JT_NAME) {
            pfail(P, attr->line, "expected an attribute name, found %s", tok_text(attr));
            return NULL;
        }
        n->name = attr->s;
    }
    if (is_op(peek(P), ",")) {
        pfail(P, line, "unsupported construct: set with several targets");
        return NULL;
    }
    if (peek(P)->k == JT_BLOCK_END) { /* {% set x %}...{% endset %}: the rendered body */
        static const char *const stops[] = { "endset", NULL };
        const char *found;
        if (n->name.n) {
            pfail(P, line, "unsupported construct: block set of a namespace attribute");
            return NULL;
        }
        next(P);
        if (parse_body(P, &n->els, stops, &found) < 0 || expect_end(P, JT_BLOCK_END) < 0)
            return NULL;
        return n;
    }
    if (expect_op(P, "=") < 0 || !(n->a = parse_expr(P)))
        return NULL;
    return expect_end(P, JT_BLOCK_END) < 0 ? NULL : n;
}

static struct jnode *parse_statement_nested(struct parser *P, const struct jtok *kw);

static struct jnode *parse_statement(struct parser *P, const struct jtok *kw)
{
    if (++P->depth > MAX_DEPTH) {
        pfail(P, kw->line, "blocks nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    struct jnode *n = parse_statement_nested(P, kw);
    P->depth--;
    return n;
}

static struct jnode *parse_statement_nested(struct parser *P, const struct jtok *kw)
{
    int line = kw->line;
    if (jstr_eq(kw->s, "if"))
        return parse_if(P, line);
    if (jstr_eq(kw->s, "for"))
        return parse_for(P, line);
    if (jstr_eq(kw->s, "set"))
        return parse_set(P, line);
    if (jstr_eq(kw->s, "macro"))
        return parse_macro(P, line);
    if (jstr_eq(kw->s, "generation")) {
        static const char *const stops[] = { "endgeneration", NULL };
        struct jnode *n = node(P, JN_GENERATION, line);
        const char *found;
        P->t->has_generation = 1;
        if (expect_end(P, JT_BLOCK_END) < 0 || parse_body(P, &n->args, stops, &found) < 0 ||
            expect_end(P, JT_BLOCK_END) < 0)
            return NULL;
        return n;
    }
    if (jstr_eq(kw->s, "break") || jstr_eq(kw->s, "continue")) {
        struct jnode *n = node(P, jstr_eq(kw->s, "break") ? JN_BREAK : JN_CONTINUE, line);
        return expect_end(P, JT_BLOCK_END) < 0 ? NULL : n;
    }
    pfail(P, line, "unsupported construct: {%% %.*s %%}", (int)MB_MIN(kw->s.n, (size_t)40),
          kw->s.s);
    return NULL;
}

/* The tags that end or divide a block: never a statement of their own. */
static int is_closing(struct jstr kw)
{
    static const char *const tags[] = { "elif", "else", "endif", "endfor", "endset",
                                        "endgeneration", "endmacro", "endcall", "endfilter",
                                        "endblock", "endraw", "endwith", "endautoescape" };
    for (size_t i = 0; i < MB_ARRAY_LEN(tags); i++)
        if (jstr_eq(kw, tags[i]))
            return 1;
    return 0;
}

/* Statements up to one of STOPS (NULL-terminated; NULL: the end of the template). The
 * stop tag's "{% name" is consumed and its name returned in *FOUND. */
static int parse_body(struct parser *P, struct jnodes *body, const char *const *stops,
                      const char **found)
{
    struct jarena *a = &P->t->arena;
    for (;;) {
        const struct jtok *t = next(P);
        struct jnode *n;
        switch (t->k) {
        case JT_TEXT:
            n = node(P, JN_TEXT, t->line);
            n->lit = jv_str(t->s.s, t->s.n);
            jnodes_push(a, body, n);
            break;
        case JT_VAR_BEGIN:
            n = node(P, JN_OUTPUT, t->line);
            if (!(n->a = parse_expr(P)) || expect_end(P, JT_VAR_END) < 0)
                return -1;
            jnodes_push(a, body, n);
            break;
        case JT_BLOCK_BEGIN: {
            const struct jtok *kw = next(P);
            if (kw->k != JT_NAME)
                return pfail(P, kw->line, "expected a statement name after '{%%', found %s",
                             tok_text(kw));
            size_t nstops = 0;
            for (; stops && stops[nstops]; nstops++)
                if (jstr_eq(kw->s, stops[nstops])) {
                    *found = stops[nstops];
                    return 0;
                }
            if (is_closing(kw->s))
                return pfail(P, kw->line, "unexpected {%% %.*s %%}%s%s%s",
                             (int)MB_MIN(kw->s.n, (size_t)40), kw->s.s,
                             nstops ? " where {% " : "", nstops ? stops[nstops - 1] : "",
                             nstops ? " %} was expected" : "");
            if (!(n = parse_statement(P, kw)))
                return -1;
            jnodes_push(a, body, n);
            break;
        }
        case JT_EOF:
            if (stops) {
                size_t last = 0;
                while (stops[last + 1])
                    last++;
                return pfail(P, t->line, "missing {%% %s %%} at the end of the template",
                             stops[last]);
            }
            return 0;
        default:
            return pfail(P, t->line, "unexpected %s", tok_text(t));
        }
    }
}

int jinja_parse_tokens(struct mb_jinja *t, const struct jtoks *toks)
{
    struct parser P = { .t = t, .tk = toks };
    return parse_body(&P, &t->body, NULL, NULL);
}
