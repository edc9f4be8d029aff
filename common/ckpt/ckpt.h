/* ckpt/ckpt.h - parallel-HDF5 checkpoints: save, find the newest, load, inspect.
 *
 * A checkpoint is one HDF5 file DIR/iter_%07d.h5 (DESIGN.md §2, style B.7):
 *
 *   /model/<path>          every parameter as its whole logical tensor, fp32 or bf16;
 *                          the dotted name "decoder.layers.mlp.linear_fc1.weight" is the
 *                          path decoder/layers/mlp/linear_fc1/weight; layers are stacked
 *                          on the first axis by the caller
 *   /optim/master/<path>   fp32 master weights, only when /model is bf16 (with an fp32
 *                          /model the model IS the master copy, and this group is absent)
 *   /optim/exp_avg/<path>, /optim/exp_avg_sq/<path>   Adam moments (fp32)
 *   /optim/step            int64 scalar
 *   /train/iteration, /train/consumed_train_samples, /train/consumed_valid_samples
 *                          int64 scalars
 *   /train/rng_state, /train/data_state   opaque byte blobs (uint8 [n], n may be 0)
 *   /bf16                  committed datatype: IEEE 16-bit float, 1-8-7 (present always)
 *   attributes on /        model_config (JSON), recipe (JSON), tokenizer, mb_version,
 *                          format = "mb-ckpt-1" (fixed-length UTF-8 strings, null-padded;
 *                          files written before 2026-12 have variable-length ones, still read)
 *
 * An adapter-only checkpoint (LoRA/DoRA, peft/peft.h) has no /model group; instead
 *
 *   /adapter/<path>        every adapter tensor, fp32, stacked over the layers:
 *                          <module>.adapter.linear_in.weight [L, r, in] (A),
 *                          <module>.adapter.linear_out.weight [L, out, r] (B; rows in the
 *                          base weight's fused order), DoRA <module>.adapter.weight_magnitude
 *                          [L, out], for <module> decoder.layers.self_attention.linear_qkv,
 *                          .linear_proj, decoder.layers.mlp.linear_fc1, .linear_fc2 (only
 *                          the targeted ones)
 *   /optim/exp_avg/<path>, /optim/exp_avg_sq/<path>   the adapters' moments only
 *   attributes on /        as above (model_config is the base's), plus peft (JSON:
 *                          {"peft": "lora"|"dora", "dim", "alpha", "dropout",
 *                          "target_modules": [...]}) and base_checkpoint (the absolute
 *                          path of the base checkpoint file; "" when the base was the
 *                          seeded initialisation)
 *
 * Files are written in HDF5's newest format (1.10: superblock 3, object headers 2), so
 * every piece of metadata carries a checksum and damage is found when it is read.
 *
 * /optim is present only when optimizer state was saved. Each rank passes its part of
 * every tensor (struct mb_ckpt_tensor: the whole tensor, its tensor-parallel slabs, its
 * pipeline stage's layers of those, a run of them, as a distributed optimizer holds the
 * moments, or nothing: another stage's tensor) and under MPI writes, with
 * collective MPI-IO, only the logical hyperslabs of that part; ranks holding the same
 * part (data-parallel replicas, tensors every TP rank holds whole) split it evenly, so
 * every element is written once, and the parts must cover each tensor exactly. The file
 * is the same whatever the layout (h5ls shows the same names and shapes). Without MPI it
 * is written by one process with HDF5's default driver. Scalars, blobs and attributes
 * are rank 0's values. The file is written as iter_%07d.h5.tmp, synced, renamed, and
 * only then is DIR/latest replaced (it holds the file name and a newline), so a crash
 * mid-save leaves the previous checkpoint and `latest` intact. A load reads each rank's
 * own part, so a file saved under any layout loads under any other (the layout saved is
 * recorded, struct mb_ckpt_layout, and never required).
 *
 * Not here: the parameter list of a model and its shards (nn/), checkpoint retention.
 */
#ifndef MB_CKPT_CKPT_H
#define MB_CKPT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/defs.h"
#include "dist/comm.h"
#include "nn/params.h"

#define MB_CKPT_MAX_DIM 4
#define MB_CKPT_FORMAT "mb-ckpt-1"
#define MB_CKPT_MAX_ITERATION 9999999 /* iter_%07d.h5 */

/* Element type of a stored dataset. */
enum mb_ckpt_dtype {
    MB_CKPT_F32 = 0,
    MB_CKPT_BF16,
    MB_CKPT_I64,
    MB_CKPT_U8,
    MB_CKPT_F16,   /* IEEE half; HDF5's 16-bit float layout, 1-5-10 */
    MB_CKPT_OTHER, /* anything else: refused by the float readers */
};

/* A logical tensor, or this rank's part of it, in host memory, row-major fp32. NDIM is
 * 1..MB_CKPT_MAX_DIM. With NSLAB and NLAYER_SLAB 0 DATA is the whole tensor (SHAPE).
 * Otherwise DATA has LOCAL_SHAPE, cut from the logical tensor along AXIS in NSLAB blocks
 * (struct mb_param_slab: local indices [local_start, +count) on AXIS are the logical
 * tensor's [global_start, +count)) and along axis 0 in NLAYER_SLAB blocks (a pipeline
 * stage's layers, one block per model chunk; AXIS is then another axis); every other
 * axis is whole. */
struct mb_ckpt_tensor {
    const char *name; /* dotted: "decoder.layers.self_attention.linear_qkv.weight" */
    int ndim;
    int64_t shape[MB_CKPT_MAX_DIM]; /* the logical tensor, as stored */
    float *data;
    int axis;
    int nslab;
    struct mb_param_slab slab[MB_PARAM_MAX_SLABS];
    int64_t local_shape[MB_CKPT_MAX_DIM];
    /* A part of the local tensor only (a distributed optimizer's shard of a flat buffer,
     * which may begin and end mid-row): with PART set, DATA holds just the elements
     * [part_start, part_start + part_count) of the local tensor in row-major order
     * (part_count may be 0: nothing of this tensor). */
    int part;
    int64_t part_start, part_count;
    /* Pipeline parallelism: the layer slabs on axis 0 (nn/params.h layer_slab). */
    int nlayer_slab;
    struct mb_param_slab layer_slab[MB_STAGE_MAX_CHUNKS];
    /* A copy of a part that another rank holds too, with the same values (the last
     * pipeline stage's tied word embedding): a load reads it, a save never writes it
     * (the holder does). */
    int copy;
    /* The group of the weights: NULL for "/model" (or /optim/master), "/adapter" for
     * the adapters of an adapter-only checkpoint. The moments are always under
     * /optim/exp_avg and /optim/exp_avg_sq. */
    const char *group;
};

/* The parallel layout a checkpoint was saved with, as the root attributes
 * tensor_model_parallel_size, context_parallel_size, data_parallel_size,
 * pipeline_model_parallel_size (decimal strings) and use_distributed_optimizer ("true"
 * or "false"). TP 0: not recorded (files written before 2026-12, mb-convert's). A load
 * never requires it to match the layout that loads. */
struct mb_ckpt_layout {
    int tp, cp, dp, pp;
    int distributed_optimizer;
};

/* An item carried through from checkpoint to checkpoint unchanged: the HF side of a
 * converted model (formats of mb-convert: the hf_* root attributes and the /hf/files/...
 * blobs), so a model trained from a converted checkpoint converts back with its config
 * text and tokenizer files. NAME is a root attribute name (a string VALUE of LEN bytes),
 * or a dataset path beginning with '/' (a uint8 blob). */
struct mb_ckpt_extra {
    char *name;
    char *value;
    size_t len;
};

/* The parameters of table P (nn/params.h) as tensors over the flat buffer BASE, with
 * their names, logical shapes and cuts: a malloc'd array, for mb_ckpt_save/load, in the
 * order of WHOLE, the table of the whole model with P's tensor-parallel rank and
 * adapters (mb_ckpt_whole_table), of WHOLE->count tensors. Every rank of a pipeline
 * then passes the same list: a parameter P's stage does not hold is an empty part
 * (nothing of it saved or loaded here), the last stage's copy of a tied embedding a
 * copy (loaded, written by the first stage). WHOLE NULL: P is the whole model (P->count
 * tensors). */
struct mb_ckpt_tensor *mb_ckpt_tensors_of(const struct mb_param_table *p,
                                          const struct mb_param_table *whole, float *base);

/* Into WHOLE, the table of the whole model (no pipeline) of configuration CFG with the
 * tensor-parallel size and rank of P and the adapters of PC (NULL or kind NONE: none). */
void mb_ckpt_whole_table(struct mb_param_table *whole, const struct mb_param_table *p,
                         const struct mb_model_config *cfg, const struct mb_peft_config *pc);

/* Cut the N tensors T of table P (made by mb_ckpt_tensors_of) to the run [LO, HI) of the
 * flat buffer in P's layout, whose elements are at SHARD (SHARD[0] is element LO): a
 * distributed optimizer's shard of the moments. Each tensor becomes the part of its
 * local elements inside the run, perhaps none (always none for a tensor P lacks); a
 * save or load then writes or reads just that, and no rank needs the whole moments. */
void mb_ckpt_tensors_part(struct mb_ckpt_tensor *t, int n, const struct mb_param_table *p,
                          int64_t lo, int64_t hi, float *shard);

/* Everything besides tensors. For a save the pointers are borrowed (NULL strings are
 * stored as ""); after mb_ckpt_load they are malloc'd and freed by
 * mb_ckpt_state_release(). mb_version is ignored on save (the library's is stored). */
struct mb_ckpt_state {
    int64_t iteration;
    int64_t consumed_train_samples;
    int64_t consumed_valid_samples;
    int64_t optim_step; /* /optim/step; only stored and loaded with optimizer state */
    const void *rng_state;
    size_t rng_state_len;
    const void *data_state;
    size_t data_state_len;
    const char *model_config_json;
    const char *recipe_json;
    const char *tokenizer;
    const char *mb_version;
    const struct mb_ckpt_extra *extra; /* stored too on save (N_EXTRA items); not loaded */
    int n_extra;
    struct mb_ckpt_layout layout; /* stored when layout.tp > 0; loaded (tp 0: not recorded) */
};
#define MB_CKPT_STATE_INIT { 0 }

/* Free the strings and blobs of a state filled by mb_ckpt_load() and zero it. Never
 * call it on a state whose pointers the caller owns. Accepts a zeroed state. */
void mb_ckpt_state_release(struct mb_ckpt_state *st);

/* Save a checkpoint of iteration st->iteration into DIR (created if missing) and make
 * DIR/latest name it. Collective: every rank of D calls it with the same tensor list
 * (names and logical shapes), each with its own part of every tensor; D may be NULL for
 * a single process. MODEL[N] are the parameters (fp32, the master copy); EXP_AVG[N] and
 * EXP_AVG_SQ[N] are their Adam moments with the same logical shapes, each with its own
 * part (their names are not used), or both NULL to store no optimizer state. The parts
 * of the ranks must cover every tensor without overlapping (ranks with identical parts
 * are replicas), else -1 on every rank naming the tensor.
 * MODEL_DTYPE is MB_CKPT_F32 or MB_CKPT_BF16 (round to nearest even; with optimizer
 * state the exact fp32 values also go to /optim/master). On success returns 0 on every
 * rank and, if SAVED_PATH is not NULL, sets it to the malloc'd path of the new file.
 * On failure returns -1 on every rank with mb_err set (a rank that did not fail itself
 * says which step another rank failed in), the temporary file is removed and
 * DIR/latest is unchanged. Rank 0 first reserves the file's estimated size, so a full
 * disk is found before HDF5 writes anything. */
MB_MUST_CHECK int mb_ckpt_save(const struct mb_dist *d, const char *dir,
                               const struct mb_ckpt_tensor *model, int n,
                               const struct mb_ckpt_tensor *exp_avg,
                               const struct mb_ckpt_tensor *exp_avg_sq,
                               enum mb_ckpt_dtype model_dtype, const struct mb_ckpt_state *st,
                               char **saved_path);

/* Turn a `checkpoint.load` value into a checkpoint file. A directory is resolved
 * through DIR/latest; a directory without `latest`, or a path that does not exist and
 * does not end in ".h5", gives 0 with *FILE = NULL (start from scratch; the caller
 * says so). Anything else is taken as a checkpoint file. Returns 0 with *FILE malloc'd
 * (or NULL), or -1 with mb_err set: unreadable or empty `latest`, or `latest` naming a
 * missing file. */
MB_MUST_CHECK int mb_ckpt_resolve(const char *load, char **file);

/* Load FILE. Collective when D has MPI (every rank reads the logical hyperslabs of its
 * own part of every tensor: with collective MPI-IO where the ranks' parts differ, with
 * independent reads where every rank holds all of it); D may be NULL. For each MODEL[i] the caller
 * sets name, ndim, the logical shape, its part (slabs, local shape, run; all zero for
 * the whole tensor) and data (room for that part); the values come from /optim/master
 * if present, else from /model (bf16 widened to fp32). EXP_AVG and EXP_AVG_SQ, if not
 * NULL, have N entries whose data pointers receive their parts of the moments of
 * MODEL[i] (their name and shape are not used: MODEL[i]'s are); a file without
 * optimizer state is then an error. ST may be NULL; otherwise it is
 * filled (see mb_ckpt_state_release). Returns 0, or -1 with mb_err naming the file and
 * the tensor: missing tensor, shape differing from the expected one (both printed),
 * dtype other than fp32/bf16, counters out of range (iteration 0 to
 * MB_CKPT_MAX_ITERATION, the others not negative), or a damaged file. */
MB_MUST_CHECK int mb_ckpt_load(const struct mb_dist *d, const char *file,
                               struct mb_ckpt_tensor *model, int n,
                               struct mb_ckpt_tensor *exp_avg, struct mb_ckpt_tensor *exp_avg_sq,
                               struct mb_ckpt_state *st);

/* "decoder.layers.mlp.linear_fc1.weight" under GROUP ("/model", "/optim/exp_avg")
 * -> "/model/decoder/layers/mlp/linear_fc1/weight", malloc'd. Returns NULL with mb_err
 * set if NAME is not a valid dotted name (empty parts, characters outside
 * [A-Za-z0-9_-]). */
char *mb_ckpt_dataset_path(const char *group, const char *name);

/* ---- reading without knowing the model (mb-ckpt, mb-convert) --------------------- */

typedef struct mb_ckpt_reader mb_ckpt_reader;

/* One dataset of an open checkpoint. */
struct mb_ckpt_info {
    const char *path; /* "/model/decoder/final_layernorm/weight" */
    enum mb_ckpt_dtype dtype;
    int ndim;         /* 0 for a scalar */
    int64_t shape[MB_CKPT_MAX_DIM];
    int64_t numel;
};

/* Open FILE for reading and list its datasets. Collective when D has MPI; D may be
 * NULL (a single process, HDF5's default driver). Returns the reader, or NULL with
 * mb_err naming the file (not HDF5, truncated, or not an mb checkpoint). */
MB_MUST_CHECK mb_ckpt_reader *mb_ckpt_reader_open(const struct mb_dist *d, const char *file);

/* Number of datasets, and the I-th in path order (0 <= I < count). */
int mb_ckpt_reader_count(const mb_ckpt_reader *r);
const struct mb_ckpt_info *mb_ckpt_reader_info(const mb_ckpt_reader *r, int i);
/* The dataset at PATH, or NULL if there is none. */
const struct mb_ckpt_info *mb_ckpt_reader_find(const mb_ckpt_reader *r, const char *path);

/* Read the whole fp32 or bf16 dataset PATH as fp32 into OUT[COUNT]; COUNT must equal
 * its element count. Returns 0, or -1 with mb_err naming the file and the dataset. */
MB_MUST_CHECK int mb_ckpt_reader_read_f32(mb_ckpt_reader *r, const char *path, float *out,
                                          int64_t count);
/* Read the int64 scalar PATH. */
MB_MUST_CHECK int mb_ckpt_reader_read_i64(mb_ckpt_reader *r, const char *path, int64_t *out);
/* Read the uint8 blob PATH into a malloc'd buffer (*DATA is NULL when *LEN is 0). */
MB_MUST_CHECK int mb_ckpt_reader_read_blob(mb_ckpt_reader *r, const char *path, void **data,
                                           size_t *len);
/* 1 if the root has an attribute NAME, 0 if not (or unreadable). */
int mb_ckpt_reader_has_attr(mb_ckpt_reader *r, const char *name);
/* Read the root string attribute NAME into a malloc'd string. Returns 0, or -1 with
 * mb_err set if it is missing or not a string. */
MB_MUST_CHECK int mb_ckpt_reader_attr(mb_ckpt_reader *r, const char *name, char **value);

/* The layout R was saved with (struct mb_ckpt_layout; all zero when not recorded).
 * -1 with mb_err naming the file and the attribute when one holds something else. */
MB_MUST_CHECK int mb_ckpt_reader_layout(mb_ckpt_reader *r, struct mb_ckpt_layout *out);

/* The items of R to carry into later checkpoints: root attributes named hf_* and the
 * datasets under /hf (malloc'd array in *OUT of *N; free with mb_ckpt_extras_free).
 * -1 with mb_err naming the file if one cannot be read. */
MB_MUST_CHECK int mb_ckpt_reader_extras(mb_ckpt_reader *r, struct mb_ckpt_extra **out, int *n);
void mb_ckpt_extras_free(struct mb_ckpt_extra *x, int n);

/* Close the file and free R. Accepts NULL. */
void mb_ckpt_reader_close(mb_ckpt_reader *r);

/* ---- adapter-only checkpoints (LoRA/DoRA) ------------------------------------------ */

/* The adapters R holds: its peft attribute into *PC (kind MB_PEFT_NONE, *BASE NULL, when
 * it has none) and its base_checkpoint into *BASE (malloc'd; "" when the base was the
 * seeded initialisation). -1 with mb_err naming the file when one cannot be read. */
MB_MUST_CHECK int mb_ckpt_reader_peft(mb_ckpt_reader *r, const char *file,
                                      struct mb_peft_config *pc, char **base);

struct mb_model;
/* Load the weights of checkpoint FILE into M (made for its model_config; single
 * process), one tensor at a time through a host buffer the size of the largest: every
 * parameter from /model, or, when M carries adapters (made with the file's peft
 * attribute), the frozen base from BASE (the file's base_checkpoint when NULL) and the
 * adapters from FILE's /adapter. A model without gradients (for generation) then has
 * its DoRA norms computed once (nn/model.h mb_model_fix_norms). -1 with mb_err naming
 * the file and tensor (a base that is missing or of another shape included). */
MB_MUST_CHECK int mb_ckpt_load_model(const char *file, const char *base, struct mb_model *m);

/* ---- writing tensor by tensor (mb-convert, mb-ckpt) -------------------------------- */

typedef struct mb_ckpt_writer mb_ckpt_writer;

/* Start the checkpoint FILE, written as FILE.tmp. Collective when D has MPI (D may be
 * NULL). Returns NULL with mb_err naming the file. The root attribute format and
 * mb_version are set here; the committed /bf16 type is created. */
MB_MUST_CHECK mb_ckpt_writer *mb_ckpt_writer_open(const struct mb_dist *d, const char *file);
/* Create dataset PATH ("/model/decoder/layers/mlp/linear_fc1/weight"; groups are made
 * as needed) of element type DTYPE (F32, BF16, F16, I64 or U8) and SHAPE[NDIM] (NDIM 0:
 * a scalar). Collective: every rank passes the same arguments. Room for its data is
 * reserved in the file first, so a full disk fails here ("no room for a checkpoint of
 * about N bytes") rather than in a write; the caller then aborts. */
MB_MUST_CHECK int mb_ckpt_writer_create(mb_ckpt_writer *w, const char *path,
                                        enum mb_ckpt_dtype dtype, int ndim,
                                        const int64_t *shape);
/* Write rows [ROW0, ROW0 + NROWS) of the first axis of PATH from DATA, which holds
 * those rows row-major in the dataset's own element type (bf16/f16 as their 16-bit
 * patterns). Collective: every rank calls it the same number of times for the same
 * PATH, each with its own rows (NROWS may be 0, DATA then unused). A scalar is written
 * with ROW0 = 0, NROWS = 1. */
MB_MUST_CHECK int mb_ckpt_writer_write_rows(mb_ckpt_writer *w, const char *path, int64_t row0,
                                            int64_t nrows, const void *data);
/* Root string attribute NAME = VALUE (rank 0's value is stored). Collective. */
MB_MUST_CHECK int mb_ckpt_writer_attr(mb_ckpt_writer *w, const char *name, const char *value);
/* Close, sync and rename FILE.tmp to FILE; then, if LATEST_DIR is not NULL, make
 * LATEST_DIR/latest name it. Collective. On failure the temporary is removed. Frees W
 * either way. */
MB_MUST_CHECK int mb_ckpt_writer_commit(mb_ckpt_writer *w, const char *latest_dir);
/* Close and remove the temporary file; free W. Collective. Accepts NULL. After any
 * failure (a full disk included) HDF5 is left with nothing of the file to write, so
 * the process exits cleanly. */
void mb_ckpt_writer_abort(mb_ckpt_writer *w);

/* Read rows [ROW0, ROW0 + NROWS) of the first axis of dataset PATH into OUT, in the
 * dataset's own element type (the raw 2- or 4-byte patterns: no conversion). Every
 * rank reads independently. -1 with mb_err naming the file and dataset. */
MB_MUST_CHECK int mb_ckpt_reader_read_rows(mb_ckpt_reader *r, const char *path, int64_t row0,
                                           int64_t nrows, void *out);

/* Rows [ROW0, ROW0 + NROWS) of dataset PATH in place, through a read-only mapping of the
 * file: the stored bytes, as mb_ckpt_reader_read_rows would copy them, valid until the
 * reader is closed. NULL when the dataset is not stored contiguously (or the file cannot
 * be mapped): use mb_ckpt_reader_read_rows then. mb_ckpt_reader_unmap_rows says the
 * caller is done with LEN bytes at DATA (their pages leave the resident set). */
const void *mb_ckpt_reader_map_rows(mb_ckpt_reader *r, const char *path, int64_t row0,
                                    int64_t nrows);
void mb_ckpt_reader_unmap_rows(mb_ckpt_reader *r, const void *data, size_t len);

/* bf16 bits of X rounded to nearest even (NaN stays NaN), and the exact widening. */
uint16_t mb_ckpt_bf16_from_f32(float x);
float mb_ckpt_f32_from_bf16(uint16_t h);

/* IEEE half bits of X rounded to nearest even, and the exact widening. */
uint16_t mb_ckpt_f16_from_f32(float x);
float mb_ckpt_f32_from_f16(uint16_t h);
/* Bytes per element: 4, 2, 8, 1, 2; 0 for OTHER. */
size_t mb_ckpt_dtype_size(enum mb_ckpt_dtype t);

/* "[d0, d1, ...]" of SHAPE[NDIM] into BUF[CAP] ("[]" for a scalar), for messages. */
void mb_ckpt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

/* The HF tokenizer files R carries as /hf/files/ blobs (tokenizer.json, and
 * tokenizer_config.json when present) written into a new temporary directory named after
 * TOOL, for the tokenizer loader: its path in *DIR (malloc'd), or *DIR NULL when R carries
 * no tokenizer.json. -1 with mb_err naming the file on failure (ckpt/hftok.c). */
MB_MUST_CHECK int mb_ckpt_hf_tokenizer_extract(mb_ckpt_reader *r, const char *tool, char **dir);
/* Remove DIR and the files mb_ckpt_hf_tokenizer_extract put there, and free DIR. */
void mb_ckpt_hf_tokenizer_remove(char *dir);

/* "fp32", "bf16", "int64", "uint8", "fp16", "other". */
const char *mb_ckpt_dtype_name(enum mb_ckpt_dtype t);

#endif /* MB_CKPT_CKPT_H */
