/* io/safetensors.h - read and write safetensors files and HF model directories.
 *
 * A file is [u64 N][N bytes of JSON header][data] (formats.md 2). Reading maps the file
 * and validates the whole header before anything is returned: names unique, dtypes
 * known, shapes and byte ranges consistent, ranges contiguous from 0 to the end of the
 * file with no gap or overlap. Tensor data is then used in place, through the mapping,
 * so reading a model costs no more memory than the pages being touched.
 *
 * Writing takes the full list of tensors (names, dtypes, shapes) up front, so the header
 * and every offset are known before any data: the data can then be written in any order,
 * in pieces, one tensor at a time. The layout is the reference writer's (huggingface
 * safetensors): data sorted by dtype size descending, then by name; the header compact
 * JSON with "__metadata__" first and the tensors in data order, space-padded to a
 * multiple of 8. The file is written as PATH.tmp and renamed when every byte of every
 * tensor has been written.
 *
 * A model directory holds model.safetensors, or shards named by
 * model.safetensors.index.json ({"metadata": {"total_size": N}, "weight_map": {...}}).
 */
#ifndef MB_IO_SAFETENSORS_H
#define MB_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"

#define MB_ST_MAX_DIM 8

/* Element types of the format. Only F32, F16 and BF16 are model weights for mb; the
 * others are read and written faithfully (sizes in mb_st_dtype_bits). */
enum mb_st_dtype {
    MB_ST_BOOL,
    MB_ST_U8,
    MB_ST_I8,
    MB_ST_I16,
    MB_ST_U16,
    MB_ST_F16,
    MB_ST_BF16,
    MB_ST_I32,
    MB_ST_U32,
    MB_ST_F32,
    MB_ST_F64,
    MB_ST_I64,
    MB_ST_U64,
    MB_ST_DTYPE_COUNT
};

/* "F32" ... ; NULL for an out-of-range value. */
const char *mb_st_dtype_name(enum mb_st_dtype t);
/* Parse a dtype string; -1 if unknown (F8_*, C64, ... are unknown to mb). */
int mb_st_dtype_parse(const char *s, size_t len, enum mb_st_dtype *out);
/* Bytes per element. */
size_t mb_st_dtype_size(enum mb_st_dtype t);

/* One tensor. In a file being read, DATA points into the mapping (read-only) and FILE
 * is the path of the file that holds it. In a writer's spec, DATA and FILE are unused. */
struct mb_st_tensor {
    const char *name;
    enum mb_st_dtype dtype;
    int ndim;                     /* 0 for a scalar */
    int64_t shape[MB_ST_MAX_DIM];
    int64_t numel;                /* product of shape (1 for a scalar) */
    size_t nbytes;
    const void *data;
    const char *file;
};

/* ---- one file ---------------------------------------------------------------------- */

typedef struct mb_st_file mb_st_file;

/* Map and validate PATH. NULL with mb_err naming the file (and the tensor or header
 * offset) when it is not a valid safetensors file: short, header length beyond the
 * file or over 100 MB, header not a JSON object, bad entry, unknown dtype, byte range
 * not matching the shape, ranges with gaps or overlaps or not ending at the file end. */
MB_MUST_CHECK mb_st_file *mb_st_open(const char *path);
void mb_st_close(mb_st_file *f); /* accepts NULL */

int mb_st_count(const mb_st_file *f);
/* The I-th tensor in data (offset) order. */
const struct mb_st_tensor *mb_st_at(const mb_st_file *f, int i);
/* The tensor NAME, or NULL. */
const struct mb_st_tensor *mb_st_find(const mb_st_file *f, const char *name);
/* The value of KEY in the header's "__metadata__", or NULL. */
const char *mb_st_metadata(const mb_st_file *f, const char *key);

/* The caller is done with T's data (of a file being read): its pages leave this
 * process's resident set now (the kernel keeps them in the page cache, and touching the
 * data again reads them back), so streaming a model through memory holds about one
 * tensor at a time. */
void mb_st_release(const struct mb_st_tensor *t);

/* ---- a model directory --------------------------------------------------------------- */

typedef struct mb_st_dir mb_st_dir;

/* Open DIR/model.safetensors.index.json and its shards if the index exists, else
 * DIR/model.safetensors. Validates every shard (mb_st_open) and the index: every entry
 * of weight_map is a tensor of the shard it names, and every tensor of every shard is
 * in weight_map. NULL with mb_err naming the file and tensor. */
MB_MUST_CHECK mb_st_dir *mb_st_dir_open(const char *dir);
void mb_st_dir_close(mb_st_dir *d); /* accepts NULL */

/* Tensors over all shards, in name order. */
int mb_st_dir_count(const mb_st_dir *d);
const struct mb_st_tensor *mb_st_dir_at(const mb_st_dir *d, int i);
const struct mb_st_tensor *mb_st_dir_find(const mb_st_dir *d, const char *name);
/* Number of shard files (1 for model.safetensors), and whether an index was read. */
int mb_st_dir_shards(const mb_st_dir *d);
int mb_st_dir_is_sharded(const mb_st_dir *d);
/* Base name of the shard holding tensor NAME ("model-00001-of-00002.safetensors"),
 * or NULL if there is no such tensor. */
const char *mb_st_dir_shard_of(const mb_st_dir *d, const char *name);

/* ---- writing ------------------------------------------------------------------------- */

typedef struct mb_st_writer mb_st_writer;

/* Start PATH (as PATH.tmp) holding the N tensors of SPEC (name, dtype, ndim, shape;
 * the rest is computed). METADATA_JSON is the text of a JSON object of string values
 * for "__metadata__" (e.g. {"format":"pt"}), or NULL for none. Writes the header.
 * NULL with mb_err on a duplicate name, a bad shape, or an I/O error. */
MB_MUST_CHECK mb_st_writer *mb_st_writer_open(const char *path, const struct mb_st_tensor *spec,
                                              int n, const char *metadata_json);
/* Write LEN bytes of tensor NAME's data starting at byte OFFSET of that tensor. Pieces
 * of a tensor may come in any order; each byte must be written exactly once. -1 with
 * mb_err on an unknown name, a range outside the tensor, or an I/O error. */
MB_MUST_CHECK int mb_st_writer_put(mb_st_writer *w, const char *name, size_t offset,
                                   const void *data, size_t len);
/* Check every byte of every tensor was written, fsync, close and rename PATH.tmp to
 * PATH. On failure (-1 with mb_err naming the first incomplete tensor, or an I/O
 * error) the temporary file is removed. Frees W either way. */
MB_MUST_CHECK int mb_st_writer_close(mb_st_writer *w);
/* Remove the temporary file and free W. Accepts NULL. */
void mb_st_writer_abort(mb_st_writer *w);

/* Write DIR/model.safetensors.index.json (as a temporary, then renamed) for N tensors:
 * NAMES[i] lives in shard file SHARDS[i] (base name); TOTAL_SIZE is the sum of their
 * byte sizes. Same text as transformers 5 writes: 2-space indent, keys sorted, ASCII
 * escapes, a trailing newline, and metadata {"total_parameters", "total_size"}. The
 * shards must already be complete in DIR: total_parameters (the sum of the tensors'
 * element counts) is read from their headers, and each name is checked to be in its
 * shard. -1 with mb_err on a missing shard or tensor, a duplicate name, or I/O. */
MB_MUST_CHECK int mb_st_index_write(const char *dir, const char *const *names,
                                    const char *const *shards, int n, uint64_t total_size);

/* Assign N tensors of NBYTES[i] (in state-dict order) to shards as huggingface_hub does:
 * fill greedily in order, starting a new shard when the next tensor would take the
 * current one over MAX_SHARD_BYTES (a tensor bigger than that gets a shard of its own).
 * SHARD[i] receives 0-based shard numbers; returns the number of shards. */
int mb_st_plan_shards(const size_t *nbytes, int n, uint64_t max_shard_bytes, int *shard);

/* "model-00002-of-00005.safetensors" for shard I (0-based) of N, or "model.safetensors"
 * when N is 1, into BUF[CAP]. */
void mb_st_shard_name(char *buf, size_t cap, int i, int n);

#endif /* MB_IO_SAFETENSORS_H */
