#!/bin/sh
test_description='dist/pstate: ranks laid out in Megatron order (tp-cp-dp-pp), the groups and their collectives'
. "$(dirname "$0")/../lib/test-lib.sh"

check=$MB_ROOT/build/tests/helpers/pstate_check

# The table of parallel.md section 1.2, which its authors generated with Megatron-Core's
# own RankGenerator: world 8 = TP2 x PP2 x DP2.
cat >want.tp2pp2 <<'TABLE'
rank 0: tp 0 cp 0 dp 0 pp 0 | tp: 0,1 | cp: 0 | dp: 0,2 | pp: 0,4 | tp-pp: 0,1,4,5
rank 1: tp 1 cp 0 dp 0 pp 0 | tp: 0,1 | cp: 1 | dp: 1,3 | pp: 1,5 | tp-pp: 0,1,4,5
rank 2: tp 0 cp 0 dp 1 pp 0 | tp: 2,3 | cp: 2 | dp: 0,2 | pp: 2,6 | tp-pp: 2,3,6,7
rank 3: tp 1 cp 0 dp 1 pp 0 | tp: 2,3 | cp: 3 | dp: 1,3 | pp: 3,7 | tp-pp: 2,3,6,7
rank 4: tp 0 cp 0 dp 0 pp 1 | tp: 4,5 | cp: 4 | dp: 4,6 | pp: 0,4 | tp-pp: 0,1,4,5
rank 5: tp 1 cp 0 dp 0 pp 1 | tp: 4,5 | cp: 5 | dp: 5,7 | pp: 1,5 | tp-pp: 0,1,4,5
rank 6: tp 0 cp 0 dp 1 pp 1 | tp: 6,7 | cp: 6 | dp: 4,6 | pp: 2,6 | tp-pp: 2,3,6,7
rank 7: tp 1 cp 0 dp 1 pp 1 | tp: 6,7 | cp: 7 | dp: 5,7 | pp: 3,7 | tp-pp: 2,3,6,7
TABLE

test_expect_success 'TP2 PP2 DP2 on 8 ranks: the groups of Megatron (parallel.md 1.2), collectives checked' '
    $MPIRUN -np 8 "$check" 2 1 2 >out 2>err &&
    sort -t" " -k2,2n out >got && cmp want.tp2pp2 got
'

# parallel.md 1.2 with CP: rank = tp + 2 cp + 4 dp, CP {0,2}, DP {0,4}
test_expect_success 'TP2 CP2 DP2: CP groups of stride 2, DP groups of stride 4' '
    $MPIRUN -np 8 "$check" 2 2 1 >out 2>err &&
    grep "^rank 0: tp 0 cp 0 dp 0 pp 0 | tp: 0,1 | cp: 0,2 | dp: 0,4 | pp: 0 | tp-pp: 0,1$" out &&
    grep "^rank 7: tp 1 cp 1 dp 1 pp 0 | tp: 6,7 | cp: 5,7 | dp: 3,7 | pp: 7 | tp-pp: 6,7$" out
'

test_expect_success 'TP4 on 4 ranks and TP1 DP4: one group holds all, the other none' '
    $MPIRUN -np 4 "$check" 4 1 1 >out 2>err &&
    test $(grep -c "| tp: 0,1,2,3 | cp: [0-3] | dp: [0-3] |" out) = 4 &&
    $MPIRUN -np 4 "$check" 1 1 1 >out 2>err &&
    test $(grep -c "| tp: [0-3] | cp: [0-3] | dp: 0,1,2,3 |" out) = 4
'

test_expect_success 'a single process is a grid of one without MPI' '
    "$check" 1 1 1 >out &&
    test "$(cat out)" = "rank 0: tp 0 cp 0 dp 0 pp 0 | tp: 0 | cp: 0 | dp: 0 | pp: 0 | tp-pp: 0"
'

test_expect_success 'a world that is not a multiple of TP x CP x PP: every rank exits 1 with the reason' '
    test_expect_code 1 $MPIRUN -np 4 "$check" 3 1 1 >out 2>err &&
    test $(grep -c "layout: the world of 4 ranks is not a multiple of tensor 3 x context 1 x pipeline 1 parallel" err) = 4 &&
    test ! -s out
'

test_done
