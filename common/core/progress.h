/* core/progress.h - a self-overwriting progress line on stderr, only when stderr is a
 * terminal (and only on the caller's say-so under MPI: pass enabled = 0 on other ranks).
 */
#ifndef MB_CORE_PROGRESS_H
#define MB_CORE_PROGRESS_H

#include "core/defs.h"

struct mb_progress {
    int enabled;
    double start;
    double last;
};

void mb_progress_init(struct mb_progress *p, int enabled);
/* Redraw at most every 0.5 s (the first update at once); the message is formatted only
 * when drawn. */
MB_PRINTF(2, 3) void mb_progress_update(struct mb_progress *p, const char *fmt, ...);
/* Erase the line. */
void mb_progress_done(struct mb_progress *p);
double mb_progress_elapsed(const struct mb_progress *p);

#endif /* MB_CORE_PROGRESS_H */
