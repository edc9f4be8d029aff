/* core/mem.c - checked allocation. */
#include "core/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"

/* No allocation here: the message is built on the stack and written in one call. */
static MB_NORETURN void out_of_memory(size_t bytes, const char *what)
{
    char msg[1024];
    const char *tool = mb_log_tool();

    fflush(stdout);
    snprintf(msg, sizeof msg,
             "%s: error: out of memory: cannot allocate %zu bytes (%.1f MiB)%s%s; the input or "
             "the configuration asks for more memory than this machine can give\n",
             tool, bytes, (double)bytes / (1 << 20),
             what ? " for " : "", what ? what : "");
    if (write(STDERR_FILENO, msg, strlen(msg)) < 0) {
        /* nothing left to report it with */
    }
    mb_fs_remove_temps();
    mb_err_call_abort_hook();
    _exit(1);
}

void *mb_xmalloc_for(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);

    if (!p)
        out_of_memory(bytes, what);
    return p;
}

void *mb_xrealloc_for(void *p, size_t bytes, const char *what)
{
    void *q = realloc(p, bytes ? bytes : 1);

    if (!q)
        out_of_memory(bytes, what);
    return q;
}

void *mb_xaligned64_for(size_t bytes, const char *what)
{
    size_t size = bytes > SIZE_MAX - 63 ? SIZE_MAX : (bytes + 63) / 64 * 64;
    void *p = size == SIZE_MAX ? NULL : aligned_alloc(64, size ? size : 64);

    if (!p)
        out_of_memory(bytes, what);
    return p;
}

void *mb_xmalloc(size_t bytes)
{
    return mb_xmalloc_for(bytes, NULL);
}

void *mb_xcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        out_of_memory(SIZE_MAX, NULL);
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        out_of_memory(n * size, NULL);
    return p;
}

void *mb_xrealloc(void *p, size_t bytes)
{
    return mb_xrealloc_for(p, bytes, NULL);
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
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (size && ncap > SIZE_MAX / size)
        out_of_memory(SIZE_MAX, NULL);
    *p = mb_xrealloc(*p, ncap * size);
    *cap = ncap;
}
