#!/bin/sh
test_description='mb-ckpt info and verify: what h5py sees, structure against the config, finite values, checksums'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# Checkpoints of the test model trained for a few iterations: fp32 with optimizer state,
# bf16 (so /optim/master is present), and a GPT-2 model (biases, learned positions, tied
# embeddings). ckpt_tool_check.py recomputes with h5py what mb-ckpt says.
CHECK="$ORACLE/ckpt_tool_check.py"

test_expect_success 'setup: fp32, bf16 and GPT-2 checkpoints' '
    make_corpus &&
    pretrain train.train_iters=4 checkpoint.save=f32 checkpoint.save_interval=2 2>log &&
    pretrain train.train_iters=3 checkpoint.save=b16 checkpoint.ckpt_dtype=bf16 2>>log &&
    pretrain train.train_iters=3 checkpoint.save=g model.family=gpt2 \
        model.normalization=LayerNorm model.activation=gelu model.add_bias_linear=true \
        model.position_embedding_type=learned_absolute \
        model.share_embeddings_and_output_weights=true 2>>log
'

test_expect_success 'info: a directory is read through latest; counters, family, parameters' '
    mb-ckpt info f32 >info &&
    grep "^file: f32/iter_0000004.h5\$" info &&
    grep "^format: mb-ckpt-1\$" info &&
    grep "^family: llama\$" info &&
    grep "^architecture: LlamaForCausalLM\$" info &&
    grep "^iteration: 4\$" info &&
    grep "^consumed_train_samples: 32\$" info &&
    grep "^optimizer_state: present (step 4)\$" info &&
    grep "^parameters: 139584\$" info &&
    grep "^  /model/decoder/layers/self_attention/linear_qkv/weight fp32 \[2, 128, 64\] 65536\$" info &&
    mb-ckpt info b16/iter_0000003.h5 >info16 &&
    grep "^  /model/embedding/word_embeddings/weight bf16 \[512, 64\] 65536\$" info16
'

test_expect_success 'info --json: datasets, dtypes, shapes, bytes, counters as h5py reads them' '
    mb-ckpt info --json f32/iter_0000002.h5 >a.json &&
    mb-ckpt info b16 --json >b.json &&
    mb-ckpt info --json g >g.json &&
    "$PY" "$CHECK" info f32/iter_0000002.h5 a.json &&
    "$PY" "$CHECK" info b16/iter_0000003.h5 b.json &&
    "$PY" "$CHECK" info g/iter_0000003.h5 g.json &&
    grep "\"family\": \"gpt2\"" g.json
'

test_expect_success 'the info oracle fails on the wrong checkpoint' '
    test_expect_code 1 "$PY" "$CHECK" info f32/iter_0000004.h5 a.json 2>err &&
    grep "iteration" err
'

test_expect_success 'verify: the three checkpoints are whole and finite' '
    mb-ckpt verify f32 >v1 && mb-ckpt verify b16 >v2 && mb-ckpt verify g >v3 &&
    grep "^verified: f32/iter_0000004.h5: 34 tensors" v1 &&
    grep "^verified: b16/iter_0000003.h5: 43 tensors" v2 &&
    grep "^verified: g/iter_0000003.h5: " v3
'

test_expect_success 'checksums: CRC-32C of the stored bytes, as tensorboard computes it' '
    mb-ckpt verify b16 --write-checksums b16.crc >out &&
    test $(wc -l <b16.crc) = 43 &&
    "$PY" "$CHECK" checksums b16/iter_0000003.h5 b16.crc &&
    mb-ckpt verify g --write-checksums g.crc >out &&
    "$PY" "$CHECK" checksums g/iter_0000003.h5 g.crc &&
    mb-ckpt verify b16 --checksums b16.crc >out &&
    grep "checksums match" out &&
    test_no_files "*.crc.tmp*"
'

test_expect_success 'a NaN: verify names the tensor and first index; the checksum no longer matches' '
    cp b16/iter_0000003.h5 nan.h5 &&
    "$PY" "$CHECK" poke nan.h5 /model/decoder/layers/mlp/linear_fc2/weight 8261 nan &&
    "$PY" "$CHECK" poke nan.h5 /model/decoder/layers/mlp/linear_fc2/weight 9000 -inf &&
    test_expect_code 1 mb-ckpt verify nan.h5 --checksums b16.crc >out 2>err &&
    grep "^problem: /model/decoder/layers/mlp/linear_fc2/weight: 2 non-finite values; the first is nan at index \[1, 0, 69\] (flat 8261)\$" out &&
    grep "^problem: /model/decoder/layers/mlp/linear_fc2/weight: checksum " out &&
    test $(grep -c "^problem: " out) = 2 &&
    grep "^mb-ckpt: error: nan.h5: 2 problems found\$" err
'

test_expect_success 'the checksum oracle fails on a changed file' '
    test_expect_code 1 "$PY" "$CHECK" checksums nan.h5 b16.crc
'

test_expect_success 'verify: a missing, a reshaped and an extra tensor; a missing counter and master' '
    cp b16/iter_0000003.h5 bad.h5 &&
    "$PY" -c "
import h5py, numpy as np
f = h5py.File(\"bad.h5\", \"r+\")
del f[\"/model/decoder/final_layernorm/weight\"]
del f[\"/model/output_layer/weight\"]
f[\"/model/output_layer/weight\"] = np.zeros((500, 64), np.float32)
f[\"/model/decoder/extra\"] = np.zeros(3, np.float32)
del f[\"/train/iteration\"]
del f[\"/optim/master/embedding/word_embeddings/weight\"]
" &&
    test_expect_code 1 mb-ckpt verify bad.h5 >out 2>err &&
    grep "^problem: /model/decoder/final_layernorm/weight: missing (expected \[64\])\$" out &&
    grep "^problem: /model/output_layer/weight: shape \[500, 64\], expected \[512, 64\]" out &&
    grep "^problem: /model/decoder/extra: unexpected dataset" out &&
    grep "^problem: /train/iteration: missing\$" out &&
    grep "^problem: /optim/master/embedding/word_embeddings/weight: missing" out &&
    grep "problems found" err
'

test_expect_success 'verify: an fp32 model with master copies has unexpected datasets' '
    cp f32/iter_0000004.h5 m.h5 &&
    "$PY" -c "
import h5py
f = h5py.File(\"m.h5\", \"r+\")
f[\"/optim/master/decoder/final_layernorm/weight\"] = f[\"/model/decoder/final_layernorm/weight\"][()]
" &&
    test_expect_code 1 mb-ckpt verify m.h5 >out &&
    grep "^problem: /optim/master/decoder/final_layernorm/weight: unexpected" out
'

test_expect_success 'verify: a checksum file naming a missing dataset, and a malformed line' '
    printf "%s\n" "00000000 /model/nothing" "zz" >odd.crc &&
    test_expect_code 1 mb-ckpt verify g --checksums odd.crc >out &&
    grep "^problem: /model/nothing: listed in the checksum file but missing" out &&
    grep "^problem: odd.crc:2: not a checksum line" out &&
    grep "^problem: /model/embedding/word_embeddings/weight: not in the checksum file" out
'

test_expect_success 'errors: not a checkpoint, no latest, usage' '
    echo junk >junk.h5 &&
    test_expect_code 1 mb-ckpt info junk.h5 2>err &&
    grep "^mb-ckpt: error: junk.h5: " err &&
    mkdir empty &&
    test_expect_code 1 mb-ckpt verify empty 2>err &&
    grep "^mb-ckpt: error: empty: no checkpoint here" err &&
    test_expect_code 2 mb-ckpt info 2>err &&
    test_expect_code 2 mb-ckpt info f32 --bogus 2>err &&
    grep "unknown option .--bogus." err &&
    test_expect_code 2 mb-ckpt verify f32 --checksums a --write-checksums b 2>err &&
    test_expect_code 2 mb-ckpt frobnicate 2>err &&
    grep "unknown command .frobnicate." err &&
    mb-ckpt verify --help >help && grep "^Usage: mb-ckpt verify" help
'

test_done
