/* ckpt/internal.h - HDF5 helpers shared by the files of ckpt/ only.
 *
 * Every HDF5 failure becomes an mb_err naming the file (and dataset), with the
 * innermost message of HDF5's error stack; HDF5's own printing is switched off.
 */
#ifndef MB_CKPT_INTERNAL_H
#define MB_CKPT_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

#include "ckpt/ckpt.h"
#include "core/defs.h"
#include "core/err.h"
#include "dist/comm.h"

/* Switch off HDF5's automatic error printing (idempotent). */
void ckpt_h5_quiet(void);

/* mb_err_set(code, WHERE, "WHAT: <innermost HDF5 message>"); returns -1. */
MB_PRINTF(3, 4) int ckpt_h5_err(enum mb_errc code, const char *where, const char *fmt, ...);

/* A file-access property list: MPI-IO over MPI_COMM_WORLD when D has MPI, else the
 * default driver. Close with H5Pclose. */
hid_t ckpt_h5_fapl(const struct mb_dist *d);

/* The bf16 type (IEEE 16-bit float, sign 15, exponent 7..14 biased 127, mantissa
 * 0..6), transient; close with H5Tclose. */
hid_t ckpt_h5_bf16_type(void);

/* The IEEE half type (sign 15, exponent 10..14 biased 15, mantissa 0..9), transient;
 * close with H5Tclose. */
hid_t ckpt_h5_f16_type(void);

/* The HDF5 memory type matching the bytes of a stored element of T (the file layout
 * for bf16 and fp16, so nothing is converted); transient for the 16-bit floats, so
 * close it with ckpt_h5_type_close. -1 for OTHER. */
hid_t ckpt_h5_mem_type(enum mb_ckpt_dtype t);
void ckpt_h5_type_close(enum mb_ckpt_dtype t, hid_t type);

/* Classify a dataset's datatype. */
enum mb_ckpt_dtype ckpt_h5_classify(hid_t type);

/* A variable-length UTF-8 string type, for reading the attributes of checkpoints
 * written before 2026-12 (see ckpt_h5_write_attr); close with H5Tclose. */
hid_t ckpt_h5_str_type(void);

/* 0 if every global heap collection of FILE can be walked to its end as libhdf5 walks
 * it; -1 with mb_err naming the byte where one cannot (gheap.c). */
int ckpt_gheap_check(const char *file);

/* Root string attribute NAME = VALUE (NULL: "") of the open FILE (named TMP in errors),
 * a fixed-length UTF-8 string of strlen(VALUE) bytes (one NUL for ""), null-padded: it
 * lives in the checksummed object header, not in the unchecked global heap that
 * variable-length strings use. */
MB_MUST_CHECK int ckpt_h5_write_attr(hid_t file, const char *tmp, const char *name,
                                     const char *value);

/* A checkpoint file being written (wfile.c). */
struct ckpt_wfile {
    const struct mb_dist *d; /* never NULL */
    const char *tmp;         /* its name, borrowed */
    int64_t reserved;        /* rank 0: bytes of the file reserved so far */
    hid_t h5;
};

/* Create TMP (collective under MPI) in HDF5's newest format, so that its metadata
 * carries checksums, and reserve 64 KiB. -1 with mb_err on this rank; the caller
 * agrees with the other ranks and calls ckpt_wfile_close(F, 1) either way. */
MB_MUST_CHECK int ckpt_wfile_create(struct ckpt_wfile *f, const struct mb_dist *d,
                                    const char *tmp);
/* Rank 0 reserves BYTES more of the file before HDF5 writes about that much (a
 * dataset's data and 4 KiB, an attribute's length and 1 KiB). -1 with mb_err "no room
 * for a checkpoint of about N bytes" on a full disk or past the file-size limit;
 * nothing on file systems without fallocate. Not collective: agree afterwards. */
MB_MUST_CHECK int ckpt_wfile_need(struct ckpt_wfile *f, int64_t bytes);
/* Close every object of F and F: flushed (FAILED 0; -1 with mb_err if that fails) or,
 * after a failure, so that nothing HDF5 still holds can fail to be written; unused
 * reserved blocks are given back. Collective. Never leaves the file open in HDF5.
 * Accepts a file that was not created. */
int ckpt_wfile_close(struct ckpt_wfile *f, int failed);

/* Rank 0, once the file is closed: sync TMP, rename it to FINAL, sync the directory,
 * then (LATEST_DIR not NULL) replace LATEST_DIR/latest with FINAL's base name. A crash at
 * any point leaves the previous checkpoint and `latest` intact. */
MB_MUST_CHECK int ckpt_publish(const char *tmp, const char *final, const char *latest_dir);

/* ---- the part of a tensor a rank holds (shard.c) ------------------------------------ */

/* Check T's axis, slabs, local shape and part against its logical shape; -1 with mb_err
 * naming the tensor and WHAT ("weight", "exp_avg"). */
MB_MUST_CHECK int ckpt_shard_check(const struct mb_ckpt_tensor *t, const char *what);
/* Elements of T's local tensor (LOCAL_SHAPE, or SHAPE when it has no slabs). */
int64_t ckpt_local_numel(const struct mb_ckpt_tensor *t);
/* The local elements [*LO, *HI) that T's data holds: its part, or all of them. */
void ckpt_held(const struct mb_ckpt_tensor *t, int64_t *lo, int64_t *hi);
/* Select in FSPACE, a dataspace of T's logical shape, the logical elements of T's local
 * elements [LO, HI); HDF5 walks them in local row-major order (nothing for LO == HI).
 * -1 if HDF5 refuses the selection. */
int ckpt_shard_select(const struct mb_ckpt_tensor *t, int64_t lo, int64_t hi, hid_t fspace);
/* Collective (D may be NULL): from the parts of T[N] that every rank holds, the local
 * elements [LO[i], HI[i]) of T[i] this rank writes, so that each element of the file is
 * written once. Ranks holding the same part split it evenly. -1 with mb_err naming the
 * tensor, the same on every rank, when the ranks' logical shapes differ or their parts
 * overlap or leave a part of the tensor to nobody. */
MB_MUST_CHECK int ckpt_shard_plan(const struct mb_dist *d, const struct mb_ckpt_tensor *t,
                                  int n, int64_t *lo, int64_t *hi);

/* Collective (D may be NULL): COLL[i] = 1 when some rank holds less than all of T[i],
 * whose reads are then collective; 0 when every rank reads all of it, which independent
 * reads do best (MPI-IO's collective read would pass every rank a copy through the
 * aggregators: 3x slower at 4 ranks here). */
void ckpt_shard_collective(const struct mb_dist *d, const struct mb_ckpt_tensor *t, int n,
                           int *coll);

/* A part of an fp32, bf16 or fp16 dataset PATH of reader R as fp32: the logical elements
 * of T's local elements [LO, HI) into OUT[HI - LO], collectively when COLLECTIVE (every
 * rank calls it for PATH) and R was opened under MPI. -1 with mb_err naming the file and
 * the dataset. */
MB_MUST_CHECK int ckpt_reader_read_part(mb_ckpt_reader *r, const char *path,
                                        const struct mb_ckpt_tensor *t, int64_t lo, int64_t hi,
                                        float *out, int collective);

/* 1 if D is not NULL and has MPI. */
static inline int ckpt_mpi(const struct mb_dist *d)
{
    return d && d->mpi;
}

#endif /* MB_CKPT_INTERNAL_H */
