#!/bin/sh
test_description='mb-ckpt diff: per-dataset differences against values recomputed with h5py, numpy and torch'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# ckpt_tool_check.py recomputes every max_abs/max_rel, from the files as h5py reads them.
# A bf16 copy is within rtol 2^-8 (bf16's unit roundoff) of its fp32 original.
CHECK="$ORACLE/ckpt_tool_check.py"
A=f32/iter_0000002.h5 B=f32/iter_0000004.h5 C=f32/iter_0000006.h5

test_expect_success 'setup: fp32 checkpoints at 2, 4 and 6, a bf16 one, one of another shape' '
    make_corpus &&
    pretrain train.train_iters=6 checkpoint.save=f32 checkpoint.save_interval=2 2>log &&
    pretrain train.train_iters=3 checkpoint.save=b16 checkpoint.ckpt_dtype=bf16 2>>log &&
    pretrain train.train_iters=3 checkpoint.save=wide model.ffn_hidden_size=192 2>>log
'

test_expect_success 'diff: a checkpoint against itself is the same (exit 0)' '
    mb-ckpt diff f32 $C >out &&
    ! grep -v "^same " out | grep -v "^0 datasets differ, 34 the same" &&
    grep "^same     /model/output_layer/weight max_abs 0 max_rel 0\$" out
'

test_expect_success 'diff: two iterations differ (exit 1); figures and statuses as numpy computes them' '
    test_expect_code 1 mb-ckpt diff $A $B >d0 2>err &&
    grep "^mb-ckpt: error: $A and $B differ in " err &&
    "$PY" "$CHECK" diff $A $B 0 0 d0 &&
    test_expect_code 1 mb-ckpt diff $A $B --atol 1e-2 --rtol 0.5 >d1 &&
    "$PY" "$CHECK" diff $A $B 1e-2 0.5 d1 &&
    grep "^same     /model/decoder/final_layernorm/weight " d1 &&
    grep "^differs  /train/iteration max_abs 2 max_rel 0.5\$" d0
'

test_expect_success 'the diff oracle fails when the tolerances do not match the output' '
    test_expect_code 1 "$PY" "$CHECK" diff $A $B 0 0 d1
'

test_expect_success 'diff: one changed element is within --atol or not' '
    cp $C poked.h5 &&
    "$PY" "$CHECK" poke poked.h5 /model/decoder/layers/self_attention/linear_proj/weight 100 0.25 &&
    test_expect_code 1 mb-ckpt diff poked.h5 $C >out &&
    grep "^differs  /model/decoder/layers/self_attention/linear_proj/weight " out &&
    grep "^1 dataset differ, 33 the same" out &&
    "$PY" "$CHECK" diff poked.h5 $C 0 0 out &&
    mb-ckpt diff poked.h5 $C --atol 1 >out &&
    grep "^0 datasets differ" out
'

test_expect_success 'diff: bf16 against fp32 by value; presence and shape whatever the tolerance' '
    mb-ckpt convert-dtype $C --dtype bf16 -o c16.h5 >out &&
    mb-ckpt average $C $C -o c32.h5 >out &&
    test_expect_code 1 mb-ckpt diff c16.h5 c32.h5 --rtol 1e-3 >out &&
    grep "^differs  /model/embedding/word_embeddings/weight max_abs .* bf16 vs fp32\$" out &&
    "$PY" "$CHECK" diff c16.h5 c32.h5 0 1e-3 out &&
    mb-ckpt diff c16.h5 c32.h5 --rtol 0.00390625 >out &&
    grep "^same     /model/embedding/word_embeddings/weight max_abs .* bf16 vs fp32\$" out &&
    test_expect_code 1 mb-ckpt diff b16 $C --atol 1e9 >out &&
    grep "^only-a   /optim/master/embedding/word_embeddings/weight\$" out &&
    "$PY" "$CHECK" diff b16/iter_0000003.h5 $C 1e9 0 out &&
    test_expect_code 1 mb-ckpt diff $C wide >out &&
    grep "^differs  attribute model_config\$" out &&
    grep "^shape    /model/decoder/layers/mlp/linear_fc2/weight \[2, 64, 128\] vs \[2, 64, 192\]\$" out &&
    "$PY" "$CHECK" diff $C wide/iter_0000003.h5 0 0 out
'

test_done
