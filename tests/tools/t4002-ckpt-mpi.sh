#!/bin/sh
test_description='checkpoints saved by 2 and 3 MPI ranks equal the single-process file and load with any rank count'
. "$(dirname "$0")/../lib/test-lib.sh"

# Each rank writes its rows of every tensor with collective MPI-IO. With 3 ranks the
# [1]-shaped output_layer.bias leaves two ranks with nothing to write, and the blobs
# and scalars are written by rank 0 alone.

test_expect_success 'setup: single-process checkpoints, bf16 with optimizer state and fp32 without' '
    ckpt_roundtrip save one 100 bf16 optim >/dev/null &&
    ckpt_roundtrip save one_f 100 fp32 nooptim >/dev/null
'

test_expect_success '2 and 3 ranks write the same datasets and attributes as 1 rank' '
    $MPIRUN -np 2 ckpt_roundtrip save two 100 bf16 optim >out2 &&
    $MPIRUN -np 3 ckpt_roundtrip save three 100 bf16 optim >out3 &&
    $MPIRUN -np 3 ckpt_roundtrip save three_f 100 fp32 nooptim >/dev/null &&
    test "$(cat out2)" = two/iter_0000100.h5 && test "$(cat out3)" = three/iter_0000100.h5 &&
    test "$(cat three/latest)" = iter_0000100.h5 &&
    test_no_files "two/*.tmp* three/*.tmp*" &&
    $PY $ORACLE/h5_check.py same one/iter_0000100.h5 two/iter_0000100.h5 \
        one/iter_0000100.h5 three/iter_0000100.h5 one_f/iter_0000100.h5 three_f/iter_0000100.h5
'

test_expect_success 'h5diff finds no difference in the fp32 data between 1 and 3 ranks' '
    for p in /model/decoder/layers/mlp/linear_fc1/weight /optim/exp_avg_sq/output_layer/bias \
             /optim/master/embedding/word_embeddings/weight /train/rng_state; do
        h5diff one/iter_0000100.h5 three/iter_0000100.h5 $p $p || exit 1
    done
'

test_expect_success 'a 2-rank save loads in 1 rank, a 1-rank save in 2 and 3 ranks' '
    ckpt_roundtrip load two bf16 optim | grep "^loaded two/iter_0000100.h5 iteration 100\$" &&
    $MPIRUN -np 2 ckpt_roundtrip load one bf16 optim >l2 &&
    $MPIRUN -np 3 ckpt_roundtrip load one_f fp32 nooptim >l3 &&
    grep -c "^loaded" l2 | grep -x 1 && grep "^loaded one_f/iter_0000100.h5" l3
'

test_expect_success 'a damaged checkpoint fails on every rank with the file named, and nobody hangs' '
    head -c 5000 one/iter_0000100.h5 >bad.h5 &&
    test_expect_code 1 timeout 60 $MPIRUN -np 2 ckpt_roundtrip load bad.h5 bf16 optim 2>err &&
    grep "\[r0\] error: bad.h5: " err && grep "\[r1\] error: bad.h5: " err
'

test_done
