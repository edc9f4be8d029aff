/* data/sft.h - supervised fine-tuning data: JSONL rows -> tokenized examples with loss
 * masks -> training samples, unpacked or packed (finetune.md 4.1-4.6).
 *
 * A prompt/completion row is an object with string fields: the prompt is
 * data.prompt_template with every {key} replaced by the row's value of KEY, the answer
 * the value of data.answer_key (defaults: "{input}" and "output", Megatron Bridge's keys).
 * Values are stripped of ASCII spaces (str.strip(" ")); the answer is preceded by the
 * separator (its one leading space dropped for a tokenizer that is not space-sensitive).
 * Prompt and answer are tokenized separately without special tokens, EOS is appended to
 * the answer and supervised, and the (unshifted) mask is 1 on answer + EOS only (Bridge's
 * tokenize_prompt_completion_example, finetune.md 4.2). Rows longer than data.seq_length
 * lose the tail of the prompt first, then of the answer; an example whose answer is cut
 * away entirely is counted and skipped (Bridge raises on it).
 *
 * A sample is one example (unpacked: tokens = ids[:-1], labels = ids[1:], loss mask =
 * mask[1:], padded to seq_length with EOS and mask 0) or one bin of examples packed
 * first-fit in a seeded shuffled order (finetune.md 4.6), each example with its own
 * position ids from 0 and its own segment id, so no label and no attention crosses
 * examples. Training samples come in a seeded order shuffled anew each epoch; the order
 * depends only on the seed and the data, never on the number of ranks. Validation
 * samples come in a fixed order (file order unpacked, packing order packed).
 */
#ifndef MB_DATA_SFT_H
#define MB_DATA_SFT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "core/json.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

/* How rows become token ids and masks. */
struct mb_sft_format {
    const char *prompt_template; /* "{input}"; {{ }} are braces, \n \t \\ escapes */
    const char *answer_key;      /* "output" */
    const char *separator;       /* text before the answer, e.g. " " */
    int64_t max_length;          /* tokens of an example, EOS included (data.seq_length) */
    int32_t eos_id;
    bool space_sensitive;        /* mb_sft_space_sensitive of the tokenizer */
    const mb_chat_template *chat; /* chat rows' template (tok/chat.h); NULL: none */
};

/* Bridge's test: tokenize("x y") != tokenize("x") + tokenize("y"). */
bool mb_sft_space_sensitive(mb_tok_encoder *enc);

/* Outcome of one row. */
enum mb_sft_row { MB_SFT_ROW_OK, MB_SFT_ROW_NO_ANSWER };

/* Tokenize ROW (a JSON object) read at WHERE ("file.jsonl:12"): *IDS gets the example's
 * ids and *MASK (malloc'd, ids->len bytes) 1 where the token is supervised. Returns
 * MB_SFT_ROW_OK, MB_SFT_ROW_NO_ANSWER (truncation left no answer token: skip it; *MASK
 * NULL), or -1 with mb_err naming WHERE and the key (missing, not a string), or what
 * the chat template could not render. */
MB_MUST_CHECK int mb_sft_encode_row(const struct mb_sft_format *f, mb_tok_encoder *enc,
                                    const mb_json *row, const char *where, struct mb_ids *ids,
                                    uint8_t **mask);

struct mb_sft_config {
    struct mb_sft_format fmt;
    const char *const *paths;    /* [n_paths] training JSONL files */
    const double *weights;       /* [n_paths] blend weights, or NULL: the files pooled */
    int n_paths;
    const char *valid_path;      /* NULL: no validation split */
    int64_t seq_length;
    bool packed;
    uint64_t seed;
    int64_t train_samples;       /* samples the run takes (sizes a weighted blend) */
    bool quiet;                  /* no log lines (ranks other than 0) */
};

typedef struct mb_sft_data mb_sft_data;

/* Read and tokenize every file with TOK, pack when asked, and log what was read and
 * skipped. Returns 0 with *OUT, or -1 with mb_err naming the file (and line, key). */
MB_MUST_CHECK int mb_sft_open(mb_sft_data **out, const struct mb_sft_config *c,
                              const mb_tokenizer *tok);

/* Samples in one epoch of SPLIT (MB_SPLIT_TRAIN or MB_SPLIT_VALID; 0 when absent). */
int64_t mb_sft_size(const mb_sft_data *d, int split);

/* Sample K (any K >= 0: epochs repeat) of SPLIT into rows of seq_length: TOKENS,
 * LABELS, LOSS_MASK, POSITION_IDS, SEGMENT_IDS (the example index within the row; tail
 * padding gets one more). Returns 0, or -1 with mb_err (an absent split, K past the
 * blend). Not thread-safe (the epoch's order is cached). */
MB_MUST_CHECK int mb_sft_sample(mb_sft_data *d, int split, int64_t k, int32_t *tokens,
                                int32_t *labels, float *loss_mask, int32_t *position_ids,
                                int32_t *segment_ids);

void mb_sft_close(mb_sft_data *d);

#endif /* MB_DATA_SFT_H */
