/* tok/jinja_internal.h - what the files of the Jinja renderer share: the arena, values,
 * tokens and syntax tree.
 *
 * jinja_lex.c turns the source into tokens (whitespace control, trim_blocks and
 * lstrip_blocks are applied there, to the text tokens), jinja_parse.c builds the tree,
 * jinja_eval.c runs it, jinja_value.c holds the Python semantics of values (truthiness,
 * equality, str(), json.dumps) and jinja_builtins.c the filters, tests, methods and
 * global functions. Values live in an arena freed after each render; strings are
 * immutable, so values share them freely.
 */
#ifndef MB_TOK_JINJA_INTERNAL_H
#define MB_TOK_JINJA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "tok/jinja.h"

/* ---- arena ---------------------------------------------------------------- */

struct jarena {
    struct jblock *head;
};
void *jarena_alloc(struct jarena *a, size_t bytes);
char *jarena_strdup(struct jarena *a, const char *s, size_t n);
void jarena_release(struct jarena *a);

/* ---- values --------------------------------------------------------------- */

struct jstr {
    const char *s;
    size_t n;
};

/* JV_FUNC: a global function named by .s (raise_exception, strftime_now ...), so that
 * "strftime_now is defined" holds; it is only ever called by name. JV_MACRO: a
 * {% macro %} (.macro is its node). */
enum jv_kind { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS,
               JV_FUNC, JV_MACRO };

struct jlist;
struct jdict;

struct jv {
    enum jv_kind k;
    union {
        int b;
        int64_t i;
        double f;
        struct jstr s;
        struct jlist *l;
        const struct jnode *macro;
        struct jdict *d; /* JV_DICT and JV_NS (a namespace: attributes may be set) */
    };
};

struct jlist {
    size_t n, cap;
    struct jv *v;
    int tuple; /* a Python tuple: prints with (), never equals a list */
    int gen;   /* a generator (select, reject, map ...): iterable only, always true */
};

struct jdict {
    size_t n, cap;
    struct jstr *key;
    struct jv *val;
};

static inline struct jv jv_undef(void) { return (struct jv){ .k = JV_UNDEF }; }
static inline struct jv jv_none(void) { return (struct jv){ .k = JV_NONE }; }
static inline struct jv jv_bool(int b) { return (struct jv){ .k = JV_BOOL, .b = !!b }; }
static inline struct jv jv_int(int64_t i) { return (struct jv){ .k = JV_INT, .i = i }; }
static inline struct jv jv_float(double f) { return (struct jv){ .k = JV_FLOAT, .f = f }; }
static inline struct jv jv_str(const char *s, size_t n)
{
    return (struct jv){ .k = JV_STR, .s = { s, n } };
}

struct jv jv_list_new(struct jarena *a, size_t cap);
void jv_list_push(struct jarena *a, struct jv list, struct jv item);
struct jv jv_dict_new(struct jarena *a, size_t cap);
/* Set KEY (replacing an existing one, keeping its place, as Python dicts do). */
void jv_dict_set(struct jarena *a, struct jv dict, struct jstr key, struct jv val);
/* The value of KEY, or NULL. */
struct jv *jv_dict_get(struct jv dict, const char *key, size_t n);

struct jv jv_from_json(struct jarena *a, const mb_json *j);

const char *jv_type_name(struct jv v);
int jv_truthy(struct jv v);
int jv_equal(struct jv a, struct jv b);
/* Python's str(v) appended to OUT (Python repr for list and dict items); -1 with mb_err
 * for Undefined inside a container. */
int jv_to_str(struct jv v, struct mb_buf *out);
/* str(v) as a value (strings are returned as they are). */
int jv_stringify(struct jarena *a, struct jv v, struct jv *out);
/* json.dumps(v, ensure_ascii=False, indent=INDENT (< 0: none), sort_keys=SORT,
 * separators=(ITEM_SEP, KEY_SEP) (.s NULL: Python's defaults for the indent)). */
struct json_opts {
    int indent, sort;
    struct jstr item_sep, key_sep;
};
int jv_to_json(struct jv v, const struct json_opts *o, struct mb_buf *out);

/* Characters (code points) of a string: count, and the byte offset of character I
 * (I may equal the count). */
size_t jstr_chars(struct jstr s);
size_t jstr_char_off(struct jstr s, size_t i);
/* Python str.isspace for one code point. */
int py_isspace(uint32_t cp);

/* ---- tokens ----------------------------------------------------------------- */

enum jtok_kind {
    JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP, JT_EOF,
};

struct jtok {
    enum jtok_kind k;
    int line;
    struct jstr s;   /* text, name, decoded string literal, operator */
    int64_t i;
    double f;
};

struct jtoks {
    struct jtok *v;
    size_t n, cap;
};

/* Tokens of SRC (trim_blocks and lstrip_blocks on). -1 with mb_err at NAME:LINE. */
int jinja_lex(struct jarena *a, const char *src, size_t len, const char *name,
              struct jtoks *out);

/* ---- syntax tree -------------------------------------------------------------- */

enum jn_kind {
    /* statements */
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_GENERATION, JN_BREAK, JN_CONTINUE,
    JN_MACRO,
    /* expressions */
    JN_LIT, JN_NAME, JN_LIST, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER,
    JN_TEST, JN_NEG, JN_NOT, JN_AND, JN_OR, JN_BINOP, JN_COND,
};

struct jnode;

struct jnodes {
    struct jnode **v;
    size_t n, cap;
};

struct jnode {
    enum jn_kind k;
    int line;
    struct jstr name;       /* NAME; ATTR's attribute; CALL/FILTER/TEST name; SET's ns attr */
    struct jstr op;         /* BINOP operator; TEST "not" when negated */
    struct jv lit;          /* LIT */
    struct jnode *a, *b, *c; /* operands: object/left/condition, index/right, else/step */
    struct jnodes args;     /* call, filter and test arguments; list/dict items; IF/FOR body */
    struct jstr *argname;   /* keyword names of ARGS ({0} when positional) */
    struct jnodes els;      /* else branch of IF and FOR; body of a block SET */
    struct jnodes defaults; /* MACRO: the default of each parameter (NULL: none) */
    struct jstr *vars;      /* FOR and SET targets; MACRO parameters */
    size_t nvars;
};

void jnodes_push(struct jarena *a, struct jnodes *l, struct jnode *n);

struct mb_jinja {
    struct jarena arena;
    struct jnodes body;
    char *name;
    int has_generation;
};

int jinja_parse_tokens(struct mb_jinja *t, const struct jtoks *toks);

/* ---- evaluation ------------------------------------------------------------------ */

struct jctx;

/* Errors raised while rendering: mb_err at "NAME:LINE"; returns -1. */
MB_PRINTF(3, 4) int jinja_fail(const struct jctx *c, int line, const char *fmt, ...);
struct jarena *jctx_arena(struct jctx *c);

/* Filter NAME applied to V with ARGS (already evaluated), test NAME, method NAME of V,
 * global function NAME. -1 with mb_err naming the construct when unknown. */
int jinja_filter(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out);
int jinja_test(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
               size_t nargs, int *out);
int jinja_method(struct jctx *c, const struct jnode *n, struct jv v, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out);
/* 1 if NAME is a global function jinja_global knows. */
int jinja_is_global(struct jstr name);
int jinja_global(struct jctx *c, const struct jnode *n, const struct jv *args,
                 const struct jstr *names, size_t nargs, struct jv *out);

int jstr_eq(struct jstr s, const char *lit);

#endif /* MB_TOK_JINJA_INTERNAL_H */
