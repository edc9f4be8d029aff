#!/bin/sh
test_description='LoRA and DoRA: forward, loss and every adapter gradient match HF peft for every family'
. "$(dirname "$0")/../lib/test-lib.sh"

# model_dump --peft (tests/helpers) builds the mb model of a config with seeded random
# base weights and adapters on all four projections (B and DoRA's magnitudes moved off
# their start, so the adapters matter), runs forward and backward with the base frozen
# and dumps params, adapter gradients, logits and loss. tests/oracle/peft_model.py loads
# the base into the transformers class of the family, wraps it with peft's LoraConfig
# (use_dora for DoRA), sets lora_A/lora_B/lora_magnitude_vector from mb's fused adapters
# (A shared by q/k/v and gate/up, B and m split by rows) and checks logits, loss and the
# gradients of A, B and m to 1e-4 norm-wise relative error, and that neither side has a
# gradient for the base.

models="$MB_ROOT/tests/data/models"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 # small tensors: threads only cost
families="llama qwen2 qwen3 gemma2 gemma3 gpt2"

test_expect_success 'model_dump --peft: adapter gradients only, and peft.json' '
    for f in $families; do
        for k in lora dora; do
            model_dump "$models/$f.json" d_${f}_$k --peft $k --dim 8 --alpha 16 \
                --batch 2 --seq 16 --seed 7 >/dev/null || exit 1
        done
    done &&
    ls d_llama_dora/grads >grads &&
    test $(wc -l <grads) -eq 12 &&
    ! grep -v "\.adapter\." grads &&
    grep "\"peft\": \"dora\", \"dim\": 8" d_llama_dora/peft.json
'

# One run of the oracle (importing transformers and peft takes seconds): the good dumps
# must pass every check, and a copy of one with a wrong gradient of the shared A and of a
# magnitude must fail exactly those two.
test_expect_success 'setup: a dump with two wrong gradients' '
    cp -r d_qwen2_dora bad &&
    "$PY" -c "
import numpy as np
for name, i in ((\"decoder.layers.self_attention.linear_qkv.adapter.linear_in.weight\", 0),
                (\"decoder.layers.mlp.linear_fc1.adapter.weight_magnitude\", 1)):
    p = \"bad/grads/\" + name + \".npy\"
    g = np.load(p)
    g[i] *= 1.01
    np.save(p, g)
"
'

test_expect_success 'logits, loss and the gradients of A, B and m match HF peft' '
    dumps= &&
    for f in $families; do dumps="$dumps d_${f}_lora d_${f}_dora"; done &&
    test_expect_code 1 "$PY" "$ORACLE/peft_model.py" compare $dumps bad >out 2>err;
    grep "^not ok" out;
    test $(grep -c "^ok [0-9]* - d_" out) -eq 168 &&
    ! grep "^not ok [0-9]* - d_" out
'

test_expect_success 'the oracle caught the wrong gradients of a shared A and of a magnitude' '
    grep "^not ok [0-9]* - bad: .*linear_qkv.adapter.linear_in" out &&
    grep "^not ok [0-9]* - bad: .*linear_fc1.adapter.weight_magnitude" out &&
    test $(grep -c "^not ok" out) -eq 2
'

test_done
