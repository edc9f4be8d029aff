/* nn/rope.h - rotary position tables (formats.md 4.3), llama3 and linear scaling. */
#ifndef MB_NN_ROPE_H
#define MB_NN_ROPE_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/config.h"

/* Rotary dims of each head: kv_channels * rotary_percent. */
int64_t mb_rope_dims(const struct mb_model_config *c);

/* Fill TABLE [max_position_embeddings, rot/2, 2] with (cos, sin) of position * inv_freq.
 * LOCAL selects Gemma 3's sliding-layer base (rotary_base_local, no scaling); otherwise
 * rotary_base with the configured scaling. Angles are computed in double. */
void mb_rope_table(float *table, const struct mb_model_config *c, bool local);

#endif /* MB_NN_ROPE_H */
