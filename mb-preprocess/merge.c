/* mb-preprocess/merge.c - ordered merge of per-rank part files. */
#include "merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/mem.h"
#include "io/idx_reader.h"
#include "io/idx_writer.h"

char *pp_part_prefix(const char *out, int rank, int nranks)
{
    char *p = mb_xmalloc(strlen(out) + 64);

    sprintf(p, "%s.part-%d-of-%d", out, rank, nranks);
    return p;
}

void pp_part_track(const char *prefix, int track)
{
    char *path = mb_xmalloc(strlen(prefix) + 8);

    for (int k = 0; k < 2; k++) {
        sprintf(path, "%s%s", prefix, k ? ".idx" : ".bin");
        if (track) {
            mb_fs_register_temp(path);
        } else {
            unlink(path);
            mb_fs_forget_temp(path);
        }
    }
    free(path);
}

int pp_merge_parts(const char *out, int nranks, enum mb_dtype dtype)
{
    mb_idx_writer *w = mb_idx_writer_open(out, dtype);

    if (!w)
        return -1;
    for (int r = 0; r < nranks; r++) {
        char *part = pp_part_prefix(out, r, nranks);
        mb_idx_reader *rd = mb_idx_reader_open(part);
        int rc = rd ? mb_idx_writer_append(w, rd) : -1;
        mb_idx_reader_close(rd);
        free(part);
        if (rc != 0) {
            mb_idx_writer_discard(w);
            return -1;
        }
    }
    if (mb_idx_writer_close(w) != 0)
        return -1;
    for (int r = 0; r < nranks; r++) {
        char *part = pp_part_prefix(out, r, nranks);
        pp_part_track(part, 0);
        free(part);
    }
    return 0;
}
