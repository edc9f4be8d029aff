#!/bin/sh
test_description='mb-finetune mixed_precision=bf16_mixed: full SFT and LoRA on packed rows within bf16 noise of fp32, bitwise resume'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

# The SFT set-up of t8921 (a small pretrained base, GSM8K rows packed into rows of 256
# tokens: attention restarts per example). bf16 and fp32 losses within 1e-3 (bf16 noise,
# as t9131) and not within 1e-6 (the runs are not the same computation).
finetune() {
    recipe=$1
    shift
    mb-finetune --recipe $recipe checkpoint.pretrained_checkpoint=base \
        data.data_path=train.jsonl data.prompt_template='Question: {question}\nAnswer: ' \
        data.answer_key=answer data.seq_length=256 train.micro_batch_size=2 \
        train.global_batch_size=4 scheduler.lr_warmup_iters=0 train.train_iters=6 \
        train.eval_iters=0 logger.log_interval=1 "$@"
}

test_expect_success 'setup: a tiny pretrained base and GSM8K rows' '
    make_corpus &&
    pretrain checkpoint.save=base model.max_position_embeddings=256 2>base.log &&
    gsm8k_rows "$MB_SHARED_DATA/sft/gsm8k_train.jsonl" train.jsonl 100
'

test_expect_success 'full SFT: bf16 within 1e-3 of fp32, not the same; the loss falls' '
    finetune sft_full optimizer.lr=3e-3 2>f32.log &&
    finetune sft_full optimizer.lr=3e-3 mixed_precision=bf16_mixed 2>b16.log &&
    grep "mixed_precision bf16_mixed" b16.log &&
    same_losses b16.log f32.log 1e-3 && ! same_losses b16.log f32.log 1e-6 &&
    losses b16.log >l && test $(wc -l <l) -eq 6 &&
    awk "NR==1 { first = \$2 } END { exit !(\$2 < first) }" l
'

test_expect_success 'full SFT in bf16: stop at 3, resume to 6: losses and checkpoint bitwise' '
    finetune sft_full optimizer.lr=3e-3 mixed_precision=bf16_mixed checkpoint.save=s \
        2>straight.log &&
    finetune sft_full optimizer.lr=3e-3 mixed_precision=bf16_mixed checkpoint.save=h \
        checkpoint.save_interval=3 train.exit_interval=3 2>first.log &&
    finetune sft_full optimizer.lr=3e-3 mixed_precision=bf16_mixed checkpoint.save=h \
        checkpoint.load=h 2>second.log &&
    grep "resumed from h/iter_0000003.h5: iteration 3" second.log &&
    same_losses second.log straight.log 0 &&
    "$PY" "$ORACLE/ckpt_compare.py" h/iter_0000006.h5 s/iter_0000006.h5
'

test_expect_success 'LoRA (the sft_lora recipe): bf16 within 1e-3 of fp32, not the same' '
    finetune sft_lora 2>lora32.log &&
    finetune sft_lora mixed_precision=bf16_mixed 2>lora16.log &&
    same_losses lora16.log lora32.log 1e-3 && ! same_losses lora16.log lora32.log 1e-6
'

test_done
