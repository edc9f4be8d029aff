/* data/gpt_index.h - Megatron GPTDataset index arithmetic: splits, document, sample and
 * shuffle indices, blending indices (formats.md 1.5-1.7).
 *
 * Everything here is pure computation on arrays, reproducing megatron-core 0.16.1
 * (gpt_dataset.py, helpers.cpp, blended_megatron_dataset_builder.py) bit for bit; files,
 * caching and token reading live in data/gpt_dataset.c. add_extra_token_to_sequence is
 * always 1 and drop_last_partial_sequence always true (Megatron's defaults).
 */
#ifndef MB_DATA_GPT_INDEX_H
#define MB_DATA_GPT_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"

enum { MB_SPLIT_TRAIN, MB_SPLIT_VALID, MB_SPLIT_TEST, MB_SPLIT_COUNT };

/* "train", "valid", "test" (Megatron's Split names). */
const char *mb_split_name(int split);

/* A parsed split string: normalised ratios and the book-ends of each split. */
struct mb_split {
    double ratio[MB_SPLIT_COUNT];
    bool present[MB_SPLIT_COUNT]; /* false where Megatron's split_matrix entry is None */
    double lo[MB_SPLIT_COUNT], hi[MB_SPLIT_COUNT];
};

/* parse_and_normalize_split + convert_split_vector_to_split_matrix: every "[.0-9]+" in
 * TEXT, padded with zeros to three, divided by their sum. Returns 0, or -1 with mb_err
 * (WHERE names the setting) when there are more than three numbers, one is malformed,
 * or they sum to zero. */
MB_MUST_CHECK int mb_split_parse(struct mb_split *s, const char *text, const char *where);

/* Sequences [*BEG, *END) of N that split I exposes: round(lo*N), round(hi*N) with
 * Python's round-half-to-even. Empty when the split is absent. */
void mb_split_range(const struct mb_split *s, int split, int64_t n, int64_t *beg,
                    int64_t *end);

/* The sizes GPTDataset derives before building anything. */
struct mb_gpt_plan {
    int64_t tokens_per_epoch;
    int64_t num_epochs;
    int64_t num_samples;     /* rows of the sample index minus one */
    int64_t sans_final;      /* samples before the final epoch (when separated) */
    bool separate_final;
    bool sample_i64;         /* sample index dtype: int64 instead of int32 */
    bool shuffle_i64;        /* shuffle index dtype: int64 instead of uint32 */
};

/* Plan a GPTDataset over sequences [BEG, END) with lengths SIZES[NSEQ], drawing
 * REQUESTED samples (< 0: one epoch) of SEQ_LEN tokens. Returns 0, or -1 with mb_err
 * (WHERE names the data) when the split has fewer than two tokens or SEQ_LEN is out of
 * range. */
MB_MUST_CHECK int mb_gpt_plan(struct mb_gpt_plan *p, const int32_t *sizes, int64_t nseq,
                              int64_t beg, int64_t end, int64_t seq_len, int64_t requested,
                              const char *where);

/* The three arrays of one GPTDataset, in Megatron's dtypes. */
struct mb_gpt_index {
    int64_t n_doc;
    int32_t *doc;       /* [n_doc] sequence ids, epoch-major, shuffled */
    int64_t n_samples;
    void *sample;       /* [n_samples + 1][2] (position in doc, token offset), int32/int64 */
    bool sample_i64;
    void *shuffle;      /* [n_samples] uint32, or int64 */
    bool shuffle_i64;
};

/* Build the three arrays for plan P (from mb_gpt_plan with the same arguments) with
 * numpy.random.RandomState(SEED). The arrays are heap-allocated; free with
 * mb_gpt_index_free. */
void mb_gpt_index_build(struct mb_gpt_index *ix, const struct mb_gpt_plan *p,
                        const int32_t *sizes, int64_t beg, int64_t end, int64_t seq_len,
                        uint32_t seed);
void mb_gpt_index_free(struct mb_gpt_index *ix);

/* Row R, column C (0: position in doc, 1: token offset) of a sample index. */
static inline int64_t mb_gpt_sample_at(const void *sample, bool i64, int64_t r, int c)
{
    return i64 ? ((const int64_t *)sample)[2 * r + c] : ((const int32_t *)sample)[2 * r + c];
}

/* Entry K of a shuffle index. */
static inline int64_t mb_gpt_shuffle_at(const void *shuffle, bool i64, int64_t k)
{
    return i64 ? ((const int64_t *)shuffle)[k] : ((const uint32_t *)shuffle)[k];
}

/* normalize(): W[N] divided by its float64 sum, in place. */
void mb_blend_normalize(double *w, int n);

/* Samples to request from a dataset of normalised weight W for a split of TARGET
 * samples: ceil(ceil(TARGET * W) * (1 + SURPLUS)). */
int64_t mb_blend_request(int64_t target, double w, double surplus);

/* helpers.cpp build_blending_indices: for each of SIZE samples the dataset whose
 * weight times max(t, 1) most exceeds what it has given so far (first wins ties). */
void mb_blend_indices(const double *w, int n, int64_t size, int16_t *dataset_index,
                      int64_t *dataset_sample_index);

#endif /* MB_DATA_GPT_INDEX_H */
