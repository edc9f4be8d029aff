/* io/jsonl.h - one JSON Lines record: parse it and pick the text fields.
 *
 * A field is a string, or a list of strings (pre-split sentences, as Megatron's
 * preprocess_data.py accepts). Invalid UTF-8 in the line is repaired first the way
 * Python's decode("utf-8", "replace") does, so the texts handed out are always valid
 * UTF-8. Every error names "PATH:LINE".
 */
#ifndef MB_IO_JSONL_H
#define MB_IO_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/json.h"
#include "core/str.h"

struct mb_jsonl_text {
    const char *s;
    size_t len;
};

struct mb_jsonl_record {
    mb_json *root;
    struct mb_buf repaired;
    struct mb_jsonl_text *texts;  /* the texts of every key, key after key */
    size_t ntexts, texts_cap;
    size_t *key_first;            /* [nkeys + 1]: texts of key k are [first[k], first[k+1]) */
    size_t nkeys;
    size_t utf8_repairs;          /* replacement characters inserted so far */
};
#define MB_JSONL_RECORD_INIT { 0 }

/* Parse LINE[len] and collect the texts of KEYS[nkeys]. WHERE is "PATH:LINE".
 * Returns 0, or -1 with mb_err set (malformed JSON, not an object, missing key, value
 * that is not a string or list of strings). The texts stay valid until the next call. */
MB_MUST_CHECK int mb_jsonl_parse(struct mb_jsonl_record *rec, const char *line, size_t len,
                                 const char *const *keys, size_t nkeys, const char *where);

void mb_jsonl_record_release(struct mb_jsonl_record *rec);

#endif /* MB_IO_JSONL_H */
