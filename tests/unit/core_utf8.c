/* tests/unit/core_utf8.c - UTF-8 repair matches Python's decode("utf-8", "replace").
 *
 * Expected outputs are what CPython 3.11 prints for bytes(...).decode("utf-8",
 * "replace"): one U+FFFD per maximal ill-formed subpart (Unicode 3.9, Table 3-8).
 */
#include <string.h>

#include "core/str.h"
#include "core/utf8.h"
#include "tests/lib/tap.h"

#define FFFD "\xEF\xBF\xBD"

static void check_repair(const char *in, size_t len, const char *want, size_t nrep,
                         const char *what)
{
    struct mb_buf out = MB_BUF_INIT;
    size_t n = mb_utf8_repair(in, len, &out);

    ok(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0, "repair: %s", what);
    is_int((long long)n, (long long)nrep, "repair count: %s", what);
    ok(mb_utf8_is_valid(out.data, out.len), "repaired text is valid: %s", what);
    mb_buf_release(&out);
}

int main(void)
{
    check_repair("plain ascii", 11, "plain ascii", 0, "ASCII unchanged");
    check_repair("caf\xC3\xA9 \xF0\x9F\x98\x80", 10, "caf\xC3\xA9 \xF0\x9F\x98\x80", 0,
                 "valid 2- and 4-byte sequences unchanged");
    check_repair("a\xFF" "b", 3, "a" FFFD "b", 1, "stray 0xFF");
    check_repair("\xE2\x82" "x", 3, FFFD "x", 1, "truncated 3-byte sequence is one U+FFFD");
    check_repair("\xED\xA0\x80", 3, FFFD FFFD FFFD, 3, "encoded surrogate is three U+FFFD");
    check_repair("\xC0\xAF", 2, FFFD FFFD, 2, "overlong encoding");
    check_repair("\xF0\x9F\x98", 3, FFFD, 1, "truncated 4-byte sequence at the end");
    check_repair("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, 4, "above U+10FFFF");
    ok(!mb_utf8_is_valid("\xC3", 1), "lone lead byte is invalid");
    ok(mb_unicode_is_space(0x85) && mb_unicode_is_space(0x3000) && !mb_unicode_is_space(0x200B),
       "White_Space: NEL and ideographic space yes, zero-width space no");
    is_int((long long)mb_utf8_space_len("\xC2\xA0x", 3), 2, "NBSP is a 2-byte space");
    return tap_done();
}
