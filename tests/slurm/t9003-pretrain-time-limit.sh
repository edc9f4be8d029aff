#!/bin/sh
test_description='slurm/pretrain_llama.sh meets a real time limit: with --time=2 and
--signal=B:USR1@45 Slurm itself signals the batch shell before the limit; the ranks save,
the job requeues and the next run resumes from that checkpoint (then it is cancelled)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

test_expect_success 'setup: Slurm is up; corpus' '
    need_slurm &&
    make_corpus
'

# slurmctld looks at time limits every 30 s and may signal up to 60 s early (sbatch(1)):
# with a limit of 120 s the signal, due at 75 s, comes after 15 s at the earliest (once
# the batch shell and the ranks have set their handlers: one sent as the job starts
# kills the shell) and within about 105 s, before the limit and long before 200000
# iterations are done (an idle 2-core machine runs about 140 a second)
test_expect_success 'the time limit signal saves, requeues and resumes' '
    id=$(env -u MB_HOME RECIPE="$SMALL_RECIPE" DATA=corpus_text_document TOKENIZER=tok.json \
        CKPT=ckpt sbatch --parsable --time=2 --signal=B:USR1@45 \
        "$MB_ROOT/slurm/pretrain_llama.sh" train.train_iters=200000 train.eval_interval=100000 \
        logger.log_interval=50) &&
    id=${id%%;*} &&
    log=mb-pretrain-$id.log &&
    wait_restarts $id 1 150 &&
    wait_log $log "resumed from ckpt/iter_" 60 &&
    scancel $id &&
    test "$(wait_job $id)" = CANCELLED &&
    test "$(job_field $id Restarts)" = 1 &&
    grep "SIGUSR1 (time limit near): passing it to the ranks" $log &&
    k=$(sed -n "s/.*exit signal SIGUSR1 received: saved iteration \([0-9]*\), exiting/\1/p" $log) &&
    say "Slurm signalled the job; it saved iteration $k" &&
    test "$k" -gt 0 && test "$k" -lt 200000 &&
    grep "requeueing job $id to resume from ckpt/latest" $log &&
    grep "resumed from ckpt/iter_00*$k.h5: iteration $k," $log &&
    ! grep "DUE TO TIME LIMIT" $log
'

test_done
