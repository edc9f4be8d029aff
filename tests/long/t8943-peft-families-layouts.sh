#!/bin/sh
test_description='LoRA and DoRA on every family: HF peft on all of them, with all and with some targets; TP2, TP4 x DP2 with sequence parallelism, the distributed optimizer and overlapped buckets equal one process'
# The full version of tests/tools/t8940 and t8941 (which run a subset in the quick suite):
# the HF peft oracle on the 8 families, with the four targets and with linear_qkv and
# linear_fc1 only; then per family a base of 4 query groups (so TP4 can cut them) and
# LoRA and DoRA runs on it, on one process and on TP2 and TP4 x DP2 (sequence parallel,
# distributed optimizer, overlapped gradient buckets), checkpoints within 1e-5. A few
# minutes on 2 cores.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

models="$MB_ROOT/tests/data/models"
families="llama mistral qwen2 qwen3 gemma gemma2 gemma3 gpt2"

test_expect_success 'HF peft: every family, all targets and linear_qkv + linear_fc1 only' '
    dumps= &&
    for f in $families; do
        for k in lora dora; do
            model_dump "$models/$f.json" all_${f}_$k --peft $k --dim 8 --alpha 16 >/dev/null &&
            model_dump "$models/$f.json" some_${f}_$k --peft $k --dim 4 --alpha 8 --seed 11 \
                --targets linear_qkv,linear_fc1 >/dev/null || exit 1
            dumps="$dumps all_${f}_$k some_${f}_$k"
        done
    done &&
    "$PY" "$ORACLE/peft_model.py" compare $dumps >out 2>err;
    rc=$?; grep -v "^ok" out; test $rc = 0
'

test_expect_success 'setup: a real corpus, a trained tokenizer, token files' '
    make_corpus
'

for family in $families; do
    test_expect_success "$family: a base of 4 query groups" '
        pretrain train.train_iters=4 train.eval_iters=0 $(family_keys '$family') \
            model.num_query_groups=4 checkpoint.save=base_'$family' 2>/dev/null
    '
    for k in lora dora; do
        run="train.train_iters=6 train.eval_iters=0 peft.dim=8 peft.peft=$k \
             checkpoint.pretrained_checkpoint=base_$family"
        test_expect_success "$family $k: TP2, TP4 x DP2 (SP, distributed optimizer, overlap) = one process" '
            pretrain '"$run"' checkpoint.save='$family.$k'.1 2>'$family.$k'.1.log &&
            pretrain_mpi 2 '"$run"' dist.tensor_model_parallel_size=2 \
                checkpoint.save='$family.$k'.tp2 2>'$family.$k'.tp2.log &&
            pretrain_mpi 8 '"$run"' dist.tensor_model_parallel_size=4 dist.sequence_parallel=true \
                ddp.use_distributed_optimizer=true ddp.overlap_grad_reduce=true \
                ddp.bucket_size=2000 checkpoint.save='$family.$k'.tp4 2>'$family.$k'.tp4.log &&
            for x in tp2 tp4; do
                same_losses '$family.$k'.$x.log '$family.$k'.1.log 1e-5 &&
                "$PY" "$ORACLE/ckpt_compare.py" '$family.$k'.$x/iter_0000006.h5 \
                    '$family.$k'.1/iter_0000006.h5 1e-5 || exit 1
            done
        '
    done
done

test_done
