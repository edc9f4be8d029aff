/* tests/helpers/pipe_sched_dump.c - print mb's pipeline schedule of every rank for the
 * layouts read from stdin, one "PP VP M" per line ('#' lines and blank lines skipped):
 *
 *   PP VP M RANK WARMUP MAX_IN_FLIGHT | COMPUTE EVENTS | ALL EVENTS
 *
 * for RANK = 0 .. PP-1 (the events as mb_pipe_sched_string prints them, without and with
 * the messages), or, when mb refuses the layout, one line "PP VP M refused: WHERE: WHAT".
 * Exit 1 on a malformed line.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "train/pipe_sched.h"

static void dump(int pp, int vp, int micro)
{
    char where[64];
    snprintf(where, sizeof where, "PP%d VP%d M%d", pp, vp, micro);
    for (int r = 0; r < pp; r++) {
        struct mb_pipe_sched s;
        if (mb_pipe_sched_build(&s, pp, r, vp, micro, where) != 0) {
            printf("%d %d %d refused: %s: %s\n", pp, vp, micro, mb_err_where(), mb_err_what());
            return;
        }
        char *compute = mb_pipe_sched_string(&s, false), *all = mb_pipe_sched_string(&s, true);
        printf("%d %d %d %d %d %d | %s | %s\n", pp, vp, micro, r, s.warmup, s.max_in_flight,
               compute, all);
        free(compute);
        free(all);
        mb_pipe_sched_free(&s);
    }
}

int main(void)
{
    char line[256];

    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        int pp, vp, micro;
        char extra;
        if (sscanf(line, "%d %d %d %c", &pp, &vp, &micro, &extra) != 3 || pp < 1 || pp > 64) {
            fprintf(stderr, "pipe_sched_dump: error: expected \"PP VP M\" (PP 1 to 64): %s",
                    line);
            return 1;
        }
        dump(pp, vp, micro);
    }
    return 0;
}
