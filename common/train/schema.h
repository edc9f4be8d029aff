/* train/schema.h - the mb-pretrain configuration keys (a core/config schema).
 *
 * Keys keep Megatron's argument names, grouped in the sections model, train, optimizer,
 * scheduler, data, tokenizer, checkpoint, logger and dist; defaults are Megatron-LM's.
 * Keys whose Megatron default is "required" (model.hidden_size, train.train_iters,
 * optimizer.lr, data.seq_length, ...) have no default here either: the consumer checks
 * mb_config_has(). The table says nothing about how a key is used; see the modules
 * that read it (nn/config, train/sched, data/, ckpt/).
 */
#ifndef MB_TRAIN_SCHEMA_H
#define MB_TRAIN_SCHEMA_H

#include <stddef.h>

#include "core/config.h"

/* The key table (static, never freed) and its length in *N. */
const struct mb_config_key *mb_pretrain_schema(size_t *n);
/* Megatron Bridge's names for keys that mb names differently ("dataset.seq_length"
 * for "data.seq_length", "rng.seed" for "train.seed", ...), and their count in *N. */
const struct mb_config_alias *mb_pretrain_aliases(size_t *n);
/* A config over the key table, with the aliases and the defaults. */
mb_config *mb_pretrain_config_new(void);

#endif /* MB_TRAIN_SCHEMA_H */
