#!/bin/sh
test_description='mb-generate greedy equals transformers generate(do_sample=False) for every family'
. "$(dirname "$0")/../lib/test-lib.sh"

# ckpt_init writes a randomly initialised checkpoint of each test config (init std 0.3,
# so the argmax is never a near-tie; norm weights and biases moved off 1 and 0).
# tests/oracle/hf_generate.py loads the same weights into the transformers class of the
# family (hf_model.py's mapping; fp32, eager attention) and runs model.generate. The
# configs have sliding windows of 5 and 6 (Mistral, Gemma 2/3), so 42 positions go well
# past them; soft-caps, QK-norm, learned positions, tied output are all in the set.

models="$MB_ROOT/tests/data/models"
families="llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"
prompt="1 2 3 4 5 6 7 8 9 10"

test_expect_success 'setup: a random checkpoint per family' '
    for f in $families; do
        ckpt_init "$models/$f.json" ck_$f --std 0.3 --seed 3 || exit 1
    done &&
    ckpt_init "$models/qwen3.json" ck_bf16 --std 0.3 --seed 4 --bf16
'

test_expect_success 'transformers: 32 greedy tokens per family (no EOS)' '
    files= &&
    for f in $families; do files="$files ck_$f/iter_0000000.h5"; done &&
    "$PY" "$ORACLE/hf_generate.py" generate $files --prompt-ids "$prompt" \
        --max-new-tokens 32 >want 2>err &&
    test $(wc -l <want) = 8
'

i=0
for f in $families; do
    i=$((i + 1))
    test_expect_success "$f: mb-generate --greedy --ids equals transformers" "
        mb-generate ck_$f --prompt-ids '$prompt' --max-new-tokens 32 --greedy --ids \
            --ignore-eos >got 2>err &&
        test \$(wc -w <got) = 32 &&
        sed -n ${i}p want >want_$f &&
        diff want_$f got
    "
done

test_expect_success 'bf16 checkpoint: the widened weights give transformers tokens' '
    "$PY" "$ORACLE/hf_generate.py" generate ck_bf16/iter_0000000.h5 --prompt-ids "$prompt" \
        --max-new-tokens 32 >want 2>err &&
    mb-generate ck_bf16/iter_0000000.h5 --prompt-ids "$prompt" -n 32 --ids --ignore-eos >got &&
    diff want got
'

test_expect_success 'llama: both stop at the same EOS (id 256 comes at token 30)' '
    "$PY" "$ORACLE/hf_generate.py" generate ck_llama/iter_0000000.h5 --prompt-ids "$prompt" \
        --max-new-tokens 32 --eos-id 256 >want 2>err &&
    mb-generate ck_llama --prompt-ids "$prompt" -n 32 --ids --eos-id 256 >got &&
    diff want got &&
    test $(wc -w <got) -lt 32 && test "$(tr " " "\n" <got | tail -1)" = 256
'

test_expect_success 'the cache ends at max_position_embeddings: a warning, then stop' '
    mb-generate ck_gpt2 --prompt-ids "$prompt" -n 100 --ids --ignore-eos >got 2>err &&
    test $(wc -w <got) = 54 &&
    grep "max_position_embeddings (64)" err
'

test_done
