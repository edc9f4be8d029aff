/* tok/train_bpe.h - train a byte-level BPE tokenizer and write it as HF tokenizer.json.
 *
 * Text is split with the Llama-3 pre-tokenizer regex (HF Split, behaviour Isolated)
 * after removing literal "<|endoftext|>", and the pieces are counted as raw bytes.
 * Training is classic BPE over those counts: start from the 256 single bytes (byte B is
 * id B), repeatedly merge the most frequent adjacent pair, breaking ties as HF's
 * BpeTrainer does, so both learn the same merges in the same order from the same
 * pieces. The written file holds 256 byte tokens, one token per merge (id 256 + merge
 * rank) and "<|endoftext|>" last; HF `tokenizers` loads it and encodes the training
 * text exactly as the merges were learnt.
 *
 * Not provided: other pre-tokenizers, normalizers, extra special tokens, min-frequency
 * limits. Each trainer is single-threaded; parallel feeders use one trainer per thread
 * and combine them with mb_bpe_trainer_merge().
 */
#ifndef MB_TOK_TRAIN_BPE_H
#define MB_TOK_TRAIN_BPE_H

#include <stddef.h>

#include "core/defs.h"

typedef struct mb_bpe_trainer mb_bpe_trainer;

/* A trainer for a vocabulary of VOCAB_SIZE entries in all: 256 byte tokens, then
 * VOCAB_SIZE - 257 merges, then "<|endoftext|>" as the last id. Returns the trainer
 * (free it with mb_bpe_trainer_free), or NULL with mb_err set when VOCAB_SIZE < 257. */
MB_MUST_CHECK mb_bpe_trainer *mb_bpe_trainer_new(int vocab_size);

/* Pre-tokenize TEXT[len] and add its pieces to the counts. Literal "<|endoftext|>"
 * separates text and is not counted. Returns 0, or -1 with mb_err set when TEXT is not
 * valid UTF-8 (nothing is counted then). Not thread-safe for one trainer. */
MB_MUST_CHECK int mb_bpe_trainer_feed(mb_bpe_trainer *t, const char *text, size_t len);

/* Add SRC's piece counts into DST; SRC is unchanged. Training DST afterwards gives the
 * same result as feeding all the text to DST alone. */
void mb_bpe_trainer_merge(mb_bpe_trainer *dst, const mb_bpe_trainer *src);

/* Learn the merges from the counts so far and write tokenizer.json to PATH atomically
 * (the file appears only when complete). Training stops early when no pair is left to
 * merge, leaving a smaller vocabulary; mb_bpe_trainer_vocab_size() then says how
 * large. The counts are kept, so T may be fed more and written again.
 * Returns 0, or -1 with mb_err set and nothing at PATH. */
MB_MUST_CHECK int mb_bpe_trainer_write(mb_bpe_trainer *t, const char *path);

/* Entries in the vocabulary written by the last successful mb_bpe_trainer_write()
 * (special token included), or 0 before one. */
int mb_bpe_trainer_vocab_size(const mb_bpe_trainer *t);

/* Distinct pieces counted so far. */
size_t mb_bpe_trainer_npieces(const mb_bpe_trainer *t);

/* Free T. Accepts NULL. */
void mb_bpe_trainer_free(mb_bpe_trainer *t);

#endif /* MB_TOK_TRAIN_BPE_H */
