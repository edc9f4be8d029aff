#!/bin/sh
test_description='an adapter-only checkpoint in mb-generate and ckpt_logits: the adapters on their base, as HF peft computes them'
. "$(dirname "$0")/../lib/test-lib.sh"

# ckpt_init writes a random base per test config (std 0.3, so the greedy argmax is never
# a near-tie); mb-pretrain trains LoRA (Llama) or DoRA (GPT-2: Conv1D in transformers)
# adapters on it for 3 iterations of mock data at a high learning rate, so that they
# change the output. tests/oracle/peft_model.py builds transformers + peft from the
# adapter checkpoint's base_checkpoint and /adapter (A shared, B and m split by rows) and
# checks mb's logits (ckpt_logits) to 1e-4 and mb-generate's greedy tokens.

models="$MB_ROOT/tests/data/models"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
prompt="1 2 3 4 5 6 7 8 9 10"

test_expect_success 'setup: a base per family and adapters trained on it' '
    for fk in llama:lora gpt2:dora; do
        f=${fk%:*} k=${fk#*:} &&
        ckpt_init "$models/$f.json" base_$f --std 0.3 --seed 3 &&
        mb-pretrain --recipe "$MB_ROOT/tests/data/recipes/small.yaml" data.mock=true \
            data.seq_length=16 train.train_iters=3 train.eval_iters=0 \
            scheduler.lr_warmup_iters=0 optimizer.lr=0.05 peft.peft=$k peft.dim=4 \
            checkpoint.pretrained_checkpoint=base_$f checkpoint.save=ad_$f 2>train_$f.log ||
            exit 1
    done &&
    "$PY" -c "import numpy as np; np.save(\"tok.npy\", (np.arange(24).reshape(2, 12) * 7 % 200).astype(\"<i4\"))"
'

test_expect_success 'ckpt_logits of the adapter checkpoints: PEFT'"'"'s logits to 1e-4' '
    ckpt_logits ad_llama tok.npy l_llama && ckpt_logits ad_gpt2 tok.npy l_gpt2 &&
    "$PY" "$ORACLE/peft_model.py" logits tok.npy ad_llama/iter_0000003.h5 l_llama/logits.npy \
        ad_gpt2/iter_0000003.h5 l_gpt2/logits.npy \
        --greedy-out want --prompt-ids "$prompt" --max-new-tokens 16 >out 2>err;
    rc=$?; cat out; test $rc = 0 && test $(grep -c "^ok" out) = 4
'

test_expect_success 'mb-generate --greedy with the adapters: PEFT'"'"'s tokens, not the base'"'"'s' '
    test $(wc -l <want) = 2 &&
    for f in llama gpt2; do
        mb-generate ad_$f --prompt-ids "$prompt" -n 16 --greedy --ids --ignore-eos >>got 2>err &&
        mb-generate base_$f --prompt-ids "$prompt" -n 16 --greedy --ids --ignore-eos >>base 2>err ||
        exit 1
    done &&
    diff want got &&
    ! diff -q got base
'

test_expect_success 'an adapter checkpoint whose base is gone: exit 1 naming the base' '
    mv base_llama away &&
    test_expect_code 1 mb-generate ad_llama --prompt-ids "$prompt" -n 4 --ids 2>err &&
    mv away base_llama &&
    grep "error: .*iter_0000003.h5: an adapter-only checkpoint whose base_checkpoint .*/base_llama/iter_0000000.h5. is not there" err
'

test_done
