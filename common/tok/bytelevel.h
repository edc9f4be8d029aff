/* tok/bytelevel.h - GPT-2's byte <-> printable-character table (formats.md 3.4).
 *
 * Byte-level BPE vocabularies spell every byte as one code point: 0x21-0x7E, 0xA1-0xAC
 * and 0xAE-0xFF stand for themselves, the other 68 bytes map to U+0100, U+0101, ...
 * in increasing order. mb keeps vocabularies as raw bytes internally, so this table is
 * used only when reading or writing tokenizer.json.
 */
#ifndef MB_TOK_BYTELEVEL_H
#define MB_TOK_BYTELEVEL_H

#include <stddef.h>

#include "core/defs.h"
#include "core/str.h"

/* Append the byte-level spelling of BYTES[len] (UTF-8) to OUT. */
void mb_bytelevel_encode(const char *bytes, size_t len, struct mb_buf *out);

/* Append the bytes spelled by the UTF-8 string S[len] to OUT. Returns 0, or -1 when S
 * holds a character outside the table (OUT is then left partially appended). */
MB_MUST_CHECK int mb_bytelevel_decode(const char *s, size_t len, struct mb_buf *out);

#endif /* MB_TOK_BYTELEVEL_H */
