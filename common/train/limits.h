/* train/limits.h - refuse, before any allocation, a run whose sizes cannot work.
 *
 * Counters (train.train_iters, train.eval_iters, the batch sizes, data.seq_length, the
 * intervals) must lie in [0 or 1, 2^31 - 1]; the model configuration must pass
 * mb_model_config_validate() (each size positive and below 2^31, finite settings); and
 * the least memory the run needs (model states, one micro-batch's activations, the
 * global batch, real data's sample indices) must fit in the machine's physical memory.
 * Errors name the key and where it was set (a recipe line, "command line: KEY=VALUE").
 */
#ifndef MB_TRAIN_LIMITS_H
#define MB_TRAIN_LIMITS_H

#include <stdint.h>

#include "core/config.h"
#include "core/defs.h"

/* Check CFG for a world of WORLD ranks (laid out as its dist.* sizes say); TOKENIZER_VOCAB (0: none) sizes a vocabulary
 * left 0. Returns 0, or -1 with mb_err set (MB_E_INVALID). */
MB_MUST_CHECK int mb_train_check_limits(const mb_config *cfg, int64_t world,
                                        int64_t tokenizer_vocab);

#endif /* MB_TRAIN_LIMITS_H */
