/* io/lines.h - line reader over plain or gzip files and standard input.
 *
 * zlib reads both plain and gzip input (multi-member too), so callers never care which
 * they have. Each line comes with its 1-based number and its byte offset in the
 * decompressed stream. A truncated or corrupt gzip stream is an error naming the file,
 * never a silent short read.
 */
#ifndef MB_IO_LINES_H
#define MB_IO_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

typedef struct mb_lines mb_lines;

/* Open PATH ("-" for standard input). NULL with mb_err set on failure. */
mb_lines *mb_lines_open(const char *path);
void mb_lines_close(mb_lines *r);

/* The longest line accepted, in bytes without the '\n' (default MB_LINES_MAX_DEFAULT):
 * a longer one is an error naming "PATH:LINE", the limit and RAISE (how the user raises
 * it, e.g. "--max-line-bytes"; may be NULL), found before much more than MAX bytes are
 * held (input without newlines, /dev/zero, stops there). */
#define MB_LINES_MAX_DEFAULT ((size_t)256 << 20)
void mb_lines_set_max_line(mb_lines *r, size_t max, const char *raise);

/* Next line without its '\n' (a final line without one counts). Returns 1 with *LINE
 * (valid until the next call), *LEN, *LINENO and *OFFSET set; 0 at the end; -1 on a
 * read or decompression error, or a line over the limit, with mb_err set. */
MB_MUST_CHECK int mb_lines_next(mb_lines *r, const char **line, size_t *len, int64_t *lineno,
                                int64_t *offset);

/* The path as given ("standard input" for "-"), for messages. */
const char *mb_lines_name(const mb_lines *r);

/* How far reading has come in the file itself (not the decompressed stream): the offset
 * of the next line of a plain file, the compressed bytes read of a gzip file. For
 * progress estimates against the file's size. */
int64_t mb_lines_file_offset(const mb_lines *r);

/* Size of PATH's decompressed content: stat for plain files, a full decompression
 * for gzip. -1 with mb_err set on failure. */
int64_t mb_lines_stream_size(const char *path);

#endif /* MB_IO_LINES_H */
