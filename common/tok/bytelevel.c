/* tok/bytelevel.c - the GPT-2 byte table, computed once. */
#include "tok/bytelevel.h"

#include <pthread.h>
#include <stdint.h>

#include "core/utf8.h"

static uint16_t byte_to_cp[256];
static int16_t cp_to_byte[512]; /* every mapped code point is below U+0144 */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static int printable_as_is(int b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void build_table(void)
{
    int next = 0;

    for (int i = 0; i < 512; i++)
        cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        byte_to_cp[b] = (uint16_t)(printable_as_is(b) ? b : 256 + next++);
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

void mb_bytelevel_encode(const char *bytes, size_t len, struct mb_buf *out)
{
    pthread_once(&table_once, build_table);
    mb_buf_reserve(out, 2 * len);
    for (size_t i = 0; i < len; i++) {
        char enc[4];
        int n = mb_utf8_encode(byte_to_cp[(unsigned char)bytes[i]], enc);
        mb_buf_add(out, enc, (size_t)n);
    }
}

int mb_bytelevel_decode(const char *s, size_t len, struct mb_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    pthread_once(&table_once, build_table);
    while (i < len) {
        int bad, n = mb_utf8_seq_len(p + i, len - i, &bad);
        uint32_t cp;
        if (n == 0)
            return -1;
        mb_utf8_decode(p + i, &cp);
        if (cp >= 512 || cp_to_byte[cp] < 0)
            return -1;
        mb_buf_addc(out, (char)cp_to_byte[cp]);
        i += (size_t)n;
    }
    return 0;
}
