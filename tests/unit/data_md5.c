/* tests/unit/data_md5.c - MD5 against Python's hashlib (digests pasted from
 * hashlib.md5(...).hexdigest() in the oracle venv), across the padding edge cases. */
#include <string.h>

#include "data/md5.h"
#include "tests/lib/tap.h"

static void check(const void *data, size_t len, const char *want, const char *what)
{
    char hex[33];

    mb_md5_hex(data, len, hex);
    is_str(hex, want, "md5 of %s", what);
}

int main(void)
{
    char a[128], all[768];

    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (char)(i % 256);
    check("", 0, "d41d8cd98f00b204e9800998ecf8427e", "the empty string");
    check("abc", 3, "900150983cd24fb0d6963f7d28e17f72", "abc");
    check(a, 55, "ef1772b6dff9a122358552954ad0df65", "55 bytes (length fits the block)");
    check(a, 56, "3b0c8ac703f828b04c6c197006d17218", "56 bytes (length needs a block)");
    check(a, 64, "014842d480b571495a4a0363793f7367", "one full block");
    check(a, 119, "8a7bd0732ed6a28ce75f6dabc90e1613", "119 bytes");
    check(all, sizeof all, "e6899eaaf06fd702f3ed3f988eb19362", "bytes 0..255 three times");
    return tap_done();
}
