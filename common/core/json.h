/* core/json.h - the JSON library behind a small interface: parse, walk, escape.
 *
 * Values are borrowed from the document they came from; only the root returned by a
 * parse function is freed, with mb_json_free(). Strings may contain NUL bytes, so they
 * come with a length. Writing JSON is done with mb_json_escape into an mb_buf.
 */
#ifndef MB_CORE_JSON_H
#define MB_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/str.h"

typedef struct mb_json mb_json;

enum mb_json_type {
    MB_JSON_NULL,
    MB_JSON_BOOL,
    MB_JSON_INT,
    MB_JSON_REAL,
    MB_JSON_STRING,
    MB_JSON_ARRAY,
    MB_JSON_OBJECT,
};

/* Parse all of PATH. NULL with mb_err "PATH:LINE:COL" on failure. */
mb_json *mb_json_parse_file(const char *path);
/* Parse DATA[len] (any JSON value). On failure mb_err names WHERE and the column. */
mb_json *mb_json_parse(const char *data, size_t len, const char *where);
void mb_json_free(mb_json *root);

enum mb_json_type mb_json_type_of(const mb_json *v);
const char *mb_json_type_name(const mb_json *v);

/* Member KEY of object V, or NULL if V is not an object or has no such key. */
mb_json *mb_json_get(const mb_json *v, const char *key);
/* String bytes and length, or NULL if V is not a string. */
const char *mb_json_str(const mb_json *v, size_t *len);
int64_t mb_json_int(const mb_json *v);      /* 0 unless an integer (or an integral real) */
double mb_json_number(const mb_json *v);    /* integer or real; 0 otherwise */
int mb_json_is_true(const mb_json *v);
size_t mb_json_len(const mb_json *v);        /* array length or object size; 0 otherwise */
mb_json *mb_json_at(const mb_json *v, size_t i);

/* Iterate an object's members in document order: start with *IT = NULL. Returns 0
 * at the end. */
int mb_json_next(const mb_json *obj, void **it, const char **key, mb_json **value);

/* Append S as a quoted JSON string (UTF-8 kept, control characters escaped). */
void mb_json_escape(struct mb_buf *out, const char *s, size_t len);

#endif /* MB_CORE_JSON_H */
