/* tok/regex.h - the Unicode regex engine behind Split pre-tokenizers (PCRE2 with JIT).
 *
 * Patterns are HF tokenizers' (Oniguruma syntax), which PCRE2 accepts for every pattern
 * the supported families use. One difference is papered over: Oniguruma's \s also
 * matches U+0085 (NEL), so the pattern is rewritten to include it.
 * A compiled mb_regex is shared by threads; each thread matches with its own
 * mb_regex_state.
 */
#ifndef MB_TOK_REGEX_H
#define MB_TOK_REGEX_H

#include <stddef.h>

#include "core/defs.h"

typedef struct mb_regex mb_regex;
typedef struct mb_regex_state mb_regex_state;

/* Compile PATTERN[len] (UTF-8). NULL with mb_err naming WHERE and the offset. */
mb_regex *mb_regex_compile(const char *pattern, size_t len, const char *where);
void mb_regex_free(mb_regex *re);

mb_regex_state *mb_regex_state_new(const mb_regex *re);
void mb_regex_state_free(mb_regex_state *st);

/* Find the first match in S[len] at or after byte FROM. Returns 1 with [*START, *END)
 * set, 0 when there is none. S must be valid UTF-8. */
int mb_regex_find(const mb_regex *re, mb_regex_state *st, const char *s, size_t len,
                  size_t from, size_t *start, size_t *end);

#endif /* MB_TOK_REGEX_H */
