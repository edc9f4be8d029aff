#!/bin/sh
test_description='tasks that do not form one MPI world (srun --mpi=none -n 2) are refused; real launches run'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The launchers' variables are faked as srun, mpirun and MPICH's mpiexec set them: srun
# sets SLURM_STEP_NUM_TASKS and SLURM_PROCID for the tasks of a step (and SLURM_NTASKS to
# the step's count), the batch script itself has only the job's SLURM_NTASKS and
# SLURM_PROCID=0; PMI launchers set PMI_SIZE and PMI_RANK. Each case starts from an
# environment without any of them, so the suite gives the same answer inside a job.
bare() {
    env -u SLURM_STEP_NUM_TASKS -u SLURM_NTASKS -u SLURM_NPROCS -u SLURM_PROCID \
        -u SLURM_STEP_ID -u PMI_SIZE -u PMI_RANK -u PMIX_RANK -u OMPI_COMM_WORLD_SIZE \
        -u OMPI_COMM_WORLD_RANK "$@"
}

# train "VAR=VALUE ..." [KEY=VALUE ...]: two iterations of the small recipe in that environment
train() {
    vars=$1
    shift
    bare $vars mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json train.train_iters=2 scheduler.lr_warmup_iters=1 "$@"
}

test_expect_success 'setup' '
    make_corpus
'

test_expect_success 'srun --mpi=none -n 2: both tasks exit 1 with the reason; no checkpoint' '
    train "SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 SLURM_PROCID=0" checkpoint.save=ck 2>err0 &
    pid0=$!
    train "SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 SLURM_PROCID=1" checkpoint.save=ck 2>err1 &
    pid1=$!
    wait $pid0
    rc0=$?
    wait $pid1
    rc1=$?
    test $rc0 = 1 && test $rc1 = 1 &&
    grep "^mb-pretrain: error: launched as 2 tasks (SLURM_STEP_NUM_TASKS=2, this is task 0) but MPI sees 1 process: .*srun --mpi=pmix or mpirun" err0 &&
    grep "launched as 2 tasks (SLURM_STEP_NUM_TASKS=2, this is task 1) but MPI sees 1 process" err1 &&
    ! grep "iter " err0 err1 &&
    test_path_is_missing ck
'

test_expect_success 'mb-preprocess and mb-convert refuse the same way and write nothing' '
    test_expect_code 1 bare SLURM_STEP_NUM_TASKS=4 SLURM_PROCID=3 \
        mb-preprocess -o out corpus.jsonl 2>err &&
    grep "^mb-preprocess: error: launched as 4 tasks (SLURM_STEP_NUM_TASKS=4, this is task 3)" err &&
    test_no_files "out_*" &&
    test_expect_code 1 bare SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=0 \
        mb-convert --to hf ck_none.h5 hf_out 2>err &&
    grep "^mb-convert: error: launched as 2 tasks" err && test_path_is_missing hf_out
'

test_expect_success 'independent copies on purpose: env -u SLURM_STEP_NUM_TASKS lets a task run' '
    bare SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=1 env -u SLURM_STEP_NUM_TASKS \
        mb-preprocess -o shard1 corpus.jsonl 2>err &&
    test -s shard1_text_document.idx
'

test_expect_success 'another MPI launcher (PMI_SIZE=2, e.g. MPICH mpiexec): exit 1 naming it' '
    test_expect_code 1 train "PMI_SIZE=2 PMI_RANK=1" 2>err &&
    grep "launched as 2 tasks (PMI_SIZE=2, this is task 1) but MPI sees 1 process" err
'

test_expect_success 'a step of 1 task inside a 4-task allocation trains' '
    train "SLURM_STEP_NUM_TASKS=1 SLURM_NTASKS=4 SLURM_PROCID=0" checkpoint.save=ck1 2>err &&
    grep "iter *2/2" err && test -f ck1/latest
'

test_expect_success 'a tool run directly in a 4-task batch script (job variables only) trains' '
    train "SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_PROCID=0" 2>err && grep "iter *2/2" err
'

test_expect_success 'mpirun -np 2 inside an allocation (ranks inherit Slurm variables) trains' '
    bare SLURM_NTASKS=2 SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=1 $MPIRUN -np 2 \
        mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        tokenizer.tokenizer_model=tok.json train.train_iters=2 scheduler.lr_warmup_iters=1 \
        checkpoint.save=ck2 2>err &&
    grep "\[r0\] iter *2/2" err && test -f ck2/latest && ! grep "launched as" err
'

test_expect_success 'a single process with no launcher variables trains' '
    train "" 2>err && grep "iter *2/2" err
'

test_done
