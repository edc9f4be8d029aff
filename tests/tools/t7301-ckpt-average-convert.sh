#!/bin/sh
test_description='mb-ckpt average and convert-dtype: output bits against values recomputed with h5py, numpy and torch'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# ckpt_tool_check.py recomputes every averaged and every cast bit
# (torch rounds to bf16, numpy to fp16) from the files as h5py reads them.
CHECK="$ORACLE/ckpt_tool_check.py"
A=f32/iter_0000002.h5 B=f32/iter_0000004.h5 C=f32/iter_0000006.h5

test_expect_success 'setup: fp32 checkpoints at 2, 4 and 6, a bf16 one, one of another shape' '
    make_corpus &&
    pretrain train.train_iters=6 checkpoint.save=f32 checkpoint.save_interval=2 2>log &&
    pretrain train.train_iters=3 checkpoint.save=b16 checkpoint.ckpt_dtype=bf16 2>>log &&
    pretrain train.train_iters=3 checkpoint.save=wide model.ffn_hidden_size=192 2>>log
'

test_expect_success 'average of three fp32 checkpoints: fp64 mean, bit for bit; no /optim; verifies' '
    mb-ckpt average $A $B $C -o avg.h5 >out &&
    grep "^averaged 3 checkpoints into avg.h5\$" out &&
    "$PY" "$CHECK" average avg.h5 $A $B $C &&
    mb-ckpt verify avg.h5 &&
    mb-ckpt info avg.h5 >info &&
    grep "^optimizer_state: absent\$" info &&
    grep "^iteration: 2\$" info &&
    test_no_files "avg.h5.tmp*"
'

test_expect_success 'the average oracle fails for another order of files or set of inputs' '
    test_expect_code 1 "$PY" "$CHECK" average avg.h5 $A $B
'

test_expect_success 'average of bf16 checkpoints stays bf16, rounded as torch rounds' '
    mb-ckpt convert-dtype $A --dtype bf16 -o a16.h5 >out &&
    mb-ckpt convert-dtype $B --dtype bf16 -o b16.h5 >out &&
    mb-ckpt average a16.h5 b16.h5 b16/iter_0000003.h5 -o avg16.h5 >out &&
    "$PY" "$CHECK" average avg16.h5 a16.h5 b16.h5 b16/iter_0000003.h5
'

test_expect_success 'average: different configs or dtypes are refused and leave nothing' '
    test_expect_code 1 mb-ckpt average $A wide -o bad.h5 2>err &&
    grep "^mb-ckpt: error: wide/iter_0000003.h5: model_config differs from that of $A\$" err &&
    test_expect_code 1 mb-ckpt average $A b16 -o bad.h5 2>err &&
    grep "tensor ./model/decoder/final_layernorm/weight. differs from $A in presence, shape or dtype" err &&
    test_path_is_missing bad.h5 && test_no_files "bad.h5*" &&
    test_expect_code 2 mb-ckpt average $A -o bad.h5 &&
    test_expect_code 2 mb-ckpt average $A $B
'

test_expect_success 'convert-dtype fp32 -> bf16 and fp16: /model cast, the rest copied, /optim dropped' '
    mb-ckpt convert-dtype f32 --dtype fp16 -o c16.h5 >out &&
    grep "^$C -> c16.h5: /model as fp16\$" out &&
    "$PY" "$CHECK" cast c16.h5 $C fp16 &&
    "$PY" "$CHECK" cast a16.h5 $A bf16 &&
    mb-ckpt verify c16.h5 && mb-ckpt verify a16.h5
'

test_expect_success 'convert-dtype fp32 -> fp32 keeps /optim; bf16 -> fp32 and fp16 -> bf16 drop it' '
    mb-ckpt convert-dtype $C --dtype fp32 -o same.h5 >out &&
    grep "optimizer state kept" out &&
    "$PY" "$CHECK" cast same.h5 $C fp32 &&
    mb-ckpt diff same.h5 $C >out &&
    mb-ckpt convert-dtype b16 --dtype fp32 -o w32.h5 >out &&
    "$PY" "$CHECK" cast w32.h5 b16/iter_0000003.h5 fp32 &&
    mb-ckpt convert-dtype c16.h5 --dtype bf16 -o h16.h5 >out &&
    "$PY" "$CHECK" cast h16.h5 c16.h5 bf16
'

test_expect_success 'the cast oracle fails on a file cast another way' '
    test_expect_code 1 "$PY" "$CHECK" cast h16.h5 c16.h5 fp16
'

test_expect_success 'convert-dtype: bad dtype is a usage error; a failed write leaves nothing' '
    test_expect_code 2 mb-ckpt convert-dtype $C --dtype int8 -o x.h5 2>err &&
    grep "int8" err &&
    test_expect_code 2 mb-ckpt convert-dtype $C --dtype bf16 2>err &&
    test_expect_code 1 mb-ckpt convert-dtype $C --dtype bf16 -o no/such/dir/x.h5 2>err &&
    test_expect_code 1 mb-ckpt convert-dtype missing.h5 --dtype bf16 -o x.h5 2>err &&
    test_path_is_missing x.h5 && test_no_files "x.h5*"
'

test_done
