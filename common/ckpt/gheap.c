/* ckpt/gheap.c - check HDF5 global heap collections before libhdf5 reads one.
 *
 * Variable-length strings (the attributes of checkpoints from earlier mb versions, and
 * of files other tools write) live in global heap collections ("GCOL"). libhdf5 1.10
 * walks a collection's objects without checking that each one moves the walk on: a
 * damaged free-space object of size 0 makes H5Aread spin for ever, and an object size
 * past the collection's end makes it read beyond it. Those files have no checksums to
 * catch the damage first, so we walk every collection of the file ourselves, the way
 * libhdf5 will, and call the file damaged where that walk would not end inside it.
 *
 * Layout (HDF5 file format spec, "Global Heap"): "GCOL", version 1, 3 reserved bytes,
 * the collection size (a length); then objects: heap index (2 bytes), reference count
 * (2), reserved (4), object size (a length), the data padded to 8 bytes. Index 0 is the
 * free space, whose size counts from its own header.
 */
#include <string.h>

#include "ckpt/internal.h"
#include "core/fs.h"

#define GCOL_MIN_SIZE 4096 /* libhdf5 never writes a smaller collection */

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Size of lengths from a version 0/1 superblock at the start of the file; 8 otherwise
 * (version 2/3 files have checksummed metadata and what libhdf5 writes there is 8). */
static int length_size(const unsigned char *map, size_t size)
{
    static const unsigned char sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n' };

    if (size >= 16 && memcmp(map, sig, 8) == 0 && map[8] <= 1 &&
        (map[14] == 2 || map[14] == 4 || map[14] == 8))
        return map[14];
    return 8;
}

/* 0 when the walk of the collection at OFF ends inside it, or when OFF does not hold a
 * collection libhdf5 would load (a "GCOL" inside tensor data, say: libhdf5 refuses
 * those itself); -1 when it would not. */
static int walk_collection(const unsigned char *map, size_t file_size, size_t off, int lsz)
{
    size_t hdr = 8 + (size_t)lsz, obj_hdr = 8 + (size_t)lsz;

    if (off + hdr > file_size || map[off + 4] != 1)
        return 0;
    uint64_t coll = get_le(map + off + 8, lsz);
    if (coll < GCOL_MIN_SIZE || coll > file_size - off)
        return 0;
    size_t end = off + (size_t)coll, p = off + hdr;
    while (p < end) {
        if (end - p < obj_hdr) /* a tail too small for a header is free space */
            break;
        unsigned idx = (unsigned)get_le(map + p, 2);
        uint64_t obj = get_le(map + p + 8, lsz);
        uint64_t need = idx ? obj_hdr + ((obj + 7) & ~(uint64_t)7) : obj;
        if (need == 0 || obj > end - p || need > end - p)
            return -1;
        p += (size_t)need;
    }
    return 0;
}

int ckpt_gheap_check(const char *file)
{
    const unsigned char *map;
    size_t size;

    if (mb_fs_map(file, (const void **)&map, &size) != 0)
        return -1;
    int lsz = length_size(map, size), rc = 0;
    const unsigned char *at = map;
    while (rc == 0 && (at = memmem(at, size - (size_t)(at - map), "GCOL", 4)) != NULL) {
        if (walk_collection(map, size, (size_t)(at - map), lsz) != 0)
            rc = mb_err_set(MB_E_PARSE, file, "damaged global heap at byte %zu "
                            "(variable-length strings)", (size_t)(at - map));
        at += 4;
    }
    mb_fs_unmap(map, size);
    return rc;
}
