/* data/gpt_dataset.h - Megatron's GPT training data: splits, blends, cached indices and
 * samples over indexed token files (formats.md 1.5-1.7).
 *
 * mb_gpt_data_open builds, or loads from Megatron's cache, the indices of all three
 * splits, exactly as megatron-core 0.16.1's BlendedMegatronDatasetBuilder with GPTDataset
 * does: the same sample k of a split, with the same tokens, whatever the number of
 * ranks. The cache files carry Megatron's names and numpy's format, so either program
 * reuses the other's.
 *
 * Caching: per prefix, under CACHE_DIR or else Megatron's default PREFIX/cache/
 * GPTDataset_indices/ (a directory named after the prefix itself), files
 * {md5 of description}-GPTDataset-{train,valid,test}-{description.txt,document_index.npy,
 * sample_index.npy,shuffle_index.npy}. Content depends only on the configuration, and
 * every file is written to a temporary and renamed, so ranks may all build at once or
 * rank 0 may build first; either way readers see whole files. A cached array with the
 * wrong dtype, shape or out-of-range entries is rebuilt and rewritten. Blend indices
 * (BlendedDataset) are cheap and always recomputed, never cached.
 *
 * Not supported: blend_per_split, add_extra_token_to_sequence = false, keeping the
 * last partial validation sequence, reset_attention_mask (the caller derives it from
 * the tokens).
 */
#ifndef MB_DATA_GPT_DATASET_H
#define MB_DATA_GPT_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "data/gpt_index.h"

struct mb_gpt_data_config {
    const char *const *paths;   /* [n_paths] indexed-file prefixes (no .bin/.idx) */
    const double *weights;      /* [n_paths] blend weights, or NULL (see below) */
    int n_paths;
    char split[64];             /* "969,30,1"; "" means Megatron's default "969, 30, 1" */
    int64_t seq_length;
    uint64_t seed;              /* numpy RandomState seed, < 2^32 (Megatron default 1234) */
    bool mock;                  /* MockGPTDataset instead of files; paths unused */
    int64_t mock_vocab;         /* vocabulary size of the mock tokens */
    bool eod_mask_loss;
    bool reset_position_ids;
    int32_t eod_id;
    int32_t pad_id;             /* -1 unless the tokenizer has a pad distinct from EOD */
    const char *cache_dir;      /* NULL: PREFIX/cache/GPTDataset_indices per prefix */
    int64_t num_samples[MB_SPLIT_COUNT]; /* samples wanted per split; < 0: one epoch */
    /* Megatron's tokenizer.unique_identifiers as string pairs (key, value, key, value ...)
     * for the cache description; NULL or 0 pairs writes "tokenizer": null. */
    const char *const *tokenizer_ids;
    int n_tokenizer_ids;        /* number of pairs */
};

/* One prefix without weights is a plain GPTDataset; weights (any number of prefixes)
 * make a BlendedDataset of normalised weights with the 0.005 surplus; several prefixes
 * without weights blend in proportion to each one's single-epoch length. */
typedef struct mb_gpt_data mb_gpt_data;

/* Open the files and build or load every split's indices. Returns 0 with *OUT, or -1
 * with mb_err naming the file: missing or corrupt .bin/.idx, a sequence length or seed
 * out of range, a split without tokens while samples are requested from it, a blend
 * that oversamples a dataset, an unwritable cache. */
MB_MUST_CHECK int mb_gpt_data_open(mb_gpt_data **out, const struct mb_gpt_data_config *c);

/* Number of samples in SPLIT (MB_SPLIT_TRAIN ...), 0 for an absent split. It may exceed
 * what was asked for (Megatron rounds up to whole epochs, and blends to ceil). */
int64_t mb_gpt_data_size(const mb_gpt_data *d, int split);

/* Sample K of SPLIT, as GPTDataset.__getitem__ returns it: TOKENS[seq], LABELS[seq]
 * (pad replaced by 0), LOSS_MASK[seq] (0 at EOD tokens when eod_mask_loss and where the
 * label is pad), POSITION_IDS[seq] (restarting after each EOD when reset_position_ids).
 * Any output may be NULL. Returns 0, or -1 with mb_err when K is out of range.
 * Safe to call from several threads at once. */
MB_MUST_CHECK int mb_gpt_data_sample(const mb_gpt_data *d, int split, int64_t k,
                                     int32_t *tokens, int32_t *labels, float *loss_mask,
                                     int32_t *position_ids);

/* The cache directory and md5 name base ("{md5}-GPTDataset-{split}") of dataset I of
 * SPLIT, for tests and logs; NULL where there is none (mock data, absent split). */
const char *mb_gpt_data_cache_base(const mb_gpt_data *d, int split, int i);

void mb_gpt_data_close(mb_gpt_data *d);

#endif /* MB_DATA_GPT_DATASET_H */
