/* tests/unit/data_mt19937.c - numpy's legacy RandomState, bit for bit.
 *
 * Expected values pasted from numpy 2.4 in the oracle venv:
 *   RandomState(1234)._bit_generator.random_raw(5)
 *   rs = RandomState(1234); a = arange(20, int32); rs.shuffle(a); b = arange(10, uint32);
 *   rs.shuffle(b)  (the same generator continues, as Megatron's two shuffles do)
 *   rs = RandomState(5); c = arange(3000, int64); rs.shuffle(c)
 *   RandomState(4294967295)._bit_generator.random_raw(2)
 * t2001-gpt-dataset.sh compares whole shuffled index arrays with Megatron's.
 */
#include <string.h>

#include "data/mt19937.h"
#include "tests/lib/tap.h"

static void raw_draws(void)
{
    const uint32_t want[] = { 822569775u, 2137449171u, 2671936806u, 3512589365u, 1880026316u };
    struct mb_mt19937 mt;
    int same = 1;

    mb_mt_seed(&mt, 1234);
    for (int i = 0; i < 5; i++)
        same &= mb_mt_next32(&mt) == want[i];
    ok(same, "RandomState(1234) first five 32-bit draws");
    mb_mt_seed(&mt, 4294967295u);
    ok(mb_mt_next32(&mt) == 419326371u && mb_mt_next32(&mt) == 479346978u,
       "RandomState(2**32 - 1) first two draws");
}

static void shuffles(void)
{
    const int32_t want_a[] = { 3, 13, 2, 16, 14, 5, 4, 0, 8, 18, 17, 11, 10, 9, 7, 1, 19, 12, 6, 15 };
    const uint32_t want_b[] = { 8, 1, 7, 6, 9, 5, 4, 3, 0, 2 };
    const int64_t want_c_head[] = { 2899, 2670, 2774, 1699, 1933, 1368, 1317, 2427 };
    const int64_t want_c_tail[] = { 1424, 1725, 2254, 2915 };
    static int64_t c[3000];
    int32_t a[20];
    uint32_t b[10];
    struct mb_mt19937 mt;
    int64_t sum = 0;

    for (int i = 0; i < 20; i++)
        a[i] = i;
    for (int i = 0; i < 10; i++)
        b[i] = (uint32_t)i;
    mb_mt_seed(&mt, 1234);
    mb_mt_shuffle_i32(&mt, a, 20);
    ok(memcmp(a, want_a, sizeof a) == 0, "int32 shuffle of arange(20), seed 1234");
    mb_mt_shuffle_u32(&mt, b, 10);
    ok(memcmp(b, want_b, sizeof b) == 0, "uint32 shuffle continues the same stream");
    for (int i = 0; i < 3000; i++)
        c[i] = i;
    mb_mt_seed(&mt, 5);
    mb_mt_shuffle_i64(&mt, c, 3000);
    for (int i = 0; i < 3000; i++)
        sum += c[i];
    ok(memcmp(c, want_c_head, sizeof want_c_head) == 0 &&
       memcmp(c + 2996, want_c_tail, sizeof want_c_tail) == 0 && sum == 4498500,
       "int64 shuffle of arange(3000), seed 5: head, tail and sum");
    mb_mt_seed(&mt, 1);
    ok(mb_mt_interval(&mt, 0) == 0, "interval [0, 0] draws nothing");
}

int main(void)
{
    raw_draws();
    shuffles();
    return tap_done();
}
