#!/bin/sh
test_description='the distributed optimizer saves whole logical tensors: saved at DP2 it resumes at DP1 and DP4, saved at DP1 it resumes at DP2 and DP4 with it, all to the straight run'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# 20 iterations of the small Llama with checkpoints at 10 and 20
P20="train.train_iters=20 train.eval_iters=0 checkpoint.save_interval=10"
DIST="ddp.use_distributed_optimizer=true"

# resume DIR (a copy of a checkpoint directory at iteration 10) on RANKS ranks with ARGS,
# then check the continued losses and the final checkpoint against the straight run
resume() {
    dir=$1 ranks=$2
    shift 2
    if test "$ranks" = 1; then
        pretrain $P20 checkpoint.save=$dir checkpoint.load=$dir "$@" 2>$dir.log
    else
        pretrain_mpi "$ranks" $P20 checkpoint.save=$dir checkpoint.load=$dir "$@" 2>$dir.log
    fi &&
    grep "resumed from $dir/iter_0000010.h5: iteration 10" $dir.log &&
    test $(losses $dir.log | wc -l) -eq 10 &&
    same_losses $dir.log straight.log 1e-5 &&
    "$PY" "$ORACLE/ckpt_compare.py" $dir/iter_0000020.h5 straight/iter_0000020.h5 1e-5
}

test_expect_success 'setup: corpus; 20 iterations straight on one rank' '
    make_corpus &&
    pretrain $P20 checkpoint.save=straight 2>straight.log &&
    test -f straight/iter_0000010.h5 && test -f straight/iter_0000020.h5
'

test_expect_success 'DP2 with the distributed optimizer saves at 10: h5py reads the single-rank tensors, moments whole, to 1e-5' '
    pretrain_mpi 2 $P20 $DIST checkpoint.save=dp2 train.exit_interval=10 2>dp2.log &&
    test "$(cat dp2/latest)" = iter_0000010.h5 &&
    "$PY" "$ORACLE/ckpt_compare.py" dp2/iter_0000010.h5 straight/iter_0000010.h5 1e-5
'

test_expect_success 'saved at DP2 (distributed), resumed at DP1 (replicated): the straight run' '
    cp -r dp2 to1 && resume to1 1
'

test_expect_success 'saved at DP2 (distributed), resumed at DP4 (distributed, overlap): the straight run' '
    cp -r dp2 to4 && resume to4 4 $DIST ddp.overlap_grad_reduce=true ddp.bucket_size=5000
'

test_expect_success 'saved at DP1 (replicated), resumed at DP2 and DP4 with the distributed optimizer: the straight run' '
    cp -r straight from1to2 && echo iter_0000010.h5 >from1to2/latest && rm from1to2/iter_0000020.h5 &&
    resume from1to2 2 $DIST &&
    cp -r straight from1to4 && echo iter_0000010.h5 >from1to4/latest && rm from1to4/iter_0000020.h5 &&
    resume from1to4 4 $DIST
'

test_done
