/* data/md5.h - MD5 (RFC 1321), for Megatron's cache file names only.
 *
 * Megatron names its cached index files after the MD5 of a JSON description
 * (formats.md 1.6); this digest exists to reproduce those names, not for security.
 */
#ifndef MB_DATA_MD5_H
#define MB_DATA_MD5_H

#include <stddef.h>
#include <stdint.h>

/* The 16-byte digest of LEN bytes at DATA. */
void mb_md5(const void *data, size_t len, uint8_t digest[16]);

/* The digest as 32 lower-case hex digits and a NUL, as hashlib's hexdigest(). */
void mb_md5_hex(const void *data, size_t len, char hex[33]);

#endif /* MB_DATA_MD5_H */
