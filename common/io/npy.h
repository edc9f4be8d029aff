/* io/npy.h - numpy .npy files: C-order arrays of little-endian integers and floats.
 *
 * Writing produces format version 1.0 byte for byte as numpy.save does (same header text,
 * growth spaces and 64-byte alignment), through an mb_outfile, so the file appears under
 * its name only when complete. Reading accepts versions 1.0, 2.0 and 3.0 with a
 * little-endian (or one-byte) descr listed in enum mb_npy_dtype, C order, and a data
 * section of exactly the size the shape says; anything else is refused with the file
 * named. A read maps the file; the array is valid until mb_npy_free.
 * Not handled: Fortran order, big-endian, structured or object arrays, pickles.
 */
#ifndef MB_IO_NPY_H
#define MB_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

enum mb_npy_dtype {
    MB_NPY_U1, /* |u1 */
    MB_NPY_I1, /* |i1 */
    MB_NPY_I2, /* <i2 */
    MB_NPY_U2, /* <u2 */
    MB_NPY_I4, /* <i4 */
    MB_NPY_U4, /* <u4 */
    MB_NPY_I8, /* <i8 */
    MB_NPY_U8, /* <u8 */
    MB_NPY_F4, /* <f4 */
    MB_NPY_F8, /* <f8 */
};

#define MB_NPY_MAX_DIM 8

/* An array read from a file. DATA is aligned to the element size. */
struct mb_npy {
    enum mb_npy_dtype dtype;
    int ndim;
    int64_t shape[MB_NPY_MAX_DIM];
    int64_t count;       /* product of the shape */
    const void *data;    /* [count] elements of dtype */
    /* private: what mb_npy_free releases */
    const void *map;
    size_t map_size;
    void *copy;
};

/* Element size in bytes of DTYPE. */
size_t mb_npy_dtype_size(enum mb_npy_dtype dtype);
/* numpy's descr string of DTYPE: "<i4", "|u1" ... */
const char *mb_npy_descr(enum mb_npy_dtype dtype);

/* Write the NDIM-dimensional array DATA (C order, SHAPE[NDIM]) to PATH atomically.
 * Returns 0, or -1 with mb_err naming PATH. */
MB_MUST_CHECK int mb_npy_write(const char *path, enum mb_npy_dtype dtype, int ndim,
                               const int64_t *shape, const void *data);

/* Read PATH into *OUT. Returns 0, or -1 with mb_err naming PATH and what is wrong
 * (bad magic, header syntax, unsupported descr, Fortran order, size mismatch). */
MB_MUST_CHECK int mb_npy_read(const char *path, struct mb_npy *out);

/* Release what mb_npy_read holds; accepts a zeroed struct. */
void mb_npy_free(struct mb_npy *a);

#endif /* MB_IO_NPY_H */
