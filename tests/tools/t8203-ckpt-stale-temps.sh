#!/bin/sh
test_description='mb-pretrain removes the temporaries of killed saves (iter_NNNNNNN.h5.tmp,
latest.tmp.PID) from checkpoint.save at start, with a log line, and nothing else'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: a checkpoint at iteration 2, then what killed saves leave' '
    make_corpus &&
    pretrain train.train_iters=4 scheduler.lr_warmup_iters=1 train.exit_interval=2 checkpoint.save=ck \
        2>first.log &&
    head -c 5000 /dev/urandom >ck/iter_0000004.h5.tmp &&
    echo iter_0000004.h5 >ck/latest.tmp.12345 &&
    for keep in notes.tmp iter_0000004.h5.tmp.bak iter_4.h5.tmp latest.tmp latest.tmp.12a \
                model.h5.tmp iter_00000004.h5.tmp latest.tmp.1.bak; do
        echo keep >ck/$keep || return 1
    done &&
    mkdir ck/iter_0000005.h5.tmp &&
    ln -s ../first.log ck/latest.tmp.777
'

test_expect_success 'the resumed run removes exactly the two, says so, and goes on' '
    pretrain train.train_iters=4 scheduler.lr_warmup_iters=1 checkpoint.save=ck \
        checkpoint.load=ck 2>second.log &&
    grep "removed ck/iter_0000004.h5.tmp, the temporary of a save that did not finish" second.log &&
    grep "removed ck/latest.tmp.12345, the temporary of a save that did not finish" second.log &&
    test $(grep -c "removed ck/" second.log) -eq 2 &&
    grep "resumed from ck/iter_0000002.h5" second.log &&
    test "$(cat ck/latest)" = iter_0000004.h5 &&
    for keep in notes.tmp iter_0000004.h5.tmp.bak iter_4.h5.tmp latest.tmp latest.tmp.12a \
                model.h5.tmp iter_00000004.h5.tmp latest.tmp.1.bak latest.tmp.777; do
        test -e ck/$keep || test -L ck/$keep || { echo "removed: $keep"; return 1; }
    done &&
    test -d ck/iter_0000005.h5.tmp &&
    "$PY" "$ORACLE/ckpt_latest_check.py" ck 4
'

test_expect_success 'a checkpoint.save directory that does not exist yet is fine' '
    pretrain train.train_iters=2 scheduler.lr_warmup_iters=1 checkpoint.save=new/dir 2>new.log &&
    test "$(cat new/dir/latest)" = iter_0000002.h5 &&
    ! grep "removed" new.log
'

test_done
