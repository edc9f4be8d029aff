/* nn/infer.h - the forward pass for generation, with a key/value cache.
 *
 * A prompt is run once (prefill) and each new token then costs one position: the keys
 * and values of every layer stay in a cache [B, nKV, max_seq, d] per layer, and a call
 * runs only the new tokens, at positions len .. len + n - 1, attending over the cache
 * (kern/ops.h attention_kv). Every family of nn/config.h is covered: RoPE at the
 * token's position (Gemma 3's local base on sliding layers), learned positions (GPT-2),
 * sliding windows, soft-caps, QK-norm, scaled embeddings, sandwich norms, tied output.
 * The logits equal mb_model_step's on the whole sequence (up to rounding).
 */
#ifndef MB_NN_INFER_H
#define MB_NN_INFER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defs.h"
#include "nn/model.h"

struct mb_infer_scratch; /* activations of one call (nn/infer.c) */

struct mb_infer {
    const struct mb_model *m;    /* borrowed: weights, config, ops, RoPE tables */
    int64_t batch;               /* B sequences decoded side by side */
    int64_t max_seq;             /* positions the cache holds */
    int64_t len;                 /* positions filled so far (the same for every sequence) */
    float *kc, *vc;              /* [L, B, nKV, max_seq, d] backend memory */
    struct mb_infer_scratch *s;
};

/* Make a cache of BATCH x MAX_SEQ positions for M (MAX_SEQ at most the model's
 * max_position_embeddings). -1 with mb_err when out of memory or MAX_SEQ too large. */
MB_MUST_CHECK int mb_infer_init(struct mb_infer *st, const struct mb_model *m, int64_t batch,
                                int64_t max_seq);
void mb_infer_free(struct mb_infer *st);

/* Forget the cached positions (len = 0). */
void mb_infer_reset(struct mb_infer *st);

/* Run TOKENS [B, N] (row-major, host memory) at positions len .. len + N - 1 and add
 * their keys and values to the cache. LOGITS (host memory) receives [B, N, V] when ALL,
 * else [B, V] of the last new position of each sequence; after final soft-capping.
 * Returns 0, or -1 with mb_err set (token id outside the vocabulary, cache full). */
MB_MUST_CHECK int mb_infer_forward(struct mb_infer *st, const int32_t *tokens, int64_t n,
                                   bool all, float *logits);

#endif /* MB_NN_INFER_H */
