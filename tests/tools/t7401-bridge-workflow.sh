#!/bin/sh
test_description='the bridge end to end: HF model -> mb checkpoint -> training -> HF model that transformers loads'
. "$(dirname "$0")/../lib/test-lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# A tiny Llama made by transformers in bf16 with a BPE tokenizer trained on the fortunes
# corpus. The user's path: convert it, tokenize a corpus with its tokenizer, train on
# from its weights, convert the result back, load it in transformers and sample from it.

test_expect_success 'transformers makes the model; mb-convert takes it in' '
    "$PY" "$ORACLE/hf_convert.py" make m "$TESTDATA/corpora/fortunes.jsonl" llama:bf16 2>err &&
    mb-convert --from hf --to h5 m/llama_bf16 conv 2>err
'

test_expect_success 'mb-preprocess tokenizes a corpus with the model directory'"'"'s tokenizer' '
    mb-preprocess --tokenizer m/llama_bf16 -w 2 -o corpus \
        "$TESTDATA/corpora/fortunes.jsonl" 2>err &&
    test -s corpus_text_document.bin
'

test_expect_success 'mb-pretrain trains on from the converted weights' '
    mb-pretrain --recipe "$MB_ROOT/tests/data/recipes/small.yaml" \
        checkpoint.pretrained_checkpoint=conv data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=m/llama_bf16 train.train_iters=6 train.eval_iters=0 \
        checkpoint.save=trained 2>train.log &&
    grep "model configuration from conv/iter_0000000.h5" train.log &&
    test "$(cat trained/latest)" = iter_0000006.h5
'

test_expect_success 'the trained checkpoint goes back to HF with the config and tokenizer files' '
    mb-convert --from h5 --to hf trained back 2>err &&
    for f in tokenizer.json tokenizer_config.json special_tokens_map.json; do
        test ! -f m/llama_bf16/$f || cmp m/llama_bf16/$f back/$f || exit 1
    done &&
    grep "\"dtype\": \"float32\"" back/config.json &&
    ! cmp -s m/llama_bf16/model.safetensors back/model.safetensors
'

test_expect_success 'transformers loads it; its logits equal mb'"'"'s on the trained checkpoint' '
    ckpt_logits trained m/tokens.npy dump &&
    "$PY" "$ORACLE/hf_convert.py" check - back dump --tokens m/tokens.npy >out 2>err;
    rc=$?; grep -v "^Loading" out; test $rc = 0
'

test_expect_success 'mb-generate samples text from the trained checkpoint with its tokenizer' '
    mb-generate trained --tokenizer back --prompt "The fortune" --max-new-tokens 12 \
        --seed 3 --temperature 0.8 --top-p 0.9 >text 2>err &&
    test -s text &&
    mb-generate trained --tokenizer back --prompt "The fortune" --max-new-tokens 12 \
        --seed 3 --temperature 0.8 --top-p 0.9 >text2 2>err &&
    cmp text text2
'

test_expect_success 'without --tokenizer, mb-generate uses the tokenizer files the checkpoint carries' '
    for ck in conv trained; do
        mb-generate $ck --tokenizer m/llama_bf16 --prompt "The fortune" -n 12 --greedy \
            >with_$ck 2>err &&
        mb-generate $ck --prompt "The fortune" -n 12 --greedy >carried_$ck 2>err &&
        test -s with_$ck && cmp with_$ck carried_$ck || exit 1
    done &&
    ! ls "${TMPDIR:-/tmp}"/mb-generate.* 2>/dev/null
'

test_done
