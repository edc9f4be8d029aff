#!/bin/sh
test_description='mb-finetune: full SFT from a pretrained checkpoint learns; packed = unpacked validation loss; bad input exits 1 naming it'
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MB_ROOT/tests/lib/pretrain-lib.sh"

finetune() {
    mb-finetune --recipe sft_full checkpoint.pretrained_checkpoint=base \
        data.data_path=train.jsonl data.validation_path=valid.jsonl \
        data.prompt_template='Question: {question}\nAnswer: ' data.answer_key=answer \
        data.seq_length=256 train.micro_batch_size=2 train.global_batch_size=8 \
        scheduler.lr_warmup_iters=0 "$@"
}

validation_losses() { sed -n 's/.*validation at iter *[0-9]* | loss \([^ ]*\) .*/\1/p' "$1"; }

test_expect_success 'setup: a tiny pretrained base (its tokenizer inside) and GSM8K rows' '
    make_corpus &&
    pretrain checkpoint.save=base model.max_position_embeddings=256 2>base.log &&
    gsm8k_rows "$MB_SHARED_DATA/sft/gsm8k_train.jsonl" train.jsonl 400 &&
    gsm8k_rows "$MB_SHARED_DATA/sft/gsm8k_test.jsonl" valid.jsonl 40
'

test_expect_success 'full SFT (packed, the recipe'"'"'s default): the tokenizer comes from the base; training and validation loss go down' '
    finetune optimizer.lr=3e-3 train.train_iters=30 train.eval_interval=10 train.eval_iters=5 \
        logger.log_interval=1 checkpoint.save=ft 2>ft.log &&
    grep "tokenizer of base/iter_0000008.h5: byte-level BPE, 512 entries" ft.log &&
    grep "sft data train: 400 examples" ft.log && grep "sft data train: packed into" ft.log &&
    test -f ft/iter_0000030.h5 &&
    first=$(losses ft.log | awk "NR == 1 { print \$2 }") &&
    test $(losses ft.log | wc -l) -eq 30 &&
    last=$(losses ft.log | awk "NR > 25 { s += \$2; n++ } END { print s / n }") &&
    v1=$(validation_losses ft.log | sed -n 1p) && v3=$(validation_losses ft.log | sed -n 3p) &&
    echo "# train loss $first -> $last (mean of the last 5), validation $v1 -> $v3" &&
    awk -v a="$first" -v b="$last" -v c="$v1" -v d="$v3" "BEGIN { exit !(b < a - 1.5 && d < c - 0.3) }"
'

test_expect_success 'mb-generate reads the fine-tuned checkpoint (tokenizer included) and answers in the trained form' '
    mb-generate ft --prompt "Question: Tom has 3 apples and buys 4 more. How many apples does he have?
Answer: " --max-new-tokens 4 >gen.txt 2>gen.log &&
    cat gen.txt && grep "^####" gen.txt
'

# lr 0 leaves the base weights as they are; one validation then covers every validation
# example once: 10 batches of 4 unpacked, or one batch per packed row (the rows the log
# names). The validation loss is over all their answer tokens (not a mean of batch means).
test_expect_success 'validation loss of the same examples packed and unpacked: equal (1e-5)' '
    finetune optimizer.lr=0 train.train_iters=1 train.eval_iters=0 data.packed=true 2>count.log &&
    rows=$(sed -n "s/.*sft data validation: packed into \([0-9]*\) rows.*/\1/p" count.log) &&
    echo "# 40 validation examples packed into $rows rows" && test "$rows" -lt 40 &&
    finetune optimizer.lr=0 train.train_iters=1 train.eval_interval=1 train.eval_iters=10 \
        train.micro_batch_size=4 train.global_batch_size=4 data.packed=false 2>unpacked.log &&
    finetune optimizer.lr=0 train.train_iters=1 train.eval_interval=1 train.eval_iters=$rows \
        train.micro_batch_size=1 train.global_batch_size=1 data.packed=true 2>packed.log &&
    u=$(validation_losses unpacked.log) && p=$(validation_losses packed.log) &&
    echo "# unpacked $u, packed $p" &&
    awk -v u="$u" -v p="$p" "BEGIN { d = (u - p) / u; exit !(u > 0 && d < 1e-5 && d > -1e-5) }"
'

test_expect_success 'two data-parallel ranks: the same samples, losses and validation (1e-5)' '
    set -- optimizer.lr=3e-3 train.train_iters=6 train.eval_interval=3 train.eval_iters=2 \
        logger.log_interval=1 &&
    finetune "$@" 2>one.log &&
    $MPIRUN -np 2 mb-finetune --recipe sft_full checkpoint.pretrained_checkpoint=base \
        data.data_path=train.jsonl data.validation_path=valid.jsonl \
        data.prompt_template="Question: {question}\nAnswer: " data.answer_key=answer \
        data.seq_length=256 train.micro_batch_size=2 train.global_batch_size=8 \
        scheduler.lr_warmup_iters=0 "$@" 2>two.log &&
    grep "data-parallel size 2" two.log &&
    same_losses two.log one.log 1e-5 &&
    validation_losses one.log >v1 && validation_losses two.log >v2 && test -s v1 && cmp v1 v2
'

test_expect_success 'packed rows under tensor parallelism 2 with sequence parallelism: the one-rank losses (1e-5)' '
    $MPIRUN -np 2 mb-finetune --recipe sft_full checkpoint.pretrained_checkpoint=base \
        data.data_path=train.jsonl data.validation_path=valid.jsonl \
        data.prompt_template="Question: {question}\nAnswer: " data.answer_key=answer \
        data.seq_length=256 train.micro_batch_size=2 train.global_batch_size=8 \
        scheduler.lr_warmup_iters=0 optimizer.lr=3e-3 train.train_iters=6 train.eval_interval=3 \
        train.eval_iters=2 logger.log_interval=1 dist.tensor_model_parallel_size=2 \
        dist.sequence_parallel=true 2>tp.log &&
    grep "tensor/pipeline/context-parallel size 2/1/1" tp.log &&
    same_losses tp.log one.log 1e-5 &&
    validation_losses tp.log >vt && test -s vt &&
    awk "NR == FNR { a[FNR] = \$1; next } { d = (\$1 - a[FNR]) / a[FNR]; if (d > 1e-5 || d < -1e-5) exit 1 }" v1 vt
'

test_expect_success 'stopped at 3 and resumed from checkpoint.load: the losses of one run, bitwise' '
    set -- optimizer.lr=3e-3 train.train_iters=6 train.eval_iters=0 logger.log_interval=1 &&
    finetune "$@" 2>whole.log &&
    finetune "$@" checkpoint.save=halves train.exit_interval=3 2>first.log &&
    finetune "$@" checkpoint.save=halves checkpoint.load=halves 2>second.log &&
    grep "resumed from halves/iter_0000003.h5" second.log &&
    losses first.log >parts && losses second.log >>parts && losses whole.log >all &&
    test $(wc -l <all) -eq 6 && cmp all parts
'

test_expect_success 'tokenizer.tokenizer_model wins over the base'"'"'s; a base without one needs it' '
    finetune train.train_iters=1 train.eval_iters=0 tokenizer.tokenizer_model=tok.json 2>tok.log &&
    grep "mb-finetune: tokenizer: byte-level BPE" tok.log && ! grep "tokenizer of base" tok.log &&
    mb-pretrain --recipe "$SMALL_RECIPE" data.data_path=corpus_text_document train.train_iters=1 \
        train.eval_iters=0 scheduler.lr_warmup_iters=0 model.max_position_embeddings=256 \
        checkpoint.save=bare 2>bare.log &&
    test_expect_code 1 finetune train.train_iters=1 checkpoint.pretrained_checkpoint=bare 2>err.log &&
    grep "error: bare/iter_0000001.h5: the checkpoint carries no tokenizer: set tokenizer.tokenizer_model" err.log &&
    finetune train.train_iters=1 train.eval_iters=0 checkpoint.pretrained_checkpoint=bare \
        tokenizer.tokenizer_model=tok.json 2>ok.log
'

test_expect_success 'a row without the template'"'"'s key: exit 1 naming file:line and key' '
    head -3 train.jsonl >bad.jsonl &&
    echo "{\"query\": \"no question here\", \"answer\": \"#### 1\"}" >>bad.jsonl &&
    test_expect_code 1 finetune train.train_iters=1 data.data_path=bad.jsonl 2>err.log &&
    grep "error: bad.jsonl:4: no key .question. in the row (data.prompt_template)" err.log
'

test_expect_success 'a row without the answer key: exit 1 naming it' '
    test_expect_code 1 finetune train.train_iters=1 data.answer_key=solution 2>err.log &&
    grep "error: train.jsonl:1: no key .solution. in the row (data.answer_key)" err.log
'

test_expect_success 'chat rows: exit 1, refused clearly' '
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}" >chat.jsonl &&
    test_expect_code 1 finetune train.train_iters=1 data.data_path=chat.jsonl 2>err.log &&
    grep "error: chat.jsonl:1: a chat row" err.log
'

test_expect_success 'a missing data file: exit 1 naming it' '
    test_expect_code 1 finetune train.train_iters=1 data.validation_path=nowhere.jsonl 2>err.log &&
    grep "error: nowhere.jsonl" err.log
'

test_expect_success 'no pretrained checkpoint, or a missing one: exit 1 naming the key or path' '
    test_expect_code 1 mb-finetune --recipe sft_full data.data_path=train.jsonl 2>err.log &&
    grep "error: checkpoint.pretrained_checkpoint: fine-tuning starts from a model" err.log &&
    test_expect_code 1 mb-finetune --recipe sft_full data.data_path=train.jsonl \
        checkpoint.pretrained_checkpoint=nothing-here 2>err.log &&
    grep "nothing-here" err.log && grep "no checkpoint there" err.log
'

test_done
