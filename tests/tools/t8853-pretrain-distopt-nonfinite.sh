#!/bin/sh
test_description='with the distributed optimizer a non-finite gradient in any shard stops the run, or is skipped, exactly as without it'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# lr 1e6 (t8202): the weights reach 1e6 at iteration 2 and the gradients of iteration 3
# overflow; with the distributed optimizer the overflow is in the shards' norm sum
DIST="ddp.use_distributed_optimizer=true"
run2() {
    pretrain_mpi 2 train.train_iters=10 checkpoint.save_interval=1 optimizer.lr=1e6 $DIST "$@"
}

test_expect_success 'setup' '
    make_corpus
'

test_expect_success 'DP2 distributed: both ranks stop at iteration 3, latest names iteration 2, finite' '
    test_expect_code 1 run2 checkpoint.save=stop 2>stop.log &&
    grep "\[r0\] error: iteration 3: the gradient norm is not finite" stop.log &&
    grep "\[r1\] error: iteration 3: the gradient norm is not finite" stop.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" stop 2 --no-tmp
'

test_expect_success 'DP2 distributed, overlap, skip_nonfinite_steps=2: 3 and 4 skipped without update, stop at 5' '
    test_expect_code 1 run2 ddp.overlap_grad_reduce=true ddp.bucket_size=1000 \
        checkpoint.save=skip train.skip_nonfinite_steps=2 2>skip.log &&
    grep "warning: iteration 3: the gradient norm is not finite .*(1 of train.skip_nonfinite_steps 2)" skip.log &&
    grep "warning: iteration 4: .*(2 of train.skip_nonfinite_steps 2)" skip.log &&
    grep "error: iteration 5: the gradient norm is not finite .*(more than train.skip_nonfinite_steps skipped)" skip.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" skip 4 --no-tmp &&
    "$PY" "$ORACLE/ckpt_compare.py" skip/iter_0000004.h5 skip/iter_0000002.h5 --only model &&
    "$PY" "$ORACLE/ckpt_compare.py" skip/iter_0000004.h5 skip/iter_0000002.h5 --only optim
'

test_done
