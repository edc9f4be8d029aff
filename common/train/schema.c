/* train/schema.c - the mb-pretrain key table: names, types, Megatron defaults, help.
 *
 * Zero in a size key means "derive it" the way Megatron does (num_query_groups = heads,
 * kv_channels = hidden / heads, ffn_hidden_size = 4 x hidden, vocab_size from the
 * tokenizer padded to make_vocab_size_divisible_by, max_position_embeddings =
 * seq_length). Zero in a softcapping or window key means "off".
 */
#include "train/schema.h"

#include "core/defs.h"

#define INT    MB_CONFIG_INT
#define FLOAT  MB_CONFIG_FLOAT
#define BOOL   MB_CONFIG_BOOL
#define STRING MB_CONFIG_STRING
#define LIST   MB_CONFIG_LIST

static const struct mb_config_key pretrain_keys[] = {
    { "model.family", STRING, "gpt2", "architecture family (HF export, family quirks)",
      "llama|mistral|qwen2|qwen3|gemma|gemma2|gemma3|gpt2" },
    { "model.hidden_size", INT, NULL, "transformer hidden size (required)", NULL },
    { "model.num_layers", INT, NULL, "number of transformer layers (required)", NULL },
    { "model.num_attention_heads", INT, NULL, "number of query heads (required)", NULL },
    { "model.num_query_groups", INT, "0", "key/value heads for GQA; 0 = num_attention_heads",
      NULL },
    { "model.kv_channels", INT, "0", "head dimension; 0 = hidden_size / num_attention_heads",
      NULL },
    { "model.ffn_hidden_size", INT, "0", "MLP width; 0 = 4 x hidden_size", NULL },
    { "model.vocab_size", INT, "0",
      "embedding rows; 0 = tokenizer size padded to make_vocab_size_divisible_by", NULL },
    { "model.max_position_embeddings", INT, "0", "position table size; 0 = data.seq_length",
      NULL },
    { "model.make_vocab_size_divisible_by", INT, "128", "pad the vocabulary to a multiple of this",
      NULL },
    { "model.normalization", STRING, "LayerNorm", "normalization layer", "RMSNorm|LayerNorm" },
    { "model.layernorm_epsilon", FLOAT, "1e-5", "epsilon of the normalization layers", NULL },
    { "model.layernorm_zero_centered_gamma", BOOL, "false",
      "norm weight stored as (gamma - 1), as Gemma does", NULL },
    { "model.activation", STRING, "gelu", "MLP activation (swiglu and geglu are gated)",
      "swiglu|geglu|gelu" },
    { "model.add_qkv_bias", BOOL, "false", "bias on the QKV projection only (Qwen2)", NULL },
    { "model.add_bias_linear", BOOL, "true", "bias on every linear layer (GPT-2)", NULL },
    { "model.qk_layernorm", BOOL, "false", "normalize queries and keys per head (Qwen3, Gemma3)",
      NULL },
    { "model.position_embedding_type", STRING, "learned_absolute", "position embedding",
      "rope|learned_absolute" },
    { "model.rotary_base", FLOAT, "10000", "RoPE theta", NULL },
    { "model.rotary_base_local", FLOAT, "0",
      "RoPE theta of sliding-window layers (Gemma3); 0 = rotary_base", NULL },
    { "model.rotary_percent", FLOAT, "1.0", "fraction of the head dimension rotated", NULL },
    { "model.rope_scaling_type", STRING, "none", "RoPE frequency scaling", "none|llama3|linear" },
    { "model.rope_scaling_factor", FLOAT, "8.0", "RoPE scaling factor", NULL },
    { "model.rope_scaling_low_freq_factor", FLOAT, "1.0", "llama3 RoPE scaling low_freq_factor",
      NULL },
    { "model.rope_scaling_high_freq_factor", FLOAT, "4.0",
      "llama3 RoPE scaling high_freq_factor", NULL },
    { "model.rope_scaling_original_max_position_embeddings", INT, "8192",
      "llama3 RoPE scaling original context length", NULL },
    { "model.share_embeddings_and_output_weights", BOOL, "true",
      "tie the output layer to the input embedding", NULL },
    { "model.scale_embeddings", BOOL, "false", "multiply embeddings by sqrt(hidden_size) (Gemma)",
      NULL },
    { "model.sandwich_norm", BOOL, "false",
      "extra norms after attention and MLP, before the residual add (Gemma2/3)", NULL },
    { "model.attn_logit_softcapping", FLOAT, "0.0", "tanh cap on attention scores; 0 = off",
      NULL },
    { "model.final_logit_softcapping", FLOAT, "0.0", "tanh cap on output logits; 0 = off", NULL },
    { "model.query_pre_attn_scalar", INT, "0",
      "attention scores scaled by 1/sqrt(this); 0 = kv_channels", NULL },
    { "model.sliding_window", INT, "0", "local attention window in tokens; 0 = off", NULL },
    { "model.sliding_window_pattern", INT, "0",
      "layer i (0-based) is global when (i + 1) % N == 0, else windowed; 0 = all windowed",
      NULL },
    { "model.init_method_std", FLOAT, "0.02", "std of the normal weight initialisation", NULL },

    { "train.train_iters", INT, NULL, "iterations to train (required)", NULL },
    { "train.micro_batch_size", INT, "1", "sequences per micro-batch per rank", NULL },
    { "train.global_batch_size", INT, "0",
      "sequences per iteration; 0 = micro_batch_size x data-parallel size", NULL },
    { "train.seed", INT, "1234", "seed of weights, data order and dropout", NULL },
    { "train.eval_interval", INT, "1000", "iterations between validation runs", NULL },
    { "train.eval_iters", INT, "100", "iterations per validation run", NULL },
    { "train.exit_interval", INT, "0", "stop after an iteration divisible by this; 0 = never",
      NULL },
    { "train.exit_signal_handler", BOOL, "true",
      "on train.exit_signal or SIGINT finish the iteration, save and exit 0", NULL },
    { "train.exit_signal", STRING, "SIGTERM",
      "the signal that saves and stops the run, besides SIGINT: SIGTERM, SIGINT, SIGUSR1 or "
      "SIGUSR2", NULL },
    { "train.exit_duration_in_mins", FLOAT, "0",
      "save and exit 0 once the run has been up this many minutes; 0 = no limit", NULL },
    { "train.check_for_nan_in_loss_and_grad", BOOL, "true",
      "stop with exit 1 when the loss or the gradient norm is NaN or inf (no update, no save)",
      NULL },
    { "train.skip_nonfinite_steps", INT, "0",
      "with the check on: skip up to this many such iterations (no update) before stopping",
      NULL },

    { "optimizer.optimizer", STRING, "adam", "optimizer (Adam with decoupled weight decay)",
      "adam" },
    { "optimizer.lr", FLOAT, NULL, "peak learning rate (required)", NULL },
    { "optimizer.min_lr", FLOAT, "0.0", "learning rate at the end of the decay", NULL },
    { "optimizer.weight_decay", FLOAT, "0.01", "decoupled weight decay", NULL },
    { "optimizer.adam_beta1", FLOAT, "0.9", "Adam beta1", NULL },
    { "optimizer.adam_beta2", FLOAT, "0.999", "Adam beta2", NULL },
    { "optimizer.adam_eps", FLOAT, "1e-08", "Adam epsilon", NULL },
    { "optimizer.clip_grad", FLOAT, "1.0", "clip the global gradient norm to this; 0 = off",
      NULL },

    { "scheduler.lr_decay_style", STRING, "linear", "learning-rate decay after warmup",
      "constant|linear|cosine|inverse-square-root|WSD" },
    { "scheduler.lr_warmup_iters", INT, "0", "iterations of linear warmup", NULL },
    { "scheduler.lr_warmup_init", FLOAT, "0.0", "learning rate at the start of warmup", NULL },
    { "scheduler.lr_decay_iters", INT, "0", "iterations until min_lr; 0 = train.train_iters",
      NULL },
    { "scheduler.lr_wsd_decay_style", STRING, "exponential", "WSD: shape of the final decay",
      "linear|cosine|exponential|minus_sqrt" },
    { "scheduler.lr_wsd_decay_iters", INT, "0", "WSD: iterations of the final decay", NULL },
    { "scheduler.override_opt_param_scheduler", BOOL, "false",
      "on resume, use this config's schedule (train_iters, lr, min_lr, scheduler.*) even "
      "where it differs from the checkpoint's", NULL },

    { "data.data_path", LIST, NULL,
      "indexed datasets: PREFIX, or WEIGHT PREFIX WEIGHT PREFIX ... for a blend", NULL },
    { "data.split", STRING, "969,30,1", "train,valid,test proportions", NULL },
    { "data.seq_length", INT, NULL, "tokens per sample (required)", NULL },
    { "data.mock", BOOL, "false", "train on deterministic mock data instead of data_path", NULL },
    { "data.eod_mask_loss", BOOL, "false", "no loss on end-of-document tokens", NULL },
    { "data.reset_position_ids", BOOL, "false", "restart position ids after each document",
      NULL },
    { "data.path_to_cache", STRING, NULL,
      "where sample indices are cached; unset = next to the data", NULL },
    /* SFT data (mb-finetune): data.data_path names JSONL files there (weights as above) */
    { "data.validation_path", STRING, NULL,
      "mb-finetune: validation JSONL file; unset = no validation", NULL },
    { "data.prompt_template", STRING, NULL,
      "mb-finetune: the prompt, each {key} replaced by the row's field (\\n is a newline); "
      "unset = {input}", NULL },
    { "data.answer_key", STRING, "output", "mb-finetune: the row's field holding the answer",
      NULL },
    { "data.separator", STRING, NULL,
      "mb-finetune: text before the answer; unset = \" \" with the default template, else "
      "none", NULL },
    { "data.packed", BOOL, "false",
      "mb-finetune: pack examples first-fit into rows of data.seq_length (attention and "
      "positions restart per example)", NULL },

    { "tokenizer.tokenizer_model", STRING, NULL, "tokenizer.json, or a directory holding one",
      NULL },
    { "tokenizer.eod_id", INT, "-1", "end-of-document token id; -1 = from the tokenizer", NULL },

    { "checkpoint.save", STRING, NULL, "checkpoint directory to write; unset = no saving", NULL },
    { "checkpoint.load", STRING, NULL, "checkpoint directory to resume from", NULL },
    { "checkpoint.pretrained_checkpoint", STRING, NULL,
      "checkpoint (file, or directory with latest) whose weights and model configuration "
      "start the run; optimizer and counters start fresh; checkpoint.load wins if it "
      "holds a checkpoint", NULL },
    { "checkpoint.save_interval", INT, "0",
      "iterations between checkpoints; 0 = only at the end", NULL },
    { "checkpoint.save_optim", BOOL, "true", "store the optimizer state in checkpoints", NULL },
    { "checkpoint.ckpt_dtype", STRING, "fp32", "dtype of model weights in checkpoints",
      "fp32|bf16" },

    { "peft.peft", STRING, "none",
      "parameter-efficient fine-tuning: none (train every weight), lora or dora adapters on "
      "a frozen base (checkpoint.pretrained_checkpoint)", "none|lora|dora" },
    { "peft.dim", INT, "32", "adapter rank r", NULL },
    { "peft.alpha", FLOAT, "32", "adapter scale alpha: the update is alpha / dim * B A x", NULL },
    { "peft.dropout", FLOAT, "0.0", "LoRA dropout on the adapter input in training; 0 = off",
      NULL },
    { "peft.dropout_position", STRING, "pre",
      "where the adapter dropout is: pre (on x; post only with dropout 0)", "pre|post" },
    { "peft.target_modules", LIST, "linear_qkv linear_proj linear_fc1 linear_fc2",
      "the linear layers that get an adapter", NULL },
    { "peft.lora_A_init_method", STRING, "xavier", "initialisation of A (linear_in)",
      "xavier|normal|kaiming|zero" },
    { "peft.lora_B_init_method", STRING, "zero", "initialisation of B (linear_out)",
      "xavier|normal|kaiming|zero" },

    { "logger.log_interval", INT, "100", "iterations between log lines", NULL },
    { "logger.tensorboard_dir", STRING, NULL, "TensorBoard event directory; unset = none",
      NULL },
    { "logger.peak_tflops", FLOAT, "0.0", "device peak TFLOP/s for MFU; 0 = do not report",
      NULL },
    { "logger.metrics_jsonl", STRING, NULL,
      "append one JSON object per log line and validation to this file; unset = none",
      NULL },

    { "dist.tensor_model_parallel_size", INT, "1", "tensor-parallel ranks", NULL },
    { "dist.pipeline_model_parallel_size", INT, "1", "pipeline stages", NULL },
    { "dist.virtual_pipeline_model_parallel_size", INT, "1",
      "model chunks per pipeline rank (interleaved schedule when > 1)", NULL },
    { "dist.num_layers_in_first_pipeline_stage", INT, "0",
      "layers of the first pipeline stage; 0 = an even split", NULL },
    { "dist.num_layers_in_last_pipeline_stage", INT, "0",
      "layers of the last pipeline stage; 0 = an even split", NULL },
    { "dist.context_parallel_size", INT, "1", "context-parallel ranks", NULL },
    { "dist.sequence_parallel", BOOL, "false",
      "with tensor parallelism, cut norms and the residual stream on the sequence too", NULL },
    { "dist.device", STRING, "auto", "where to train; auto = cuda when available (cpu in this "
      "build); cpu-guarded = cpu on a guarded arena, for tests; unset: $MB_DEVICE or auto",
      "cpu|cpu-guarded|cuda|auto" },
    { "dist.timeout_minutes", FLOAT, "30",
      "a rank that waits this long in a gradient or loss all-reduce, agreement or barrier "
      "aborts the job, naming itself and the operation (Megatron's "
      "distributed_timeout_minutes); 0 = wait for ever", NULL },
    { "ddp.use_distributed_optimizer", BOOL, "false",
      "shard the Adam moments over the data-parallel ranks: reduce-scatter the gradients, "
      "update this rank's shard, all-gather the parameters", NULL },
    { "ddp.overlap_grad_reduce", BOOL, "false",
      "reduce the gradients in buckets with non-blocking collectives started during the "
      "backward pass of the last micro-batch", NULL },
    { "ddp.bucket_size", INT, "0",
      "floats per gradient bucket with overlap_grad_reduce; 0 = max(40000000, 1000000 x DP)",
      NULL },
    { "mixed_precision", STRING, "fp32",
      "bf16_mixed: the linear layers' GEMMs on bf16 weights and inputs, fp32 results, master "
      "weights, gradients and the rest (Megatron Bridge's recipe name)", "fp32|bf16_mixed" },
};

/* Megatron Bridge's ConfigContainer names (dataset: GPTDatasetConfig, rng: RNGConfig,
 * validation: ValidationConfig, parallel sizes on the model provider) where mb's differ. */
static const struct mb_config_alias bridge_aliases[] = {
    { "dataset.seq_length", "data.seq_length" },
    { "dataset.sequence_length", "data.seq_length" },
    { "dataset.data_path", "data.data_path" },
    { "dataset.split", "data.split" },
    { "dataset.eod_mask_loss", "data.eod_mask_loss" },
    { "dataset.reset_position_ids", "data.reset_position_ids" },
    { "dataset.path_to_cache", "data.path_to_cache" },
    { "model.tensor_model_parallel_size", "dist.tensor_model_parallel_size" },
    { "model.pipeline_model_parallel_size", "dist.pipeline_model_parallel_size" },
    { "model.virtual_pipeline_model_parallel_size", "dist.virtual_pipeline_model_parallel_size" },
    { "model.num_layers_in_first_pipeline_stage", "dist.num_layers_in_first_pipeline_stage" },
    { "model.num_layers_in_last_pipeline_stage", "dist.num_layers_in_last_pipeline_stage" },
    { "model.context_parallel_size", "dist.context_parallel_size" },
    { "model.sequence_parallel", "dist.sequence_parallel" },
    { "rng.seed", "train.seed" },
    { "validation.eval_iters", "train.eval_iters" },
    { "validation.eval_interval", "train.eval_interval" },
};

const struct mb_config_key *mb_pretrain_schema(size_t *n)
{
    *n = MB_ARRAY_LEN(pretrain_keys);
    return pretrain_keys;
}

const struct mb_config_alias *mb_pretrain_aliases(size_t *n)
{
    *n = MB_ARRAY_LEN(bridge_aliases);
    return bridge_aliases;
}

mb_config *mb_pretrain_config_new(void)
{
    mb_config *cfg = mb_config_new(pretrain_keys, MB_ARRAY_LEN(pretrain_keys));

    mb_config_set_aliases(cfg, bridge_aliases, MB_ARRAY_LEN(bridge_aliases));
    return cfg;
}
