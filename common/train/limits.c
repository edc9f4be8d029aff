/* train/limits.c - range checks of the run's sizes and counters, before anything is
 * allocated or built.
 *
 * Two kinds of bound. Counters (iterations, batch sizes, sequence length) stay below
 * 2^31: positions and token ids are int32, and 2^31 iterations is beyond any run. Then
 * the memory a run needs at the least, from the sizes alone, is compared with the
 * machine's physical memory: fp32 weights, gradients and both Adam moments (16 bytes a
 * parameter, every rank holds the whole model), one hidden state per layer and token of
 * a micro-batch, the global batch's token arrays, and the sample indices of real data
 * (12 bytes a sample at least). A run that needs more can never finish, so it is refused
 * at once, naming the key that makes it so, instead of dying out of memory later.
 */
#include "train/limits.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "train/setup.h"

#define MAX_COUNT INT32_MAX

typedef __int128 i128;

struct counter {
    const char *key;
    int64_t min;
};

/* Every counter key: at least MIN, at most MAX_COUNT. */
static const struct counter counters[] = {
    { "train.train_iters", 0 },         { "train.micro_batch_size", 1 },
    { "train.global_batch_size", 0 },   { "data.seq_length", 1 },
    { "train.eval_interval", 0 },       { "train.eval_iters", 0 },
    { "train.exit_interval", 0 },       { "checkpoint.save_interval", 0 },
    { "logger.log_interval", 0 },       { "scheduler.lr_warmup_iters", 0 },
    { "scheduler.lr_decay_iters", 0 },  { "scheduler.lr_wsd_decay_iters", 0 },
};

static int counters_ok(const mb_config *cfg)
{
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        const char *key = counters[i].key;
        int64_t v = mb_config_i64(cfg, key);
        if (v < counters[i].min)
            return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key), "%s must be %s (it is "
                              "%lld)", key, counters[i].min ? "positive" : "zero or more",
                              (long long)v);
        if (v > MAX_COUNT)
            return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key), "%s is %lld, more than "
                              "mb's bound of 2^31 - 1 for counters and sizes", key, (long long)v);
    }
    return 0;
}

static double gib(i128 bytes)
{
    return (double)bytes / (1024.0 * 1024.0 * 1024.0);
}

static i128 physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

    return pages > 0 && size > 0 ? (i128)pages * size : ((i128)1 << 62);
}

/* -1 with mb_err at KEY when BYTES (for WHAT) is more than the machine's memory. */
static int fits(const mb_config *cfg, const char *key, i128 bytes, const char *what)
{
    i128 mem = physical_memory();

    if (bytes <= mem)
        return 0;
    return mb_err_set(MB_E_INVALID, mb_config_where(cfg, key), "%s: %s need at least %.1f GiB, "
                      "more than this machine's memory (%.1f GiB)", key, what, gib(bytes),
                      gib(mem));
}

/* Parameters of C, at least (norms and biases left out), and the key whose term is the
 * largest: what to name when the model cannot fit. */
static i128 parameters(const struct mb_model_config *c, const char **key)
{
    i128 h = c->hidden_size;
    i128 embed = (i128)c->vocab_size * h * (c->share_embeddings_and_output_weights ? 1 : 2);
    i128 pos = c->position_embedding_type == MB_POS_LEARNED ? (i128)c->max_position_embeddings * h
                                                            : 0;
    i128 layer = (i128)mb_model_qkv_rows(c) * h +
                 (i128)c->num_attention_heads * c->kv_channels * h +
                 (i128)(mb_model_fc1_rows(c) + c->ffn_hidden_size) * h;
    i128 layers = layer * c->num_layers;

    *key = "model.num_layers";
    if (embed > layers && embed > pos)
        *key = "model.vocab_size";
    else if (pos > layers)
        *key = "model.max_position_embeddings";
    return embed + pos + layers;
}

/* Samples the data indices are built for: the training, validation and test splits, as
 * the trainer asks for them. */
static i128 samples(const mb_config *cfg, i128 global, const char **key)
{
    i128 iters = mb_config_i64(cfg, "train.train_iters");
    i128 interval = mb_config_i64(cfg, "train.eval_interval");
    i128 eval = mb_config_i64(cfg, "train.eval_iters");
    i128 train = iters * global;
    i128 valid = interval > 0 && eval > 0 ? (iters / interval + 1) * eval * global : 0;
    i128 test = eval * global;

    *key = train >= valid ? "train.train_iters" : "train.eval_iters";
    return train + valid + test;
}

static int from_command_line(const mb_config *cfg, const char *key)
{
    return strncmp(mb_config_where(cfg, key), "command line:", 13) == 0;
}

/* The model size key to name: the largest term's, unless another size was given on
 * the command line (model.hidden_size=1000000 grows every term). */
static const char *model_key(const mb_config *cfg, const char *largest)
{
    static const char *const sizes[] = { "model.hidden_size", "model.num_layers",
                                         "model.vocab_size", "model.ffn_hidden_size",
                                         "model.max_position_embeddings", "model.kv_channels",
                                         "model.num_attention_heads" };

    if (from_command_line(cfg, largest))
        return largest;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (from_command_line(cfg, sizes[i]))
            return sizes[i];
    return largest;
}

static int memory_ok(const mb_config *cfg, const struct mb_model_config *c, int64_t dp)
{
    const char *key;
    i128 params = parameters(c, &key);

    key = model_key(cfg, key);
    i128 micro = mb_config_i64(cfg, "train.micro_batch_size");
    i128 seq = mb_config_i64(cfg, "data.seq_length");
    i128 global = mb_config_i64(cfg, "train.global_batch_size");

    if (global == 0)
        global = micro * dp;
    if (fits(cfg, key, params * 16, "the model's weights, gradients and Adam moments (fp32)") < 0)
        return -1;
    const char *act_key = micro > seq ? "train.micro_batch_size" : "data.seq_length";
    if (fits(cfg, act_key, micro * seq * c->hidden_size * c->num_layers * 4,
             "the activations of one micro-batch (one hidden state per layer and token)") < 0)
        return -1;
    const char *batch_key = global / dp > seq ? "train.global_batch_size" : "data.seq_length";
    if (fits(cfg, batch_key, global / dp * seq * 16, "the token arrays of one global batch") < 0)
        return -1;
    if (mb_config_bool(cfg, "data.mock"))
        return 0;
    i128 n = samples(cfg, global, &key);
    return fits(cfg, key, n * 12, "the sample indices of the data (12 bytes a sample)");
}

int mb_train_check_limits(const mb_config *cfg, int64_t world, int64_t tokenizer_vocab)
{
    struct mb_model_config c;

    if (counters_ok(cfg) < 0 || mb_setup_model_config(cfg, tokenizer_vocab, &c) < 0)
        return -1;
    /* the data-parallel size; a layout that does not fit is the trainer's error */
    int64_t model_par = mb_config_i64(cfg, "dist.tensor_model_parallel_size") *
                        mb_config_i64(cfg, "dist.context_parallel_size") *
                        mb_config_i64(cfg, "dist.pipeline_model_parallel_size");
    int64_t dp = model_par > 0 && world % model_par == 0 ? world / model_par : world;
    return memory_ok(cfg, &c, dp > 0 ? dp : 1);
}
