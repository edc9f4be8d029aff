/* tok/regex.c - PCRE2 (UTF + UCP, JIT) behind mb_regex. */
#include "tok/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/str.h"

struct mb_regex {
    pcre2_code *code;
};

struct mb_regex_state {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};

/* Oniguruma's \s includes U+0085 and PCRE2's does not: add it to every \s, inside a
 * class as a member and outside as a class of its own. \S outside classes becomes the
 * complement. */
static void rewrite_pattern(const char *p, size_t len, struct mb_buf *out)
{
    int in_class = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' && i + 1 < len) {
            char c = p[i + 1];
            if (c == 's')
                mb_buf_adds(out, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]");
            else if (c == 'S' && !in_class)
                mb_buf_adds(out, "[^\\s\\x{85}]");
            else
                mb_buf_add(out, p + i, 2);
            i++;
            continue;
        }
        if (p[i] == '[' && !in_class)
            in_class = 1;
        else if (p[i] == ']' && in_class)
            in_class = 0;
        mb_buf_addc(out, p[i]);
    }
}

mb_regex *mb_regex_compile(const char *pattern, size_t len, const char *where)
{
    struct mb_buf src = MB_BUF_INIT;
    int errcode;
    PCRE2_SIZE erroff;

    rewrite_pattern(pattern, len, &src);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)src.data, src.len,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &errcode,
                                     &erroff, NULL);
    mb_buf_release(&src);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        mb_err_set(MB_E_INVALID, where, "regex does not compile at offset %zu: %s",
                   (size_t)erroff, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    mb_regex *re = mb_xcalloc(1, sizeof *re);
    re->code = code;
    return re;
}

void mb_regex_free(mb_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re);
}

mb_regex_state *mb_regex_state_new(const mb_regex *re)
{
    mb_regex_state *st = mb_xcalloc(1, sizeof *st);

    st->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    st->mctx = pcre2_match_context_create(NULL);
    st->jit_stack = pcre2_jit_stack_create(32 << 10, 1 << 20, NULL);
    pcre2_jit_stack_assign(st->mctx, NULL, st->jit_stack);
    return st;
}

void mb_regex_state_free(mb_regex_state *st)
{
    if (!st)
        return;
    pcre2_match_data_free(st->md);
    pcre2_match_context_free(st->mctx);
    pcre2_jit_stack_free(st->jit_stack);
    free(st);
}

int mb_regex_find(const mb_regex *re, mb_regex_state *st, const char *s, size_t len,
                  size_t from, size_t *start, size_t *end)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, st->md,
                         st->mctx);
    if (rc < 0)
        return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
    *start = ov[0];
    *end = ov[1];
    return 1;
}
