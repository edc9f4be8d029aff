/* core/json.c - jansson behind mb_json; the only file that includes jansson.h. */
#include "core/json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"

#define AS_J(v) ((json_t *)(v))

/* JSON_ALLOW_NUL: JSONL text may legitimately hold "\u0000". Member order is kept
 * by jansson (insertion order), which the tokenizer needs for merges. */
static const size_t parse_flags = JSON_ALLOW_NUL | JSON_DECODE_ANY;

/* jansson refuses integers beyond int64 ("too big integer"), which transformers writes
 * (tokenizer_config.json: "model_max_length": 1000000000000000019884624838656). Such a
 * document is parsed again with every integer as a real; mb_json_int still reads the
 * integral reals that fit in int64. */
static json_t *load(const char *data, size_t len, json_error_t *e)
{
    json_t *root = json_loadb(data, len, parse_flags, e);
    if (!root && strstr(e->text, "too big integer"))
        root = json_loadb(data, len, parse_flags | JSON_DECODE_INT_AS_REAL, e);
    return root;
}

mb_json *mb_json_parse_file(const char *path)
{
    json_error_t e;
    char *data;
    size_t len;

    /* one read and json_loadb: json_load_file reads a character at a time */
    if (mb_fs_read_all(path, &data, &len) != 0)
        return NULL;
    json_t *root = load(data, len, &e);
    free(data);
    if (!root)
        mb_err_set(MB_E_PARSE, mb_at_line(path, e.line), "column %d: %s", e.column, e.text);
    return (mb_json *)root;
}

mb_json *mb_json_parse(const char *data, size_t len, const char *where)
{
    json_error_t e;
    json_t *root = load(data, len, &e);

    if (!root)
        mb_err_set(MB_E_PARSE, where, "invalid JSON at column %d: %s", e.column, e.text);
    return (mb_json *)root;
}

void mb_json_free(mb_json *root)
{
    if (root)
        json_decref(AS_J(root));
}

enum mb_json_type mb_json_type_of(const mb_json *v)
{
    switch (json_typeof(AS_J(v))) {
    case JSON_OBJECT:
        return MB_JSON_OBJECT;
    case JSON_ARRAY:
        return MB_JSON_ARRAY;
    case JSON_STRING:
        return MB_JSON_STRING;
    case JSON_INTEGER:
        return MB_JSON_INT;
    case JSON_REAL:
        return MB_JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE:
        return MB_JSON_BOOL;
    default:
        return MB_JSON_NULL;
    }
}

const char *mb_json_type_name(const mb_json *v)
{
    static const char *names[] = { "null", "boolean", "integer", "number",
                                   "string", "array", "object" };
    return v ? names[mb_json_type_of(v)] : "missing";
}

mb_json *mb_json_get(const mb_json *v, const char *key)
{
    return v && json_is_object(AS_J(v)) ? (mb_json *)json_object_get(AS_J(v), key) : NULL;
}

const char *mb_json_str(const mb_json *v, size_t *len)
{
    if (!v || !json_is_string(AS_J(v)))
        return NULL;
    if (len)
        *len = json_string_length(AS_J(v));
    return json_string_value(AS_J(v));
}

int64_t mb_json_int(const mb_json *v)
{
    if (v && json_is_integer(AS_J(v)))
        return (int64_t)json_integer_value(AS_J(v));
    double r = v && json_is_real(AS_J(v)) ? json_real_value(AS_J(v)) : 0.0;
    return fabs(r) < 9.2e18 && r == floor(r) ? (int64_t)r : 0;
}

double mb_json_number(const mb_json *v)
{
    return v ? json_number_value(AS_J(v)) : 0.0;
}

int mb_json_is_true(const mb_json *v)
{
    return v && json_is_true(AS_J(v));
}

size_t mb_json_len(const mb_json *v)
{
    if (!v)
        return 0;
    if (json_is_array(AS_J(v)))
        return json_array_size(AS_J(v));
    if (json_is_object(AS_J(v)))
        return json_object_size(AS_J(v));
    return 0;
}

mb_json *mb_json_at(const mb_json *v, size_t i)
{
    return v ? (mb_json *)json_array_get(AS_J(v), i) : NULL;
}

int mb_json_next(const mb_json *obj, void **it, const char **key, mb_json **value)
{
    if (!obj || !json_is_object(AS_J(obj)))
        return 0;
    *it = *it ? json_object_iter_next(AS_J(obj), *it) : json_object_iter(AS_J(obj));
    if (!*it)
        return 0;
    *key = json_object_iter_key(*it);
    *value = (mb_json *)json_object_iter_value(*it);
    return 1;
}

void mb_json_escape(struct mb_buf *out, const char *s, size_t len)
{
    mb_buf_addc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            mb_buf_add(out, "\\\"", 2);
            break;
        case '\\':
            mb_buf_add(out, "\\\\", 2);
            break;
        case '\n':
            mb_buf_add(out, "\\n", 2);
            break;
        case '\r':
            mb_buf_add(out, "\\r", 2);
            break;
        case '\t':
            mb_buf_add(out, "\\t", 2);
            break;
        default:
            if (c < 0x20)
                mb_buf_addf(out, "\\u%04x", c);
            else
                mb_buf_addc(out, (char)c);
        }
    }
    mb_buf_addc(out, '"');
}
