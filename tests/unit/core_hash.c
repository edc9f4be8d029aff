/* tests/unit/core_hash.c - the vocabulary and merge maps under growth. */
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "tests/lib/tap.h"

static void strmap_grows_and_overwrites(void)
{
    mb_strmap *m = mb_strmap_new(4);
    char key[32];
    int bad = 0;

    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "tok%d", i);
        mb_strmap_put(m, key, (size_t)n, i);
    }
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "tok%d", i);
        bad += mb_strmap_get(m, key, (size_t)n) != i;
    }
    is_int(bad, 0, "100000 keys read back after growth");
    is_int((long long)mb_strmap_count(m), 100000, "count");
    ok(mb_strmap_put(m, "tok7", 4, 42) == 0 && mb_strmap_get(m, "tok7", 4) == 42,
       "put on an existing key overwrites");
    is_int(mb_strmap_get(m, "tok", 3), -1, "missing key gives -1");
    ok(mb_strmap_put(m, "a\0b", 3, 5) == 1 && mb_strmap_get(m, "a\0c", 3) == -1 &&
       mb_strmap_get(m, "a\0b", 3) == 5, "keys may hold NUL bytes");
    mb_strmap_free(m);
}

static void u64map_round_trip(void)
{
    mb_u64map *m = mb_u64map_new(2);
    uint64_t v = 0;
    int bad = 0;

    for (uint64_t i = 0; i < 50000; i++)
        mb_u64map_put(m, i << 32 | (i * 7), i * 3);
    for (uint64_t i = 0; i < 50000; i++)
        bad += !mb_u64map_get(m, i << 32 | (i * 7), &v) || v != i * 3;
    is_int(bad, 0, "50000 pair keys read back");
    ok(!mb_u64map_get(m, 12345ull << 32, &v), "absent pair not found");
    mb_u64map_free(m);
}

int main(void)
{
    strmap_grows_and_overwrites();
    u64map_round_trip();
    return tap_done();
}
