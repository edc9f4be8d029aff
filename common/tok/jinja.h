/* tok/jinja.h - the subset of Jinja that HuggingFace chat templates use, rendered as
 * transformers' apply_chat_template renders it (jinja2 ImmutableSandboxedEnvironment with
 * trim_blocks and lstrip_blocks, loop controls and the {% generation %} block; filter
 * tojson = Python json.dumps; globals raise_exception, namespace, range, strftime_now).
 *
 * What is covered: finetune.md section 5.2 and more: statements if/elif/else, for (with
 * unpacking, an inline filter, else, loop.*), set (namespace attributes, block set),
 * macro, generation, break and continue; literals, arithmetic, comparisons (chained as in
 * Python), in, and/or/not, conditional expressions, indexing and slicing by characters,
 * attribute access; the tests defined, undefined, none, string, mapping, iterable,
 * sequence, number, integer, float, boolean, true, false, equalto/eq/ne, sameas, in,
 * odd, even; the filters trim, length/count, tojson (indent, sort_keys, separators),
 * join, select/reject, selectattr/rejectattr, map (giving generators, as jinja2),
 * list, items, string, default/d, first, last, upper/lower/title/capitalize, replace,
 * int, abs, indent; the str methods strip/lstrip/rstrip, split, startswith/endswith,
 * upper/lower/title/capitalize, replace and the dict methods items/keys/values/get;
 * Python truthiness and
 * jinja2's lenient Undefined. Refused with an error naming the construct and the line:
 * call and filter blocks, raw, include/import/extends, recursive loops, any other filter,
 * test, method or function, "%" formatting, integers outside 64 bits (Python's are
 * exact), case changes of non-ASCII text, a method named without a call, safe and
 * escape (their Markup strings escape what they are joined with). Hostile input
 * (nesting deeper than 200, more than 10^7 loop iterations, strings over 256 MiB) is an
 * error too.
 *
 * A parsed template is immutable: threads may render it at the same time.
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
