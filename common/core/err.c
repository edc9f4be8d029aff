/* core/err.c - thread-local error record and the fatal path. */
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local struct mb_err_record current;
static _Thread_local char line_buf[600];
static mb_abort_fn abort_hook;

static void copy_where(const char *where)
{
    snprintf(current.where, sizeof current.where, "%s", where ? where : "");
}

int mb_err_set(enum mb_errc code, const char *where, const char *fmt, ...)
{
    va_list ap;

    current.code = code;
    copy_where(where);
    va_start(ap, fmt);
    vsnprintf(current.what, sizeof current.what, fmt, ap);
    va_end(ap);
    return -1;
}

int mb_err_errno(const char *where, const char *fmt, ...)
{
    int saved = errno;
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    current.code = MB_E_IO;
    copy_where(where);
    snprintf(current.what, sizeof current.what, "%s: %s", msg, strerror(saved));
    errno = saved;
    return -1;
}

int mb_err_wrap(const char *fmt, ...)
{
    char prefix[512], old[sizeof current.what];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, current.what, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof current.what)
        n = sizeof current.what - 1;
    memcpy(current.what, prefix, n);
    size_t rest = strlen(old);
    if (rest > sizeof current.what - 1 - n)
        rest = sizeof current.what - 1 - n;
    memcpy(current.what + n, old, rest);
    current.what[n + rest] = '\0';
    return -1;
}

void mb_err_clear(void)
{
    memset(&current, 0, sizeof current);
}

void mb_err_save(struct mb_err_record *rec)
{
    *rec = current;
}

void mb_err_restore(const struct mb_err_record *rec)
{
    current = *rec;
}

enum mb_errc mb_err_code(void)
{
    return current.code;
}

const char *mb_err_where(void)
{
    return current.where;
}

const char *mb_err_what(void)
{
    return current.what;
}

const char *mb_at_line(const char *path, long long line)
{
    snprintf(line_buf, sizeof line_buf, "%s:%lld", path, line);
    return line_buf;
}

void mb_err_set_abort_hook(mb_abort_fn fn)
{
    abort_hook = fn;
}

void mb_err_call_abort_hook(void)
{
    if (abort_hook)
        abort_hook();
}

void mb_bug(const char *file, int line, const char *cond)
{
    fflush(stdout);
    fprintf(stderr, "BUG: %s:%d: assertion failed: %s\n", file, line, cond);
    if (abort_hook)
        abort_hook();
    abort();
}
