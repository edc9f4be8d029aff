/* core/crc32c.h - CRC-32C (Castagnoli), the checksum of TFRecord framing.
 *
 * Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, as in
 * RFC 3720 (iSCSI) and TensorFlow's crc32c; "123456789" gives 0xE3069283. A portable
 * table-driven version: the inputs are event records of a few hundred bytes, so no
 * SSE4.2 path. Pure functions, thread-safe.
 */
#ifndef MB_CORE_CRC32C_H
#define MB_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend CRC (0 to start) over DATA[LEN] and return the new CRC. Calling it on two
 * pieces in turn gives the CRC of their concatenation. DATA may be NULL when LEN is 0. */
uint32_t mb_crc32c(uint32_t crc, const void *data, size_t len);

/* The masked form TFRecord stores: ((crc >> 15) | (crc << 17)) + 0xa282ead8, which
 * keeps the CRC of data that itself embeds CRCs from being trivially zero. */
uint32_t mb_crc32c_mask(uint32_t crc);

#endif /* MB_CORE_CRC32C_H */
