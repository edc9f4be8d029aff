/* tests/lib/mirror.h - op tests written once against the op table, run on any backend.
 *
 * The test's data lives in host blocks (mirror_alloc), which it fills and checks as
 * plain arrays; each block has a twin in the backend's memory. M(p) is what an op is
 * given for host pointer P (into a block): the twin's address, the block copied to it
 * first if the host side may have changed since. mirror_back() after the op brings every
 * block the op was given back to the host. So a test never touches backend memory and
 * an op never gets host memory: on cpu-guarded, either would stop the test.
 */
#ifndef MB_TESTS_MIRROR_H
#define MB_TESTS_MIRROR_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/ops.h"

struct mirror_block {
    char *host;
    char *dev;
    size_t bytes;
    bool on_dev; /* given to an op since the last mirror_back: the twin is the newer */
};

static struct {
    const struct mb_ops *o;
    struct mb_exec *ex;
    struct mirror_block *b;
    int n, cap;
} mirror;

/* The backend the blocks' twins live on (blocks of another backend must be freed). */
static inline void mirror_use(const struct mb_ops *o)
{
    mirror.o = o;
    mirror.ex = o->exec;
}

/* BYTES of zeroed host memory, 64-byte aligned, with a twin. */
static inline void *mirror_alloc(size_t bytes)
{
    size_t size = (bytes + 63) / 64 * 64 + 64;
    char *h = aligned_alloc(64, size);
    char *d = mirror.o->alloc(mirror.ex, bytes);
    if (!h || !d) {
        fprintf(stderr, "mirror: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(h, 0, size);
    if (mirror.n == mirror.cap) {
        mirror.cap = mirror.cap ? 2 * mirror.cap : 64;
        mirror.b = realloc(mirror.b, (size_t)mirror.cap * sizeof *mirror.b);
    }
    mirror.b[mirror.n++] = (struct mirror_block){ h, d, bytes, false };
    return h;
}

static inline struct mirror_block *mirror_find(const void *p)
{
    const char *c = p;
    for (int i = 0; i < mirror.n; i++)
        if (c >= mirror.b[i].host && c <= mirror.b[i].host + mirror.b[i].bytes)
            return &mirror.b[i];
    fprintf(stderr, "mirror: %p is not in a block of mirror_alloc (a test bug)\n", p);
    abort();
}

static inline void mirror_free(void *p)
{
    if (!p)
        return;
    struct mirror_block *b = mirror_find(p);
    mirror.o->free(mirror.ex, b->dev);
    free(b->host);
    *b = mirror.b[--mirror.n];
}

/* The backend's address for host pointer P (NULL stays NULL). */
static inline void *M(const void *p)
{
    if (!p)
        return NULL;
    struct mirror_block *b = mirror_find(p);
    if (!b->on_dev) {
        mirror.o->from_host(mirror.ex, b->dev, b->host, b->bytes);
        b->on_dev = true;
    }
    return b->dev + ((const char *)p - b->host);
}

/* Every block given to an op since the last call back to the host. */
static inline void mirror_back(void)
{
    for (int i = 0; i < mirror.n; i++)
        if (mirror.b[i].on_dev) {
            mirror.o->to_host(mirror.ex, mirror.b[i].host, mirror.b[i].dev, mirror.b[i].bytes);
            mirror.b[i].on_dev = false;
        }
}

/* Attention shape S with the backend's doc_start (M of its own), for one op call. */
static inline const struct mb_attn_shape *MS(const struct mb_attn_shape *s)
{
    static struct mb_attn_shape d;
    d = *s;
    d.doc_start = M(s->doc_start);
    return &d;
}

#endif /* MB_TESTS_MIRROR_H */
