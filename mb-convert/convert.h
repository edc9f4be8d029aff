/* mb-convert/convert.h - the two directions of mb-convert and what they share. */
#ifndef MB_CONVERT_CONVERT_H
#define MB_CONVERT_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/ckpt.h"
#include "core/defs.h"
#include "dist/comm.h"
#include "io/safetensors.h"

struct cv_opts {
    const char *from, *to, *dtype, *max_shard_size;
    char **args;
    int nargs;
    uint64_t max_shard_bytes; /* 0: not given */
    int cast;                 /* --dtype given */
    enum mb_st_dtype out;     /* the --dtype value */
};

/* HF directory SRC -> checkpoint DST (a .h5 file, or a directory given iter_0000000.h5
 * and `latest`). Collective. */
MB_MUST_CHECK int cv_hf_to_h5(const struct mb_dist *d, const struct cv_opts *o, const char *src,
                              const char *dst);
/* Checkpoint SRC (file or directory with `latest`) -> HF directory DST. Collective; rank 0
 * writes. */
MB_MUST_CHECK int cv_h5_to_hf(const struct mb_dist *d, const struct cv_opts *o, const char *src,
                              const char *dst);

/* Adapter-only checkpoint SRC (file or directory with `latest`) -> HF PEFT adapter
 * directory DST (adapter_config.json, adapter_model.safetensors). Collective; rank 0
 * writes. */
MB_MUST_CHECK int cv_h5_to_peft(const struct mb_dist *d, const struct cv_opts *o,
                                const char *src, const char *dst);

/* The texts of tokenizer_config.json (tokenizer_class, bos/eos/pad tokens,
 * model_max_length) and generation_config.json (bos/eos/pad ids) for the tokenizer.json
 * in DIR (malloc'd). -1 with mb_err when it does not load. */
MB_MUST_CHECK int cv_tok_configs(const char *dir, int64_t model_max_length,
                                 char **tokenizer_config, char **generation_config);

/* The checkpoint SRC (a file, or a directory with `latest`) as *FILE (malloc'd) and an
 * open reader *R (single process). -1 with mb_err naming SRC (the caller frees *FILE). */
MB_MUST_CHECK int cv_open_ckpt(const char *src, char **file, mb_ckpt_reader **r);

/* F32, BF16, F16 <-> the checkpoint's element types; -1 / MB_CKPT_OTHER otherwise. */
enum mb_ckpt_dtype cv_ckpt_dtype(enum mb_st_dtype t);
int cv_st_dtype(enum mb_ckpt_dtype t, enum mb_st_dtype *out);
/* Convert N floats from FROM to TO (F32, BF16, F16; equal types copy). */
void cv_cast(const void *src, enum mb_st_dtype from, void *dst, enum mb_st_dtype to, size_t n);
/* "F32" when all N types are F32 ..., "mixed" when they differ. */
const char *cv_dtypes_name(const enum mb_st_dtype *t, int n);
/* "bfloat16" ... for config.json. */
const char *cv_torch_dtype(enum mb_st_dtype t);

#endif /* MB_CONVERT_CONVERT_H */
