#!/bin/sh
test_description='mb-pretrain outputs: the checkpoint as h5py sees it, TensorBoard events, the log'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

test_expect_success 'setup: train 8 iterations with checkpoints and TensorBoard' '
    make_corpus &&
    pretrain checkpoint.save=ck checkpoint.save_interval=4 logger.tensorboard_dir=tb 2>run.log
'

test_expect_success 'checkpoints at 4 and 8, latest names the last, no temporaries left' '
    test -f ck/iter_0000004.h5 && test -f ck/iter_0000008.h5 &&
    test "$(cat ck/latest)" = iter_0000008.h5 &&
    test_no_files "ck/*.tmp*"
'

test_expect_success 'h5py reads the expected names, shapes, counters and attributes' '
    cat >want.json <<-\EOT &&
	{"family": "llama", "hidden_size": 64, "num_layers": 2, "num_attention_heads": 4,
	 "num_query_groups": 2, "kv_channels": 16, "ffn_hidden_size": 128, "vocab_size": 512,
	 "activation": "swiglu", "share_embeddings_and_output_weights": false}
	EOT
    "$PY" "$ORACLE/pretrain_ckpt_check.py" ck/iter_0000004.h5 want.json 4 &&
    "$PY" "$ORACLE/pretrain_ckpt_check.py" ck/iter_0000008.h5 want.json 8
'

test_expect_success 'h5ls lists the stacked QKV weight' '
    h5ls ck/iter_0000008.h5/model/decoder/layers/self_attention/linear_qkv/weight >ls.out &&
    grep "{2, 128, 64}" ls.out
'

test_expect_success 'bf16 checkpoints store the named bf16 type and resume' '
    pretrain checkpoint.save=bf checkpoint.ckpt_dtype=bf16 train.train_iters=2 \
        scheduler.lr_warmup_iters=1 2>bf.log &&
    "$PY" -c "import h5py,sys; f=h5py.File(\"bf/iter_0000002.h5\"); d=f[\"model/output_layer/weight\"]; sys.exit(d.id.get_type().get_size() != 2)" &&
    pretrain checkpoint.save=bf checkpoint.load=bf checkpoint.ckpt_dtype=bf16 train.train_iters=4 \
        scheduler.lr_warmup_iters=1 scheduler.override_opt_param_scheduler=true 2>bf2.log &&
    grep "resumed from bf/iter_0000002.h5" bf2.log && test "$(cat bf/latest)" = iter_0000004.h5
'

test_expect_success 'TensorBoard reads the loss of every iteration, equal to the log' '
    "$PY" "$ORACLE/tb_scalars.py" tb >scalars &&
    test $(grep -c "^lm_loss " scalars) -eq 8 &&
    grep -q "^lm_loss_validation 4 " scalars && grep -q "^learning-rate 8 " scalars &&
    losses run.log >log.loss &&
    awk "NR==FNR { if (\$1 == \"lm_loss\") tb[\$2] = \$3; next }
         { d = tb[\$1] - \$2; if (d < 0) d = -d; if (d > 1e-5 * \$2) bad = 1 } END { exit bad }" \
        scalars log.loss
'

test_expect_success 'the log line has loss, lr, grad norm, tokens/s, TFLOP/s, MFU and memory' '
    pretrain train.train_iters=2 scheduler.lr_warmup_iters=1 logger.peak_tflops=0.2 2>mfu.log &&
    grep -E "iter +2/2 \| loss [0-9.E+-]+ \| lr [0-9.E+-]+ \| grad_norm [0-9.E+-]+ \| tok/s [0-9.]+ \| TFLOP/s [0-9.]+ \| MFU [0-9.]+% \| mem [0-9.]+ GiB" mfu.log
'

test_expect_success 'the resolved configuration is printed at start' '
    grep "resolved configuration" run.log && grep "  hidden_size: 64" run.log &&
    mb-pretrain --recipe "$SMALL_RECIPE" --print-config train.train_iters=3 >cfg.yaml &&
    grep "  train_iters: 3" cfg.yaml
'

test_done
