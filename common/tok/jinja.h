/* tok/jinja.h - the subset of Jinja that HuggingFace chat templates use, rendered as
 * transformers' apply_chat_template renders it (jinja2 ImmutableSandboxedEnvironment with
 * trim_blocks and lstrip_blocks, loop controls and the {% generation %} block; filter
 * tojson = Python json.dumps; globals raise_exception, namespace, range, strftime_now).
 *
 * What is covered: finetune.md section 5.2 (statements if/elif/else, for with unpacking,
 * an inline filter and else, set including namespace attributes, generation, break and
 * continue; literals, arithmetic, comparison, in, and/or/not, conditional expressions,
 * indexing and slicing by characters, attribute access, the common tests, filters and
 * Python str/dict methods), with Python truthiness and jinja2's lenient Undefined.
 * Anything else (macros, call blocks, includes, an unknown filter, test or method) is an
 * error naming the construct and the template line: never a guessed string.
 */
#ifndef MB_TOK_JINJA_H
#define MB_TOK_JINJA_H

#include <stddef.h>

#include "core/defs.h"
#include "core/json.h"
#include "core/str.h"

typedef struct mb_jinja mb_jinja;

/* Parse SRC[len]. NAME names the template in errors ("tokenizer_config.json:
 * chat_template"); an error's WHERE is "NAME:LINE". NULL with mb_err on failure. */
mb_jinja *mb_jinja_parse(const char *src, size_t len, const char *name);
void mb_jinja_free(mb_jinja *t);

/* 1 if the template has a {% generation %} block. */
int mb_jinja_has_generation(const mb_jinja *t);

/* Byte ranges [start, end) of the output that {% generation %} blocks produced. */
struct mb_jinja_spans {
    size_t (*v)[2];
    size_t n, cap;
};
void mb_jinja_spans_release(struct mb_jinja_spans *s);

/* Render T with the members of the JSON object VARS as its variables, appending to OUT.
 * SPANS (may be NULL) gets the generation spans. 0, or -1 with mb_err naming the
 * template line and the construct (raise_exception's message included). */
MB_MUST_CHECK int mb_jinja_render(const mb_jinja *t, const mb_json *vars, struct mb_buf *out,
                                  struct mb_jinja_spans *spans);

#endif /* MB_TOK_JINJA_H */
