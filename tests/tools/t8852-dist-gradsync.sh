#!/bin/sh
test_description='train/gradsync: bucketed, non-blocking and sharded gradient reductions against one MPI_Allreduce of the whole buffer'
. "$(dirname "$0")/../lib/test-lib.sh"

check=$MB_ROOT/build/tests/helpers/gradsync_check
models=$MB_ROOT/tests/data/models

# $1 ranks, $2 model, $3 bucket size; output in out.$1.$2.$3
check() {
    OMP_NUM_THREADS=1 $MPIRUN -np "$1" "$check" "$models/$2.json" "$3" >"out.$1.$2.$3"
}

# Two ranks add two numbers: any MPI sums them the same, so every path is bitwise.
test_expect_success 'DP2: overlapped (Iallreduce, Ireduce_scatter; also with one rank starting late), sharded and all-gathered results are the all-reduce bitwise' '
    check 2 llama 1 && check 2 gpt2 3000 &&
    for f in out.2.llama.1 out.2.gpt2.3000; do
        test $(grep -c ": bitwise$" $f) -eq 7 || { cat $f; exit 1; }
    done &&
    grep "^buckets: 15$" out.2.llama.1
'

# Four ranks: the order of the sum is the MPI library's choice, per algorithm; the
# results must agree to float rounding, and the all-gather must be exact.
test_expect_success 'DP4: every path within 1e-6 of the all-reduce; all-gather exact' '
    check 4 gemma2 2000 &&
    cat out.4.gemma2.2000 | sed "s/^/# /" &&
    test $(grep -c "^all-gather: bitwise$" out.4.gemma2.2000) -eq 3 &&
    awk -F": " "/^(replicated|distributed)/ { n++; if (\$2 != \"bitwise\") { split(\$2, a, \" \"); if (a[4] > 1e-6) bad = 1 } }
        END { exit bad || n != 4 }" out.4.gemma2.2000
'

test_done
