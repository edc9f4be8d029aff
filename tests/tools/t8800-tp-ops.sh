#!/bin/sh
test_description='tensor parallelism: column/row-parallel linear layers, vocabulary-parallel cross-entropy and embedding against the unsplit ops, forward and backward'
. "$(dirname "$0")/../lib/test-lib.sh"

check=$MB_ROOT/build/tests/helpers/tp_check
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# tp_check prints one line per op on rank 0 and exits 1 when any rank found a shard off
for tp in 1 2 4; do
    test_expect_success "TP $tp: every op's shards match the unsplit op (7 checks)" '
        $MPIRUN -np '$tp' "$check" ops >out 2>err &&
        test $(grep -c "^ok - .*(TP '$tp')$" out) = 7 && ! grep "not ok" out
    '
done

test_expect_success 'a model that does not cut over TP 4 (2 query groups): exit 1, the reason on every rank' '
    test_expect_code 1 $MPIRUN -np 4 "$check" model "$MB_ROOT/tests/data/models/llama.json" 2>err &&
    test $(grep -c "error: --groups: dist.tensor_model_parallel_size 4 does not divide model.num_query_groups 2" err) = 4
'

test_done
