/* core/mem.c - checked allocation. */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t bytes)
{
    fflush(stdout);
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", bytes);
    abort();
}

void *mb_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);

    if (!p)
        out_of_memory(bytes);
    return p;
}

void *mb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        out_of_memory(n * size);
    return p;
}

void *mb_xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);

    if (!q)
        out_of_memory(bytes);
    return q;
}

char *mb_xstrdup(const char *s)
{
    return mb_xstrndup(s, strlen(s));
}

char *mb_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = mb_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

char *mb_xstrndup(const char *s, size_t n)
{
    char *d = mb_xmalloc(n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void mb_grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    *p = mb_xrealloc(*p, ncap * size);
    *cap = ncap;
}
