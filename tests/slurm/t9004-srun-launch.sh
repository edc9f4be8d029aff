#!/bin/sh
test_description='mb-pretrain under a real srun: two tasks that do not form one MPI world
(srun --mpi=none -n 2) are refused before any checkpoint is written; with srun --mpi=pmix
they train together, and a rank that stops responding ends the step through the
watchdog (dist.timeout_minutes), naming the rank and the collective'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
. "$MB_ROOT/tests/slurm/slurm-lib.sh"

# job SCRIPT_BODY: sbatch a 2-task batch script running SCRIPT_BODY in this directory;
# prints the job id. Its output goes to job-ID.log.
job() {
    cat >job.sh <<-EOF
	#!/bin/sh
	#SBATCH --ntasks=2 --overcommit --output=$TRASH/job-%j.log
	cd "$TRASH" || exit 1
	export PATH="$MB_ROOT/bin:\$PATH" OMP_NUM_THREADS=1
	$1
	EOF
    sbatch --parsable job.sh | sed 's/;.*//'
}

test_expect_success 'setup: Slurm is up; corpus and tokenizer' '
    need_slurm &&
    make_corpus
'

test_expect_success 'srun --mpi=none -n 2: both tasks exit 1 naming the launcher, nothing saved' '
    id=$(job "srun --mpi=none -n 2 mb-pretrain --recipe $SMALL_RECIPE data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json train.train_iters=2 checkpoint.save=none_ck") &&
    test "$(wait_job $id)" = FAILED &&
    test $(grep -c "error: launched as 2 tasks (SLURM_STEP_NUM_TASKS=2, this is task [01]) but MPI sees 1 process" job-$id.log) = 2 &&
    test_path_is_missing none_ck
'

test_expect_success 'srun --mpi=pmix -n 2: one world of 2 ranks, the losses of a single process' '
    id=$(job "srun --mpi=pmix -n 2 mb-pretrain --recipe $SMALL_RECIPE data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json train.train_iters=3 logger.log_interval=1") &&
    test "$(wait_job $id)" = COMPLETED &&
    grep "world size 2, data-parallel size 2" job-$id.log &&
    pretrain train.train_iters=3 logger.log_interval=1 2>one.log &&
    sed -n "s/.*iter *\([0-9]*\)\/3 | loss \([^ ]*\) .*/\1 \2/p" job-$id.log >two.loss &&
    sed -n "s/.*iter *\([0-9]*\)\/3 | loss \([^ ]*\) .*/\1 \2/p" one.log >one.loss &&
    test $(wc -l <one.loss) = 3 &&
    awk "NR == FNR { a[\$1] = \$2; next } { d = a[\$1] - \$2; if (d < 0) d = -d; if (d > 1e-5 * \$2) bad++ } END { exit bad > 0 }" one.loss two.loss
'

# Task 1 stops itself (SIGSTOP) once the run is under way; rank 0 must give up after
# 0.05 min in a collective and end the step, instead of waiting for the job's time limit.
test_expect_success 'srun --mpi=pmix, rank 1 stopped: the watchdog ends the step with the message' '
    id=$(job "srun --mpi=pmix -n 2 sh -c '\''if [ \"\$SLURM_PROCID\" = 1 ]; then (sleep 4; kill -STOP \$\$) & fi; exec mb-pretrain --recipe $SMALL_RECIPE data.data_path=corpus_text_document tokenizer.tokenizer_model=tok.json train.train_iters=100000 dist.timeout_minutes=0.05'\''") &&
    test "$(wait_job $id 90)" = FAILED &&
    grep "error: rank 0: .* did not complete in 0.05 min" job-$id.log
'

test_done
