/* io/jsonl.c - parse a JSONL record and extract its text fields. */
#include "io/jsonl.h"

#include <stdlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/utf8.h"

static void add_text(struct mb_jsonl_record *rec, const char *s, size_t len)
{
    MB_GROW(rec->texts, rec->texts_cap, rec->ntexts + 1);
    rec->texts[rec->ntexts].s = s;
    rec->texts[rec->ntexts].len = len;
    rec->ntexts++;
}

static int collect_key(struct mb_jsonl_record *rec, const char *key, const char *where)
{
    const mb_json *v = mb_json_get(rec->root, key);
    size_t len;
    const char *s;

    if (!v)
        return mb_err_set(MB_E_INVALID, where, "no key '%s' in the record", key);
    if ((s = mb_json_str(v, &len))) {
        add_text(rec, s, len);
        return 0;
    }
    if (mb_json_type_of(v) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "key '%s' holds %s %s, not a string", key,
                          mb_json_type_of(v) == MB_JSON_INT ? "an" : "a", mb_json_type_name(v));
    for (size_t i = 0; i < mb_json_len(v); i++) {
        if (!(s = mb_json_str(mb_json_at(v, i), &len)))
            return mb_err_set(MB_E_INVALID, where, "key '%s' item %zu is not a string", key, i);
        add_text(rec, s, len);
    }
    return 0;
}

int mb_jsonl_parse(struct mb_jsonl_record *rec, const char *line, size_t len,
                   const char *const *keys, size_t nkeys, const char *where)
{
    mb_json_free(rec->root);
    rec->root = NULL;
    rec->ntexts = 0;
    if (!mb_utf8_is_valid(line, len)) {
        mb_buf_reset(&rec->repaired);
        rec->utf8_repairs += mb_utf8_repair(line, len, &rec->repaired);
        line = rec->repaired.data;
        len = rec->repaired.len;
    }
    rec->root = mb_json_parse(line, len, where);
    if (!rec->root)
        return -1;
    if (mb_json_type_of(rec->root) != MB_JSON_OBJECT)
        return mb_err_set(MB_E_INVALID, where, "record is %s %s, not a JSON object",
                          mb_json_type_of(rec->root) == MB_JSON_ARRAY ? "an" : "a",
                          mb_json_type_name(rec->root));
    if (rec->nkeys != nkeys || !rec->key_first) { /* nkeys 0: the object only */
        rec->key_first = mb_xrealloc(rec->key_first, (nkeys + 1) * sizeof *rec->key_first);
        rec->nkeys = nkeys;
    }
    for (size_t k = 0; k < nkeys; k++) {
        rec->key_first[k] = rec->ntexts;
        if (collect_key(rec, keys[k], where) != 0)
            return -1;
    }
    rec->key_first[nkeys] = rec->ntexts;
    return 0;
}

void mb_jsonl_record_release(struct mb_jsonl_record *rec)
{
    mb_json_free(rec->root);
    mb_buf_release(&rec->repaired);
    free(rec->texts);
    free(rec->key_first);
    *rec = (struct mb_jsonl_record)MB_JSONL_RECORD_INIT;
}
