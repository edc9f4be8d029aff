#!/bin/sh
test_description='mb-pretrain with peft.peft=lora|dora: a frozen base, adapter-only checkpoints, resume, TP and DP'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The base is a short run of the test model (tests/data/recipes/small.yaml: 2 layers,
# hidden 64, 4 heads in 2 groups of 16, swiglu FFN 128). With peft.dim=8 the adapters
# per layer are qkv A [8, 64] + B [128, 8], proj A [8, 64] + B [64, 8], fc1 A [8, 64] +
# B [256, 8], fc2 A [8, 128] + B [64, 8]: 6656, so 13312 trainable floats in all.
peft="train.train_iters=4 train.eval_iters=0 peft.dim=8"

test_expect_success 'setup: corpus and a base checkpoint' '
    make_corpus &&
    pretrain train.train_iters=4 train.eval_iters=0 checkpoint.save=base 2>base.log
'

test_expect_success 'LoRA on the base: only the adapters hold gradients and Adam moments' '
    pretrain $peft checkpoint.pretrained_checkpoint=base peft.peft=lora \
        checkpoint.save=lora 2>lora.log &&
    grep "adapters (peft.peft=lora): 13312 trainable parameters on this rank of 152896" lora.log &&
    grep "gradients 53248 B, Adam moments 106496 B" lora.log &&
    grep "loaded the weights of base/iter_0000004.h5.*the base of the adapters, frozen" lora.log
'

test_expect_success 'the adapters start as a no-op: the first loss is the base'"'"'s, bitwise' '
    pretrain $peft checkpoint.pretrained_checkpoint=base train.train_iters=1 \
        scheduler.lr_warmup_iters=0 2>full.log &&
    pretrain $peft checkpoint.pretrained_checkpoint=base train.train_iters=1 peft.peft=dora \
        scheduler.lr_warmup_iters=0 \
        2>dora1.log &&
    same_losses lora.log full.log 0 && same_losses dora1.log full.log 0 &&
    ! same_losses lora.log base.log 0
'

test_expect_success 'the adapter-only checkpoint: /adapter, no /model, peft and base_checkpoint' '
    "$PY" -c "
import h5py, json, os, sys
f = h5py.File(\"lora/iter_0000004.h5\", \"r\")
assert \"model\" not in f, list(f)
a = f[\"adapter/decoder/layers/self_attention/linear_qkv/adapter\"]
assert a[\"linear_in/weight\"].shape == (2, 8, 64) and a[\"linear_out/weight\"].shape == (2, 128, 8)
assert f[\"optim/exp_avg/decoder/layers/mlp/linear_fc1/adapter/linear_out/weight\"].shape == (2, 256, 8)
assert not [k for k in f[\"optim/exp_avg/decoder/layers/mlp/linear_fc1\"] if k != \"adapter\"]
p = json.loads(f.attrs[\"peft\"])
assert p == {\"peft\": \"lora\", \"dim\": 8, \"alpha\": 32.0, \"dropout\": 0.0, \"target_modules\":
             [\"linear_qkv\", \"linear_proj\", \"linear_fc1\", \"linear_fc2\"]}, p
b = f.attrs[\"base_checkpoint\"]
b = b.decode() if isinstance(b, bytes) else b
assert b.rstrip(chr(0)) == os.path.realpath(\"base/iter_0000004.h5\"), b
" &&
    mb-ckpt info lora >info &&
    grep "^peft: {\"peft\": \"lora\", \"dim\": 8" info &&
    grep "^adapter_parameters: 13312" info
'

test_expect_success 'mb-ckpt verify knows adapter checkpoints: whole, or missing an adapter' '
    mb-ckpt verify lora >verify.out &&
    grep "verified: .*31 tensors, structure complete" verify.out &&
    cp lora/iter_0000004.h5 cut.h5 &&
    "$PY" -c "
import h5py
with h5py.File(\"cut.h5\", \"r+\") as f:
    del f[\"adapter/decoder/layers/mlp/linear_fc2/adapter/linear_in/weight\"]
" &&
    test_expect_code 1 mb-ckpt verify cut.h5 >verify.out 2>&1 &&
    grep "problem: /adapter/decoder/layers/mlp/linear_fc2/adapter/linear_in/weight: missing" verify.out
'

test_expect_success 'mb-ckpt average and convert-dtype refuse an adapter checkpoint, writing nothing' '
    test_expect_code 1 mb-ckpt average lora lora -o avg 2>err &&
    grep "error: lora/iter_0000004.h5: an adapter-only checkpoint .*average works on whole models" err &&
    test_expect_code 1 mb-ckpt convert-dtype lora --dtype bf16 -o cvt 2>err &&
    grep "convert-dtype works on whole models" err &&
    ! test -e avg && ! test -e cvt
'

for k in lora dora; do
    test_expect_success "$k: stop at 2, resume from the adapter checkpoint: bitwise the straight run" "
        pretrain \$peft checkpoint.pretrained_checkpoint=base peft.peft=$k \
            checkpoint.save=s$k 2>s$k.log &&
        pretrain \$peft checkpoint.pretrained_checkpoint=base peft.peft=$k \
            checkpoint.save=h$k train.exit_interval=2 2>h1$k.log &&
        pretrain \$peft peft.peft=$k checkpoint.save=h$k checkpoint.load=h$k 2>h2$k.log &&
        grep 'resumed from h$k/iter_0000002.h5' h2$k.log &&
        grep 'loaded the weights of .*/base/iter_0000004.h5' h2$k.log &&
        same_losses h2$k.log s$k.log 0 &&
        \"\$PY\" \"\$ORACLE/ckpt_compare.py\" h$k/iter_0000004.h5 s$k/iter_0000004.h5
    "
done

test_expect_success 'LoRA under TP2, TP2 with sequence parallelism, DP2 with the distributed optimizer: TP1 to 1e-5' '
    pretrain_mpi 2 $peft checkpoint.pretrained_checkpoint=base peft.peft=lora \
        dist.tensor_model_parallel_size=2 checkpoint.save=tp2 2>tp2.log &&
    pretrain_mpi 2 $peft checkpoint.pretrained_checkpoint=base peft.peft=lora \
        dist.tensor_model_parallel_size=2 dist.sequence_parallel=true checkpoint.save=sp2 \
        2>sp2.log &&
    pretrain_mpi 2 $peft checkpoint.pretrained_checkpoint=base peft.peft=lora \
        ddp.use_distributed_optimizer=true checkpoint.save=dp2 2>dp2.log &&
    for x in tp2 sp2 dp2; do
        same_losses $x.log slora.log 1e-5 &&
        "$PY" "$ORACLE/ckpt_compare.py" $x/iter_0000004.h5 slora/iter_0000004.h5 1e-5 || exit 1
    done
'

test_expect_success 'DoRA under TP2 (row norms summed over TP): TP1 to 1e-5' '
    pretrain_mpi 2 $peft checkpoint.pretrained_checkpoint=base peft.peft=dora \
        dist.tensor_model_parallel_size=2 checkpoint.save=dtp2 2>dtp2.log &&
    same_losses dtp2.log sdora.log 1e-5 &&
    "$PY" "$ORACLE/ckpt_compare.py" dtp2/iter_0000004.h5 sdora/iter_0000004.h5 1e-5
'

# The dropout mask of an element depends on the seed, its sample'"'"'s global index, its
# position, layer, module and global input column only: any layout drops the same ones.
test_expect_success 'LoRA dropout 0.1: TP2 with sequence parallelism and a resume give the same run' '
    drop="peft.peft=lora peft.dropout=0.1 checkpoint.pretrained_checkpoint=base" &&
    pretrain $peft $drop checkpoint.save=drop 2>drop.log &&
    pretrain_mpi 2 $peft $drop dist.tensor_model_parallel_size=2 dist.sequence_parallel=true \
        checkpoint.save=droptp 2>droptp.log &&
    pretrain $peft $drop checkpoint.save=droph train.exit_interval=2 2>/dev/null &&
    pretrain $peft $drop checkpoint.save=droph checkpoint.load=droph 2>droph.log &&
    same_losses droptp.log drop.log 1e-5 &&
    "$PY" "$ORACLE/ckpt_compare.py" droptp/iter_0000004.h5 drop/iter_0000004.h5 1e-5 &&
    same_losses droph.log drop.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" droph/iter_0000004.h5 drop/iter_0000004.h5 &&
    ! "$PY" "$ORACLE/ckpt_compare.py" drop/iter_0000004.h5 slora/iter_0000004.h5 1e-3 >/dev/null
'

test_expect_success 'DoRA with dropout, or dropout after the adapter: exit 1 saying so' '
    test_expect_code 1 pretrain $peft peft.peft=dora peft.dropout=0.1 2>err.log &&
    grep "error: .*peft.dropout 0.1 with peft.peft=dora" err.log &&
    test_expect_code 1 pretrain $peft peft.peft=lora peft.dropout=0.1 \
        peft.dropout_position=post 2>err.log &&
    grep "error: .*peft.dropout_position post: only pre" err.log
'

test_expect_success 'an adapter on a module the model does not have: exit 1 naming it' '
    test_expect_code 1 pretrain $peft peft.peft=lora peft.target_modules=linear_qkv,linear_foo \
        2>err.log &&
    grep "error: .*peft.target_modules.*no module .linear_foo." err.log
'

test_expect_success 'a base checkpoint of another shape: exit 1 naming the tensor' '
    pretrain train.train_iters=1 train.eval_iters=0 scheduler.lr_warmup_iters=0 \
        model.hidden_size=96 checkpoint.save=base96 2>/dev/null &&
    mv base base.away &&
    test_expect_code 1 pretrain $peft peft.peft=lora checkpoint.load=hlora \
        checkpoint.pretrained_checkpoint=base96 2>err.log &&
    mv base.away base &&
    grep "base_checkpoint .*/base/iter_0000004.h5 is gone" err.log &&
    grep "error: .*linear_qkv.adapter.linear_in.weight.*\[2, 8, 64\].*\[2, 8, 96\]" err.log
'

test_expect_success 'an adapter checkpoint resumed with other peft keys: exit 1 saying so' '
    test_expect_code 1 pretrain $peft checkpoint.load=hlora 2>none.log &&
    grep "error: hlora/iter_0000004.h5: checkpoint.load: an adapter-only checkpoint (lora adapters)" none.log &&
    test_expect_code 1 pretrain $peft peft.peft=lora peft.dim=4 checkpoint.load=hlora 2>dim.log &&
    grep "error: .*its adapters .*\"dim\": 8.* differ from the peft.\* keys of this run .*\"dim\": 4" dim.log
'

test_done
