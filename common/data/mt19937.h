/* data/mt19937.h - numpy's legacy RandomState: MT19937 and its in-place shuffle.
 *
 * Megatron shuffles its document and sample indices with numpy.random.RandomState(seed)
 * (formats.md 1.6 step 4 and 8), so these reproduce numpy bit for bit: init_genrand
 * seeding from a 32-bit integer, genrand_int32, 64-bit draws as two 32-bit draws (high
 * word first), random_interval's mask-and-reject, and Fisher-Yates from the end.
 */
#ifndef MB_DATA_MT19937_H
#define MB_DATA_MT19937_H

#include <stdint.h>

struct mb_mt19937 {
    uint32_t key[624];
    int pos;
};

/* numpy.random.RandomState(SEED) for an integer seed. */
void mb_mt_seed(struct mb_mt19937 *mt, uint32_t seed);

/* The next 32 random bits (genrand_int32). */
uint32_t mb_mt_next32(struct mb_mt19937 *mt);

/* A uniform integer in [0, MAX] exactly as numpy's random_interval draws it. */
uint64_t mb_mt_interval(struct mb_mt19937 *mt, uint64_t max);

/* RandomState.shuffle of a 1-D array of N elements of the given type. */
void mb_mt_shuffle_i32(struct mb_mt19937 *mt, int32_t *a, int64_t n);
void mb_mt_shuffle_u32(struct mb_mt19937 *mt, uint32_t *a, int64_t n);
void mb_mt_shuffle_i64(struct mb_mt19937 *mt, int64_t *a, int64_t n);

#endif /* MB_DATA_MT19937_H */
