#!/bin/sh
test_description='a checkpoint saved from TP2 x DP2 shards converts as the single-process one, and mb-ckpt info shows its layout'
. "$(dirname "$0")/../lib/test-lib.sh"

# ckpt_init writes a single-process checkpoint of a test model; ckpt_shard reshard loads
# it under TP2 x DP2, each of 4 ranks its tensor-parallel shards (qkv rows by query
# group, fc1 gate and up rows, proj and fc2 columns, embedding and output rows; the
# rest on every rank), and saves it again from those shards. Llama (gated fc1), Qwen2
# (qkv bias) and GPT-2 (fc1 bias, not gated; tied embeddings).

export OMP_NUM_THREADS=1
models="$MB_ROOT/tests/data/models"
names="llama qwen2 gpt2"

test_expect_success 'setup: single-process checkpoints, saved again from TP2 x DP2 shards' '
    for n in $names; do
        ckpt_init "$models/$n.json" ck_$n --std 0.3 --seed 3 &&
        $MPIRUN -np 4 ckpt_shard reshard ck_$n/iter_0000000.h5 r_$n tp2dp2 >/dev/null || exit 1
    done &&
    $MPIRUN -np 2 ckpt_shard reshard r_llama/iter_0000000.h5 r2_llama tp2 >/dev/null
'

test_expect_success 'the same tensors, bit for bit (h5diff)' '
    for n in $names; do
        h5diff ck_$n/iter_0000000.h5 r_$n/iter_0000000.h5 /model /model || exit 1
    done &&
    h5diff ck_llama/iter_0000000.h5 r2_llama/iter_0000000.h5 /model /model
'

test_expect_success 'mb-convert makes the same HF directory of both' '
    for n in $names; do
        mb-convert --from h5 --to hf ck_$n/iter_0000000.h5 hf1_$n 2>err &&
        mb-convert --from h5 --to hf r_$n/iter_0000000.h5 hf2_$n 2>err &&
        test -s hf2_$n/model.safetensors &&
        diff -r hf1_$n hf2_$n || exit 1
    done
'

test_expect_success 'mb-ckpt info shows the layout saved, or that none was recorded' '
    mb-ckpt info r_llama >info &&
    grep "^layout: TP 2, CP 1, DP 2, PP 1, distributed optimizer off\$" info &&
    mb-ckpt info r2_llama | grep "^layout: TP 2, CP 1, DP 1, PP 1, distributed optimizer off\$" &&
    mb-ckpt info ck_llama | grep "^layout: not recorded\$" &&
    mb-ckpt info --json r_llama >r.json && mb-ckpt info --json ck_llama >ck.json &&
    "$PY" "$ORACLE/ckpt_tool_check.py" info r_llama/iter_0000000.h5 r.json &&
    "$PY" "$ORACLE/ckpt_tool_check.py" info ck_llama/iter_0000000.h5 ck.json &&
    grep "\"layout\": null" ck.json
'

test_expect_success 'mb-pretrain records the layout of its run' '
    . "$MB_ROOT/tests/lib/pretrain-lib.sh" && make_corpus &&
    pretrain_mpi 2 train.train_iters=3 checkpoint.save=p 2>log &&
    mb-ckpt info p | grep "^layout: TP 1, CP 1, DP 2, PP 1, distributed optimizer off\$"
'

test_expect_success 'a layout attribute that is not a size is an error naming it' '
    cp r_llama/iter_0000000.h5 bad.h5 &&
    "$PY" -c "import h5py, numpy
f = h5py.File(\"bad.h5\", \"r+\")
f.attrs[\"data_parallel_size\"] = numpy.bytes_(b\"two\")  # fixed-length, as mb writes" &&
    test_expect_code 1 mb-ckpt info bad.h5 2>err &&
    grep "error: bad.h5: attribute .data_parallel_size. holds .two., not a size of 1 or more" err
'

test_done
