#!/bin/sh
test_description='mb-pretrain: a real divergence (huge learning rates) stops the run with exit 1
naming the iteration and what went bad, on every rank; no non-finite checkpoint is saved and
latest keeps the last good one; train.skip_nonfinite_steps skips up to N such steps'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# lr 1e6: the weights reach 1e6 at iteration 2 and the gradients of iteration 3 overflow
# (the loss stays finite); lr 1e20: loss and gradients of iteration 3 both overflow
run() { pretrain train.train_iters=10 checkpoint.save_interval=1 "$@"; }

test_expect_success 'setup' '
    make_corpus
'

test_expect_success 'gradient norm NaN at iteration 3: exit 1, latest names iteration 2, finite' '
    test_expect_code 1 run optimizer.lr=1e6 checkpoint.save=grad 2>grad.log &&
    grep "error: iteration 3: the gradient norm is not finite (loss [0-9.e+-]*, grad norm NaN): the run diverged; stopping without applying or saving it$" grad.log &&
    test_path_is_missing grad/iter_0000003.h5 &&
    "$PY" "$ORACLE/ckpt_latest_check.py" grad 2 --no-tmp
'

test_expect_success 'loss and gradients NaN: both named' '
    test_expect_code 1 run optimizer.lr=1e20 checkpoint.save=loss 2>loss.log &&
    grep "error: iteration 3: the loss and the gradient norm are not finite (loss NaN, grad norm NaN)" loss.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" loss 2 --no-tmp
'

test_expect_success '2 ranks agree: both stop at iteration 3, latest names iteration 2' '
    test_expect_code 1 pretrain_mpi 2 train.train_iters=10 checkpoint.save_interval=1 \
        optimizer.lr=1e6 checkpoint.save=mpi 2>mpi.log &&
    grep "\[r0\] error: iteration 3: the gradient norm is not finite" mpi.log &&
    grep "\[r1\] error: iteration 3: the gradient norm is not finite" mpi.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" mpi 2 --no-tmp
'

test_expect_success 'an update that overflows the weights (finite gradients) is not saved' '
    test_expect_code 1 run optimizer.lr=1e39 checkpoint.save=over 2>over.log &&
    grep "error: over: iteration 2: the weights or Adam moments are not finite; the run diverged and is not saved" over.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" over 1 --no-tmp
'

test_expect_success 'skip_nonfinite_steps=2: iterations 3 and 4 skipped without update, stop at 5' '
    test_expect_code 1 run optimizer.lr=1e6 checkpoint.save=skip train.skip_nonfinite_steps=2 \
        2>skip.log &&
    grep "warning: iteration 3: the gradient norm is not finite .*: skipped, no update (1 of train.skip_nonfinite_steps 2)" skip.log &&
    grep "warning: iteration 4: .*(2 of train.skip_nonfinite_steps 2)" skip.log &&
    grep "iter      3/10 | .* | skipped 1$" skip.log &&
    grep "error: iteration 5: the gradient norm is not finite .*(more than train.skip_nonfinite_steps skipped)" skip.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" skip 4 --no-tmp &&
    "$PY" "$ORACLE/ckpt_compare.py" skip/iter_0000004.h5 skip/iter_0000002.h5 --only model &&
    "$PY" "$ORACLE/ckpt_compare.py" skip/iter_0000004.h5 skip/iter_0000002.h5 --only optim
'

test_expect_success 'check_for_nan_in_loss_and_grad=false trains on through NaN (Megatron'"'"'s --no-check...)' '
    pretrain train.train_iters=6 optimizer.lr=1e6 train.check_for_nan_in_loss_and_grad=false \
        2>off.log &&
    grep "iter      6/6 | loss -*NAN" off.log
'

test_expect_success 'train.skip_nonfinite_steps must not be negative' '
    test_expect_code 1 run train.skip_nonfinite_steps=-1 2>neg.log &&
    grep "train.skip_nonfinite_steps=-1: train.skip_nonfinite_steps must be 0 or positive" neg.log
'

test_done
