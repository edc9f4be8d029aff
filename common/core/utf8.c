/* core/utf8.c - UTF-8 checks per Unicode Table 3-7 (well-formed byte sequences). */
#include "core/utf8.h"

#include <string.h>

int mb_utf8_seq_len(const unsigned char *s, size_t len, int *bad)
{
    unsigned b = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* range allowed for the second byte */

    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (int k = 1; k < need; k++) {
        unsigned c = (size_t)k < len ? s[k] : 0;
        unsigned klo = k == 1 ? lo : 0x80, khi = k == 1 ? hi : 0xBF;
        if ((size_t)k >= len || c < klo || c > khi) {
            *bad = k;
            return 0;
        }
    }
    return need;
}

int mb_utf8_is_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int bad, n = mb_utf8_seq_len(p + i, len - i, &bad);
        if (n == 0)
            return 0;
        i += (size_t)n;
    }
    return 1;
}

size_t mb_utf8_repair(const char *s, size_t len, struct mb_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, start = 0, replaced = 0;

    mb_buf_reserve(out, len);
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int bad, n = mb_utf8_seq_len(p + i, len - i, &bad);
        if (n > 0) {
            i += (size_t)n;
            continue;
        }
        mb_buf_add(out, s + start, i - start);
        mb_buf_add(out, "\xEF\xBF\xBD", 3);
        replaced++;
        i += (size_t)bad;
        start = i;
    }
    mb_buf_add(out, s + start, len - start);
    return replaced;
}

int mb_utf8_decode(const unsigned char *s, uint32_t *cp)
{
    unsigned b = s[0];

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b < 0xE0) {
        *cp = ((b & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (b < 0xF0) {
        *cp = ((b & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    *cp = ((b & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    return 4;
}

int mb_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;

    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int mb_unicode_is_space(uint32_t cp)
{
    if (cp <= 0x20)
        return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

size_t mb_utf8_space_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    int bad, n;

    if (len == 0 || (n = mb_utf8_seq_len(p, len, &bad)) == 0)
        return 0;
    mb_utf8_decode(p, &cp);
    return mb_unicode_is_space(cp) ? (size_t)n : 0;
}
