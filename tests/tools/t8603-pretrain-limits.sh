#!/bin/sh
test_description='mb-pretrain: sizes, counters and settings that cannot work are refused at once, naming the key'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

small() {
    mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document "$@"
}

# refused KEY=VALUE MESSAGE: exit 1 within 10 s, the error names the override and says MESSAGE.
refused() {
    arg=$1 msg=$2
    shift 2
    test_expect_code 1 timeout 10 mb-pretrain --recipe "$SMALL_RECIPE" \
        data.data_path=corpus_text_document "$arg" "$@" 2>err || return 1
    grep "^mb-pretrain: error: command line: $arg: .*$msg" err || { cat err; return 1; }
}

test_expect_success 'setup: a small real corpus' '
    head -200 "$TESTDATA/corpora/c4.jsonl" >c4.jsonl &&
    mb-preprocess -t bytes --append-eod -o corpus c4.jsonl 2>/dev/null
'

test_expect_success 'the issue'"'"'s cases: huge counters and sizes are errors at once (exit 1)' '
    refused train.train_iters=100000000000 "train.train_iters is 100000000000, more than mb.s bound of 2^31 - 1" &&
    refused model.max_position_embeddings=4294967296 "model.max_position_embeddings is 4294967296, more than the largest size mb handles (2^31 - 1)" &&
    refused train.eval_iters=4294967295 "train.eval_iters is 4294967295, more than" &&
    refused data.seq_length=4294967296 "data.seq_length is 4294967296" &&
    refused train.micro_batch_size=4294967296 "train.micro_batch_size is 4294967296"
'

test_expect_success 'sizes whose products need more memory than the machine has' '
    refused train.micro_batch_size=2000000000 "train.micro_batch_size: the activations of one micro-batch .* need at least [0-9.]* GiB, more than this machine.s memory" train.global_batch_size=2000000000 &&
    refused train.global_batch_size=2000000000 "train.global_batch_size: the token arrays of one global batch need at least" &&
    refused model.hidden_size=2000000000 "model.hidden_size: the model.s weights, gradients and Adam moments (fp32) need at least" &&
    refused model.vocab_size=2000000000 "model.vocab_size: the model.s weights" &&
    refused model.num_layers=1000000000 "model.num_layers: the model.s weights" &&
    refused train.train_iters=2000000000 "train.train_iters: the sample indices of the data (12 bytes a sample) need at least" train.global_batch_size=1024
'

test_expect_success 'settings that make the model non-finite from the start' '
    refused model.rotary_base=-10000 "model.rotary_base must be positive (it is -10000)" &&
    refused model.rotary_base=0 "model.rotary_base must be positive" &&
    refused model.layernorm_epsilon=0 "model.layernorm_epsilon must be positive (it is 0)" &&
    refused model.layernorm_epsilon=-1e-5 "model.layernorm_epsilon must be positive" &&
    refused model.rotary_percent=1.5 "model.rotary_percent must be in (0, 1\] (it is 1.5)" &&
    refused model.rotary_percent=0 "model.rotary_percent must be in (0, 1\]" &&
    refused model.init_method_std=-0.02 "model.init_method_std must be positive" &&
    refused model.final_logit_softcapping=-30 "model.final_logit_softcapping must be zero or more" &&
    refused model.hidden_size=0 "model.hidden_size must be positive (it is 0)" &&
    refused model.num_layers=-2 "model.num_layers must be positive (it is -2)" &&
    refused model.num_attention_heads=0 "model.num_attention_heads must be positive" &&
    refused model.ffn_hidden_size=-128 "model.ffn_hidden_size must be positive (it is -128)" &&
    refused model.vocab_size=-1 "model.vocab_size must be positive" &&
    refused train.micro_batch_size=0 "train.micro_batch_size must be positive (it is 0)" &&
    refused train.eval_iters=-1 "train.eval_iters must be zero or more"
'

test_expect_success 'RoPE settings do not matter without RoPE; learned positions train' '
    small model.position_embedding_type=learned_absolute model.rotary_base=-1 \
        train.train_iters=1 train.eval_iters=0 scheduler.lr_warmup_iters=0 2>ok.log &&
    grep "iter *1/1 " ok.log
'

test_expect_success 'a bad value in a recipe file is named by its file and line' '
    sed "s/^  hidden_size: 64/  hidden_size: -64/" "$SMALL_RECIPE" >neg.yaml &&
    line=$(grep -n "^  hidden_size:" neg.yaml | cut -d: -f1) &&
    test_expect_code 1 mb-pretrain --recipe neg.yaml data.data_path=corpus_text_document 2>err &&
    grep "^mb-pretrain: error: neg.yaml:$line: model.hidden_size must be positive (it is -64)" err
'

test_done
