#!/bin/sh
test_description='slurm/pretrain_llama.sh meets a real time limit: with --time=1 and
--signal=B:USR1@50 Slurm itself signals the batch shell before the limit; the ranks save,
the job requeues and the next run resumes from that checkpoint (then it is cancelled)'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

test_expect_success 'setup: Slurm is up; corpus' '
    need_slurm &&
    make_corpus
'

# slurmctld looks at time limits every 30 s: the signal, due 10 s after the start (once
# the ranks have set up their handlers), comes within 40 s, long before the 60 s limit
# and long before 5000 iterations are done
test_expect_success 'the time limit signal saves, requeues and resumes' '
    id=$(env -u MB_HOME RECIPE="$SMALL_RECIPE" DATA=corpus_text_document TOKENIZER=tok.json \
        CKPT=ckpt sbatch --parsable --time=1 --signal=B:USR1@50 \
        "$MB_ROOT/slurm/pretrain_llama.sh" train.train_iters=5000 train.eval_interval=1000 \
        logger.log_interval=50) &&
    id=${id%%;*} &&
    log=mb-pretrain-$id.log &&
    wait_restarts $id 1 90 &&
    wait_log $log "resumed from ckpt/iter_" 60 &&
    scancel $id &&
    test "$(wait_job $id)" = CANCELLED &&
    test "$(job_field $id Restarts)" = 1 &&
    grep "SIGUSR1 (time limit near): passing it to the ranks" $log &&
    k=$(sed -n "s/.*exit signal SIGUSR1 received: saved iteration \([0-9]*\), exiting/\1/p" $log) &&
    say "Slurm signalled the job; it saved iteration $k" &&
    test "$k" -gt 0 && test "$k" -lt 5000 &&
    grep "requeueing job $id to resume from ckpt/latest" $log &&
    grep "resumed from ckpt/iter_00*$k.h5: iteration $k," $log &&
    ! grep "DUE TO TIME LIMIT" $log
'

test_done
