/* core/utf8.h - UTF-8 validation, decoding and repair.
 *
 * Repair follows the Unicode "maximal subpart" rule, which is what Python's
 * bytes.decode("utf-8", "replace") does: each maximal ill-formed subsequence becomes
 * one U+FFFD. Text that reaches a tokenizer is always valid UTF-8.
 */
#ifndef MB_CORE_UTF8_H
#define MB_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* Length of the well-formed sequence at S (1..4), or 0 if ill-formed. On 0, *BAD is the
 * length of the maximal subpart to replace (>= 1). LEN must be >= 1. */
int mb_utf8_seq_len(const unsigned char *s, size_t len, int *bad);

/* 1 if all of S is well-formed UTF-8. */
int mb_utf8_is_valid(const char *s, size_t len);

/* Append S to OUT with every ill-formed subpart replaced by U+FFFD. Returns the
 * number of replacements. */
size_t mb_utf8_repair(const char *s, size_t len, struct mb_buf *out);

/* Decode the well-formed sequence at S (caller knows it is valid); sets *CP and
 * returns its length. */
int mb_utf8_decode(const unsigned char *s, uint32_t *cp);

/* 1 if CP has the Unicode White_Space property (Rust's char::is_whitespace). */
int mb_unicode_is_space(uint32_t cp);

/* If S[len] starts with a White_Space character, its length in bytes, else 0. */
size_t mb_utf8_space_len(const char *s, size_t len);

/* Encode CP into OUT (4 bytes room); returns the length. */
int mb_utf8_encode(uint32_t cp, char *out);

#endif /* MB_CORE_UTF8_H */
