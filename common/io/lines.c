/* io/lines.c - buffered line reading through zlib's gz* interface. */
#include "io/lines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"

struct mb_lines {
    gzFile gz;
    char *name;
    char *buf;
    size_t cap;
    size_t max_line;    /* longest line accepted (mb_lines_set_max_line) */
    const char *raise;  /* how to raise it, for the message (may be NULL) */
    size_t start, end;  /* unconsumed bytes are buf[start, end) */
    int eof;
    int64_t lineno;
    int64_t offset;     /* stream offset of buf[start] */
};

mb_lines *mb_lines_open(const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    gzFile gz = is_stdin ? gzdopen(dup(STDIN_FILENO), "rb") : gzopen(path, "rb");

    if (!gz) {
        mb_err_errno(is_stdin ? "standard input" : path, "cannot open");
        return NULL;
    }
    gzbuffer(gz, 1 << 18);
    mb_lines *r = mb_xcalloc(1, sizeof *r);
    r->gz = gz;
    r->name = mb_xstrdup(is_stdin ? "standard input" : path);
    r->cap = 1 << 20;
    r->buf = mb_xmalloc(r->cap);
    r->max_line = MB_LINES_MAX_DEFAULT;
    return r;
}

void mb_lines_set_max_line(mb_lines *r, size_t max, const char *raise)
{
    r->max_line = max;
    r->raise = raise;
}

void mb_lines_close(mb_lines *r)
{
    if (!r)
        return;
    gzclose(r->gz);
    free(r->name);
    free(r->buf);
    free(r);
}

const char *mb_lines_name(const mb_lines *r)
{
    return r->name;
}

int64_t mb_lines_file_offset(const mb_lines *r)
{
    return gzdirect(r->gz) ? r->offset : (int64_t)gzoffset(r->gz);
}

/* zlib prefixes its messages with the path, which our WHERE already names. */
static const char *skip_path(const char *msg, const char *path)
{
    size_t n = strlen(path);

    return strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

static int check_gz_error(mb_lines *r)
{
    int errnum;
    const char *msg = gzerror(r->gz, &errnum);

    if (errnum == Z_ERRNO)
        return mb_err_errno(r->name, "cannot read");
    if (errnum != Z_OK && errnum != Z_STREAM_END)
        return mb_err_set(MB_E_PARSE, r->name, "corrupt or truncated gzip data: %s",
                          skip_path(msg, r->name));
    return 0;
}

/* Move pending bytes to the front, grow if full, and read more. 0 at EOF. */
static int refill(mb_lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        char what[600];
        snprintf(what, sizeof what, "a line of %s", r->name);
        r->cap *= 2;
        r->buf = mb_xrealloc_for(r->buf, r->cap, what);
    }
    size_t want = r->cap - r->end;
    if (want > (1u << 30))
        want = 1u << 30;
    int n = gzread(r->gz, r->buf + r->end, (unsigned)want);
    if (n < 0)
        return check_gz_error(r);
    if (n == 0) {
        if (check_gz_error(r) != 0)
            return -1;
        r->eof = 1;
        return 0;
    }
    r->end += (size_t)n;
    return 1;
}

static int line_too_long(const mb_lines *r)
{
    return mb_err_set(MB_E_INVALID, mb_at_line(r->name, (long long)r->lineno + 1),
                      "line longer than the limit of %zu bytes%s%s%s", r->max_line,
                      r->raise ? " (" : "", r->raise ? r->raise : "",
                      r->raise ? " raises it)" : "");
}

int mb_lines_next(mb_lines *r, const char **line, size_t *len, int64_t *lineno,
                  int64_t *offset)
{
    size_t scanned = 0;

    for (;;) {
        char *from = r->buf + r->start + scanned;
        char *nl = memchr(from, '\n', r->end - r->start - scanned);
        if (nl || (r->eof && r->end > r->start)) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            if (n > r->max_line)
                return line_too_long(r);
            *line = r->buf + r->start;
            *len = n;
            *lineno = ++r->lineno;
            *offset = r->offset;
            size_t used = nl ? n + 1 : n;
            r->start += used;
            r->offset += (int64_t)used;
            return 1;
        }
        if (r->eof)
            return 0;
        scanned = r->end - r->start;
        if (scanned > r->max_line)
            return line_too_long(r);
        int rc = refill(r);
        if (rc < 0)
            return -1;
    }
}

int64_t mb_lines_stream_size(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    struct stat sb;

    if (!gz)
        return mb_err_errno(path, "cannot open");
    /* gzdirect() right after gzopen() peeks at the header: 1 for a plain file. */
    if (gzdirect(gz) && stat(path, &sb) == 0) {
        gzclose(gz);
        return (int64_t)sb.st_size;
    }
    char *sink = mb_xmalloc(1 << 18);
    int64_t total = 0;
    int got, errnum;
    while ((got = gzread(gz, sink, 1 << 18)) > 0)
        total += got;
    free(sink);
    const char *msg = gzerror(gz, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        mb_err_set(MB_E_PARSE, path, "corrupt or truncated gzip data: %s", skip_path(msg, path));
        total = -1;
    }
    gzclose(gz);
    return total;
}
