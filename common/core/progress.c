/* core/progress.c - progress line on a terminal stderr. */
#include "core/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/time.h"

void mb_progress_init(struct mb_progress *p, int enabled)
{
    p->enabled = enabled && isatty(STDERR_FILENO);
    p->start = mb_now();
    p->last = p->start - 1.0; /* the first update draws at once */
}

void mb_progress_update(struct mb_progress *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (!p->enabled)
        return;
    double now = mb_now();
    if (now - p->last < 0.5)
        return;
    p->last = now;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s: %s", mb_log_tool(), msg);
    fflush(stderr);
}

void mb_progress_done(struct mb_progress *p)
{
    if (p->enabled) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}

double mb_progress_elapsed(const struct mb_progress *p)
{
    return mb_now() - p->start;
}
