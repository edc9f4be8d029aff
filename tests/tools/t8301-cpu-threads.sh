#!/bin/sh
test_description='thread counts default to the CPUs the process may use (affinity), OMP_NUM_THREADS wins'
. "$(dirname "$0")/../lib/test-lib.sh"

# taskset (util-linux) restricts the affinity mask as Slurm's task binding and mpirun's
# --bind-to core do; nproc --all is the node's count, which the old defaults used.
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS
node_cpus=$(nproc --all)

test_expect_success 'setup: a corpus and a checkpoint' '
    cp "$TESTDATA/corpora/fortunes.jsonl" corpus.jsonl &&
    ckpt_init "$MB_ROOT/tests/data/models/llama.json" ck --seed 1
'

if [ "$node_cpus" -gt 1 ]; then
    test_expect_success 'mb-preprocess under taskset -c 0: 1 worker, not one per CPU of the node' '
        taskset -c 0 mb-preprocess -o one corpus.jsonl 2>err &&
        grep "1 rank x 1 worker)" err
    '
    test_expect_success 'mb-generate under taskset -c 0: 1 thread' '
        taskset -c 0 mb-generate ck --prompt-ids "5 6 7" -n 2 --ids >out 2>err &&
        grep "new tokens in .* (1 thread)" err
    '
    test_expect_success 'mpirun -np 2 binds each rank to a core: 1 worker per rank' '
        $MPIRUN -np 2 mb-preprocess -o two corpus.jsonl 2>err &&
        grep "2 ranks x 1 worker)" err && cmp one_text_document.bin two_text_document.bin
    '
else
    test_skip 'affinity below the node count' 'this machine has a single CPU'
fi

test_expect_success 'without a mask: every CPU the process may use' '
    n=$(nproc) &&
    mb-preprocess -o all corpus.jsonl 2>err &&
    if [ $n = 1 ]; then grep "1 rank x 1 worker)" err; else grep "1 rank x $n workers)" err; fi &&
    mb-generate ck --prompt-ids "5 6 7" -n 2 --ids >out 2>err &&
    if [ $n = 1 ]; then grep "(1 thread)" err; else grep "($n threads)" err; fi
'

test_expect_success 'OMP_NUM_THREADS and --workers win over the mask' '
    OMP_NUM_THREADS=3 taskset -c 0 mb-generate ck --prompt-ids "5 6 7" -n 2 --ids >out3 2>err &&
    grep "(3 threads)" err && cmp out out3 &&
    taskset -c 0 mb-preprocess -w 3 -o w3 corpus.jsonl 2>err &&
    grep "1 rank x 3 workers)" err
'

test_expect_success 'the help says so' '
    mb-preprocess --help | grep -- "--workers N .*default: the CPUs this process may use"
'

test_done
