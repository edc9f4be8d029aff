/* core/crc32c.c - CRC-32C, one table lookup per byte.
 *
 * The 256-entry table is filled on first use, once and thread-safely, by pthread_once
 * (written out as a constant initialiser it would be 256 unreadable numbers).
 */
#include "core/crc32c.h"

#include <pthread.h>

#define POLY 0x82F63B78u /* 0x1EDC6F41 bit-reversed: LSB-first processing */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void fill_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
}

uint32_t mb_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    pthread_once(&table_once, fill_table);
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t mb_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
