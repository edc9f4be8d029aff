/* tests/helpers/ckpt_mutate.c - one random mutation of a checkpoint file, for the
 * mutation campaigns of t8402 and tests/long/t8401.
 *
 *   ckpt_mutate IN OUT SEED
 *
 * writes IN with one damage drawn from SEED to OUT and prints "SEED KIND OFFSET LENGTH".
 * KIND is byte (one byte overwritten with another value), block (2 to 256 bytes of
 * random values), zero (1 to 512 bytes zeroed) or truncate (the file cut at OFFSET).
 * Odd seeds place the damage outside the tensors' stored bytes (the HDF5 metadata:
 * superblock, object headers, heaps, B-trees), even seeds anywhere in the file, so half
 * of the mutations hit what HDF5 itself parses.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/mem.h"

struct ranges {
    uint64_t lo[4096], hi[4096];
    int n;
};

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static herr_t add_range(hid_t loc, const char *name, const H5O_info_t *info, void *arg)
{
    struct ranges *r = arg;

    if (info->type != H5O_TYPE_DATASET || r->n == 4096)
        return 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    haddr_t at = d < 0 ? HADDR_UNDEF : H5Dget_offset(d);
    if (at != HADDR_UNDEF) {
        r->lo[r->n] = at;
        r->hi[r->n++] = at + H5Dget_storage_size(d);
    }
    if (d >= 0)
        H5Dclose(d);
    return 0;
}

/* The stored bytes of every contiguous dataset of FILE. */
static void data_ranges(const char *file, struct ranges *r)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    r->n = 0;
    if (f >= 0) {
        H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, add_range, r, H5O_INFO_BASIC);
        H5Fclose(f);
    }
}

static int in_data(const struct ranges *r, uint64_t off, uint64_t len)
{
    for (int i = 0; i < r->n; i++)
        if (off < r->hi[i] && off + len > r->lo[i])
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_mutate IN OUT SEED\n");
        return 2;
    }
    const char *data;
    size_t size;
    if (mb_fs_map(argv[1], (const void **)&data, &size) != 0 || size < 2) {
        fprintf(stderr, "ckpt_mutate: error: %s: cannot read\n", argv[1]);
        return 1;
    }
    uint64_t seed = strtoull(argv[3], NULL, 10), s = seed * 0x2545f4914f6cdd1dull + 1;
    static const char *kinds[] = { "byte", "block", "zero", "truncate" };
    int kind = (int)(next(&s) % 4);
    uint64_t len = kind == 0 ? 1 : kind == 1 ? 2 + next(&s) % 255 : 1 + next(&s) % 512;
    struct ranges r;
    uint64_t off = next(&s) % size;
    if (seed % 2) { /* outside the tensors' bytes; truncation keeps its cut anywhere */
        data_ranges(argv[1], &r);
        for (int tries = 0; tries < 1000 && kind != 3 && in_data(&r, off, len); tries++)
            off = next(&s) % size;
    }
    if (off + len > size)
        len = size - off;
    unsigned char *buf = mb_xmalloc(size);
    memcpy(buf, data, size);
    size_t out = size;
    if (kind == 0)
        buf[off] ^= (unsigned char)(1 + next(&s) % 255);
    else if (kind == 1)
        for (uint64_t i = 0; i < len; i++)
            buf[off + i] = (unsigned char)next(&s);
    else if (kind == 2)
        memset(buf + off, 0, len);
    else
        out = off;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(buf, 1, out, f) != out || fclose(f) != 0) {
        fprintf(stderr, "ckpt_mutate: error: %s: cannot write\n", argv[2]);
        return 1;
    }
    printf("%llu %s %llu %llu\n", (unsigned long long)seed, kinds[kind],
           (unsigned long long)off, (unsigned long long)(kind == 3 ? size - off : len));
    free(buf);
    return 0;
}
