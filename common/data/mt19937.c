/* data/mt19937.c - Mersenne Twister (Matsumoto & Nishimura 1998) as numpy's legacy
 * generator uses it; constants are the reference implementation's. */
#include "data/mt19937.h"

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfU
#define MT_UPPER 0x80000000U
#define MT_LOWER 0x7fffffffU

void mb_mt_seed(struct mb_mt19937 *mt, uint32_t seed)
{
    mt->key[0] = seed;
    for (int i = 1; i < MT_N; i++)
        mt->key[i] = 1812433253U * (mt->key[i - 1] ^ (mt->key[i - 1] >> 30)) + (uint32_t)i;
    mt->pos = MT_N;
}

static void mt_regenerate(struct mb_mt19937 *mt)
{
    uint32_t *k = mt->key;

    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (k[i] & MT_UPPER) | (k[(i + 1) % MT_N] & MT_LOWER);
        k[i] = k[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1U) ? MT_MATRIX_A : 0U);
    }
    mt->pos = 0;
}

uint32_t mb_mt_next32(struct mb_mt19937 *mt)
{
    if (mt->pos >= MT_N)
        mt_regenerate(mt);
    uint32_t y = mt->key[mt->pos++];
    /* tempering */
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

uint64_t mb_mt_interval(struct mb_mt19937 *mt, uint64_t max)
{
    uint64_t mask = max, v;

    if (max == 0)
        return 0;
    /* smallest all-ones mask covering max */
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    if (max <= 0xffffffffULL) {
        while ((v = (mb_mt_next32(mt) & mask)) > max)
            ;
    } else {
        do {
            uint64_t hi = mb_mt_next32(mt);
            v = (hi << 32 | mb_mt_next32(mt)) & mask;
        } while (v > max);
    }
    return v;
}

#define MT_SHUFFLE(name, type)                                       \
    void name(struct mb_mt19937 *mt, type *a, int64_t n)             \
    {                                                                \
        for (int64_t i = n - 1; i >= 1; i--) {                       \
            int64_t j = (int64_t)mb_mt_interval(mt, (uint64_t)i);    \
            type t = a[i];                                           \
            a[i] = a[j];                                             \
            a[j] = t;                                                \
        }                                                            \
    }

MT_SHUFFLE(mb_mt_shuffle_i32, int32_t)
MT_SHUFFLE(mb_mt_shuffle_u32, uint32_t)
MT_SHUFFLE(mb_mt_shuffle_i64, int64_t)
