/* core/hash.h - hash maps (the tokenizers' vocabularies) and hash and mixing functions.
 *
 * mb_strmap maps byte strings (any bytes, explicit length) to int32 values; keys are
 * copied into an arena owned by the map. mb_u64map maps 64-bit keys to 64-bit values.
 * Neither supports deletion; both are safe for concurrent lookups once built.
 */
#ifndef MB_CORE_HASH_H
#define MB_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

struct mb_strmap;
typedef struct mb_strmap mb_strmap;

mb_strmap *mb_strmap_new(size_t expected);
void mb_strmap_free(mb_strmap *m);

/* Insert or overwrite KEY[len] -> VALUE. Returns 1 if the key was new, 0 if replaced. */
int mb_strmap_put(mb_strmap *m, const char *key, size_t len, int32_t value);

/* The value of KEY, or -1 when absent (values stored must be >= 0). */
int32_t mb_strmap_get(const mb_strmap *m, const char *key, size_t len);
size_t mb_strmap_count(const mb_strmap *m);

/* Visit every entry in unspecified order. */
void mb_strmap_each(const mb_strmap *m,
                    void (*fn)(const char *key, size_t len, int32_t value, void *ctx),
                    void *ctx);

uint64_t mb_hash_bytes(const void *data, size_t len);

/* splitmix64's output function of X + golden ratio: a counter-based generator, so
 * mb_splitmix64(key + i) is the i-th draw of stream KEY. */
uint64_t mb_splitmix64(uint64_t x);

struct mb_u64map;
typedef struct mb_u64map mb_u64map;

mb_u64map *mb_u64map_new(size_t expected);
void mb_u64map_free(mb_u64map *m);
void mb_u64map_put(mb_u64map *m, uint64_t key, uint64_t value);
/* 1 and *VALUE set when KEY is present, else 0. */
int mb_u64map_get(const mb_u64map *m, uint64_t key, uint64_t *value);

#endif /* MB_CORE_HASH_H */
