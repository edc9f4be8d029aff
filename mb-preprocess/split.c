/* mb-preprocess/split.c - byte ranges of the concatenated input per rank. */
#include "split.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/defs.h"
#include "core/mem.h"
#include "io/lines.h"

/* Bytes of the regular file PATH, or -1 (standard input, a pipe, an unreadable path:
 * reading it reports that). */
static int64_t file_size(const char *path)
{
    struct stat sb;

    if (strcmp(path, "-") == 0 || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return -1;
    return (int64_t)sb.st_size;
}

int pp_split(char *const *paths, int npaths, int rank, int nranks, struct pp_segment **segs)
{
    struct pp_segment *out = mb_xcalloc((size_t)npaths, sizeof *out);

    if (nranks == 1) { /* no need to measure: every line of every file is ours */
        for (int i = 0; i < npaths; i++)
            out[i] = (struct pp_segment){ paths[i], 0, INT64_MAX, file_size(paths[i]), 0 };
        *segs = out;
        return npaths;
    }
    int64_t *sizes = mb_xcalloc((size_t)npaths, sizeof *sizes), total = 0;
    for (int i = 0; i < npaths; i++) {
        if ((sizes[i] = mb_lines_stream_size(paths[i])) < 0) {
            free(sizes);
            free(out);
            return -1;
        }
        total += sizes[i];
    }
    /* in 128 bits: total * rank can overflow int64 for huge corpora */
    int64_t lo = (int64_t)((__int128)total * rank / nranks);
    int64_t hi = (int64_t)((__int128)total * (rank + 1) / nranks);
    int n = 0;
    int64_t base = 0; /* stream offset of file i */
    for (int i = 0; i < npaths; base += sizes[i], i++) {
        int64_t file_lo = lo - base, file_hi = hi - base;
        if (file_hi <= 0 || file_lo >= sizes[i])
            continue;
        int64_t b = file_lo < 0 ? 0 : file_lo, e = file_hi >= sizes[i] ? INT64_MAX : file_hi;
        out[n++] = (struct pp_segment){ paths[i], b, e, MB_MIN(e, sizes[i]) - b, 1 };
    }
    free(sizes);
    *segs = out;
    return n;
}
