/* data/gpt_desc.h - Megatron's GPTDataset description text (the JSON whose MD5 names
 * the cache files), and the Python repr and json.dumps pieces it is made of. */
#ifndef MB_DATA_GPT_DESC_H
#define MB_DATA_GPT_DESC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"
#include "data/gpt_index.h"

/* What MegatronDataset.unique_identifiers holds for one GPTDataset. */
struct mb_gpt_desc {
    bool mock;                       /* class MockGPTDataset */
    const char *dataset_path;        /* the prefix as given; NULL writes null */
    int64_t num_samples;             /* < 0 writes null */
    int split;                       /* MB_SPLIT_* */
    uint64_t seed;
    int64_t seq_length;
    const char *split_text;          /* the split string as configured */
    const struct mb_split *matrix;
    const char *const *tokenizer_ids; /* key, value pairs */
    int n_tokenizer_ids;
};

/* Append json.dumps(unique_identifiers, indent=4) for D to B. */
void mb_gpt_describe(struct mb_buf *b, const struct mb_gpt_desc *d);

/* Append Python's repr(float(X)). */
void mb_py_float_repr(struct mb_buf *out, double x);

/* Append json.dumps(S) (ensure_ascii: non-ASCII as \uXXXX, surrogate pairs above
 * U+FFFF). S is UTF-8; a byte that is not valid UTF-8 is written as \u00XX. */
void mb_py_json_str(struct mb_buf *out, const char *s);

#endif /* MB_DATA_GPT_DESC_H */
