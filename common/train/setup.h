/* train/setup.h - from the resolved configuration to what the trainer builds.
 *
 * The recipe's model.* keys become a struct mb_model_config (through its JSON form, the
 * one nn/ reads and checkpoints store), with Megatron's derived defaults filled in:
 * ffn_hidden_size 0 = 4 x hidden, max_position_embeddings 0 = data.seq_length,
 * vocab_size 0 = the tokenizer's size padded to make_vocab_size_divisible_by.
 */
#ifndef MB_TRAIN_SETUP_H
#define MB_TRAIN_SETUP_H

#include <stdint.h>

#include "core/config.h"
#include "core/defs.h"
#include "dist/comm.h"
#include "nn/config.h"

/* The configuration of a run: RECIPE (a name in recipes/ or a YAML file), then every
 * key=value of ARGS [NARGS] over it. NULL with mb_err (MB_E_USAGE for a missing recipe or
 * an argument that is not key=value, whose message shows EXAMPLE_KEY=...). */
mb_config *mb_setup_load_config(const char *recipe, char *const *args, int nargs,
                                const char *example);

/* Vocabulary size VOCAB rounded up to a multiple of DIVISOR (Megatron's padding). */
int64_t mb_padded_vocab(int64_t vocab, int64_t divisor);

/* The model configuration of CFG. TOKENIZER_VOCAB (0 when there is no tokenizer) sizes
 * the vocabulary when model.vocab_size is 0. */
MB_MUST_CHECK int mb_setup_model_config(const mb_config *cfg, int64_t tokenizer_vocab,
                                        struct mb_model_config *out);

/* With checkpoint.pretrained_checkpoint set: replace CFG's model.* keys by the model
 * configuration of that checkpoint (the one the run will use), each named as set by the
 * checkpoint file, so the printed and stored configuration is the model actually
 * trained. Every rank calls it. Returns 0 (also when the key is unset), or -1 with mb_err
 * (no checkpoint there, an unreadable one). */
MB_MUST_CHECK int mb_setup_apply_pretrained(mb_config *cfg, const struct mb_dist *d);

/* Parse data.data_path: "PREFIX", "P1 P2 ..." or Megatron's "W1 P1 W2 P2 ...".
 * Returns the number of prefixes; *WEIGHTS is NULL when none were given. Arrays are
 * malloc'd (the strings are borrowed from CFG). -1 with mb_err on a bad list. */
MB_MUST_CHECK int mb_setup_blend(const mb_config *cfg, const char ***paths, double **weights);

#endif /* MB_TRAIN_SETUP_H */
