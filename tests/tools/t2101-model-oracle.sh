#!/bin/sh
test_description='mb model forward, loss and gradients match HF transformers for every family'
. "$(dirname "$0")/../lib/test-lib.sh"

# model_dump (tests/helpers) builds the mb model of a config with seeded random weights,
# runs forward and backward on a seeded batch and writes config, tokens, labels, loss
# mask, params, grads, logits and loss as .npy. tests/oracle/hf_model.py loads the same
# params into the transformers class of the family (fp32, eager attention) and checks
# logits, loss and every parameter gradient to 1e-4 norm-wise relative error.

models="$MB_ROOT/tests/data/models"
families="llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"

if ! test -f "$MB_ROOT/tests/helpers/model_dump.c"; then
    for f in $families; do
        test_skip "$f: mb model matches transformers" "tests/helpers/model_dump.c not written yet"
    done
    test_done
fi

for f in $families; do
    test_expect_success "$f: mb model_dump writes a complete dump" "
        model_dump '$models/$f.json' dump_$f --batch 2 --seq 16 --seed 7 &&
        test -f dump_$f/loss.npy &&
        test -f dump_$f/grads/decoder.final_layernorm.weight.npy
    "
done

test_expect_success 'logits, loss and every gradient match transformers' '
    dumps= &&
    for f in $families; do dumps="$dumps dump_$f"; done &&
    "$PY" "$ORACLE/hf_model.py" compare $dumps >out;
    rc=$?;
    cat out;
    test $rc = 0
'

test_done
