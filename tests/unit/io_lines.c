/* tests/unit/io_lines.c - line reader over plain and gzip input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "io/lines.h"
#include "tests/lib/tap.h"

static void write_plain(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_gz(const char *path, const char *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    gzwrite(g, data, (unsigned)len);
    gzclose(g);
}

static int count_lines(const char *path, int64_t *last_offset, size_t *longest)
{
    mb_lines *r = mb_lines_open(path);
    const char *line;
    size_t len;
    int64_t lineno, off;
    int n = 0, rc;

    *longest = 0;
    while ((rc = mb_lines_next(r, &line, &len, &lineno, &off)) == 1) {
        n++;
        *last_offset = off;
        if (len > *longest)
            *longest = len;
    }
    mb_lines_close(r);
    return rc < 0 ? -1 : n;
}

int main(void)
{
    const char text[] = "first\nsecond\n\nlast without newline";
    int64_t off;
    size_t longest;

    tap_enter_scratch_dir();
    write_plain("a.txt", text, strlen(text));
    write_gz("a.txt.gz", text, strlen(text));
    is_int(count_lines("a.txt", &off, &longest), 4, "four lines, the last unterminated");
    is_int(off, 14, "offset of the last line");
    is_int(count_lines("a.txt.gz", &off, &longest), 4, "same through gzip");
    is_int(mb_lines_stream_size("a.txt.gz"), (long long)strlen(text), "gzip stream size");

    size_t big = 3u << 20;
    char *long_line = malloc(big + 2);
    memset(long_line, 'x', big);
    strcpy(long_line + big, "\n");
    write_gz("long.gz", long_line, big + 1);
    is_int(count_lines("long.gz", &off, &longest), 1, "a 3 MiB line is one line");
    is_int((long long)longest, (long long)big, "and it is whole");

    FILE *f = fopen("long.gz", "rb");
    char *gz = malloc(big);
    size_t n = fread(gz, 1, big, f);
    fclose(f);
    write_plain("cut.gz", gz, n / 2);
    ok(count_lines("cut.gz", &off, &longest) < 0, "truncated gzip is an error");
    ok(strstr(mb_err_what(), "truncated") != NULL, "message says truncated: %s", mb_err_what());
    ok(mb_lines_open("missing.jsonl") == NULL && strcmp(mb_err_where(), "missing.jsonl") == 0,
       "missing file names the path");
    free(gz);
    free(long_line);
    return tap_done();
}
