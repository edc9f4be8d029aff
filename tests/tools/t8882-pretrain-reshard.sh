#!/bin/sh
test_description='mb-pretrain: saved at TP2 x DP2 with the distributed optimizer, resumed at TP1 DP1, TP4 DP1 and TP1 DP4, and the reverse: the straight run'"'"'s losses; h5py reads the same tensors whatever the layout'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The test model with 4 query groups (so TP 4 divides them). 8 iterations straight, or
# 4, a checkpoint, and 4 more from it under another layout: the continued losses must be
# the straight run's to 1e-5 (TP and DP sums in another order).
Q="model.num_query_groups=4"
DIST="ddp.use_distributed_optimizer=true"
FIRST="checkpoint.save_interval=4 train.exit_interval=4"

# save NAME NP TP ARGS...: the first 4 iterations on NP ranks at TP, saved in NAME
save() {
    name=$1 np=$2 tp=$3
    shift 3
    if test "$np" = 1; then
        pretrain $Q $FIRST checkpoint.save="$name" "$@" 2>"$name.log"
    else
        pretrain_mpi "$np" $Q $FIRST dist.tensor_model_parallel_size="$tp" \
            checkpoint.save="$name" "$@" 2>"$name.log"
    fi
}

# resume FROM NP TP ARGS...: iterations 5-8 from checkpoint FROM; the losses must be the
# straight run's
resume() {
    from=$1 np=$2 tp=$3
    shift 3
    log="r_${from}_${np}_$tp.log"
    if test "$np" = 1; then
        pretrain $Q checkpoint.load="$from" "$@" 2>"$log"
    else
        pretrain_mpi "$np" $Q dist.tensor_model_parallel_size="$tp" checkpoint.load="$from" \
            "$@" 2>"$log"
    fi &&
    grep -q "resumed from $from/iter_0000004.h5: iteration 4" "$log" &&
    same_losses "$log" straight.log 1e-5
}

test_expect_success 'setup: the straight run; checkpoints at iteration 4 under four layouts' '
    make_corpus &&
    pretrain $Q 2>straight.log &&
    save ck22 4 2 $DIST &&
    save ck11 1 1 &&
    save ck41 4 4 &&
    save ck14 4 1 $DIST &&
    mb-ckpt info ck22 | grep "^layout: TP 2, CP 1, DP 2, PP 1, distributed optimizer on\$" &&
    mb-ckpt info ck41 | grep "^layout: TP 4, CP 1, DP 1, PP 1, distributed optimizer off\$"
'

test_expect_success 'h5py: every layout saved the same names, shapes and values (weights and moments, 1e-5 relative)' '
    for ck in ck22 ck41 ck14; do
        h5ls -r ck11/iter_0000004.h5 >a && h5ls -r $ck/iter_0000004.h5 >b && diff a b &&
        "$PY" -c "
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
checked = 0
for n in names:
    if n.startswith((\"model/\", \"optim/exp_avg\")):
        x, y = a[n][()], b[n][()]
        # relative Frobenius error: Adam turns the rounding noise of a gradient near 0
        # (sums in another order) into a step of up to lr, so a single element can differ
        # by more than 1e-5 of the tensor'"'"'s largest (embedding rows no token used)
        if x.shape != y.shape or np.linalg.norm(x - y) > 1e-5 * np.linalg.norm(x):
            sys.exit(sys.argv[2] + \": \" + n + \" differs\")
        checked += 1
assert checked > 20, checked
" ck11/iter_0000004.h5 $ck/iter_0000004.h5 || return 1
    done
'

test_expect_success 'TP2 x DP2 (distributed optimizer) resumes at TP1 DP1' '
    resume ck22 1 1
'
test_expect_success 'TP2 x DP2 (distributed optimizer) resumes at TP4 DP1' '
    resume ck22 4 4
'
test_expect_success 'TP2 x DP2 (distributed optimizer) resumes at TP1 DP4 (distributed)' '
    resume ck22 4 1 $DIST
'
test_expect_success 'TP1 DP1, TP4 DP1 and TP1 DP4 (distributed) resume at TP2 x DP2 (distributed)' '
    resume ck11 4 2 $DIST && resume ck41 4 2 $DIST && resume ck14 4 2 $DIST
'

test_done
