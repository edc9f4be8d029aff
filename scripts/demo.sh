#!/bin/sh
# The README's main job on the embedded default, CPU only:
#   1. a real corpus (Debian's fortunes, fetched by scripts/fetch-test-data.sh),
#   2. a 4096-entry byte-level BPE tokenizer trained on it, the corpus tokenized into
#      Megatron .bin/.idx files,
#   3. a tiny Llama (recipes/tiny.yaml) pretrained on them for a few minutes, with the
#      loss falling, a validation loss, a checkpoint and TensorBoard events under demo/,
#   4. the model continuing a prompt (mb-generate), and its HuggingFace form (mb-convert)
#      in demo/hf, which transformers loads,
#   5. a LoRA fine-tuning of it on GSM8K questions (mb-finetune, recipes/sft_lora.yaml;
#      the data from ../shared/data/sft), with a validation loss on GSM8K test every 50 iterations,
#      and the adapter exported for HF peft in demo/adapter (mb-convert --to peft).
# DEMO_ITERS=N changes the length of the run (default 600, about two minutes on 2 cores);
# a longer run resumes from demo/ckpt on the schedule of the new length
# (scheduler.override_opt_param_scheduler, since train_iters changed).
set -eu
cd "$(dirname "$0")/.."
MB_CACHE=${MB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mb}
corpus="$MB_CACHE/testdata/corpora/fortunes.jsonl"
iters=${DEMO_ITERS:-600}
[ -s "$corpus" ] || scripts/fetch-test-data.sh
mkdir -p demo
echo "== 1. training a 4096-entry BPE tokenizer on $(wc -l <"$corpus") fortunes and tokenizing them"
bin/mb-preprocess --input "$corpus" --output-prefix demo/fortunes --train-tokenizer 4096 \
    --save-tokenizer demo/tokenizer.json --append-eod
echo "== 2. pretraining recipes/tiny.yaml for $iters iterations (resumes from demo/ckpt if there)"
bin/mb-pretrain --recipe tiny data.data_path=demo/fortunes_text_document \
    tokenizer.tokenizer_model=demo/tokenizer.json train.train_iters="$iters" \
    train.eval_interval=100 train.eval_iters=4 logger.log_interval=10 \
    checkpoint.save=demo/ckpt checkpoint.load=demo/ckpt checkpoint.save_interval=100 \
    scheduler.override_opt_param_scheduler=true \
    logger.tensorboard_dir=demo/tensorboard 2>&1 | grep --line-buffered -v '^  '
echo "== 3. sampling from the checkpoint: mb-generate demo/ckpt --prompt 'You will' ..."
bin/mb-generate demo/ckpt --prompt "You will" --max-new-tokens 40 --temperature 0.8 --top-k 40 \
    --seed 1
echo "== 4. converting it to a HuggingFace directory: mb-convert --from h5 --to hf demo/ckpt demo/hf"
rm -rf demo/hf
bin/mb-convert --from h5 --to hf demo/ckpt demo/hf
sft="${MB_SHARED_DATA:-../shared/data}/sft"
echo "== 5. LoRA fine-tuning on $(wc -l <"$sft/gsm8k_train.jsonl") GSM8K questions (validation: GSM8K test)"
rm -rf demo/ft demo/adapter
bin/mb-finetune --recipe sft_lora checkpoint.pretrained_checkpoint=demo/ckpt \
    data.data_path="$sft/gsm8k_train.jsonl" data.validation_path="$sft/gsm8k_test.jsonl" \
    data.prompt_template="Question: {question}\nAnswer: " data.answer_key=answer \
    data.seq_length=256 train.micro_batch_size=4 train.global_batch_size=8 \
    train.train_iters=100 scheduler.lr_warmup_iters=10 optimizer.lr=1e-3 \
    train.eval_interval=50 train.eval_iters=4 logger.log_interval=10 \
    checkpoint.save=demo/ft 2>&1 | grep --line-buffered -v '^  '
echo "== 6. the adapter for HF peft: mb-convert --from h5 --to peft demo/ft demo/adapter"
bin/mb-convert --from h5 --to peft demo/ft demo/adapter
echo "== outputs"
ls -l demo/fortunes_text_document.bin demo/fortunes_text_document.idx demo/tokenizer.json \
    demo/ckpt/latest "demo/ckpt/$(cat demo/ckpt/latest)" demo/hf demo/ft demo/adapter
