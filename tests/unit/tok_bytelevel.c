/* tests/unit/tok_bytelevel.c - GPT-2 byte table (formats.md 3.4). */
#include <string.h>

#include "core/str.h"
#include "tok/bytelevel.h"
#include "tests/lib/tap.h"

int main(void)
{
    struct mb_buf enc = MB_BUF_INIT, dec = MB_BUF_INIT;
    char all[256];

    mb_bytelevel_encode(" \n!", 3, &enc);
    is_str(enc.data, "\xC4\xA0\xC4\x8A!", "space is U+0120 and newline U+010A, '!' itself");
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    mb_buf_reset(&enc);
    mb_bytelevel_encode(all, 256, &enc);
    ok(mb_bytelevel_decode(enc.data, enc.len, &dec) == 0 && dec.len == 256 &&
       memcmp(dec.data, all, 256) == 0, "all 256 bytes round-trip");
    mb_buf_reset(&dec);
    ok(mb_bytelevel_decode("\xE2\x96\x81", 3, &dec) != 0, "U+2581 is not a byte-level character");
    mb_buf_release(&enc);
    mb_buf_release(&dec);
    return tap_done();
}
