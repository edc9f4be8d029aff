/* tok/postproc.c - post-processors, reduced to the ids they put around one sequence.
 *
 * mb encodes single sequences only, so TemplateProcessing's "single" template, Bert's
 * [CLS] A [SEP] and Roberta's <s> A </s> all become a prefix and a suffix of ids.
 * ByteLevel as a post-processor only adjusts offsets and adds nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "tok/internal.h"

static void push_id(int32_t **v, size_t *n, int32_t id)
{
    *v = mb_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = id;
}

/* The ids of special token NAME from the template's "special_tokens" map. */
static int template_special(mb_tokenizer *t, const mb_json *specials, const char *name,
                            int before_seq, const char *where)
{
    const mb_json *ids = mb_json_get(mb_json_get(specials, name), "ids");

    if (!ids || mb_json_type_of(ids) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "special token '%s' of the template has no ids",
                          name);
    for (size_t k = 0; k < mb_json_len(ids); k++) {
        const mb_json *v = mb_json_at(ids, k);
        if (mb_json_type_of(v) != MB_JSON_INT || mb_json_int(v) < 0 ||
            mb_json_int(v) > TOK_MAX_ID)
            return mb_err_set(MB_E_INVALID, where, "special token '%s' of the template: "
                              "ids[%zu] is not a valid id (0 to %d)", name, k, TOK_MAX_ID);
        int32_t id = (int32_t)mb_json_int(v);
        if (before_seq)
            push_id(&t->prefix, &t->nprefix, id);
        else
            push_id(&t->suffix, &t->nsuffix, id);
    }
    return 0;
}

static int parse_template(mb_tokenizer *t, const mb_json *j, const char *where)
{
    const mb_json *single = mb_json_get(j, "single");
    const mb_json *specials = mb_json_get(j, "special_tokens");
    int seen_seq = 0;

    if (!single || mb_json_type_of(single) != MB_JSON_ARRAY)
        return mb_err_set(MB_E_INVALID, where, "TemplateProcessing needs a 'single' array");
    for (size_t i = 0; i < mb_json_len(single); i++) {
        const mb_json *item = mb_json_at(single, i);
        const mb_json *sp = mb_json_get(item, "SpecialToken");
        if (mb_json_get(item, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const char *name = mb_json_str(mb_json_get(sp, "id"), NULL);
        if (!name)
            return mb_err_set(MB_E_INVALID, where, "single[%zu] is neither a Sequence nor a "
                              "SpecialToken", i);
        if (template_special(t, specials, name, !seen_seq, where) != 0)
            return -1;
    }
    return 0;
}

static int valid_id(const mb_json *v)
{
    return mb_json_type_of(v) == MB_JSON_INT && mb_json_int(v) >= 0 &&
           mb_json_int(v) <= TOK_MAX_ID;
}

/* Bert: [cls] A [sep]; Roberta: same shape with its own tokens. "cls"/"sep" are
 * ["token", id] pairs. */
static int parse_cls_sep(mb_tokenizer *t, const mb_json *j, const char *where)
{
    const mb_json *cls = mb_json_get(j, "cls"), *sep = mb_json_get(j, "sep");

    if (mb_json_len(cls) != 2 || mb_json_len(sep) != 2 || !valid_id(mb_json_at(cls, 1)) ||
        !valid_id(mb_json_at(sep, 1)))
        return mb_err_set(MB_E_INVALID, where, "needs 'cls' and 'sep' as [token, id], with ids "
                          "0 to %d", TOK_MAX_ID);
    push_id(&t->prefix, &t->nprefix, (int32_t)mb_json_int(mb_json_at(cls, 1)));
    push_id(&t->suffix, &t->nsuffix, (int32_t)mb_json_int(mb_json_at(sep, 1)));
    return 0;
}

int tok_post_parse(mb_tokenizer *t, const mb_json *j, const char *where)
{
    const char *type = mb_json_str(mb_json_get(j, "type"), NULL);
    char at[600];

    if (!type)
        return mb_err_set(MB_E_INVALID, where, "post-processor has no 'type'");
    if (strcmp(type, "ByteLevel") == 0)
        return 0;
    if (strcmp(type, "TemplateProcessing") == 0)
        return parse_template(t, j, where);
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0)
        return parse_cls_sep(t, j, where);
    if (strcmp(type, "Sequence") == 0) {
        const mb_json *list = mb_json_get(j, "processors");
        for (size_t i = 0; i < mb_json_len(list); i++) {
            snprintf(at, sizeof at, "%s.processors[%zu]", where, i);
            if (tok_post_parse(t, mb_json_at(list, i), at) != 0)
                return -1;
        }
        return 0;
    }
    return mb_err_set(MB_E_UNSUPPORTED, where, "post-processor type '%s' is not supported", type);
}
