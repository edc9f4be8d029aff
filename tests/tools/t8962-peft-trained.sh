#!/bin/sh
test_description='adapters trained by mb-pretrain: PEFT on the mb-convert --to peft export gives the logits mb computes with the adapter, and the merged model the same'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"
ADAPTER="$ORACLE/peft_adapter.py"

# The test model (tests/data/recipes/small.yaml, Llama with GQA), a base trained briefly,
# then LoRA and DoRA (peft.dim 8) trained on it with a large learning rate so that the
# adapters move the logits. ckpt_logits runs mb's own forward with the adapter unmerged.
test_expect_success 'setup: a base, and LoRA and DoRA adapters trained on it' '
    make_corpus &&
    pretrain train.train_iters=4 train.eval_iters=0 checkpoint.save=base 2>base.log &&
    for k in lora dora; do
        pretrain train.train_iters=6 train.eval_iters=0 checkpoint.pretrained_checkpoint=base \
            peft.peft=$k peft.dim=8 scheduler.lr_warmup_iters=1 optimizer.lr=0.01 \
            checkpoint.save=ad_$k 2>ad_$k.log || exit 1
    done &&
    mb-convert --from h5 --to hf base hf_base 2>err &&
    "$PY" -c "import numpy as np; np.save(\"tok.npy\", np.random.default_rng(0).integers(0, 500, (2, 32)).astype(np.int32))"
'

for k in lora dora; do
    test_expect_success "$k: PEFT on the export = mb with the adapter = the merged model (1e-4)" "
        mb-convert --from h5 --to peft ad_$k peft_$k 2>err &&
        mb-ckpt merge-adapter base ad_$k merged_$k >out &&
        \"\$PY\" \"\$ADAPTER\" merged base ad_$k merged_$k >out &&
        mb-convert --from h5 --to hf merged_$k hf_$k 2>err &&
        ckpt_logits ad_$k tok.npy dump_$k &&
        \"\$PY\" \"\$ADAPTER\" logits tok.npy hf_base peft_$k hf_$k dump_$k >out 2>err ||
        { cat out err; exit 1; }
    "
done

test_expect_success 'mb-convert --to hf of an adapter-only checkpoint: exit 1, saying what to do' '
    test_expect_code 1 mb-convert --from h5 --to hf ad_lora hf_bad 2>err &&
    grep "an adapter-only checkpoint (lora): export the adapter with --to peft, or fold it into its base with mb-ckpt merge-adapter" err &&
    test ! -e hf_bad
'

test_done
