/* core/hash.c - open addressing with linear probing; tables stay at most half full. */
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* 64-bit FNV-1a over 8-byte words with a final mix: fast on short keys (tokens) and
 * good enough for vocabulary-sized tables. */
uint64_t mb_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ (len * 0x9e3779b97f4a7c15ull);

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

struct slot {
    uint32_t off;   /* key offset in the arena + 1; 0 = empty */
    uint32_t len;
    int32_t value;
    uint32_t hash;
};

struct mb_strmap {
    struct slot *slots;
    size_t mask;
    size_t count;
    char *arena;
    size_t arena_len, arena_cap;
};

static size_t table_size_for(size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    return size;
}

mb_strmap *mb_strmap_new(size_t expected)
{
    mb_strmap *m = mb_xcalloc(1, sizeof *m);
    size_t size = table_size_for(expected);

    m->slots = mb_xcalloc(size, sizeof *m->slots);
    m->mask = size - 1;
    return m;
}

void mb_strmap_free(mb_strmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->arena);
    free(m);
}

static int key_equal(const mb_strmap *m, const struct slot *s, const char *key, size_t len)
{
    return s->len == len && memcmp(m->arena + s->off - 1, key, len) == 0;
}

static void rehash(mb_strmap *m)
{
    size_t size = (m->mask + 1) * 2;
    struct slot *slots = mb_xcalloc(size, sizeof *slots);

    for (size_t i = 0; i <= m->mask; i++) {
        struct slot *s = &m->slots[i];
        if (!s->off)
            continue;
        size_t j = s->hash & (size - 1);
        while (slots[j].off)
            j = (j + 1) & (size - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = size - 1;
}

int mb_strmap_put(mb_strmap *m, const char *key, size_t len, int32_t value)
{
    uint32_t h = (uint32_t)mb_hash_bytes(key, len);
    size_t i = h & m->mask;

    for (; m->slots[i].off; i = (i + 1) & m->mask) {
        if (m->slots[i].hash == h && key_equal(m, &m->slots[i], key, len)) {
            m->slots[i].value = value;
            return 0;
        }
    }
    MB_GROW(m->arena, m->arena_cap, m->arena_len + len + 1);
    memcpy(m->arena + m->arena_len, key, len);
    m->slots[i] = (struct slot){ (uint32_t)m->arena_len + 1, (uint32_t)len, value, h };
    m->arena_len += len;
    if (++m->count * 2 > m->mask + 1)
        rehash(m);
    return 1;
}

int32_t mb_strmap_get(const mb_strmap *m, const char *key, size_t len)
{
    uint32_t h = (uint32_t)mb_hash_bytes(key, len);

    for (size_t i = h & m->mask; m->slots[i].off; i = (i + 1) & m->mask)
        if (m->slots[i].hash == h && key_equal(m, &m->slots[i], key, len))
            return m->slots[i].value;
    return -1;
}

size_t mb_strmap_count(const mb_strmap *m)
{
    return m->count;
}

void mb_strmap_each(const mb_strmap *m,
                    void (*fn)(const char *key, size_t len, int32_t value, void *ctx),
                    void *ctx)
{
    for (size_t i = 0; i <= m->mask; i++) {
        const struct slot *s = &m->slots[i];
        if (s->off)
            fn(m->arena + s->off - 1, s->len, s->value, ctx);
    }
}

struct u64slot {
    uint64_t key;
    uint64_t value;
    int used;
};

struct mb_u64map {
    struct u64slot *slots;
    size_t mask;
    size_t count;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

mb_u64map *mb_u64map_new(size_t expected)
{
    mb_u64map *m = mb_xcalloc(1, sizeof *m);
    size_t size = table_size_for(expected);

    m->slots = mb_xcalloc(size, sizeof *m->slots);
    m->mask = size - 1;
    return m;
}

void mb_u64map_free(mb_u64map *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static void u64_rehash(mb_u64map *m)
{
    size_t size = (m->mask + 1) * 2;
    struct u64slot *slots = mb_xcalloc(size, sizeof *slots);

    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->slots[i].used)
            continue;
        size_t j = mix64(m->slots[i].key) & (size - 1);
        while (slots[j].used)
            j = (j + 1) & (size - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->mask = size - 1;
}

void mb_u64map_put(mb_u64map *m, uint64_t key, uint64_t value)
{
    size_t i = mix64(key) & m->mask;

    for (; m->slots[i].used; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) {
            m->slots[i].value = value;
            return;
        }
    }
    m->slots[i] = (struct u64slot){ key, value, 1 };
    if (++m->count * 2 > m->mask + 1)
        u64_rehash(m);
}

int mb_u64map_get(const mb_u64map *m, uint64_t key, uint64_t *value)
{
    for (size_t i = mix64(key) & m->mask; m->slots[i].used; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) {
            *value = m->slots[i].value;
            return 1;
        }
    }
    return 0;
}

uint64_t mb_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
