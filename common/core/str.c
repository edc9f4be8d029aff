/* core/str.c - growable byte buffer and strict number parsing. */
#include "core/str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

void mb_buf_reserve(struct mb_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = mb_xrealloc(b->data, cap);
    b->cap = cap;
}

void mb_buf_add(struct mb_buf *b, const void *data, size_t len)
{
    mb_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void mb_buf_addc(struct mb_buf *b, char c)
{
    mb_buf_add(b, &c, 1);
}

void mb_buf_adds(struct mb_buf *b, const char *s)
{
    mb_buf_add(b, s, strlen(s));
}

void mb_buf_addf(struct mb_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    mb_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mb_buf_add_real(struct mb_buf *b, double v)
{
    char text[40];

    /* from 15 digits up: every double with a shorter form prints it, and %g keeps
     * plain notation up to 1e15 (500000.0, not 5e+05) */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    mb_buf_adds(b, text);
    if (!strpbrk(text, ".eEn"))
        mb_buf_adds(b, ".0");
}

void mb_buf_reset(struct mb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void mb_buf_release(struct mb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int mb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what)
{
    char *end;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return mb_err_set(MB_E_USAGE, what, "'%s' is not an integer", s);
    if (v < min || v > max)
        return mb_err_set(MB_E_USAGE, what, "%lld is out of range [%lld, %lld]", v,
                          (long long)min, (long long)max);
    *out = v;
    return 0;
}

int mb_parse_double(const char *s, double *out, const char *what)
{
    char *end;

    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return mb_err_set(MB_E_USAGE, what, "'%s' is not a number", s);
    *out = v;
    return 0;
}
