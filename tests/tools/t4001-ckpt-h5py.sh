#!/bin/sh
test_description='checkpoints written by one process read back in mb and in h5py, h5ls and h5dump'
. "$(dirname "$0")/../lib/test-lib.sh"

# ckpt_roundtrip saves a synthetic model (tests/helpers/ckpt_roundtrip.c); h5_check.py
# knows the same names, shapes and values and checks them through h5py, with torch
# giving the bf16 rounding.

kinds="fp32_optim bf16_optim fp32_nooptim bf16_nooptim"

test_expect_success 'fp32 and bf16, with and without optimizer state: h5py sees every dataset, value and attribute' '
    checks= &&
    for k in $kinds; do
        ckpt_roundtrip save ck_$k 100 ${k%_*} ${k#*_} >path &&
        test "$(cat path)" = ck_$k/iter_0000100.h5 &&
        test "$(cat ck_$k/latest)" = iter_0000100.h5 &&
        checks="$checks ck_$k/iter_0000100.h5 100 ${k%_*} ${k#*_}" || exit 1
    done &&
    $PY $ORACLE/h5_check.py check $checks
'

for k in $kinds; do
    test_expect_success "$k: mb loads it back from the directory" "
        ckpt_roundtrip load ck_$k ${k%_*} ${k#*_} >out &&
        grep '^loaded ck_$k/iter_0000100.h5 iteration 100\$' out
    "
done

test_expect_success 'h5ls -r lists the layout; h5dump shows the committed bf16 type' '
    h5ls -r ck_bf16_optim/iter_0000100.h5 >ls &&
    grep "^/model/decoder/layers/self_attention/linear_qkv/weight  *Dataset {3, 12, 6}" ls &&
    grep "^/optim/master/embedding/word_embeddings/weight  *Dataset {11, 6}" ls &&
    grep "^/train/iteration  *Dataset {SCALAR}" ls &&
    grep "^/bf16  *Type" ls &&
    h5dump -H -d /model/decoder/final_layernorm/weight ck_bf16_optim/iter_0000100.h5 >dump &&
    grep "DATATYPE  \"/bf16\"" dump &&
    h5dump -A -g / ck_bf16_optim/iter_0000100.h5 | grep "mb-ckpt-1"
'

test_expect_success 'the h5py check fails on a different iteration and on a different file' '
    ckpt_roundtrip save other 101 bf16 optim >/dev/null &&
    ! $PY $ORACLE/h5_check.py check other/iter_0000101.h5 100 bf16 optim 2>err &&
    grep "differ" err &&
    ! $PY $ORACLE/h5_check.py same ck_bf16_optim/iter_0000100.h5 ck_bf16_nooptim/iter_0000100.h5
'

test_expect_success 'a newer save moves latest; the old file stays loadable by name' '
    ckpt_roundtrip save ck_fp32_optim 200 fp32 optim >/dev/null &&
    test "$(cat ck_fp32_optim/latest)" = iter_0000200.h5 &&
    ckpt_roundtrip load ck_fp32_optim fp32 optim | grep "iteration 200\$" &&
    ckpt_roundtrip load ck_fp32_optim/iter_0000100.h5 fp32 optim | grep "iteration 100\$" &&
    test_no_files "ck_fp32_optim/*.tmp*"
'

test_done
