#!/bin/sh
test_description='slurm/pretrain_llama.sh under sbatch, submitted from outside the checkout: a
job that finishes is not requeued; SIGUSR1 to the batch shell (what --signal=B:USR1@N
sends before the time limit) saves the running step, requeues the job, resumes from latest
and completes with the losses of the uninterrupted job, bitwise; after the last iteration
it does not requeue'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

ITERS=30
# job SCRIPT [VAR=VALUE...]: submit SCRIPT for the same job each time (2 ranks, the script's
# default; the test recipe and this corpus), with no MB_HOME; prints the job id
job() {
    script=$1
    shift
    id=$(env -u MB_HOME RECIPE=small.yaml DATA=corpus_text_document TOKENIZER=tok.json "$@" \
        sbatch --parsable "$script" train.train_iters=$ITERS train.eval_interval=10) &&
    echo "${id%%;*}"
}

# iteration and loss of every training and validation line of a job log, by iteration
all_losses() {
    sed -n -e 's/.*iter *\([0-9]*\)\/[0-9]* | loss \([^ ]*\) .*/\1 \2/p' \
        -e 's/.*validation at iter \([0-9]*\) | loss \([^ ]*\) .*/\1 val \2/p' "$1" | sort -n
}

test_expect_success 'setup: Slurm is up; corpus; the scripts installed under a prefix' '
    need_slurm &&
    make_corpus &&
    make -s -C "$MB_ROOT" install PREFIX="$TRASH/prefix" >install.log &&
    for s in pretrain_llama preprocess convert; do
        test -x prefix/share/mb/slurm/$s.sh &&
        grep -q "installed=.$TRASH/prefix/bin." prefix/share/mb/slurm/$s.sh || return 1
    done &&
    mkdir submit && cp corpus_text_document.* tok.json "$MB_ROOT/tests/data/recipes/small.yaml" submit/
'

# the installed copy finds the installed tools: not in PATH, no MB_HOME, and the submit
# directory is no checkout
test_expect_success 'a job that finishes its iterations: COMPLETED, exit 0, not requeued' '
    cd submit &&
    id=$(job "$TRASH/prefix/share/mb/slurm/pretrain_llama.sh" PATH=/usr/bin:/bin CKPT=straight) &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    test "$(job_field $id Restarts)" = 0 &&
    mv mb-pretrain-$id.log straight.log &&
    grep "pretrain_llama.sh: job $id, run 1: 2 ranks, $TRASH/prefix/bin/mb-pretrain" straight.log &&
    ! grep -e "exit signal" -e "time limit near" -e requeueing straight.log &&
    test "$(cat straight/latest)" = iter_00000$ITERS.h5 &&
    test $(all_losses straight.log | grep -vc val) = $ITERS
'

# the checkout's script from the same directory, the tools found in PATH
test_expect_success 'scancel --batch --signal=USR1 mid-run: saves that step, requeues, resumes, completes' '
    cd submit &&
    id=$(job "$MB_ROOT/slurm/pretrain_llama.sh" CKPT=ckpt) &&
    log=mb-pretrain-$id.log &&
    wait_log $log "iter  *5/$ITERS" &&
    scancel --batch --signal=USR1 $id &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    test "$(job_field $id Restarts)" = 1 &&
    mv $log signalled.log &&
    grep "pretrain_llama.sh: job $id, run 1: 2 ranks, $MB_ROOT/bin/mb-pretrain" signalled.log &&
    grep "SIGUSR1 (time limit near): passing it to the ranks" signalled.log &&
    k=$(sed -n "s/.*exit signal SIGUSR1 received: saved iteration \([0-9]*\), exiting/\1/p" signalled.log) &&
    say "signalled after iteration 5, saved iteration $k" &&
    test "$k" -ge 5 && test "$k" -lt $ITERS &&
    grep "saved checkpoint ckpt/iter_00000*$k.h5 at iteration $k " signalled.log &&
    test -f ckpt/iter_00000$(printf %02d $k).h5 &&
    grep "requeueing job $id to resume from ckpt/latest" signalled.log &&
    sed -n "/run 1:/,/run 2:/p" signalled.log >run1.log &&
    test "$(all_losses run1.log | grep -v val | tail -1 | cut -d" " -f1)" = "$k" &&
    grep "pretrain_llama.sh: job $id, run 2:" signalled.log &&
    grep "resumed from ckpt/iter_00000*$k.h5: iteration $k," signalled.log &&
    test "$(cat ckpt/latest)" = iter_00000$ITERS.h5
'

test_expect_success 'the losses of the requeued job are the uninterrupted job'"'"'s, bitwise' '
    cd submit &&
    all_losses straight.log >straight.losses &&
    all_losses signalled.log >signalled.losses &&
    test $(wc -l <straight.losses) -gt $ITERS &&
    diff straight.losses signalled.losses
'

test_expect_success 'and so are its final weights and Adam moments (h5py)' '
    cd submit &&
    "$PY" "$ORACLE/ckpt_latest_check.py" ckpt $ITERS --no-tmp &&
    "$PY" "$ORACLE/ckpt_compare.py" ckpt/iter_00000$ITERS.h5 straight/iter_00000$ITERS.h5
'

# the signal lands in the last iteration's validation and save (the run stops at that
# iteration: the one it would have ended at) or after the ranks are gone
test_expect_success 'SIGUSR1 after the last iteration: COMPLETED, not requeued' '
    cd submit &&
    id=$(job "$MB_ROOT/slurm/pretrain_llama.sh" CKPT=late) &&
    wait_log mb-pretrain-$id.log "iter  *$ITERS/$ITERS" &&
    scancel --batch --signal=USR1 $id &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    test "$(job_field $id Restarts)" = 0 &&
    grep "SIGUSR1 came after the last iteration: done, not requeued" mb-pretrain-$id.log &&
    ! grep -e requeueing -e "run 2:" mb-pretrain-$id.log &&
    test "$(cat late/latest)" = iter_00000$ITERS.h5
'

test_expect_success 'scancel --signal=USR1 (to the ranks only): they save and the job ends, not requeued' '
    cd submit &&
    id=$(job "$MB_ROOT/slurm/pretrain_llama.sh" CKPT=stop) &&
    wait_log mb-pretrain-$id.log "iter  *5/$ITERS" &&
    scancel --signal=USR1 $id &&
    test "$(wait_job $id)" = COMPLETED &&
    test "$(job_field $id ExitCode)" = 0:0 &&
    test "$(job_field $id Restarts)" = 0 &&
    k=$(sed -n "s/.*exit signal SIGUSR1 received: saved iteration \([0-9]*\), exiting/\1/p" \
        mb-pretrain-$id.log) &&
    test "$k" -ge 5 && test "$k" -lt $ITERS &&
    test "$(cat stop/latest)" = iter_00000$(printf %02d $k).h5 &&
    ! grep -e "time limit near" -e requeueing -e "run 2:" mb-pretrain-$id.log
'

test_expect_success 'a job whose mb-pretrain fails ends FAILED with its exit code, not requeued' '
    cd submit &&
    id=$(job "$MB_ROOT/slurm/pretrain_llama.sh" DATA=no_such_text_document CKPT=bad) &&
    test "$(wait_job $id)" = FAILED &&
    test "$(job_field $id ExitCode)" = 1:0 &&
    test "$(job_field $id Restarts)" = 0 &&
    grep "error: no_such_text_document.idx: cannot open" mb-pretrain-$id.log &&
    grep "mb-pretrain failed (exit 1): not requeued" mb-pretrain-$id.log
'

test_done
