#!/bin/sh
test_description='sharded checkpoints: every TP x DP layout writes the same logical tensors, and any layout loads them'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/helpers/ckpt_shard.c gives each rank the shards the tensor-parallel code makes:
# linear_qkv on axis 1 (one slab), linear_fc1 on axis 1 (gate and up: two slabs),
# linear_proj and linear_fc2 on axis 2 (columns), the embedding and output layer on
# axis 0, norms and the row-parallel bias whole on every rank; DP replicas hold the same
# shards (optim), or a distributed optimizer's runs of them (distopt). h5py
# (tests/oracle/h5_shard_check.py) reads the logical tensors of each file.

export OMP_NUM_THREADS=1
CHECK="$PY $ORACLE/h5_shard_check.py"

test_expect_success 'setup: saves under TP2 x DP2, TP4, TP2, DP2 and one process' '
    $MPIRUN -np 4 ckpt_shard save s22 5 tp2dp2 fp32 optim >/dev/null &&
    $MPIRUN -np 4 ckpt_shard save s22d 6 tp2dp2 bf16 distopt >/dev/null &&
    $MPIRUN -np 4 ckpt_shard save s4 7 tp4 fp32 optim >/dev/null &&
    $MPIRUN -np 2 ckpt_shard save s2 8 tp2 fp32 optim >/dev/null &&
    $MPIRUN -np 2 ckpt_shard save s12 9 tp1dp2 bf16 optim >/dev/null &&
    ckpt_shard save s1 10 tp1 fp32 optim >/dev/null &&
    test_no_files "s*/*.tmp*"
'

test_expect_success 'h5py reads exactly the logical tensors from every layout, and the layout' '
    $CHECK s22/iter_0000005.h5 5 fp32 optim 2,1,2,1,false \
           s22d/iter_0000006.h5 6 bf16 optim 2,1,2,1,true \
           s4/iter_0000007.h5 7 fp32 optim 4,1,1,1,false \
           s2/iter_0000008.h5 8 fp32 optim 2,1,1,1,false \
           s12/iter_0000009.h5 9 bf16 optim 1,1,2,1,false \
           s1/iter_0000010.h5 10 fp32 optim 1,1,1,1,false >out &&
    test $(grep -c "^ok" out) = 6
'

test_expect_success 'h5ls shows the same names and shapes whatever the layout' '
    h5ls -r s1/iter_0000010.h5 >ls1 && h5ls -r s22/iter_0000005.h5 >ls22 &&
    h5ls -r s4/iter_0000007.h5 >ls4 &&
    diff ls1 ls22 && diff ls1 ls4
'

# each rank checks every element it loaded against the value of its logical index
loads() { # NP FILE LAYOUT OPTIM: every rank says so
    $MPIRUN -np $1 ckpt_shard load $2 $3 $4 >out_$$ && test $(grep -c " tensors equal" out_$$) = $1
}

test_expect_success 'TP2 x DP2 loads at 1, at 2 as TP2, at 4 as TP4 and as itself' '
    loads 1 s22 tp1 optim && loads 2 s22 tp2 optim && loads 4 s22 tp4 optim &&
    loads 4 s22 tp2dp2 distopt && loads 2 s22d tp1dp2 distopt && loads 1 s22d tp1 optim
'

test_expect_success 'and the reverse: TP1, TP2 and TP4 saves load as TP2 x DP2' '
    loads 4 s1 tp2dp2 optim && loads 4 s2 tp2dp2 distopt && loads 4 s4 tp2dp2 optim &&
    loads 4 s12 tp2dp2 distopt
'

test_expect_success 'a single-process save loads under every layout' '
    loads 4 s1 tp4 distopt && loads 4 s1 tp1dp4 optim && loads 4 s1 tp2dp2 distopt
'

test_expect_success 'shards that overlap fail the save on every rank, and leave nothing' '
    test_expect_code 1 timeout 60 $MPIRUN -np 2 ckpt_shard save-skew s2 11 tp2 fp32 nooptim \
        2>err &&
    what="decoder.layers.self_attention.linear_qkv.weight: the parts of ranks 0 and 1 overlap" &&
    for r in 0 1; do
        grep "\[r$r\] error: $what" err || exit 1
    done &&
    test "$(cat s2/latest)" = iter_0000008.h5 && test_no_files "s2/iter_0000011*"
'

test_done
