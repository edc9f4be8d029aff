/* core/str.h - growable byte buffer and strict number parsing.
 *
 * mb_buf holds arbitrary bytes (NUL allowed) and keeps a NUL after the last byte so
 * its data can be used as a C string when it holds text.
 */
#ifndef MB_CORE_STR_H
#define MB_CORE_STR_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

struct mb_buf {
    char *data;
    size_t len;
    size_t cap;
};
#define MB_BUF_INIT { 0 }

void mb_buf_reserve(struct mb_buf *b, size_t extra);
void mb_buf_add(struct mb_buf *b, const void *data, size_t len);
void mb_buf_addc(struct mb_buf *b, char c);
void mb_buf_adds(struct mb_buf *b, const char *s);
MB_PRINTF(2, 3) void mb_buf_addf(struct mb_buf *b, const char *fmt, ...);
/* The shortest %g text of V that reads back as V, with a '.' or an exponent so that it
 * stays a real in JSON and YAML: "1.0", "3e-05", "0.1", "500000.0" ("nan", "inf" as is). */
void mb_buf_add_real(struct mb_buf *b, double v);
void mb_buf_reset(struct mb_buf *b);
void mb_buf_release(struct mb_buf *b);

/* Parse all of S as a number in [MIN, MAX]. Returns 0, or -1 with mb_err set naming
 * WHAT (e.g. "--workers"). */
MB_MUST_CHECK int mb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out,
                               const char *what);
MB_MUST_CHECK int mb_parse_double(const char *s, double *out, const char *what);

#endif /* MB_CORE_STR_H */
