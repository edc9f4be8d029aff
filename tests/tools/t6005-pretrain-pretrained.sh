#!/bin/sh
test_description='mb-pretrain: checkpoint.pretrained_checkpoint starts from stored weights and model configuration'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: corpus, and a run of 8 iterations to start from' '
    make_corpus &&
    pretrain checkpoint.save=base 2>base.log
'

# With lr 0 AdamW leaves the weights exactly as they are, so the new run's checkpoint
# must hold the pretrained weights bitwise, though its recipe asks for another size.
test_expect_success 'lr 0: the weights come through bitwise; the model size is the checkpoint'"'"'s' '
    pretrain checkpoint.pretrained_checkpoint=base model.hidden_size=128 model.num_layers=3 \
        optimizer.lr=0 optimizer.min_lr=0 train.train_iters=1 train.eval_iters=0 \
        scheduler.lr_warmup_iters=0 \
        checkpoint.save=next 2>next.log &&
    grep "model configuration from base/iter_0000008.h5" next.log &&
    grep "loaded the weights of base/iter_0000008.h5" next.log &&
    grep "iter *1/1 " next.log &&
    "$PY" "$ORACLE/ckpt_compare.py" --only model next/iter_0000001.h5 base/iter_0000008.h5 &&
    "$PY" -c "import h5py, sys; s = h5py.File(sys.argv[1])[sys.argv[2]].shape; sys.exit(s != (2, 128, 64))" \
        next/iter_0000001.h5 /model/decoder/layers/self_attention/linear_qkv/weight
'

test_expect_success 'it trains on from there: the first loss is the base run'"'"'s level, not a fresh model'"'"'s' '
    pretrain checkpoint.pretrained_checkpoint=base train.train_iters=2 train.eval_iters=0 scheduler.lr_warmup_iters=0 \
        2>cont.log &&
    pretrain train.train_iters=2 train.eval_iters=0 scheduler.lr_warmup_iters=0 2>fresh.log &&
    first_cont=$(losses cont.log | awk "NR == 1 { print \$2 }") &&
    first_fresh=$(losses fresh.log | awk "NR == 1 { print \$2 }") &&
    last_base=$(losses base.log | awk "END { print \$2 }") &&
    echo "# first loss: continued $first_cont, fresh $first_fresh, base ended at $last_base" &&
    awk -v c="$first_cont" -v f="$first_fresh" -v b="$last_base" \
        "BEGIN { exit !(c < f - 0.3 && c < b + 0.5) }"
'

test_expect_success 'checkpoint.load wins once it holds a checkpoint' '
    pretrain checkpoint.pretrained_checkpoint=base checkpoint.load=next checkpoint.save=next \
        train.train_iters=2 train.eval_iters=0 scheduler.lr_warmup_iters=0 \
        scheduler.override_opt_param_scheduler=true 2>resumed.log &&
    grep "resumed from next/iter_0000001.h5: iteration 1" resumed.log &&
    ! grep "loaded the weights" resumed.log
'

test_expect_success 'a missing pretrained checkpoint is an error naming it' '
    test_expect_code 1 pretrain checkpoint.pretrained_checkpoint=nothing-here 2>err.log &&
    grep "nothing-here" err.log && grep "no checkpoint there" err.log
'

test_done
