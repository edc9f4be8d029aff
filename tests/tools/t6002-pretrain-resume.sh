#!/bin/sh
test_description='mb-pretrain: stop and resume reproduces the straight run bitwise, across DP sizes too'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: corpus, and 8 iterations straight with a checkpoint at the end' '
    make_corpus &&
    pretrain checkpoint.save=straight 2>straight.log &&
    test "$(cat straight/latest)" = iter_0000008.h5
'

test_expect_success '4 iterations, stop (exit_interval), resume to 8: same losses bitwise' '
    pretrain checkpoint.save=halves checkpoint.save_interval=4 train.exit_interval=4 2>first.log &&
    test "$(cat halves/latest)" = iter_0000004.h5 &&
    pretrain checkpoint.save=halves checkpoint.load=halves 2>second.log &&
    grep "resumed from halves/iter_0000004.h5: iteration 4" second.log &&
    same_losses second.log straight.log 0 &&
    test $(losses second.log | wc -l) -eq 4
'

test_expect_success 'the resumed run ends with bitwise the same weights and Adam moments' '
    "$PY" "$ORACLE/ckpt_compare.py" halves/iter_0000008.h5 straight/iter_0000008.h5
'

test_expect_success 'checkpoint.load on a directory without latest starts from scratch' '
    mkdir empty &&
    pretrain checkpoint.load=empty train.train_iters=2 scheduler.lr_warmup_iters=1 2>fresh.log &&
    grep "has no .latest.: starting from scratch" fresh.log
'

test_expect_success 'saved with DP=2, resumed with DP=1: the DP=1 straight run to 1e-5' '
    pretrain_mpi 2 checkpoint.save=dp2 checkpoint.save_interval=4 \
        train.exit_interval=4 2>dp2.log &&
    pretrain checkpoint.save=dp2 checkpoint.load=dp2 2>dp2to1.log &&
    same_losses dp2to1.log straight.log 1e-5 &&
    "$PY" "$ORACLE/ckpt_compare.py" dp2/iter_0000008.h5 straight/iter_0000008.h5 1e-5
'

test_expect_success 'saved with DP=1, resumed with DP=2 (collective read): same to 1e-5' '
    cp -r halves h2 && echo iter_0000004.h5 >h2/latest &&
    pretrain_mpi 2 checkpoint.save=h2 checkpoint.load=h2 2>dp1to2.log &&
    grep "resumed from h2/iter_0000004.h5" dp1to2.log &&
    same_losses dp1to2.log straight.log 1e-5
'

test_done
