#!/bin/sh
test_description='mb-pretrain: the exit signal (SIGTERM, configured SIGUSR1, SIGINT) at a random
moment saves the finished iteration on every rank and exits 0; resume continues bitwise as
the uninterrupted run; a second signal aborts without damaging latest'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/lib/signal-lib.sh"

ITERS=80 # long enough that a signal sent at iteration 2-10 lands before the end, under load
run() { pretrain train.train_iters=$ITERS "$@"; }

# check_stop LOG DIR SIG: the run said it stopped on SIG and saved iteration K, latest
# names iter_K, a complete checkpoint; prints K
check_stop() {
    k=$(sed -n "s/.*exit signal $3 received: saved iteration \([0-9]*\), exiting/\1/p" "$1") &&
    test -n "$k" && test "$k" -lt $ITERS &&
    "$PY" "$ORACLE/ckpt_latest_check.py" "$2" "$k" --no-tmp >/dev/null &&
    echo "$k"
}

# resume_same LOG STRAIGHT_LOG DIR STRAIGHT_DIR [RANKS]: resume DIR to the end; losses
# after the stop and the final weights and moments bitwise equal the straight run's
resume_same() {
    if test -n "$5"; then
        pretrain_mpi "$5" train.train_iters=$ITERS checkpoint.save="$3" checkpoint.load="$3" 2>"$1"
    else
        run checkpoint.save="$3" checkpoint.load="$3" 2>"$1"
    fi &&
    grep "resumed from $3/iter_" "$1" &&
    same_losses "$1" "$2" 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" "$3/iter_00000$ITERS.h5" "$4/iter_00000$ITERS.h5"
}

test_expect_success 'setup: corpus; straight runs on 1 and 2 ranks' '
    make_corpus &&
    run checkpoint.save=straight 2>straight.log &&
    pretrain_mpi 2 train.train_iters=$ITERS checkpoint.save=straight2 2>straight2.log
'

test_expect_success 'SIGTERM (the default) at a random moment: saved, exit 0, resume bitwise' '
    start_run term.log train.train_iters=$ITERS checkpoint.save=term checkpoint.save_interval=5 &&
    stop_at term.log 2 8 TERM all &&
    wait $RUN_PID &&
    k=$(check_stop term.log term SIGTERM) && say "stopped at $k" &&
    resume_same term2.log straight.log term straight
'

test_expect_success 'train.exit_signal=USR1: SIGUSR1 saves and stops the same way' '
    start_run usr1.log train.train_iters=$ITERS checkpoint.save=usr1 train.exit_signal=USR1 &&
    stop_at usr1.log 2 8 USR1 all &&
    wait $RUN_PID &&
    check_stop usr1.log usr1 SIGUSR1 &&
    resume_same usr1b.log straight.log usr1 straight
'

test_expect_success '2 ranks, train.exit_signal=SIGUSR1 sent to every rank: resume bitwise' '
    start_run_mpi 2 m_all.log checkpoint.save=m_all train.exit_signal=SIGUSR1 \
        train.train_iters=$ITERS &&
    stop_at m_all.log 2 8 USR1 all &&
    wait $RUN_PID &&
    check_stop m_all.log m_all SIGUSR1 &&
    resume_same m_all2.log straight2.log m_all straight2 2
'

test_expect_success '2 ranks, SIGTERM to one rank only: all agree on the step, resume bitwise' '
    start_run_mpi 2 m_one.log checkpoint.save=m_one checkpoint.save_interval=3 \
        train.train_iters=$ITERS &&
    stop_at m_one.log 2 8 TERM one &&
    wait $RUN_PID &&
    check_stop m_one.log m_one SIGTERM &&
    resume_same m_one2.log straight2.log m_one straight2 2
'

test_expect_success 'SIGINT always stops cleanly; without checkpoint.save nothing is saved, exit 0' '
    start_run int.log train.train_iters=$ITERS train.exit_signal=SIGUSR2 &&
    stop_at int.log 2 5 INT all &&
    wait $RUN_PID &&
    grep "exit signal SIGINT received: iteration [0-9]* not saved (no checkpoint.save), exiting" \
        int.log
'

# Trial 1 stops the run and queues SIGINT and SIGTERM together: the second of the two is
# handled while the first is, and must abort. In trials 2-3 the second TERM comes 0-9 ms
# after the first: mostly while the run finishes its iteration or saves (it then dies at
# once), sometimes after it has exited cleanly; either way latest names a whole checkpoint.
test_expect_success 'a second signal aborts at once (non-zero); latest still names a whole checkpoint' '
    aborted=0 &&
    for trial in 1 2 3; do
        start_run twice$trial.log train.train_iters=$ITERS checkpoint.save=twice$trial \
            checkpoint.save_interval=2 &&
        wait_iter twice$trial.log 3 || return 1
        if test $trial = 1; then
            kill -STOP $RUN_PID && kill -INT $RUN_PID && kill -TERM $RUN_PID &&
            kill -CONT $RUN_PID
        else
            send TERM all && sleep "0.00$(random 10)" && send TERM all 2>/dev/null
        fi
        wait $RUN_PID
        rc=$?
        say "trial $trial: exit status $rc"
        if test $rc -ne 0; then
            grep "second signal: aborting at once" twice$trial.log &&
            aborted=$((aborted + 1))
        else
            test $trial != 1 &&
            grep "exit signal SIGTERM received: saved iteration" twice$trial.log
        fi &&
        "$PY" "$ORACLE/ckpt_latest_check.py" twice$trial --no-tmp || return 1
    done &&
    say "$aborted of 3 aborted"
'

test_expect_success 'train.exit_signal_handler=false: SIGTERM kills, temporaries removed, latest whole' '
    start_run off.log train.train_iters=$ITERS checkpoint.save=off checkpoint.save_interval=1 \
        train.exit_signal_handler=false &&
    wait_iter off.log 3 &&
    send TERM all &&
    test_expect_code 143 wait $RUN_PID &&
    ! grep "exit signal" off.log &&
    "$PY" "$ORACLE/ckpt_latest_check.py" off --no-tmp
'

test_expect_success 'train.exit_duration_in_mins: saves and exits 0 once the run has been up that long' '
    run checkpoint.save=dur train.train_iters=3000 train.exit_duration_in_mins=0.01 \
        train.eval_interval=0 logger.log_interval=100 2>dur.log &&
    k=$(sed -n "s/.*train.exit_duration_in_mins 0.01 reached (up [0-9.]* min): saved iteration \([0-9]*\), exiting/\1/p" dur.log) &&
    test -n "$k" && test "$k" -lt 3000 &&
    "$PY" "$ORACLE/ckpt_latest_check.py" dur "$k" --no-tmp
'

test_expect_success 'train.exit_signal: names with or without SIG, any case; others refused' '
    run train.train_iters=3 train.exit_signal=sigusr2 2>ok.log &&
    test_expect_code 1 run train.train_iters=3 train.exit_signal=SIGKILL 2>bad.log &&
    grep "error: command line: train.exit_signal=SIGKILL: train.exit_signal .SIGKILL.: use SIGTERM, SIGINT, SIGUSR1 or SIGUSR2" bad.log &&
    test_expect_code 1 run train.train_iters=3 train.exit_duration_in_mins=-1 2>neg.log &&
    grep "train.exit_duration_in_mins must be 0 (off) or positive" neg.log
'

# A signal the parent set to be ignored stays ignored (nohup's SIGHUP; SIGINT of a
# background job): the run goes on to the end and saves the last iteration only.
test_expect_success 'SIGINT and SIGHUP ignored by the parent (nohup, background job): run goes on' '
    (trap "" INT HUP && exec mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json train.train_iters=40 checkpoint.save=ign 2>ign.log) &
    RUN_PID=$! &&
    wait_for ign.log "iter *1/40" &&
    kill -INT $RUN_PID && kill -HUP $RUN_PID &&
    wait $RUN_PID &&
    test "$(cat ign/latest)" = iter_0000040.h5 &&
    ! grep "exit signal" ign.log
'

test_done
