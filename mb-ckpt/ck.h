/* mb-ckpt/ck.h - what the subcommands of mb-ckpt share.
 *
 * Opening a checkpoint given as a file or as a directory with `latest`, optional root
 * attributes, the model config a checkpoint stores and the parameter list it implies,
 * reading one dataset whole (as fp32, or as its stored bytes), and shape printing.
 * Each subcommand lives in its own file as cmd_<name>(); main.c only dispatches.
 * Everything here is single-process: mb-ckpt reads with HDF5's default driver.
 */
#ifndef MB_CKPT_TOOL_CK_H
#define MB_CKPT_TOOL_CK_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/ckpt.h"
#include "core/defs.h"
#include "core/str.h"
#include "nn/config.h"

/* A subcommand: ARGV[0] is its name; returns 0, -1 (mb_err set) or MB_CLI_EXIT. */
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_average(int argc, char **argv);
int cmd_convert_dtype(int argc, char **argv);
int cmd_merge_adapter(int argc, char **argv);

/* Resolve ARG (a checkpoint file, or a directory through its `latest`) and open it.
 * Returns the reader with *FILE set to the malloc'd file name, or NULL with mb_err. */
MB_MUST_CHECK mb_ckpt_reader *ck_open(const char *arg, char **file);
/* ck_open for a command that works on whole models (WHAT, e.g. "average"): an
 * adapter-only checkpoint (a peft attribute) is refused with mb_err naming it. */
MB_MUST_CHECK mb_ckpt_reader *ck_open_whole(const char *arg, char **file, const char *what);

/* Root string attribute NAME: 1 with *VALUE malloc'd, or 0 with *VALUE = NULL when the
 * file has no such attribute (mb_err cleared). */
int ck_attr_opt(mb_ckpt_reader *r, const char *name, char **value);

/* The stored model_config attribute of R, parsed and validated into CFG. */
MB_MUST_CHECK int ck_model_config(mb_ckpt_reader *r, const char *file,
                                  struct mb_model_config *cfg);

/* Append `"KEY": "escaped S"` (or `"KEY": null` when S is NULL) to B. */
void ck_json_str(struct mb_buf *b, const char *key, const char *s);

/* 1 for fp32, bf16 and fp16 datasets. */
int ck_is_float(enum mb_ckpt_dtype t);

/* 1 if PATH is GROUP itself or lies under it ("/model/x" is under "/model"). */
int ck_under(const char *path, const char *group);

/* The whole float dataset IT as fp32 (exact widening), malloc'd (at least one float),
 * or NULL with mb_err naming the file and dataset. */
float *ck_read_f32(mb_ckpt_reader *r, const struct mb_ckpt_info *it);

/* The stored bytes of dataset IT (little-endian elements, numel * element size), malloc'd
 * (at least one byte); *LEN gets the byte count. NULL with mb_err. */
void *ck_read_raw(mb_ckpt_reader *r, const struct mb_ckpt_info *it, size_t *len);

/* ---- writing (average, convert-dtype) ---- */

/* Create dataset PATH of W as DTYPE and SHAPE[NDIM] and write all of DATA (the stored
 * element type, row-major) in one call. */
MB_MUST_CHECK int ck_write_whole(mb_ckpt_writer *w, const char *path, enum mb_ckpt_dtype dtype,
                                 int ndim, const int64_t *shape, const void *data);

/* Copy dataset IT of R into W byte for byte. */
MB_MUST_CHECK int ck_copy_dataset(mb_ckpt_reader *r, mb_ckpt_writer *w,
                                  const struct mb_ckpt_info *it);

/* Copy the root attributes of R that describe the model and its origin (model_config,
 * recipe, tokenizer and the hf_* attributes); format and mb_version are the writer's. */
MB_MUST_CHECK int ck_copy_attrs(mb_ckpt_reader *r, mb_ckpt_writer *w);

/* X[N] rounded to nearest even into DTYPE (fp32, bf16 or fp16), malloc'd. */
void *ck_narrow(const float *x, int64_t n, enum mb_ckpt_dtype dtype);

/* ---- verify's findings, for mb checkpoints (verify.c) and HF directories (hf.c) ---- */

struct ck_verify {
    int problems;
    int n;              /* datasets or tensors, in name order (strcmp) */
    const char **names; /* [n], borrowed */
    uint32_t *crc;      /* [n]: CRC-32C of each one's stored bytes */
};

/* Print "problem: WHERE: WHAT" on stdout and count it. */
MB_PRINTF(3, 4) void ck_problem(struct ck_verify *v, const char *where, const char *fmt, ...);

/* A problem naming NAME if any of the NUMEL elements of RAW (stored as fp32, bf16 or
 * fp16, little-endian, SHAPE[NDIM]) is not finite: how many, and the first one's index. */
void ck_check_finite(struct ck_verify *v, const char *name, enum mb_ckpt_dtype t,
                     const void *raw, int ndim, const int64_t *shape, int64_t numel);

/* The end of verify for WHAT (a file or directory): problems for every mismatch with
 * the checksum file CHECK (if not NULL); then -1 with mb_err when there are problems,
 * else the checksum file WRITE (if not NULL) and the "verified:" line. */
MB_MUST_CHECK int ck_verify_finish(struct ck_verify *v, const char *what, const char *check,
                                   const char *write);

/* ---- HuggingFace model directories (hf.c) ---- */

/* 1 if ARG is a directory with config.json and without `latest`. */
int ck_is_hf_dir(const char *arg);
MB_MUST_CHECK int ck_info_hf(const char *dir, int json);
MB_MUST_CHECK int ck_verify_hf(const char *dir, const char *check, const char *write);

/* The multi-index of flat element I of SHAPE, "[1, 0, 5]", into BUF[N]. */
void ck_index_str(char *buf, size_t n, int ndim, const int64_t *shape, int64_t i);

#endif /* MB_CKPT_TOOL_CK_H */
