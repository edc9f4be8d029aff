#!/bin/sh
test_description='a rank that stops responding makes the others abort after dist.timeout_minutes, naming rank and operation'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# dist_stall (tests/helpers) runs the collectives of dist/comm.c with one rank sleeping or
# stopped (SIGSTOP) before the last one. Every MPI run is bounded by timeout(1), so a
# watchdog that does not fire fails the test instead of hanging it. The rank that aborts
# never gets past the collective; a stopped rank that mpirun continues (SIGCONT, then
# SIGTERM) may still complete it against the aborting rank's last progress, so only the
# aborting rank's "done" is ruled out there.

# No process of this test may be left, stopped or running (zombies reaped late are gone).
no_leftovers() {
    sleep 0.5
    if ps -eo stat=,args= | grep -v "^Z" | grep -q "[d]ist_stall.*$1"; then
        ps -eo pid=,stat=,args= | grep "[d]ist_stall" >&2
        return 1
    fi
}

test_expect_success 'quick collectives for longer than the timeout in all: no alarm' '
    timeout 60 $MPIRUN -np 2 dist_stall 0.02 floats 150 1 0 >out 2>err &&
    test $(grep -c "done" out) = 2 && ! grep error err
'

test_expect_success 'rank 1 stopped: rank 0 aborts the job after 0.02 min, naming itself and the all-reduce' '
    start=$(date +%s) &&
    test_expect_code 1 timeout 60 $MPIRUN -np 2 dist_stall 0.02 floats 3 1 stop >out 2>err &&
    end=$(date +%s) && test $((end - start)) -lt 20 &&
    grep "^dist_stall: \[r0\] error: rank 0: all-reduce of 1000 floats did not complete in 0.02 min (waited [0-9]*\.[0-9] s; rank 1 stopped responding?)" err &&
    ! grep "\[r1\] error" err && ! grep "rank 0: done" out &&
    no_leftovers "0.02 floats 3 1 stop"
'

for op in "agree:agreement (all-reduce of every rank.s status)" "counter:all-reduce of a counter" \
          "doubles:all-reduce of 1000 doubles" "barrier:barrier"; do
    name=${op%%:*} text=${op#*:}
    test_expect_success "3 ranks, rank 2 asleep before the last $name: the others abort naming it" "
        test_expect_code 1 timeout 60 \$MPIRUN -np 3 dist_stall 0.01 $name 2 2 10 >out 2>err &&
        grep 'error: rank [01]: $text did not complete in 0.01 min (waited [0-9]*\.[0-9] s; another rank stopped responding?)' err &&
        ! grep done out
    "
done

test_expect_success 'dist.timeout_minutes=0: no watchdog, a slow rank is waited for' '
    timeout 60 $MPIRUN -np 2 dist_stall 0 barrier 1 1 2 >out 2>err &&
    test $(grep -c "done" out) = 2
'

test_expect_success 'setup: a corpus' '
    make_corpus
'

test_expect_success 'mb-pretrain: the default is 30 minutes; a negative timeout is refused naming the key' '
    pretrain --print-config 2>/dev/null | sed -n "/^dist:/,/^[a-z]/p" | grep "timeout_minutes: 30" &&
    test_expect_code 1 pretrain dist.timeout_minutes=-1 2>err &&
    grep "error: command line: dist.timeout_minutes=-1: the timeout must be between 0 (none) and 1e7 minutes" err
'

# mb-pretrain over 2 ranks (under timeout(1), so nothing outlives the test); once
# iteration 3 is logged, rank 1 (a child of mpirun with OMPI_COMM_WORLD_RANK=1) gets
# SIGSTOP. Rank 0 must end the job within seconds of the 0.05-minute timeout, naming the
# collective it was in (where the stop lands decides which one).
test_expect_success 'mb-pretrain, rank 1 stopped mid-run: the job ends after 0.05 min with the message' '
    timeout 60 $MPIRUN -np 2 mb-pretrain --recipe "$SMALL_RECIPE" \
        data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json \
        train.train_iters=3000 train.eval_interval=0 dist.timeout_minutes=0.05 2>log &
    job=$!
    i=0
    while ! grep -q "iter  *3/" log && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    rank1=
    for p in $(pgrep -P "$(pgrep -P $job)"); do
        tr "\0" "\n" </proc/$p/environ | grep -qx OMPI_COMM_WORLD_RANK=1 && rank1=$p
    done
    test -n "$rank1" && kill -STOP $rank1
    stopped=$(date +%s)
    wait $job
    rc=$?
    ended=$(date +%s)
    test -n "$rank1" && test $rc != 0 && test $rc != 124 && test $((ended - stopped)) -lt 20 &&
    grep "^mb-pretrain: \[r0\] error: rank 0: \(all-reduce\|agreement\|barrier\).* did not complete in 0.05 min (waited [0-9]*\.[0-9] s; rank 1 stopped responding?)" log &&
    ! grep "\[r1\] error" log && ! grep "iter  *3000/" log
'

test_done
