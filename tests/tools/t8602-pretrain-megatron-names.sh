#!/bin/sh
test_description="mb-pretrain: Megatron Bridge's key names, Megatron-LM flags, overrides named as such"
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# A corpus tokenized with the byte tokenizer (257 ids, within small.yaml's 512).
small() {
    mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document train.eval_iters=0 "$@"
}

test_expect_success 'setup: a small real corpus' '
    head -200 "$TESTDATA/corpora/c4.jsonl" >c4.jsonl &&
    mb-preprocess -t bytes --append-eod -o corpus c4.jsonl 2>/dev/null
'

# small.yaml rewritten with Bridge's ConfigContainer names: dataset (GPTDatasetConfig),
# rng (RNGConfig), validation (ValidationConfig), parallel sizes on the model provider.
test_expect_success 'a recipe in Megatron Bridge names resolves to the same configuration' '
    sed -e "/^data:/,\$d" -e "/^  seed:/d" -e "/^  eval_i/d" -e "/^  family:/a\\
  tensor_model_parallel_size: 1" "$SMALL_RECIPE" >bridge.yaml &&
    printf "%s\n" "dataset:" "  sequence_length: 64" "  split: \"90,8,2\"" "  eod_mask_loss: true" \
        "rng:" "  seed: 1234" "validation:" "  eval_interval: 4" "  eval_iters: 2" \
        "logger:" "  log_interval: 1" >>bridge.yaml &&
    grep "^  tensor_model_parallel_size: 1" bridge.yaml && ! grep "^data:" bridge.yaml &&
    mb-pretrain --recipe bridge.yaml --print-config >bridge.printed &&
    mb-pretrain --recipe "$SMALL_RECIPE" --print-config >mb.printed &&
    cmp bridge.printed mb.printed && ! grep -E "^(dataset|rng|validation):" bridge.printed
'

test_expect_success 'overrides in Bridge names set mb keys; print and checkpoint show mb names' '
    small dataset.seq_length=32 rng.seed=7 validation.eval_iters=3 \
        model.pipeline_model_parallel_size=1 --print-config >o.printed &&
    grep "^  seq_length: 32$" o.printed && grep "^  seed: 7$" o.printed &&
    grep "^  eval_iters: 3$" o.printed &&
    test "$(cfg_check --where data.seq_length "$SMALL_RECIPE" dataset.seq_length=32)" = \
        "command line: dataset.seq_length=32" &&
    small dataset.seq_length=32 rng.seed=7 train.train_iters=1 scheduler.lr_warmup_iters=0 \
        checkpoint.save=ck 2>/dev/null &&
    $PY -c "import h5py, json, sys
r = json.loads(h5py.File(sys.argv[1]).attrs[\"recipe\"])
assert r[\"data\"][\"seq_length\"] == 32 and r[\"train\"][\"seed\"] == 7, r
assert \"dataset\" not in r and \"rng\" not in r, list(r)" ck/iter_0000001.h5
'

test_expect_success 'an alias and its key both in one recipe: a duplicate, both named' '
    cat "$SMALL_RECIPE" >dup.yaml && printf "%s\n" "dataset:" "  seq_length: 32" >>dup.yaml &&
    line=$(grep -n "^  seq_length:" "$SMALL_RECIPE" | cut -d: -f1) &&
    last=$(wc -l <dup.yaml) &&
    test_expect_code 1 mb-pretrain --recipe dup.yaml --print-config 2>err &&
    grep "dup.yaml:$last: duplicate key .dataset.seq_length. (another name of .data.seq_length., first set on line $line)" err
'

test_expect_success 'a rule broken by an override names the override, not the recipe line' '
    test_expect_code 1 small train.train_iters=-1 2>err &&
    grep "^mb-pretrain: error: command line: train.train_iters=-1: train.train_iters must be zero or more" err &&
    test_expect_code 1 small model.tensor_model_parallel_size=2 2>err &&
    grep "^mb-pretrain: error: command line: model.tensor_model_parallel_size=2: dist.tensor_model_parallel_size must be between 1 and the world size 1" err &&
    test_expect_code 1 small model.rotary_base=-10000 2>err &&
    grep "^mb-pretrain: error: command line: model.rotary_base=-10000: model.rotary_base must be positive" err
'

test_expect_success 'Megatron-LM flags get the key=value to use instead (exit 2)' '
    check_hint() {
        hint=$1 flag=${2%%=*}; shift
        test_expect_code 2 small "$@" 2>err &&
        grep "unknown option .$flag. (mb-pretrain takes key=value: $hint)" err
    } &&
    check_hint "train.train_iters=10" --train-iters 10 &&
    check_hint "optimizer.lr=3e-4" --lr 3e-4 &&
    check_hint "train.micro_batch_size=4" --micro-batch-size=4 &&
    check_hint "data.seq_length=128" --seq-length 128 &&
    check_hint "data.mock=true" --mock-data &&
    check_hint "model.layernorm_epsilon=1e-6" --norm-epsilon 1e-6 &&
    check_hint "checkpoint.save_optim=false" --no-save-optim &&
    check_hint "model.share_embeddings_and_output_weights=false" --untie-embeddings-and-output-weights &&
    check_hint "dist.tensor_model_parallel_size=VALUE" --tensor-model-parallel-size &&
    test_expect_code 2 small --no-such-flag 2>err && grep "unknown option .--no-such-flag.$" err
'

test_expect_success 'real data without a tokenizer: one warning (also over 2 ranks); none otherwise' '
    small train.train_iters=1 scheduler.lr_warmup_iters=0 2>one.log &&
    test $(grep -c "warning: no tokenizer.tokenizer_model" one.log) = 1 &&
    $MPIRUN -np 2 mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document \
        train.eval_iters=0 train.train_iters=1 scheduler.lr_warmup_iters=0 2>two.log &&
    test $(grep -c "warning: no tokenizer.tokenizer_model" two.log) = 1 &&
    small train.train_iters=1 scheduler.lr_warmup_iters=0 data.mock=true 2>mock.log &&
    ! grep "warning: no tokenizer" mock.log &&
    small train.train_iters=1 scheduler.lr_warmup_iters=0 tokenizer.tokenizer_model=bytes 2>tok.log &&
    ! grep "warning: no tokenizer" tok.log
'

test_expect_success 'with pretrained_checkpoint, --print-config and the start show the checkpoint model' '
    small train.train_iters=1 scheduler.lr_warmup_iters=0 checkpoint.save=base 2>/dev/null &&
    small checkpoint.pretrained_checkpoint=base model.hidden_size=128 model.num_layers=3 \
        --print-config >p.printed &&
    grep "^  hidden_size: 64$" p.printed && grep "^  num_layers: 2$" p.printed &&
    small checkpoint.pretrained_checkpoint=base model.hidden_size=128 train.train_iters=1 \
        scheduler.lr_warmup_iters=0 checkpoint.save=next 2>next.log &&
    sed -n "/resolved configuration/,/^mb-pretrain: [a-z]/p" next.log | grep "^  hidden_size: 64$" &&
    $PY -c "import h5py, json, sys
r = json.loads(h5py.File(sys.argv[1]).attrs[\"recipe\"])
assert r[\"model\"][\"hidden_size\"] == 64, r[\"model\"]" next/iter_0000001.h5
'

test_done
